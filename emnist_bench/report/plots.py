"""The comparison's figures: each technique's effect, validation curves per group, best runs.

Every accuracy is drawn with its 95% interval: error bars on bars, a band around curves of
several seeds (their range).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from emnist_bench.figures import epoch_axis, new_figure, save
from emnist_bench.report.effects import models_of
from emnist_bench.report.factorial import Factorial, parallel_figure
from emnist_bench.report.runs import order_key
from emnist_bench.report.statistics import wilson
from emnist_bench.rundir import COMPLETED, HISTORY
from emnist_bench.techniques import TECHNIQUE_GROUPS


def file_name(model: str) -> str:
    """A model label (``mlp (epochs=3)``) as part of a file name (``mlp_epochs=3``)."""
    return "".join(c if c.isalnum() or c in "=_-." else "_" for c in model).strip("_")


def _palette(models: Sequence[str]) -> dict[str, Any]:
    return dict(zip(models, sns.color_palette("colorblind", len(models)), strict=True))


def _panels(fig: Figure, count: int, columns: int = 3):
    rows = max(1, math.ceil(count / columns))
    axes = fig.subplots(rows, min(columns, count), squeeze=False).flat
    axes = list(axes)
    for ax in axes[count:]:
        ax.set_visible(False)
    return axes[:count]


def _groups_present(effects: pd.DataFrame) -> list[str]:
    present = set(effects["technique"])
    return [g for g in TECHNIQUE_GROUPS if g in present]


VERDICT_MARKS = {
    "better": "+", "worse": "−", "no detectable difference": "≈", "no-op": "0", "collapsed": "×",
    "unstable": "!", "not compared": "?",
}  # fmt: skip


def _mark(verdict: object) -> str:
    """A verdict's one-character mark; ``unstable (1 of 3 seeds failed)`` is ``unstable``'s."""
    return VERDICT_MARKS.get(str(verdict).split(" (")[0], "")


def _option_order(data: pd.DataFrame) -> list[str]:
    """The base option first, then the others by mean test accuracy (best first)."""
    mean = data.groupby("option", sort=False)["test_accuracy"].mean()
    base = list(dict.fromkeys(data.loc[data["is_base"], "option"]))
    others = [
        o for o in mean.sort_values(ascending=False, na_position="last").index if o not in base
    ]
    return base + others


def effects_figure(effects: pd.DataFrame, models: Sequence[str], about: str) -> Figure:
    """Test accuracy per option of each technique, the models' bars side by side."""
    groups = _groups_present(effects)
    columns = min(3, len(groups))
    fig = new_figure(5.4 * columns, 4.3 * math.ceil(len(groups) / columns) + 0.6)
    palette = _palette(models)
    width = 0.8 / len(models)
    top = effects["test_accuracy"].max()
    top = 1.0 if pd.isna(top) else min(1.0, top * 1.18 + 0.02)
    for ax, group in zip(_panels(fig, len(groups), columns), groups, strict=True):
        data = effects[effects["technique"] == group]
        options = _option_order(data)
        positions = np.arange(len(options))
        for i, model in enumerate(models):
            runs = data[data["model"] == model].set_index("option")
            offsets = positions + (i - (len(models) - 1) / 2) * width
            heights = np.array([runs["test_accuracy"].get(o, math.nan) for o in options])
            lows = np.array([runs["ci_low"].get(o, math.nan) for o in options])
            highs = np.array([runs["ci_high"].get(o, math.nan) for o in options])
            errors = np.nan_to_num(np.vstack([heights - lows, highs - heights]))
            bars = ax.bar(
                offsets, np.nan_to_num(heights), width * 0.95, color=palette[model], label=model,
                yerr=errors, capsize=2, error_kw={"lw": 0.9, "ecolor": "#333333"},
            )  # fmt: skip
            labels = [
                ""
                if pd.isna(h)
                else f"{h:.1%} {VERDICT_MARKS.get(str(runs['verdict'].get(o)).split(' (')[0], '')}"
                for h, o in zip(heights, options, strict=True)
            ]
            ax.bar_label(bars, labels=labels, fontsize=7, rotation=90, padding=2)
            base = runs[runs["is_base"]]
            if len(base) and not pd.isna(base["test_accuracy"].iloc[0]):
                ax.axhline(base["test_accuracy"].iloc[0], color=palette[model], ls="--", lw=1)
            for x, option in zip(offsets, options, strict=True):
                status = runs["status"].get(option)
                if status is not None and status != COMPLETED:
                    ax.text(
                        x,
                        top * 0.02,
                        status,
                        rotation=90,
                        ha="center",
                        va="bottom",
                        fontsize=8,
                        color="firebrick",
                    )
        ax.set_xticks(positions, labels=options, rotation=30, ha="right", rotation_mode="anchor")
        for label, option in zip(ax.get_xticklabels(), options, strict=True):
            if data.loc[data["option"] == option, "is_base"].any():
                label.set_fontweight("bold")
        ax.set_ylim(0, top)
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
        ax.set_title(group, fontsize=12)
        ax.grid(True, axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    fig.axes[0].set_ylabel("test accuracy")
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(models), title="model")
    fig.suptitle(
        "Test accuracy per option with 95% intervals, one technique changed at a time "
        f"({about})\nbase option in bold, dashed line: each model's base; "
        "+ better, − worse, ≈ no detectable difference, 0 no-op, × collapsed, ! unstable, "
        "? not compared",
        fontsize=11,
    )
    return fig


def _history(path: str) -> pd.DataFrame | None:
    try:
        history = pd.read_csv(Path(path) / HISTORY)
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return None
    return history if "val_accuracy" in history and len(history) else None


def _seed_curves(paths: Sequence[str]) -> pd.DataFrame | None:
    """Validation accuracy per epoch over an option's seeds: mean, lowest and highest."""
    curves = [h.set_index("epoch")["val_accuracy"] for h in map(_history, paths) if h is not None]
    if not curves:
        return None
    table = pd.concat(curves, axis=1)
    return pd.DataFrame({"mean": table.mean(1), "low": table.min(1), "high": table.max(1)})


def val_curves_figure(effects: pd.DataFrame, model: str, about: str) -> Figure | None:
    """Validation accuracy per epoch, one panel per technique group, one line per option (the
    mean over its seeds, with their range as a band)."""
    data = effects[effects["model"] == model]
    groups = _groups_present(data)
    if not groups:
        return None
    columns = min(3, len(groups))
    fig = new_figure(5.4 * columns, 3.9 * math.ceil(len(groups) / columns) + 0.5)
    drew = False
    for ax, group in zip(_panels(fig, len(groups), columns), groups, strict=True):
        runs = data[data["technique"] == group]
        colors = iter(sns.color_palette("tab10", len(runs)))
        for _, run in runs.iterrows():
            curve = _seed_curves(run["run_paths"])
            color = "black" if run["is_base"] else next(colors)
            if curve is None:
                continue
            drew = True
            epochs = curve.index + 1
            label = f"{run['option']} (base)" if run["is_base"] else str(run["option"])
            if run["status"] != COMPLETED:
                label += f" [{run['status']}]"
            width = 2.2 if run["is_base"] else 1.3
            ax.plot(epochs, curve["mean"], marker="o", ms=3.5, label=label, color=color, lw=width)
            ax.fill_between(epochs, curve["low"], curve["high"], color=color, alpha=0.15, lw=0)
        ax.set_title(group, fontsize=12)
        epoch_axis(ax)
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
        if ax.get_lines():
            ax.legend(fontsize=8, loc="best")
    if not drew:
        return None
    fig.axes[0].set_ylabel("validation accuracy")
    fig.suptitle(
        f"{model}: validation accuracy per option of each technique ({about})\n"
        "base option in black; mean over seeds, band: their range",
        fontsize=11,
    )
    return fig


def best_runs_figure(summary: pd.DataFrame, about: str) -> Figure | None:
    """The best run of each model: its scores side by side (test accuracy with its 95% interval
    from the test images) and its accuracy curves."""
    completed = summary[summary["status"] == COMPLETED].dropna(subset=["test_accuracy"])
    if completed.empty:
        return None
    best = completed.sort_values("test_accuracy", ascending=False).drop_duplicates("model")
    best = best.sort_values("model", key=lambda c: c.map(order_key))
    models = list(best["model"])
    palette = _palette(models)
    fig = new_figure(12.5, 4.6)
    bars_ax, curves_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.25]})
    metrics = (
        ("test_accuracy", "test accuracy"),
        ("macro_f1", "macro F1"),
        ("val_accuracy", "best val accuracy"),
    )
    positions = np.arange(len(metrics))
    width = 0.8 / len(models)
    for i, (_, run) in enumerate(best.iterrows()):
        heights = [run[key] if not pd.isna(run[key]) else 0.0 for key, _ in metrics]
        low, high = (
            wilson(run["test_accuracy"], int(run["test_samples"]))
            if not pd.isna(run["test_samples"])
            else (run["test_accuracy"], run["test_accuracy"])
        )
        errors = [[heights[0] - low, 0, 0], [high - heights[0], 0, 0]]
        bars = bars_ax.bar(
            positions + (i - (len(models) - 1) / 2) * width,
            heights,
            width * 0.95,
            color=palette[run["model"]],
            label=f"{run['model']}: {run['variant']}",
            yerr=errors,
            capsize=3,
        )
        bars_ax.bar_label(bars, labels=[f"{h:.1%}" for h in heights], fontsize=8, padding=2)
        history = _history(run["path"])
        if history is not None:
            epochs = history["epoch"] + 1
            color = palette[run["model"]]
            curves_ax.plot(
                epochs,
                history["val_accuracy"],
                color=color,
                marker="o",
                ms=3.5,
                label=f"{run['model']} validation",
            )
            if "accuracy" in history:
                curves_ax.plot(
                    epochs,
                    history["accuracy"],
                    color=color,
                    ls="--",
                    lw=1.2,
                    marker="x",
                    ms=4,
                    label=f"{run['model']} training",
                )
    bars_ax.set_xticks(positions, labels=[label for _, label in metrics])
    bars_ax.set_ylim(
        0, min(1.0, max(best["test_accuracy"].max(), best["val_accuracy"].max()) * 1.2 + 0.02)
    )
    bars_ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    bars_ax.grid(True, axis="y", alpha=0.3)
    bars_ax.set_axisbelow(True)
    bars_ax.legend(fontsize=8, loc="upper right", title="best run")
    bars_ax.set_title("scores of the best run per model")
    curves_ax.set_title("accuracy per epoch")
    epoch_axis(curves_ax)
    curves_ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    curves_ax.grid(True, alpha=0.3)
    if curves_ax.get_lines():
        curves_ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"Best {' vs best '.join(m.upper() for m in models)} ({about})", fontsize=11)
    return fig


def write_plots(
    plots_dir: Path,
    summary: pd.DataFrame,
    effects: pd.DataFrame,
    about: str,
    factorials: Sequence[Factorial] = (),
) -> list[Path]:
    """Writes every sweep plot that has data; returns their paths."""
    written = [
        save(parallel_figure(result, about), plots_dir / f"parallel_{file_name(result.model)}.png")
        for result in factorials
    ]
    models = models_of(effects, summary)
    if not effects.empty:
        written.append(
            save(effects_figure(effects, models, about), plots_dir / "technique_effects.png")
        )
        for model in models:
            fig = val_curves_figure(effects, model, about)
            if fig is not None:
                written.append(save(fig, plots_dir / f"val_curves_{file_name(model)}.png"))
    fig = best_runs_figure(summary, about)
    if fig is not None:
        written.append(save(fig, plots_dir / "best_mlp_vs_cnn.png"))
    return written
