"""The report's figures, read back from the Matplotlib objects they are drawn with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_rgba

from emnist_bench.report.effects import technique_effects
from emnist_bench.report.plots import best_runs_figure, effects_figure
from emnist_bench.report.runs import load_summary
from tests.fake_runs import write_run


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """mlp: rmsprop better by 5 points, sgd worse by 10, adagrad failed, elu within the noise
    (independent draws of the right images), tanh worse by 40; cnn: sgd collapsed."""
    root = tmp_path / "sweep"
    for seed in (1, 2):
        for model, base in (("mlp", 0.60), ("cnn", 0.80)):
            write_run(root, f"{model}/base/seed={seed}", base, model=model, seed=seed)
        write_run(root, f"mlp/optimizer=rmsprop/seed={seed}", 0.65, optimizer="rmsprop", seed=seed)
        write_run(root, f"mlp/optimizer=sgd/seed={seed}", 0.50, optimizer="sgd", seed=seed)
        write_run(root, f"mlp/optimizer=adagrad/seed={seed}", None, optimizer="adagrad",
                  status="failed", seed=seed)  # fmt: skip
        write_run(root, f"mlp/activation=elu/seed={seed}", 0.605, activation="elu", seed=seed,
                  independent=seed)  # fmt: skip
        write_run(root, f"cnn/optimizer=sgd/seed={seed}", 0.02, model="cnn", optimizer="sgd",
                  seed=seed)  # fmt: skip
        write_run(root, f"mlp/activation=tanh/seed={seed}", 0.20, activation="tanh", seed=seed)
    return root


@pytest.fixture
def effects(sweep: Path):
    return technique_effects(*load_summary([sweep]))


def _points(ax):
    """(option, percentage points, filled) of each difference drawn, by the option's row."""
    options = [label.get_text() for label in ax.get_yticklabels()]
    points = []
    for line in ax.lines:
        if line.get_marker() != "o":
            continue
        (x,), (y,) = line.get_xdata(), line.get_ydata()
        filled = to_rgba(line.get_markerfacecolor()) != to_rgba("white")
        points.append((options[round(y)], float(x), filled))
    return sorted(points)


def test_the_effects_figure_draws_each_difference_from_the_base_and_names_the_rest(effects):
    fig = effects_figure(effects, ["mlp", "cnn"], "two seeds")
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    optimizer, activation = panels["optimizer"], panels["activation"]

    # Found differences are filled, at the difference in points; the base option comes first.
    assert [label.get_text() for label in optimizer.get_yticklabels()][0] == "adam"
    (rmsprop, rmsprop_points, rmsprop_filled), (sgd, sgd_points, sgd_filled) = _points(optimizer)
    assert (rmsprop, sgd, rmsprop_filled, sgd_filled) == ("rmsprop", "sgd", True, True)
    # 470 test images: 65% and 50% are 306 and 235 of them, the base's 60% 282.
    assert (rmsprop_points, sgd_points) == pytest.approx((100 * 24 / 470, -100 * 47 / 470))
    # A difference within its noise is drawn hollow.
    [(option, _, filled)] = _points(activation)
    assert (option, filled) == ("elu", False)
    verdict = effects.set_index(["model", "option"]).loc[("mlp", "elu"), "verdict"]
    assert verdict == "no detectable difference"
    # The failed option and the collapsed one, off any useful scale, are named instead.
    texts = [text.get_text() for text in optimizer.texts]
    assert any("failed" in text for text in texts)
    assert any(text.startswith("◀ 1.9% ×") for text in texts)  # 9 of 470 images
    # 40 points off, tanh is named at the edge too, and the scale stays that of the rest:
    # each interval drawn fits it, and every panel shares it.
    assert any(text.get_text().startswith("◀ 20.0% −") for text in activation.texts)
    assert optimizer.get_xlim() == activation.get_xlim()
    left, right = optimizer.get_xlim()
    assert -20 < left < -10 and right > 5


def test_the_best_runs_legend_sits_below_the_bars_it_would_cover(sweep):
    summary, _ = load_summary([sweep])
    fig = best_runs_figure(summary, "two seeds")
    bars = next(ax for ax in fig.axes if ax.get_title() == "scores of the best run per model")
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)

    legend = bars.get_legend().get_window_extent(renderer)
    assert legend.y1 <= bars.get_window_extent(renderer).y0
    # The interval is the test accuracy's alone: no zero-length caps on the other scores.
    ends = [y for line in bars.lines if line.get_marker() == "_" for y in line.get_ydata()]
    assert np.isfinite(ends).sum() == 2 * 2  # two models, each one interval with two ends
