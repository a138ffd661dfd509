"""Loading a split from ``data.root``: find the files, download them if allowed, cache the parse.

The first parse of a part is saved as uncompressed uint8 arrays under ``data.cache_dir``; the
cache key includes each source file's name, size and modification time, so a changed file
invalidates its cache. A cache file carries the SHA-256 of its arrays and is checked on every
load (readable, shapes, labels within the mapping, content hash): a damaged one is a warning
and a rebuild from the source files, never an error and never wrong data.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emnist_bench.data.files import (
    IMAGE_SIDE,
    PARTS,
    SPLITS,
    Mapping,
    SplitFiles,
    find_part,
    mapping_path,
    read_mapping,
    read_part,
)
from emnist_bench.errors import DataError
from emnist_bench.rundir import atomic_open

log = logging.getLogger(__name__)

CACHE_FORMAT = 2  # 2: with the content hash


@dataclass(frozen=True)
class Part:
    """Images (N, 28, 28) uint8, upright, and class indices (N,) uint8 of one part of a split."""

    images: np.ndarray
    labels: np.ndarray
    layout: str


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "emnist_bench"


def _cache_key(split: str, part: str, files: SplitFiles, mapping_file: Path) -> str:
    digest = hashlib.sha256(f"v{CACHE_FORMAT}:{split}:{part}:{files.layout}".encode())
    for path in (*files.paths, mapping_file):
        stat = path.stat()
        digest.update(f"|{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def content_hash(images: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 of the arrays' shapes and bytes: what a cache file must still hold."""
    digest = hashlib.sha256(f"{images.shape}{labels.shape}".encode())
    digest.update(np.ascontiguousarray(images).data)
    digest.update(np.ascontiguousarray(labels).data)
    return digest.hexdigest()


def read_cache(path: Path, mapping: Mapping) -> tuple[np.ndarray, np.ndarray] | None:
    """The (images, labels) in cache file ``path`` when it is whole and consistent with
    ``mapping``; otherwise None, with a warning saying what is wrong."""
    try:
        with np.load(path) as cached:
            images, labels = cached["images"], cached["labels"]
            digest = str(cached["digest"])
    except Exception as error:  # any damage at all: the cache is rebuilt from the source
        problem = f"unreadable ({type(error).__name__}: {error})"
    else:
        problem = _cache_problem(images, labels, digest, mapping)
    if problem is None:
        return images, labels
    log.warning("Cache file %s is damaged: %s; rebuilding it from the source files", path, problem)
    return None


def _cache_problem(images, labels, digest: str, mapping: Mapping) -> str | None:
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE,) * 2:
        return f"images are {images.dtype} {images.shape}, expected uint8 (N, 28, 28)"
    if labels.dtype != np.uint8 or labels.shape != images.shape[:1]:
        return f"labels are {labels.dtype} {labels.shape} for {len(images)} images"
    if labels.size and int(labels.max()) >= mapping.num_classes:
        return f"label {int(labels.max())} is outside the {mapping.num_classes}-class mapping"
    if content_hash(images, labels) != digest:
        return "its content does not match its hash"
    return None


def _write_atomically(path: Path, **arrays: np.ndarray) -> None:
    with atomic_open(path) as handle:
        np.savez(handle, **arrays)


def load_mapping(root: Path | str, split: str) -> Mapping:
    return read_mapping(mapping_path(Path(root), split))


def load_part(
    root: Path | str,
    split: str,
    part: str,
    *,
    cache_dir: Path | str | None = None,
    mapping: Mapping | None = None,
) -> Part:
    """Loads one part (``train`` or ``test``) of ``split`` from ``root``, through the cache.

    Raises:
        DataError: when the files are missing or broken.
    """
    if split not in SPLITS:
        raise DataError(root, f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    root = Path(root).expanduser()
    files = find_part(root, split, part)
    if files is None:
        raise DataError(root, f"no {split} {part} files found ({_expected_names(split, part)})")
    mapping = mapping or load_mapping(root, split)
    cache_file = None
    if cache_dir is not None:
        key = _cache_key(split, part, files, mapping_path(root, split))
        cache_file = Path(cache_dir).expanduser() / f"emnist-{split}-{part}-{key}.npz"
        cached = read_cache(cache_file, mapping) if cache_file.is_file() else None
        if cached is not None:
            log.info("Loaded %s %s from cache %s", split, part, cache_file)
            return Part(*cached, files.layout)
    log.info(
        "Reading %s %s from %s layout: %s",
        split,
        part,
        files.layout.upper(),
        ", ".join(p.name for p in files.paths),
    )
    images, raw_labels = read_part(files)
    labels = mapping.to_indices(raw_labels, files.paths[-1])
    if cache_file is not None:
        try:
            digest = np.array(content_hash(images, labels))
            _write_atomically(cache_file, images=images, labels=labels, digest=digest)
        except OSError as error:  # the cache only saves time: an unusable folder must not stop
            log.warning("Cannot write cache file %s (%s); going on without it", cache_file, error)
    return Part(images, labels, files.layout)


def _expected_names(split: str, part: str) -> str:
    return (
        f"expected emnist-{split}-{part}-images-idx3-ubyte[.gz] and "
        f"emnist-{split}-{part}-labels-idx1-ubyte[.gz], or emnist-{split}-{part}.csv"
    )


def ensure_files(
    root: Path | str,
    split: str,
    parts: Sequence[str],
    *,
    download: bool,
    urls: Sequence[str],
    md5: str | None,
) -> None:
    """Makes sure ``root`` holds ``parts`` of ``split`` and the mapping, downloading if allowed.

    Raises:
        DataError: when files are missing and cannot be downloaded.
    """
    root = Path(root).expanduser()
    missing = [p for p in parts if find_part(root, split, p) is None]
    if not missing and mapping_path(root, split).is_file():
        return
    if not download:
        raise DataError(
            root,
            f"no EMNIST {split} files here and data.download=false; put the Kaggle CSVs "
            f"(emnist-{split}-train.csv, emnist-{split}-test.csv, emnist-{split}-mapping.txt) "
            f"or the NIST IDX files (emnist-{split}-*-ubyte.gz) in this folder",
        )
    from emnist_bench.data.download import download_split

    download_split(root, split, urls=urls, md5=md5)
