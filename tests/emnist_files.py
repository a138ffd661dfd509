"""Writers of tiny synthetic EMNIST folders in the official on-disk layouts.

Both layouts store every image transposed, so the writers take upright images and transpose
them, exactly as the real files do; a correct reader must hand back the upright arrays.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801
# EMNIST Balanced: labels 0..46 are these characters, in order.
BALANCED_CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghnqrt"


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """An IDX file: big-endian magic, one big-endian uint32 per dimension, then uint8 data."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    return header + array.tobytes()


def write_bytes(path: Path, data: bytes, gz: bool) -> Path:
    """Writes ``data`` to ``path``, gzip-compressed when ``gz`` (the name gets no suffix here)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def idx_paths(root: Path, split: str, part: str, gz: bool = True) -> tuple[Path, Path]:
    """The official (images, labels) file names of one part in the IDX layout."""
    suffix = ".gz" if gz else ""
    return (
        Path(root) / f"emnist-{split}-{part}-images-idx3-ubyte{suffix}",
        Path(root) / f"emnist-{split}-{part}-labels-idx1-ubyte{suffix}",
    )


def write_idx_split(
    root: Path, split: str, part: str, images_upright: np.ndarray, labels, gz: bool = True
) -> tuple[Path, Path]:
    """Writes one part in the NIST IDX layout, images transposed as in the official files.

    Returns:
        The (images, labels) paths.
    """
    images_path, labels_path = idx_paths(root, split, part, gz)
    on_disk = np.asarray(images_upright, dtype=np.uint8).transpose(0, 2, 1)
    write_bytes(images_path, idx_bytes(on_disk, IDX_IMAGES_MAGIC), gz)
    write_bytes(labels_path, idx_bytes(np.asarray(labels), IDX_LABELS_MAGIC), gz)
    return images_path, labels_path


def csv_rows(images_upright: np.ndarray, labels) -> list[list[int]]:
    """Kaggle rows: label, then the 784 pixels of the transposed image."""
    on_disk = np.asarray(images_upright).transpose(0, 2, 1).reshape(len(labels), -1)
    return [[int(label), *map(int, pixels)] for label, pixels in zip(labels, on_disk, strict=True)]


def write_csv_rows(path: Path, rows) -> Path:
    """Writes rows of cells (any values) as a header-less CSV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(",".join(map(str, row)) + "\n" for row in rows))
    return path


def write_csv_split(root: Path, split: str, part: str, images_upright: np.ndarray, labels) -> Path:
    """Writes one part in the Kaggle CSV layout (no header, label + 784 transposed pixels)."""
    path = Path(root) / f"emnist-{split}-{part}.csv"
    return write_csv_rows(path, csv_rows(images_upright, labels))


def write_mapping(root: Path, split: str = "balanced", n_classes: int = 47) -> Path:
    """Writes ``emnist-<split>-mapping.txt`` with the Balanced labels 0..n_classes-1."""
    path = Path(root) / f"emnist-{split}-mapping.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = (f"{label} {ord(char)}\n" for label, char in enumerate(BALANCED_CHARACTERS[:n_classes]))
    path.write_text("".join(lines))
    return path


def letter_l(value: int = 255) -> np.ndarray:
    """An upright 'L' with a gradient: no transpose or flip of it equals the original."""
    image = np.zeros((28, 28), dtype=np.uint8)
    image[4:23, 6:9] = value  # the vertical stroke
    image[20:23, 6:21] = value  # the foot, to the right
    image[0, :] = np.arange(28, dtype=np.uint8)  # a gradient along the top row
    return image


def random_images(count: int, seed: int = 0) -> np.ndarray:
    """``count`` random upright uint8 images (N, 28, 28)."""
    return np.random.default_rng(seed).integers(0, 256, (count, 28, 28), dtype=np.uint8)


def write_tiny_split(
    root: Path, per_class: int = 2, n_classes: int = 47, layout: str = "idx", seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Writes a tiny balanced train and test part plus the mapping into ``root``.

    Returns:
        The upright train images and their labels.
    """
    labels = np.repeat(np.arange(n_classes), per_class).astype(np.uint8)
    images = random_images(labels.size, seed)
    for part in ("train", "test"):
        if layout == "idx":
            write_idx_split(root, "balanced", part, images, labels)
        else:
            write_csv_split(root, "balanced", part, images, labels)
    write_mapping(root, "balanced", n_classes)
    return images, labels


def class_counts(labels: np.ndarray, n_classes: int = 47) -> np.ndarray:
    """Images per class, one count per label 0..n_classes-1 (zero for absent classes)."""
    return np.bincount(labels, minlength=n_classes)


def class_templates(n_classes: int = 47, seed: int = 0) -> np.ndarray:
    """One fixed upright template per class: a random 7x7 pattern of 4x4-pixel blocks.

    Blocks, not single pixels, so that convolutions and pooling see the pattern as readily as
    a dense layer does.
    """
    rng = np.random.default_rng(seed)
    blocks = rng.random((n_classes, 7, 7)) < 0.4
    return np.kron(blocks, np.ones((4, 4))).astype(np.float64) * 255


def learnable_images(labels: np.ndarray, noise: float = 60.0, seed: int = 0) -> np.ndarray:
    """Each label's class template plus Gaussian pixel noise, as upright uint8 images."""
    templates = class_templates(int(labels.max()) + 1)
    noisy = templates[labels] + np.random.default_rng(seed).normal(0, noise, (len(labels), 28, 28))
    return np.clip(noisy, 0, 255).round().astype(np.uint8)


def write_learnable_split(
    root: Path,
    train_per_class: int = 50,
    test_per_class: int = 10,
    n_classes: int = 47,
    layout: str = "csv",
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Writes a Balanced train and test part a model can learn, plus the mapping, into ``root``.

    Every image is its class's template (:func:`class_templates`) plus noise drawn afresh, so
    train and test hold different images of the same classes, in class order as the Kaggle
    files are not (the loaders must not care).

    Returns:
        part -> (upright images, labels).
    """
    written = {}
    for seed, (part, per_class) in enumerate(
        (("train", train_per_class), ("test", test_per_class))
    ):
        labels = np.repeat(np.arange(n_classes), per_class).astype(np.uint8)
        images = learnable_images(labels, seed=seed + 1)
        if layout == "idx":
            write_idx_split(root, "balanced", part, images, labels)
        else:
            write_csv_split(root, "balanced", part, images, labels)
        written[part] = (images, labels)
    write_mapping(root, "balanced", n_classes)
    return written
