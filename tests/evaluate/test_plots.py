"""The run's plots (curves, confusion matrix, class distribution): each writes a readable PNG
and says the right things."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from emnist_bench.evaluate import plots
from tests.evaluate.fakes import CLASSES, N_CLASSES, check_png, fake_predictions


def _history(epochs: int, *, val: bool = True, lr: list[float] | None = None) -> pd.DataFrame:
    e = np.arange(epochs)
    data = {"epoch": e, "loss": 2.0 / (e + 1), "accuracy": 1 - 0.5 / (e + 1)}
    if val:
        data |= {"val_loss": 2.2 / (e + 1), "val_accuracy": 1 - 0.6 / (e + 1)}
    if lr is not None:
        data["learning_rate"] = lr
    return pd.DataFrame(data)


def test_importing_plots_loads_neither_tensorflow_nor_keras():
    code = (
        "import sys, emnist_bench.evaluate.plots; "
        "bad = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules); "
        "sys.exit(', '.join(bad) or None)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ---- curves ---------------------------------------------------------------------------------


def test_plot_curves_writes_png_in_new_folder(tmp_path):
    out = plots.plot_curves(_history(12), tmp_path / "deep" / "er" / "curves.png")
    assert out == tmp_path / "deep" / "er" / "curves.png"
    check_png(out)


def test_curves_with_one_epoch(tmp_path):
    fig = plots.curves_figure(_history(1))
    loss_ax = fig.axes[0]
    assert [line.get_marker() for line in loss_ax.get_lines()] == ["o", "o"]
    assert list(loss_ax.get_xticks()) == [1]  # epochs are shown 1-based
    check_png(plots.plot_curves(_history(1), tmp_path / "one.png"))


def test_curves_without_validation_columns(tmp_path):
    fig = plots.curves_figure(_history(5, val=False))
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train"]
        assert ax.get_xlabel() == "epoch"
    check_png(plots.plot_curves(_history(5, val=False), tmp_path / "noval.png"))


def test_curves_with_validation_have_both_lines():
    fig = plots.curves_figure(_history(4))
    for ax, ylabel in zip(fig.axes, ("loss", "accuracy"), strict=True):
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "validation"]
        assert ax.get_ylabel() == ylabel
        assert ax.get_title()
        np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [1, 2, 3, 4])


def test_curves_learning_rate_panel_only_when_it_varies():
    constant = plots.curves_figure(_history(4, lr=[1e-3] * 4))
    assert len(constant.axes) == 2
    varying = plots.curves_figure(_history(4, lr=[1e-3, 5e-4, 2.5e-4, 1.25e-4]))
    assert len(varying.axes) == 3
    lr_ax = varying.axes[2]
    assert lr_ax.get_yscale() == "log"
    assert lr_ax.get_xlabel() == "epoch"


def test_plot_functions_accept_str_paths(tmp_path):
    y_true, y_pred = fake_predictions(60)
    out = plots.plot_confusion_matrix(y_true, y_pred, CLASSES, str(tmp_path / "a" / "cm.png"))
    assert out == tmp_path / "a" / "cm.png" and out.is_file()


def test_learning_rate_labels_are_short():
    assert plots._format_rate(1e-3) == "1e-3"
    assert plots._format_rate(5e-4) == "5e-4"
    assert plots._format_rate(0.1) == "1e-1"


def test_curves_reject_missing_columns():
    with pytest.raises(ValueError, match="accuracy"):
        plots.curves_figure(pd.DataFrame({"epoch": [0], "loss": [1.0]}))
    with pytest.raises(ValueError, match="no epochs"):
        plots.curves_figure(_history(0))


# ---- confusion matrix -----------------------------------------------------------------------


def test_confusion_matrix_labels_every_class_by_character(tmp_path):
    y_true, y_pred = fake_predictions(940)
    fig = plots.confusion_matrix_figure(y_true, y_pred, CLASSES)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == CLASSES
    assert [t.get_text() for t in ax.get_yticklabels()] == CLASSES
    assert ax.get_xlabel() == "predicted"
    assert ax.get_ylabel() == "true"
    accuracy = np.mean(y_true == y_pred)
    assert f"{accuracy:.1%}" in ax.get_title()
    check_png(plots.plot_confusion_matrix(y_true, y_pred, CLASSES, tmp_path / "cm.png"), 800)


def test_confusion_matrix_rows_are_normalised_and_missing_classes_kept():
    # Class 46 never appears; class 0 is predicted right 3 times out of 4.
    y_true = np.array([0, 0, 0, 0, 1, 1])
    y_pred = np.array([0, 0, 0, 5, 1, 1])
    fig = plots.confusion_matrix_figure(y_true, y_pred, CLASSES)
    values = np.asarray(fig.axes[0].collections[0].get_array()).reshape(N_CLASSES, N_CLASSES)
    assert values[0, 0] == pytest.approx(0.75)
    assert values[0, 5] == pytest.approx(0.25)
    assert values[1, 1] == pytest.approx(1.0)
    assert not values[46].any()
    counts = plots.confusion_matrix_figure(y_true, y_pred, CLASSES, normalize=False)
    raw = np.asarray(counts.axes[0].collections[0].get_array()).reshape(N_CLASSES, N_CLASSES)
    assert raw[0, 0] == 3 and raw.sum() == 6


def test_confusion_matrix_rejects_bad_labels():
    with pytest.raises(ValueError, match="outside"):
        plots.confusion_matrix_figure([0, 47], [0, 1], CLASSES)
    with pytest.raises(ValueError, match="labels"):
        plots.confusion_matrix_figure([0, 1, 2], [0, 1], CLASSES)


# ---- class distribution ---------------------------------------------------------------------


def test_class_distribution_labels_bars_by_character(tmp_path):
    y_train = np.repeat(np.arange(N_CLASSES), 24)
    y_test = np.repeat(np.arange(N_CLASSES - 1), 4)  # the last class is missing from test
    fig = plots.class_distribution_figure(y_train, y_test, CLASSES)
    train_ax, test_ax = fig.axes
    for ax in (train_ax, test_ax):
        assert [t.get_text() for t in ax.get_xticklabels()] == CLASSES
        assert ax.get_ylabel() == "images"
        assert ax.get_legend() is not None
    assert [p.get_height() for p in train_ax.patches] == [24] * N_CLASSES
    assert [p.get_height() for p in test_ax.patches] == [4] * (N_CLASSES - 1) + [0]
    out = plots.plot_class_distribution(y_train, y_test, CLASSES, tmp_path / "dist.png")
    check_png(out, 500)
