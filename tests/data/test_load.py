"""Loading a split (emnist_bench.data.load and load_dataset): the real files in both layouts,
the parse cache, and what a folder without files says."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from emnist_bench.data import load as load_module
from emnist_bench.data import load_dataset, resolve_cache_dir
from emnist_bench.data.load import ensure_files, load_mapping, load_part
from emnist_bench.errors import DataError
from tests.configs import data_config
from tests.emnist_files import (
    BALANCED_CHARACTERS,
    class_counts,
    random_images,
    write_idx_split,
    write_mapping,
)

SPLIT = "balanced"


# --- the real files in both layouts -----------------------------------------------------------


@pytest.mark.parametrize(
    "folder, layout, n_train, n_test",
    [("emnist-proxy", "idx", 107_934, 7_050), ("emnist-proxy-csv", "csv", 2_350, 470)],
)
def test_real_layouts_load_with_documented_counts(
    shared_data, proxy_cache, folder, layout, n_train, n_test
):
    root = shared_data / folder
    mapping = load_mapping(root, SPLIT)
    assert mapping.num_classes == 47
    assert "".join(mapping.characters) == BALANCED_CHARACTERS

    train = load_part(root, SPLIT, "train", cache_dir=proxy_cache, mapping=mapping)
    test = load_part(root, SPLIT, "test", cache_dir=proxy_cache, mapping=mapping)

    assert (train.layout, test.layout) == (layout, layout)
    assert train.images.shape == (n_train, 28, 28) and train.images.dtype == np.uint8
    assert test.images.shape == (n_test, 28, 28)
    assert train.labels.shape == (n_train,) and test.labels.shape == (n_test,)
    for labels in (train.labels, test.labels):
        assert labels.min() == 0 and labels.max() == 46
        assert np.unique(labels).size == 47
    assert (class_counts(test.labels) == n_test // 47).all()
    if layout == "csv":
        assert (class_counts(train.labels) == 50).all()


@pytest.mark.parametrize("folder", ["emnist-proxy", "emnist-proxy-csv"])
def test_real_images_come_out_upright(shared_data, proxy_cache, folder):
    """A '1' is tall and narrow, a '7' is heavy at the top: true upright, not transposed."""
    part = load_part(shared_data / folder, SPLIT, "train", cache_dir=proxy_cache)

    def spread(profile: np.ndarray) -> float:
        weights = profile / profile.sum()
        positions = np.arange(profile.size)
        centre = (positions * weights).sum()
        return float(np.sqrt(((positions - centre) ** 2 * weights).sum()))

    one = part.images[part.labels == 1].astype(float).mean(axis=0)
    assert spread(one.sum(axis=1)) > 1.5 * spread(one.sum(axis=0))
    seven = part.images[part.labels == 7].astype(float).mean(axis=0)
    assert seven[:14].sum() > 1.3 * seven[14:].sum()


def test_load_dataset_on_real_idx_is_stratified(idx_proxy, proxy_cache):
    data = load_dataset(data_config(idx_proxy, proxy_cache, val_size=10_000), seed=0)

    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (97_934, 10_000, 7_050)
    assert data.num_classes == 47 and data.classes[10] == "A" and data.layout == "idx"
    train_counts, val_counts = class_counts(data.y_train), class_counts(data.y_val)
    expected = (train_counts + val_counts) * 10_000 / 107_934
    assert np.abs(val_counts - expected).max() <= 1


# --- cache ---------------------------------------------------------------------------------------


def test_second_load_is_served_from_cache(tiny_idx, tmp_path, monkeypatch, caplog):
    root, images, labels = tiny_idx
    cache = tmp_path / "cache"
    load_part(root, SPLIT, "train", cache_dir=cache)
    cached = list(cache.glob("*.npz"))
    assert [p.name.startswith(f"emnist-{SPLIT}-train-") for p in cached] == [True]

    def refuse(files):
        raise AssertionError(f"parsed {files} again instead of reading the cache")

    monkeypatch.setattr(load_module, "read_part", refuse)
    with caplog.at_level(logging.INFO, logger="emnist_bench.data.load"):
        again = load_part(root, SPLIT, "train", cache_dir=cache)

    assert "from cache" in caplog.text
    assert again.layout == "idx"
    np.testing.assert_array_equal(again.images, images)
    np.testing.assert_array_equal(again.labels, labels)


def test_changed_source_invalidates_cache(tmp_path):
    """Same size, new content and mtime: the old cache entry must not be used."""
    labels = np.arange(47, dtype=np.uint8)
    images = random_images(47)
    images_path, _ = write_idx_split(tmp_path, SPLIT, "train", images, labels, gz=False)
    write_mapping(tmp_path, SPLIT)
    cache = tmp_path / "cache"
    load_part(tmp_path, SPLIT, "train", cache_dir=cache)
    old_size, old_mtime = images_path.stat().st_size, images_path.stat().st_mtime_ns

    write_idx_split(tmp_path, SPLIT, "train", 255 - images, labels, gz=False)
    os.utime(images_path, ns=(old_mtime + 2 * 10**9, old_mtime + 2 * 10**9))
    assert images_path.stat().st_size == old_size
    again = load_part(tmp_path, SPLIT, "train", cache_dir=cache)

    np.testing.assert_array_equal(again.images, 255 - images)
    assert len(list(cache.glob("*.npz"))) == 2


def test_unreadable_cache_file_is_parsed_again(tiny_idx, tmp_path, caplog):
    root, images, _ = tiny_idx
    cache = tmp_path / "cache"
    load_part(root, SPLIT, "train", cache_dir=cache)
    [cached] = cache.glob("*.npz")
    cached.write_bytes(b"not an npz")

    with caplog.at_level(logging.WARNING, logger="emnist_bench.data.load"):
        again = load_part(root, SPLIT, "train", cache_dir=cache)

    np.testing.assert_array_equal(again.images, images)
    assert "unreadable" in caplog.text


def test_unusable_cache_folder_does_not_stop_loading(tiny_idx, tmp_path, caplog):
    root, images, _ = tiny_idx
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the cache folder should be")

    with caplog.at_level(logging.WARNING, logger="emnist_bench.data.load"):
        part = load_part(root, SPLIT, "train", cache_dir=not_a_folder)

    np.testing.assert_array_equal(part.images, images)
    assert "going on without it" in caplog.text


def test_resolve_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert resolve_cache_dir({"cache_dir": None}) == tmp_path / "emnist_bench"
    assert resolve_cache_dir({"cache_dir": False}) is None
    assert resolve_cache_dir({"cache_dir": str(tmp_path / "c")}) == tmp_path / "c"


# --- no files ----------------------------------------------------------------------------------


def test_no_download_and_no_files_says_where_to_put_them(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()

    with pytest.raises(DataError) as caught:
        ensure_files(root, SPLIT, ("train", "test"), download=False, urls=[], md5=None)

    message = str(caught.value)
    assert message.startswith(f"{root}: ") and "\n" not in message
    for phrase in (
        "data.download=false",
        "Kaggle CSVs",
        "emnist-balanced-train.csv",
        "emnist-balanced-mapping.txt",
        "emnist-balanced-*-ubyte.gz",
    ):
        assert phrase in message
