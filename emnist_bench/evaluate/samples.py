"""The grid of sample predictions: test images titled with the predicted and true character,
blue when right and red when wrong (as the original notebook drew them)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from emnist_bench.evaluate.plots import paired_labels
from emnist_bench.figures import new_figure, save

RIGHT_COLOR = "blue"
"""Title colour of a correctly predicted image in the sample grid."""

WRONG_COLOR = "red"
"""Title colour of a wrongly predicted image in the sample grid."""

# --------------------------------------------------------------------------------------------


def sample_indices(n_images: int, count: int = 36, seed: int = 0) -> np.ndarray:
    """Picks which images the sample grid shows.

    Args:
        n_images: How many images there are to choose from.
        count: How many to show; all of them when there are fewer.
        seed: Seed of the random choice, so the same call shows the same images.

    Returns:
        ``min(count, n_images)`` distinct indices in ascending order.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    k = min(count, n_images)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_images, size=k, replace=False))


def _grid_shape(k: int) -> tuple[int, int]:
    """Rows and columns of a square-ish grid holding ``k`` cells."""
    cols = math.ceil(math.sqrt(k))
    rows = math.ceil(k / cols)
    return rows, cols


def sample_grid_figure(
    images, y_true, y_pred, classes: Sequence[str], count: int = 36, seed: int = 0
) -> Figure:
    """Builds a grid of test images, each titled with its predicted and true character.

    Args:
        images: Upright images, shape (N, 28, 28) (a trailing channel of 1 is dropped),
            uint8 pixels 0-255 or floats.
        y_true: True class indices, shape (N,).
        y_pred: Predicted class indices, shape (N,).
        classes: The character of each class index.
        count: How many images to show (all of them when there are fewer).
        seed: Seed of the random choice of images (see :func:`sample_indices`).

    Returns:
        The figure. Its image axes come first in ``fig.axes``, in the order of
        ``sample_indices(N, count, seed)``; each is titled ``"pred X / true Y"`` in
        :data:`RIGHT_COLOR` when the prediction is right and :data:`WRONG_COLOR` when wrong.

    Raises:
        ValueError: If the shapes disagree, there are no images, or labels fall outside
            ``range(len(classes))``.
    """
    classes = [str(c) for c in classes]
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, height, width), got {images.shape}")
    if len(images) == 0:
        raise ValueError("there are no images to show")
    true, pred = paired_labels(y_true, y_pred, len(classes))
    if len(true) != len(images):
        raise ValueError(f"{len(images)} images but {len(true)} labels")

    chosen = sample_indices(len(images), count, seed)
    rows, cols = _grid_shape(len(chosen))
    fig = new_figure(max(4.0, 1.55 * cols + 0.3), 1.7 * rows + (0.6 if cols >= 5 else 0.9))
    grid = fig.subplots(rows, cols, squeeze=False)
    if np.issubdtype(images.dtype, np.integer):
        vmin, vmax = 0, 255
    else:
        vmin, vmax = (0.0, 1.0) if images.max() <= 1.0 else (0.0, 255.0)

    right = 0
    for ax, index in zip(grid.flat, chosen, strict=False):
        ax.imshow(images[index], cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
        ok = true[index] == pred[index]
        right += int(ok)
        ax.set_title(
            f"pred {classes[pred[index]]} / true {classes[true[index]]}",
            color=RIGHT_COLOR if ok else WRONG_COLOR,
            fontsize=10,
            fontweight="normal" if ok else "bold",
        )
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in grid.flat[len(chosen) :]:
        ax.set_visible(False)
        fig.delaxes(ax)

    fig.suptitle(
        f"Predictions on {len(chosen)} test image{'s' if len(chosen) != 1 else ''}: "
        f"{right} right, {len(chosen) - right} wrong"
        + ("  " if cols >= 5 else "\n")  # a narrow grid gets the key on a second line
        + "(blue = right, red = wrong)",
        fontsize=12,
    )
    return fig


def plot_samples(
    images, y_true, y_pred, classes: Sequence[str], path, count: int = 36, seed: int = 0
) -> Path:
    """Writes a grid of test images with their predicted and true characters to a PNG.

    Args:
        images: Upright images, shape (N, 28, 28), uint8.
        y_true: True class indices, shape (N,).
        y_pred: Predicted class indices, shape (N,).
        classes: The character of each class index.
        path: Where to write the PNG; parent folders are created.
        count: How many images to show (all of them when there are fewer).
        seed: Seed of the random choice of images.

    Returns:
        The path written.

    Raises:
        ValueError: If the shapes disagree or labels fall outside ``range(len(classes))``.
    """
    return save(sample_grid_figure(images, y_true, y_pred, classes, count, seed), path)
