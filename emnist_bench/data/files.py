"""Reading the official EMNIST file layouts: NIST IDX (optionally gzipped) and Kaggle CSV.

Both layouts store every image transposed; :func:`upright` is the one place that undoes it.
Every check of a user's file raises :class:`~emnist_bench.errors.DataError` naming the file.
"""

from __future__ import annotations

import gzip
import math
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emnist_bench.errors import DataError
from emnist_bench.schema import EmnistSplit

IMAGE_SIDE = 28
SPLITS = tuple(split.value for split in EmnistSplit)
PARTS = ("train", "test")
IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801
# Labels are bytes in the IDX layout; no split has more classes.
MAX_LABEL = 255


@dataclass(frozen=True)
class Mapping:
    """The label mapping of a split: file labels, in order, and the character of each."""

    labels: tuple[int, ...]
    characters: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def to_indices(self, raw_labels: np.ndarray, path: Path) -> np.ndarray:
        """Maps file labels to class indices 0..K-1, refusing labels outside the mapping."""
        lookup = np.full(max(self.labels) + 1, -1, dtype=np.int64)
        lookup[list(self.labels)] = np.arange(self.num_classes)
        raw = raw_labels.astype(np.int64)
        outside = (raw < 0) | (raw >= lookup.size)
        indices = np.where(outside, -1, lookup[np.clip(raw, 0, lookup.size - 1)])
        bad = np.flatnonzero(indices < 0)
        if bad.size:
            raise DataError(
                path,
                f"label {raw[bad[0]]} (item {bad[0]}) is not in the mapping, whose labels are "
                f"{self.labels[0]}..{self.labels[-1]}; the labels and the mapping file are from "
                "different splits",
            )
        return indices.astype(np.uint8)


@dataclass(frozen=True)
class SplitFiles:
    """The files of one part (train or test) of a split in one layout."""

    layout: str  # "idx" or "csv"
    paths: tuple[Path, ...]  # idx: (images, labels); csv: (table,)


def upright(images: np.ndarray) -> np.ndarray:
    """Turns images from the on-disk (transposed) orientation to upright, (N, 28, 28) uint8."""
    return np.ascontiguousarray(images.transpose(0, 2, 1))


def mapping_path(root: Path, split: str) -> Path:
    return root / f"emnist-{split}-mapping.txt"


def find_part(root: Path, split: str, part: str) -> SplitFiles | None:
    """Finds the files of ``part`` in ``root``, preferring IDX over CSV; None when absent."""
    for suffix in ("", ".gz"):
        images = root / f"emnist-{split}-{part}-images-idx3-ubyte{suffix}"
        labels = root / f"emnist-{split}-{part}-labels-idx1-ubyte{suffix}"
        if images.is_file() and labels.is_file():
            return SplitFiles("idx", (images, labels))
    table = root / f"emnist-{split}-{part}.csv"
    if table.is_file():
        return SplitFiles("csv", (table,))
    return None


def read_mapping(path: Path) -> Mapping:
    """Reads ``emnist-<split>-mapping.txt``: one ``label ascii_code`` pair per line."""
    if not path.is_file():
        raise DataError(path, "mapping file not found; it comes with the EMNIST files")
    pairs = []
    for number, line in enumerate(path.read_text(encoding="ascii", errors="replace").splitlines()):
        if not line.strip():
            continue
        fields = line.split()
        try:
            label, code = int(fields[0]), int(fields[1])
            if len(fields) != 2 or not 0 <= code < 0x110000 or not 0 <= label <= MAX_LABEL:
                raise ValueError
        except (ValueError, IndexError):
            raise DataError(
                path,
                f"line {number + 1} is {line!r}, expected 'label ascii_code' "
                f"(a label 0..{MAX_LABEL}, a character code)",
            ) from None
        pairs.append((label, chr(code)))
    if not pairs:
        raise DataError(path, "mapping file is empty")
    pairs.sort()
    labels = tuple(label for label, _ in pairs)
    if len(set(labels)) != len(labels):
        raise DataError(path, "a label appears twice in the mapping")
    return Mapping(labels, tuple(char for _, char in pairs))


def read_part(files: SplitFiles) -> tuple[np.ndarray, np.ndarray]:
    """Reads one part; returns upright uint8 images (N, 28, 28) and raw uint labels (N,)."""
    if files.layout == "idx":
        images_path, labels_path = files.paths
        images = read_idx(images_path, IDX_IMAGES_MAGIC)
        labels = read_idx(labels_path, IDX_LABELS_MAGIC)
        if images.shape[0] != labels.shape[0]:
            raise DataError(
                images_path,
                f"holds {images.shape[0]} images but {labels_path.name} holds "
                f"{labels.shape[0]} labels; the two files are from different downloads",
            )
    else:
        images, labels = read_csv(files.paths[0])
    return upright(images), labels


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as error:
        raise DataError(
            path, f"cannot be decompressed ({error}); the download was cut off, fetch it again"
        ) from None


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Reads an IDX file (big-endian header) whose magic must be ``magic``."""
    raw = _read_bytes(path)
    kind = "images" if magic == IDX_IMAGES_MAGIC else "labels"
    if not raw:
        raise DataError(path, "file is empty")
    ndim = magic & 0xFF
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError(path, f"file is {len(raw)} bytes, too short for an IDX {kind} header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataError(
            path,
            f"IDX magic is 0x{found:08x}, expected 0x{magic:08x} for {kind}; "
            "is this the right file?",
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if kind == "images" and dims[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(path, f"images are {dims[1]}x{dims[2]}, expected {IMAGE_SIDE}x{IMAGE_SIDE}")
    expected = math.prod(dims)
    body = len(raw) - header_size
    if body != expected:
        raise DataError(
            path,
            f"header announces {dims[0]} {kind} ({expected} bytes) but the file holds {body}; "
            "the file is truncated or corrupt, fetch it again",
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(dims)


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Reads a Kaggle-layout CSV: no header, label then 784 pixel values per row."""
    import pandas as pd  # pandas is only needed on this path; keep it off the IDX path.

    columns = 1 + IMAGE_SIDE * IMAGE_SIDE
    if not path.is_file():
        raise DataError(path, "file not found")
    if path.stat().st_size == 0:
        raise DataError(path, "file is empty")
    try:
        with warnings.catch_warnings():
            # A bad cell makes pandas warn of mixed types in its column; the checks below name it.
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            table = pd.read_csv(path, header=None, engine="c")
    except pd.errors.ParserError as error:
        raise DataError(
            path, f"rows have different numbers of columns ({str(error).strip()})"
        ) from None
    except (UnicodeDecodeError, pd.errors.EmptyDataError):
        raise DataError(path, "is not a text CSV file") from None
    if table.shape[1] != columns:
        raise DataError(
            path, f"rows have {table.shape[1]} columns, expected {columns} (label + 784 pixels)"
        )
    # Valid files parse straight to numbers; only a broken one pays for finding the bad cell.
    values = table.apply(pd.to_numeric, errors="coerce")
    invalid = values.isna().to_numpy()
    if invalid.any():
        row, column = (int(i[0]) for i in np.nonzero(invalid))
        cell = table.iat[row, column]
        if pd.isna(cell):
            if not table.iloc[row, column:].isna().all():
                raise DataError(path, f"row {row + 1}, column {column + 1} is empty")
            present = columns - int(table.iloc[row].isna().sum())
            raise DataError(path, f"row {row + 1} has {present} columns, expected {columns}")
        raise DataError(path, f"row {row + 1}, column {column + 1} is {cell!r}, not a number")
    data = values.to_numpy()
    if not np.isfinite(data).all():
        row = int(np.flatnonzero(~np.isfinite(data).all(axis=1))[0])
        raise DataError(path, f"row {row + 1} holds a value that is not a finite number")
    if (data != np.round(data)).any():
        row = int(np.flatnonzero((data != np.round(data)).any(axis=1))[0])
        raise DataError(path, f"row {row + 1} holds a value that is not a whole number")
    pixels = data[:, 1:]
    outside = (pixels < 0) | (pixels > 255)
    if outside.any():
        row, column = (int(i[0]) for i in np.nonzero(outside))
        raise DataError(
            path,
            f"row {row + 1} has pixel value {pixels[row, column]:g} outside 0..255",
        )
    labels = data[:, 0]
    if (labels < 0).any():
        row = int(np.flatnonzero(labels < 0)[0])
        raise DataError(path, f"row {row + 1} has negative label {labels[row]:g}")
    if (labels > MAX_LABEL).any():
        row = int(np.flatnonzero(labels > MAX_LABEL)[0])
        raise DataError(path, f"row {row + 1} has label {labels[row]:g}, above {MAX_LABEL}")
    images = pixels.astype(np.uint8).reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
    return images, labels.astype(np.int64)
