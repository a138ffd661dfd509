"""The sample grid: seeded picks, upright images, right/wrong colours (evaluate.samples)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgb

from emnist_bench.evaluate import samples
from tests.evaluate.fakes import CLASSES, check_png, fake_images, fake_predictions


def test_sample_grid_colours_titles_and_shows_upright_images(tmp_path):
    y_true, y_pred = fake_predictions(200, seed=3)
    images = fake_images(200)
    fig = samples.sample_grid_figure(images, y_true, y_pred, CLASSES, count=36, seed=7)
    chosen = samples.sample_indices(200, 36, 7)
    assert len(chosen) == 36 and len(set(chosen)) == 36
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 36
    rights = wrongs = 0
    for ax, index in zip(image_axes, chosen, strict=True):
        np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), images[index])
        assert ax.images[0].get_cmap().name == "gray"
        title = ax.title
        assert title.get_text() == f"pred {CLASSES[y_pred[index]]} / true {CLASSES[y_true[index]]}"
        if y_pred[index] == y_true[index]:
            assert to_rgb(title.get_color()) == to_rgb("blue")
            rights += 1
        else:
            assert to_rgb(title.get_color()) == to_rgb("red")
            wrongs += 1
    assert rights and wrongs  # both colours were exercised
    suptitle = fig.get_suptitle()
    assert "blue = right" in suptitle and "red = wrong" in suptitle
    check_png(samples.plot_samples(images, y_true, y_pred, CLASSES, tmp_path / "s.png"), 500)


def test_sample_grid_is_seeded_and_takes_all_when_fewer():
    assert np.array_equal(samples.sample_indices(500, 36, 1), samples.sample_indices(500, 36, 1))
    assert not np.array_equal(
        samples.sample_indices(500, 36, 1), samples.sample_indices(500, 36, 2)
    )
    y_true, y_pred = fake_predictions(5)
    fig = samples.sample_grid_figure(fake_images(5), y_true, y_pred, CLASSES, count=36)
    assert len([ax for ax in fig.axes if ax.images]) == 5
    assert len(fig.axes) == 5  # the unused cells of the 2x3 grid are removed


def test_sample_grid_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="images"):
        samples.sample_grid_figure(fake_images(4), [0, 1, 2], [0, 1, 2], CLASSES)
