"""The validation split and the per-class subset (emnist_bench.data.split, via load_dataset),
on the smoke data: 2,350 training images, 50 per class."""

from __future__ import annotations

import re

import numpy as np
import pytest

from emnist_bench.data import load_dataset
from emnist_bench.data.split import validation_split
from emnist_bench.errors import ConfigError
from tests.configs import data_config
from tests.emnist_files import class_counts

# --- validation split and subset ---------------------------------------------------------------


@pytest.mark.parametrize("val_size", [470, 0.2])
def test_val_split_sizes_and_stratification(smoke_data, proxy_cache, val_size):
    data = load_dataset(data_config(smoke_data, proxy_cache, val_size=val_size), seed=0)

    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (1_880, 470, 470)
    assert (class_counts(data.y_val) == 10).all()
    assert (class_counts(data.y_train) == 40).all()
    assert len(data.x_train) == len(data.y_train) and len(data.x_val) == len(data.y_val)


def test_val_size_zero_keeps_everything_for_training(smoke_data, proxy_cache):
    data = load_dataset(data_config(smoke_data, proxy_cache, val_size=0), seed=0)
    assert (len(data.x_train), len(data.x_val)) == (2_350, 0)


def test_val_split_is_a_seeded_partition():
    labels = np.repeat(np.arange(47), 50)
    train, val = validation_split(labels, 0.2, seed=3)
    again_train, again_val = validation_split(labels, 0.2, seed=3)
    _, other_val = validation_split(labels, 0.2, seed=4)

    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(labels.size))
    np.testing.assert_array_equal(val, again_val)
    np.testing.assert_array_equal(train, again_train)
    assert not np.array_equal(val, other_val)


def test_val_split_is_reproducible_per_seed(smoke_data, proxy_cache):
    cfg = data_config(smoke_data, proxy_cache, val_size=470)
    first, again, other = (load_dataset(cfg, seed) for seed in (0, 0, 1))

    np.testing.assert_array_equal(first.x_val, again.x_val)
    np.testing.assert_array_equal(first.y_val, again.y_val)
    assert not np.array_equal(first.x_val, other.x_val)
    np.testing.assert_array_equal(first.x_test, other.x_test)


def test_subset_keeps_at_most_n_per_class_reproducibly(smoke_data, proxy_cache):
    cfg = data_config(smoke_data, proxy_cache, subset=20, val_size=0.25)
    first, again, other = (load_dataset(cfg, seed) for seed in (0, 0, 1))

    assert (class_counts(first.y_train) + class_counts(first.y_val) == 20).all()
    assert (len(first.x_train), len(first.x_val)) == (705, 235)
    np.testing.assert_array_equal(first.x_train, again.x_train)
    assert not np.array_equal(first.x_train, other.x_train)
    assert len(first.x_test) == 470  # the subset never touches the test set

    larger = load_dataset(data_config(smoke_data, proxy_cache, subset=80), seed=0)
    assert (class_counts(larger.y_train) == 50).all()  # fewer than N in a class: all of them


@pytest.mark.parametrize("val_size", [1.5, 1.0, -0.1, 5_000, 2_350, 10, True, "0.1"])
def test_bad_val_size_is_a_config_error(smoke_data, proxy_cache, val_size):
    with pytest.raises(ConfigError, match=r"data\.val_size="):
        load_dataset(data_config(smoke_data, proxy_cache, val_size=val_size), seed=0)


def test_more_validation_than_training_images_says_how_many_there_are(smoke_data, proxy_cache):
    with pytest.raises(ConfigError) as error:
        load_dataset(data_config(smoke_data, proxy_cache, val_size=10_000), seed=0)
    assert str(error.value).startswith(
        "data.val_size=10000 asks for 10000 validation images of the 2350 training images; "
    )


@pytest.mark.parametrize("subset", [0, -1])
def test_bad_subset_is_a_config_error(smoke_data, proxy_cache, subset):
    with pytest.raises(ConfigError, match=rf"data\.subset={subset} must be a positive count"):
        load_dataset(data_config(smoke_data, proxy_cache, subset=subset), seed=0)


@pytest.mark.parametrize(
    ("per_class", "val_size", "advice"),
    [
        (3, 0.1, "use data.val_size=0.4"),  # 14 validation images for 47 classes
        (10, 0.001, "use data.val_size=0.1"),
        (1, 0.1, "use more training images (data.subset=4 or more, with data.val_size=0.3)"),
    ],
)
def test_a_val_size_that_cannot_work_suggests_one_that_does(per_class, val_size, advice):
    labels = np.repeat(np.arange(47), per_class)
    with pytest.raises(ConfigError, match=re.escape(advice)):
        validation_split(labels, val_size, seed=0)
    suggested = re.search(r"use data\.val_size=([\d.]+)", advice)
    if suggested:  # and the suggestion works
        train, val = validation_split(labels, float(suggested[1]), seed=0)
        assert len(train) >= 47 and len(val) >= 47
