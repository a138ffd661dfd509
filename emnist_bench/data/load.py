"""Loading a split from ``data.root``: find the files, download them if allowed, cache the parse.

The first parse of a part is saved as uncompressed uint8 arrays under ``data.cache_dir``; the
cache key includes each source file's name, size and modification time, so a changed file
invalidates its cache.
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

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


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


def _write_atomically(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".tmp{os.getpid()}.npz")
    try:
        np.savez(temporary, **arrays)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


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
        if cache_file.is_file():
            try:
                with np.load(cache_file) as cached:
                    log.info("Loaded %s %s from cache %s", split, part, cache_file)
                    return Part(cached["images"], cached["labels"], files.layout)
            except (OSError, ValueError, KeyError):
                log.warning("Cache file %s is unreadable; parsing the source again", cache_file)
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
            _write_atomically(cache_file, images=images, labels=labels)
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
