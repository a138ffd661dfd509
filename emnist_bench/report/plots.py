"""The comparison's figures: each technique's effect, validation curves per group, best runs.

Every figure carries its noise: each option's difference from its base with the paired 95%
interval the verdict rests on, a band around curves of several seeds (their range), the best
runs' accuracies with their interval from the test images.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import lines, transforms
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


def _effect_label(row: pd.Series) -> str:
    accuracy = row["test_accuracy"]
    text = "" if pd.isna(accuracy) else f"{accuracy:.1%}"
    return f"{text} {_mark(row['verdict']) or row['status']}".strip()


OFF_SCALE = 0.25
"""A difference from the base this large (a quarter of the images) needs no interval to be
seen, and drawn to scale it would squash every other: it is named at the panel's edge."""


def _shown_as_interval(row: pd.Series) -> bool:
    """Whether an option's difference is drawn to scale (not a collapsed or far-off one)."""
    finite = not any(pd.isna(row[k]) for k in ("delta", "delta_ci_low", "delta_ci_high"))
    return (
        finite
        and not row["is_base"]
        and _mark(row["verdict"]) != VERDICT_MARKS["collapsed"]
        and abs(row["delta"]) <= OFF_SCALE
    )


def _delta_limits(effects: pd.DataFrame) -> tuple[float, float]:
    """Percentage points every panel shows: 0 and each drawn interval, room for labels."""
    drawn = effects[effects.apply(_shown_as_interval, axis=1)] if len(effects) else effects
    low = min(0.0, 100 * drawn["delta_ci_low"].min()) if len(drawn) else -1.0
    high = max(0.0, 100 * drawn["delta_ci_high"].max()) if len(drawn) else 1.0
    span = max(high - low, 1.0)
    return low - 0.06 * span, high + 0.42 * span


def _draw_option(ax, row: pd.Series, y: float, color) -> None:
    """One model's option on its row: the base as a diamond at 0, a difference as a point with
    its interval (filled where it is a finding), anything else named at the panel's edge."""
    if row["is_base"]:
        accuracy = row["test_accuracy"]
        base = "base" if pd.isna(accuracy) else f"{accuracy:.1%} base"
        ax.plot(0, y, marker="D", ms=5, color=color)
        ax.text(0, y, f"  {base}", va="center", fontsize=7, color=color)
    elif _shown_as_interval(row):
        delta, low, high = (100 * row[k] for k in ("delta", "delta_ci_low", "delta_ci_high"))
        found = _mark(row["verdict"]) in (VERDICT_MARKS["better"], VERDICT_MARKS["worse"])
        ax.errorbar(
            delta, y, xerr=[[delta - low], [high - delta]], fmt="o", ms=5, color=color,
            mfc=color if found else "white", capsize=2, lw=1.1,
        )  # fmt: skip
        ax.text(high, y, f"  {_effect_label(row)}", va="center", fontsize=7, color=color)
    else:  # no interval, or off the scale: named at the edge it lies beyond
        edge = transforms.blended_transform_factory(ax.transAxes, ax.transData)
        if pd.notna(row["delta"]) and row["delta"] > 0:
            ax.text(0.99, y, f"{_effect_label(row)} ▶", transform=edge, va="center", ha="right",
                    fontsize=7, color=color)  # fmt: skip
        else:
            ax.text(0.01, y, f"◀ {_effect_label(row)}", transform=edge, va="center", fontsize=7,
                    color=color)  # fmt: skip


def effects_figure(effects: pd.DataFrame, models: Sequence[str], about: str) -> Figure:
    """Each option's difference from its model's base, in percentage points with the paired 95%
    interval the verdict rests on, one panel per technique and one row per option.

    The differences, not the accuracies, are drawn: two options' accuracy intervals overlap
    where their paired difference is clear, since both are scored on the same images and seeds.
    Filled points are differences the report finds; hollow ones are within their noise. Options
    with no interval (failed, not compared) or off the scale (collapsed, or more than
    :data:`OFF_SCALE` from the base) are named at the panel's edge.
    """
    groups = _groups_present(effects)
    columns = min(3, len(groups))
    rows_per_panel = max(
        (len(set(effects[effects["technique"] == g]["option"])) for g in groups), default=1
    )
    panel_height = 0.9 + 0.32 * rows_per_panel * max(1, len(models))
    fig = new_figure(5.4 * columns, panel_height * math.ceil(len(groups) / columns) + 1.3)
    palette = _palette(models)
    step = 0.8 / len(models)
    left, right = _delta_limits(effects)
    for ax, group in zip(_panels(fig, len(groups), columns), groups, strict=True):
        data = effects[effects["technique"] == group]
        options = _option_order(data)
        for i, model in enumerate(models):
            runs = data[data["model"] == model].set_index("option")
            for position, option in enumerate(options):
                if option not in runs.index:
                    continue
                y = position + (i - (len(models) - 1) / 2) * step
                _draw_option(ax, runs.loc[option], y, palette[model])
        ax.axvline(0, color="#555555", lw=0.9)
        ax.set_yticks(range(len(options)), labels=options)
        ax.set_ylim(len(options) - 0.5, -0.5)
        for label, option in zip(ax.get_yticklabels(), options, strict=True):
            if data.loc[data["option"] == option, "is_base"].any():
                label.set_fontweight("bold")
        ax.set_xlim(left, right)
        ax.set_title(group, fontsize=12)
        ax.grid(True, axis="x", alpha=0.3)
        ax.set_axisbelow(True)
    for ax in fig.axes:
        if ax.get_visible():
            ax.set_xlabel("difference from the base (percentage points)")
    handles = [lines.Line2D([], [], marker="o", ls="", color=palette[m], label=m) for m in models]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(models), title="model")
    title = (
        "Test accuracy of each option minus its model's base, one technique changed at a time, "
        f"with the paired 95% interval ({about}). Base option in bold (diamond: its accuracy); "
        "filled: better or worse, hollow: no detectable difference; labels: the option's "
        "accuracy and verdict (+ better, − worse, ≈ no detectable difference, 0 no-op, "
        "× collapsed, ! unstable, ? not compared)"
    )
    fig.suptitle("\n".join(textwrap.wrap(title, width=int(13 * 5.4 * columns))), fontsize=10)
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
        # Only the test accuracy has an interval here; NaN draws no cap on the other bars.
        errors = [[heights[0] - low, math.nan, math.nan], [high - heights[0], math.nan, math.nan]]
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
    # Below the axes: inside, it would cover the bars, which reach 80-90% at real accuracies.
    bars_ax.legend(
        fontsize=8, title="best run", loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=2
    )
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
