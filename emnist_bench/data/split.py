"""Seeded, stratified subsets and validation splits of the training images."""

from __future__ import annotations

import numpy as np

from emnist_bench.errors import ConfigError


def subset_per_class(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Returns sorted indices keeping at most ``per_class`` randomly chosen images per class."""
    if per_class < 1:
        raise ConfigError(f"data.subset={per_class} must be a positive count of images per class")
    rng = np.random.default_rng(seed)
    keep = [
        rng.permutation(np.flatnonzero(labels == label))[:per_class] for label in np.unique(labels)
    ]
    return np.sort(np.concatenate(keep))


def _working_val_size(total: int, classes: int) -> str:
    """What to ask for instead: a validation size that leaves both sides one image per class,
    or, where none can, more training images."""
    if total < 2 * classes:
        return "use more training images (data.subset=4 or more, with data.val_size=0.3)"
    for fraction in (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5):
        if classes <= round(fraction * total) <= total - classes:
            return f"use data.val_size={fraction}"
    return f"use data.val_size={classes} (one image per class)"


def validation_split(
    labels: np.ndarray, val_size: int | float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Splits indices into (train, val), stratified by label and seeded.

    Args:
        labels: class index of every training image.
        val_size: an int is a count of images, a float in (0, 1) a fraction; 0 means no
            validation set.
        seed: the random seed.
    """
    from sklearn.model_selection import train_test_split

    total = labels.size
    if isinstance(val_size, bool) or not isinstance(val_size, int | float):
        raise ConfigError(f"data.val_size={val_size!r} must be a count or a fraction in (0, 1)")
    if isinstance(val_size, float) and not 0 < val_size < 1:
        raise ConfigError(
            f"data.val_size={val_size} must be a fraction in (0, 1) or a whole count of images"
        )
    if val_size == 0:
        return np.arange(total), np.arange(0)
    classes = np.unique(labels).size
    count = val_size if isinstance(val_size, int) else round(val_size * total)
    if not classes <= count <= total - classes:
        if count > total:
            split = f"asks for {count} validation images of the {total} training images"
        else:
            split = f"leaves {total - count} of {total} training images for training and {count}"
            split += " for validation"
        raise ConfigError(
            f"data.val_size={val_size} {split}; each side needs at least one image per class "
            f"({classes}); {_working_val_size(total, classes)}"
        )
    train, val = train_test_split(
        np.arange(total), test_size=count, stratify=labels, random_state=seed
    )
    return np.sort(train), np.sort(val)
