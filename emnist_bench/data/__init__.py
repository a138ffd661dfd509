"""EMNIST data: official file layouts, download, cache, stratified splits."""

from __future__ import annotations

import logging
from collections.abc import Mapping as MappingType
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emnist_bench.data.files import Mapping
from emnist_bench.data.load import default_cache_dir, ensure_files, load_mapping, load_part
from emnist_bench.data.split import subset_per_class, validation_split

log = logging.getLogger(__name__)

__all__ = ["Dataset", "load_dataset", "load_test", "resolve_cache_dir"]


@dataclass(frozen=True)
class Dataset:
    """Upright uint8 images (N, 28, 28) and class indices for train, validation and test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    mapping: Mapping
    layout: str

    @property
    def classes(self) -> tuple[str, ...]:
        return self.mapping.characters

    @property
    def num_classes(self) -> int:
        return self.mapping.num_classes


def resolve_cache_dir(data_cfg: MappingType) -> Path | None:
    """``data.cache_dir``: a folder, null for the user's cache folder, or false for no cache."""
    cache_dir = data_cfg.get("cache_dir")
    if cache_dir is False:
        return None
    return Path(cache_dir).expanduser() if cache_dir else default_cache_dir()


def _prepare(data_cfg: MappingType, parts: tuple[str, ...]) -> tuple[Path, Mapping]:
    root = Path(str(data_cfg["root"])).expanduser()
    ensure_files(
        root,
        data_cfg["split"],
        parts,
        download=bool(data_cfg.get("download", True)),
        urls=list(data_cfg.get("urls") or []),
        md5=data_cfg.get("md5"),
    )
    return root, load_mapping(root, data_cfg["split"])


def load_test(data_cfg: MappingType):
    """Loads only the test part (a folder with the test files and the mapping is enough)."""
    root, mapping = _prepare(data_cfg, ("test",))
    test = load_part(
        root, data_cfg["split"], "test", cache_dir=resolve_cache_dir(data_cfg), mapping=mapping
    )
    return test, mapping


def load_dataset(data_cfg: MappingType, seed: int) -> Dataset:
    """Loads the split named by ``data_cfg`` and carves the validation set out of train.

    ``data.subset`` (at most N images per class) applies to the training file before the
    validation split, so smoke runs stay small end to end.
    """
    root, mapping = _prepare(data_cfg, ("train", "test"))
    cache_dir = resolve_cache_dir(data_cfg)
    split = data_cfg["split"]
    train = load_part(root, split, "train", cache_dir=cache_dir, mapping=mapping)
    test = load_part(root, split, "test", cache_dir=cache_dir, mapping=mapping)
    x, y = train.images, train.labels
    if data_cfg.get("subset") is not None:
        keep = subset_per_class(y, int(data_cfg["subset"]), seed)
        x, y = x[keep], y[keep]
    train_idx, val_idx = validation_split(y, data_cfg.get("val_size", 0), seed)
    log.info(
        "EMNIST %s (%s layout): %d train, %d validation, %d test images, %d classes",
        split,
        train.layout.upper(),
        train_idx.size,
        val_idx.size,
        test.labels.size,
        mapping.num_classes,
    )
    return Dataset(
        x[train_idx],
        y[train_idx],
        x[val_idx],
        y[val_idx],
        test.images,
        test.labels,
        mapping,
        train.layout,
    )
