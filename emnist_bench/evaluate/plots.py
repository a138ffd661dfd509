"""A run's figures for people: training curves, confusion matrix, class counts (the sample
grid is in ``evaluate.samples``).

Drawn with ``emnist_bench.figures`` (no pyplot). Nothing here imports TensorFlow or Keras: the
inputs are plain NumPy arrays and a pandas history table.

Each ``plot_*`` function writes one PNG (creating its parent folders) and returns its path.
Each also has a ``*_figure`` twin that returns the unsaved ``Figure``, so tests and notebooks
can look inside.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter, PercentFormatter
from sklearn.metrics import confusion_matrix

from emnist_bench.figures import epoch_axis, new_figure, save

_TRAIN_COLOR = "tab:blue"
_VAL_COLOR = "tab:orange"
_MARKER_MAX_EPOCHS = 30  # draw a marker on every epoch up to this many epochs


def class_indices(values, n_classes: int, name: str) -> np.ndarray:
    """Returns ``values`` as a 1-D int array, checking every label is in ``range(n_classes)``."""
    labels = np.asarray(values).reshape(-1)
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        rounded = labels.astype(np.int64)
        if not np.array_equal(rounded, labels):
            raise ValueError(f"{name} must hold integer class indices, got dtype {labels.dtype}")
        labels = rounded
    labels = labels.astype(np.int64, copy=False)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"{name} holds labels outside 0..{n_classes - 1} "
            f"(min {labels.min()}, max {labels.max()})"
        )
    return labels


def paired_labels(y_true, y_pred, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    true = class_indices(y_true, n_classes, "y_true")
    pred = class_indices(y_pred, n_classes, "y_pred")
    if true.shape != pred.shape:
        raise ValueError(f"y_true has {true.size} labels but y_pred has {pred.size}")
    return true, pred


# --------------------------------------------------------------------------------------------
# Training curves
# --------------------------------------------------------------------------------------------


def _present(history: pd.DataFrame, column: str) -> bool:
    """True when ``column`` exists and holds at least one number."""
    return column in history.columns and history[column].notna().any()


def _learning_rate_varies(history: pd.DataFrame) -> bool:
    if not _present(history, "learning_rate"):
        return False
    rates = history["learning_rate"].dropna().to_numpy(dtype=float)
    return rates.size > 1 and not np.allclose(rates, rates[0], rtol=1e-9, atol=0.0)


def _format_rate(value: float, _position=None) -> str:
    """Formats a learning rate for a log axis: ``1e-3``, ``5e-4``."""
    if value <= 0:
        return "0"
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def curves_figure(history: pd.DataFrame) -> Figure:
    """Builds the loss and accuracy curves of one training run.

    Args:
        history: One row per epoch with columns ``epoch`` (0-based), ``loss`` and
            ``accuracy``, and optionally ``val_loss``, ``val_accuracy`` and ``learning_rate``.
            Validation columns that are missing or all NaN are left out.

    Returns:
        The figure: a loss panel and an accuracy panel (train vs validation), plus a narrow
        log-scale learning-rate panel when the learning rate changes across epochs.

    Raises:
        ValueError: If the history is empty or lacks ``epoch``, ``loss`` or ``accuracy``.
    """
    missing = [c for c in ("epoch", "loss", "accuracy") if c not in history.columns]
    if missing:
        raise ValueError(f"history lacks column(s) {', '.join(missing)}")
    if history.empty:
        raise ValueError("history has no epochs")

    history = history.sort_values("epoch").reset_index(drop=True)
    epochs = history["epoch"].to_numpy(dtype=int) + 1  # people count epochs from 1
    marker = "o" if len(epochs) <= _MARKER_MAX_EPOCHS else None
    show_lr = _learning_rate_varies(history)

    panels = 3 if show_lr else 2
    widths = [1.0, 1.0, 0.65][:panels]
    fig = new_figure(5.2 * sum(widths) + 0.6, 4.2)
    axes = fig.subplots(1, panels, gridspec_kw={"width_ratios": widths})

    for ax, metric, title in (
        (axes[0], "loss", "Loss"),
        (axes[1], "accuracy", "Accuracy"),
    ):
        ax.plot(epochs, history[metric], marker=marker, color=_TRAIN_COLOR, label="train")
        val = f"val_{metric}"
        if _present(history, val):
            ax.plot(epochs, history[val], marker=marker, color=_VAL_COLOR, label="validation")
        ax.set_title(title)
        ax.set_ylabel(metric)
        epoch_axis(ax, epochs)
        ax.legend(loc="best")

    acc_ax = axes[1]
    acc_ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    best_col = "val_accuracy" if _present(history, "val_accuracy") else "accuracy"
    scores = history[best_col].to_numpy(dtype=float)
    if not np.isnan(scores).all():
        best = int(np.nanargmax(scores))
        which = "validation" if best_col == "val_accuracy" else "train"
        acc_ax.set_title(f"Accuracy (best {which} {scores[best]:.1%}, epoch {epochs[best]})")

    if show_lr:
        lr_ax = axes[2]
        rates = history["learning_rate"].to_numpy(dtype=float)
        lr_ax.plot(epochs, rates, marker=marker, color="tab:green", markersize=4)
        if np.nanmin(rates) > 0:
            lr_ax.set_yscale("log")
            lr_ax.yaxis.set_major_formatter(FuncFormatter(_format_rate))
            # Within one decade there may be no major tick to read: label the minor ones.
            within_decade = np.log10(np.nanmax(rates) / np.nanmin(rates)) < 1
            lr_ax.yaxis.set_minor_formatter(
                FuncFormatter(_format_rate) if within_decade else NullFormatter()
            )
        lr_ax.set_title("Learning rate")
        lr_ax.set_ylabel("learning rate")
        epoch_axis(lr_ax, epochs)

    fig.suptitle(f"Training curves ({len(epochs)} epoch{'s' if len(epochs) != 1 else ''})")
    return fig


def plot_curves(history: pd.DataFrame, path) -> Path:
    """Writes the loss and accuracy curves of one training run to a PNG.

    Args:
        history: One row per epoch with columns ``epoch`` (0-based), ``loss``, ``accuracy``
            and optionally ``val_loss``, ``val_accuracy`` and ``learning_rate``.
        path: Where to write the PNG; parent folders are created.

    Returns:
        The path written.

    Raises:
        ValueError: If the history is empty or lacks a required column.
    """
    return save(curves_figure(history), path)


# --------------------------------------------------------------------------------------------
# Confusion matrix
# --------------------------------------------------------------------------------------------


def confusion_matrix_figure(
    y_true, y_pred, classes: Sequence[str], normalize: bool = True
) -> Figure:
    """Builds a confusion-matrix heatmap with every class labelled by its character.

    Args:
        y_true: True class indices, shape (N,).
        y_pred: Predicted class indices, shape (N,).
        classes: The character of each class index; its length sets the matrix size, so
            classes absent from both label arrays still get an (empty) row and column.
        normalize: Colour each row by its share of that true class (the diagonal is the
            recall); with False, colour by raw counts.

    Returns:
        The figure; its first axes is the heatmap, with rows ``true`` and columns
        ``predicted``, and the overall accuracy in the title. The colour scale is a square
        root one so that small confusions stay visible beside a bright diagonal.

    Raises:
        ValueError: If labels fall outside ``range(len(classes))`` or the arrays differ in
            length.
    """
    classes = [str(c) for c in classes]
    n = len(classes)
    if n == 0:
        raise ValueError("classes is empty")
    true, pred = paired_labels(y_true, y_pred, n)

    counts = confusion_matrix(true, pred, labels=list(range(n)))
    total = int(counts.sum())
    accuracy = np.trace(counts) / total if total else float("nan")
    if normalize:
        row_sums = counts.sum(axis=1, keepdims=True)
        values = np.divide(
            counts, row_sums, out=np.zeros(counts.shape, dtype=float), where=row_sums > 0
        )
        norm = PowerNorm(gamma=0.5, vmin=0.0, vmax=1.0)
        bar_label = "share of the true class (diagonal = recall)"
    else:
        values = counts
        norm = PowerNorm(gamma=0.5, vmin=0.0, vmax=max(1, int(counts.max())))
        bar_label = "images"

    side = max(6.0, 0.24 * n + 2.0)
    fig = new_figure(side + 1.6, side)
    ax = fig.add_subplot()
    tick_size = 10 if n <= 20 else 9
    sns.heatmap(
        values,
        ax=ax,
        cmap="Blues",
        norm=norm,
        square=True,
        linewidths=0.3,
        linecolor="#e6e6e6",
        xticklabels=classes,
        yticklabels=classes,
        cbar_kws={"label": bar_label, "shrink": 0.8},
    )
    ax.set_xticklabels(classes, rotation=0, fontsize=tick_size)
    ax.set_yticklabels(classes, rotation=0, fontsize=tick_size)
    ax.tick_params(length=2, pad=2)
    colorbar = ax.collections[0].colorbar
    if normalize:
        # The square-root scale crowds the low end; name the small shares that matter there.
        colorbar.set_ticks([0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0])
        colorbar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    ax.set_xlabel("predicted", fontsize=11)
    ax.set_ylabel("true", fontsize=11)
    ax.set_title(
        f"Confusion matrix: accuracy {accuracy:.1%} on {total:,} images"
        + (" (rows normalised)" if normalize else ""),
        fontsize=12,
    )
    # A frame makes the matrix edge clear where the border cells are pale.
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color("#999999")
    return fig


def plot_confusion_matrix(
    y_true, y_pred, classes: Sequence[str], path, normalize: bool = True
) -> Path:
    """Writes a confusion-matrix heatmap to a PNG.

    Args:
        y_true: True class indices, shape (N,).
        y_pred: Predicted class indices, shape (N,).
        classes: The character of each class index.
        path: Where to write the PNG; parent folders are created.
        normalize: Colour rows by their share of the true class (recall) instead of counts.

    Returns:
        The path written.

    Raises:
        ValueError: If labels fall outside ``range(len(classes))`` or the arrays differ in
            length.
    """
    return save(confusion_matrix_figure(y_true, y_pred, classes, normalize=normalize), path)


# --------------------------------------------------------------------------------------------
# Class distribution
# --------------------------------------------------------------------------------------------


def class_distribution_figure(y_train, y_test, classes: Sequence[str]) -> Figure:
    """Builds bar charts of the images per class in the train and test sets.

    Train and test get a panel each (their sizes differ several-fold, so one shared axis
    would flatten the test bars), with the character of every class under its bar and a
    dashed line at the count a perfectly even split would give.

    Args:
        y_train: Class indices of the training images.
        y_test: Class indices of the test images.
        classes: The character of each class index.

    Returns:
        The figure, with the train panel on top.

    Raises:
        ValueError: If labels fall outside ``range(len(classes))``.
    """
    classes = [str(c) for c in classes]
    n = len(classes)
    if n == 0:
        raise ValueError("classes is empty")
    splits = (
        ("train", class_indices(y_train, n, "y_train"), "tab:blue"),
        ("test", class_indices(y_test, n, "y_test"), "tab:orange"),
    )
    positions = np.arange(n)
    fig = new_figure(max(8.0, 0.26 * n + 2.0), 7.0)
    axes = fig.subplots(2, 1, sharex=True)
    for ax, (name, labels, color) in zip(axes, splits, strict=True):
        counts = np.bincount(labels, minlength=n)
        ax.bar(positions, counts, width=0.75, color=color, label=f"{name} ({labels.size:,} images)")
        if labels.size:
            even = labels.size / n
            ax.axhline(
                even,
                color="black",
                linestyle="--",
                linewidth=1,
                label=f"even split ({even:,.0f} per class)",
            )
        ax.set_title(f"{name.capitalize()} set: images per class")
        ax.set_ylabel("images")
        ax.set_xticks(positions, classes, fontsize=9)
        ax.tick_params(axis="x", labelbottom=True, length=2)
        ax.set_xlim(-0.6, n - 0.4)
        ax.set_ylim(0, max(1, counts.max()) * 1.18)  # headroom for the legend
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, axis="y", alpha=0.3)
        handles, texts = ax.get_legend_handles_labels()
        ax.legend(handles[::-1], texts[::-1], loc="upper right", ncols=2, fontsize=9)
    axes[-1].set_xlabel("class")
    fig.suptitle("Class distribution", fontsize=13)
    return fig


def plot_class_distribution(y_train, y_test, classes: Sequence[str], path) -> Path:
    """Writes bar charts of the images per class in the train and test sets to a PNG.

    Args:
        y_train: Class indices of the training images.
        y_test: Class indices of the test images.
        classes: The character of each class index.
        path: Where to write the PNG; parent folders are created.

    Returns:
        The path written.

    Raises:
        ValueError: If labels fall outside ``range(len(classes))``.
    """
    return save(class_distribution_figure(y_train, y_test, classes), path)
