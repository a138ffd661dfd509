"""The data cache checks itself on every load: a damaged file (truncated, a flipped bit, the
right format with the wrong content) is a warning and a rebuild, never an error or wrong data."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from emnist_bench.data.load import content_hash, load_part

SPLIT = "balanced"


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_a_bit(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10  # inside the images
    path.write_bytes(bytes(data))


def zero_images(path):
    """A valid cache file whose images were replaced, its hash left as it was."""
    with np.load(path) as cached:
        arrays = dict(cached)
    arrays["images"] = np.zeros_like(arrays["images"])
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


def labels_outside_the_mapping(path):
    with np.load(path) as cached:
        arrays = dict(cached)
    arrays["labels"] = np.full_like(arrays["labels"], 200)
    arrays["digest"] = np.array(content_hash(arrays["images"], arrays["labels"]))
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


def no_hash(path):
    with np.load(path) as cached:
        arrays = {key: cached[key] for key in ("images", "labels")}
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (truncate, "unreadable (BadZipFile"),
        (flip_a_bit, "unreadable (BadZipFile: Bad CRC-32"),
        (zero_images, "its content does not match its hash"),
        (labels_outside_the_mapping, "label 200 is outside the 47-class mapping"),
        (no_hash, "unreadable (KeyError"),
        (lambda path: path.write_bytes(b""), "unreadable"),
    ],
)
def test_a_damaged_cache_file_is_rebuilt_with_a_warning(
    tiny_idx, tmp_path, caplog, damage, problem
):
    root, images, labels = tiny_idx
    cache = tmp_path / "cache"
    load_part(root, SPLIT, "train", cache_dir=cache)
    [cached] = cache.glob("*.npz")
    damage(cached)

    with caplog.at_level(logging.WARNING, logger="emnist_bench.data.load"):
        again = load_part(root, SPLIT, "train", cache_dir=cache)

    np.testing.assert_array_equal(again.images, images)
    np.testing.assert_array_equal(again.labels, labels)
    assert f"Cache file {cached} is damaged: {problem}" in caplog.text
    assert "rebuilding it from the source files" in caplog.text
    # Rebuilt whole: the next load is served from it, without a warning.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="emnist_bench.data.load"):
        load_part(root, SPLIT, "train", cache_dir=cache)
    assert "from cache" in caplog.text
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
