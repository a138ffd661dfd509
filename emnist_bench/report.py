"""``python -m emnist_bench.report SWEEP_DIR``: compares the runs of a technique sweep.

Writes into SWEEP_DIR:

* ``summary.csv``: one row per run (its technique choices, status and scores);
* ``summary.md``: per model and technique group, the options ranked by test accuracy with the
  difference from the base run, and MLP vs CNN side by side;
* ``plots/``: the effect of each technique, validation-accuracy curves per group, the best
  MLP against the best CNN;
* ``report.html``: one self-contained page (plots embedded) that links to each run's plots;

and prints the best option of each technique per model. A run's techniques are read from its
``metrics.json`` (what it actually used), so the report also works on hand-made folders. Runs
that failed or diverged keep their status and have no scores. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import math
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter
from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from emnist_bench.errors import UserError
from emnist_bench.sweep import TECHNIQUE_GROUPS

# The technique groups compared, in the order tables and plots show them (metrics.json keys).
TECHNIQUES = TECHNIQUE_GROUPS
SCORES = ("test_accuracy", "macro_f1", "val_accuracy", "test_loss")
SUMMARY_COLUMNS = (
    "run_dir",
    "model",
    "family",
    "variant",
    *TECHNIQUES,
    "status",
    *SCORES,
    "epochs_run",
    "train_seconds",
    "params",
    "error",
)
BASE = "base"
COMPLETED = "completed"
DPI = 110
RUN_PLOTS = ("curves", "confusion_matrix", "samples")
_FAMILY_ORDER = {"mlp": 0, "cnn": 1}


# --- reading runs ----------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def find_run_dirs(sweep_dir: Path) -> list[Path]:
    """Folders under ``sweep_dir`` holding a run: a metrics.json, or a started Hydra job."""
    found = {p.parent for p in sweep_dir.rglob("metrics.json")}
    found |= {p.parent for p in sweep_dir.rglob(".hydra") if p.is_dir()}
    return sorted(d for d in found if d != sweep_dir)


def _choices_from_config(run_dir: Path) -> dict[str, Any]:
    """The techniques of a run that never wrote metrics.json, from its saved config."""
    from emnist_bench.config import technique_choices

    for path in (run_dir / "config.yaml", run_dir / ".hydra" / "config.yaml"):
        try:
            return technique_choices(OmegaConf.load(path))
        except Exception:  # missing or incomplete: try the next, else report it unknown
            continue
    return {}


def _error_line(error: Any) -> str | None:
    """The last line of an error (a traceback ends with the exception and its message)."""
    if not error:
        return None
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1] if lines else None


def run_row(run_dir: Path, sweep_dir: Path) -> dict[str, Any]:
    """One summary row from a run folder; scores are blank unless the run completed."""
    metrics = _read_json(run_dir / "metrics.json")
    if metrics is None:
        metrics = {"status": "unfinished", **_choices_from_config(run_dir)}
    row = {key: metrics.get(key) for key in SUMMARY_COLUMNS}
    row["run_dir"] = run_dir.relative_to(sweep_dir).as_posix()
    row["model"] = row["model"] or run_dir.relative_to(sweep_dir).parts[0]
    row["error"] = _error_line(metrics.get("error"))
    if row["status"] != COMPLETED:
        row.update(dict.fromkeys(SCORES))
    return row


def _multirun_choices(sweep_dir: Path) -> dict[str, str]:
    """The base choices of a Hydra sweep (its master config), when multirun.yaml is there."""
    try:
        choices = OmegaConf.load(sweep_dir / "multirun.yaml").hydra.runtime.choices
        return {group: str(choices[group]) for group in TECHNIQUES if group in choices}
    except Exception:  # no or foreign multirun.yaml
        return {}


def _leaf(run_dir: str) -> str:
    return run_dir.rsplit("/", 1)[-1]


def base_choices(summary: pd.DataFrame, sweep_dir: Path) -> dict[str, dict[str, str]]:
    """Per model, the techniques of the base configuration.

    The base is the run in a folder named ``base`` (the one-factor grid); failing that, the
    sweep's own defaults (multirun.yaml, e.g. the full factorial); failing that, the most
    common option of each group.
    """
    sweep_defaults = _multirun_choices(sweep_dir)
    bases = {}
    for model, runs in summary.groupby("model", sort=False):
        named = runs[runs["run_dir"].map(_leaf) == BASE]
        if len(named):
            bases[model] = {g: named.iloc[0][g] for g in TECHNIQUES}
        elif len(sweep_defaults) == len(TECHNIQUES):
            bases[model] = dict(sweep_defaults)
        else:
            bases[model] = {g: runs[g].dropna().mode().iloc[0] for g in TECHNIQUES}
    return bases


def _variant(row: pd.Series, base: dict[str, str]) -> str:
    if any(pd.isna(row[g]) for g in TECHNIQUES):
        return _leaf(row["run_dir"])
    changed = [f"{g}={row[g]}" for g in TECHNIQUES if row[g] != base[g]]
    return ",".join(changed) or BASE


def _sort_key(row: pd.Series) -> tuple:
    variant = row["variant"]
    group = variant.split("=", 1)[0]
    position = TECHNIQUES.index(group) + 1 if group in TECHNIQUES else len(TECHNIQUES) + 1
    return (
        _FAMILY_ORDER.get(row["family"], len(_FAMILY_ORDER)),
        str(row["model"]),
        0 if variant == BASE else position,
        variant,
        row["run_dir"],
    )


def load_summary(sweep_dir: Path) -> tuple[pd.DataFrame, dict[str, dict[str, str]]]:
    """The summary table (one row per run, base runs first) and each model's base choices.

    Raises:
        UserError: when ``sweep_dir`` holds no run.
    """
    run_dirs = find_run_dirs(sweep_dir)
    if not run_dirs:
        raise UserError(f"{sweep_dir}: no runs found (no */metrics.json); run a sweep first")
    summary = pd.DataFrame([run_row(d, sweep_dir) for d in run_dirs], columns=SUMMARY_COLUMNS)
    summary["family"] = summary["family"].fillna(summary["model"])
    bases = base_choices(summary, sweep_dir)
    summary["variant"] = [_variant(row, bases[row["model"]]) for _, row in summary.iterrows()]
    order = sorted(range(len(summary)), key=lambda i: _sort_key(summary.iloc[i]))
    return summary.iloc[order].reset_index(drop=True), bases


# --- one factor at a time --------------------------------------------------------------------


def technique_effects(summary: pd.DataFrame, bases: dict[str, dict[str, str]]) -> pd.DataFrame:
    """Per model and technique group, each option's run ranked by test accuracy.

    Only runs equal to the base in every other group count (one factor at a time), so the
    table is the same for the one-factor grid and the full factorial. ``delta`` is the test
    accuracy minus the base run's; ``rank`` 1 is the best completed run.
    """
    rows = []
    for model, runs in summary.groupby("model", sort=False):
        base = bases[model]
        base_runs = runs[runs["variant"] == BASE]
        base_accuracy = base_runs["test_accuracy"].max() if len(base_runs) else math.nan
        for group in TECHNIQUES:
            others = [g for g in TECHNIQUES if g != group]
            same_elsewhere = (runs[others] == pd.Series({g: base[g] for g in others})).all(axis=1)
            chosen = runs[same_elsewhere].drop_duplicates(subset=[group], keep="first")
            for _, run in chosen.iterrows():
                rows.append(
                    {
                        "model": model,
                        "technique": group,
                        "option": run[group],
                        "is_base": run[group] == base[group],
                        "status": run["status"],
                        "test_accuracy": run["test_accuracy"],
                        "delta": run["test_accuracy"] - base_accuracy,
                        "macro_f1": run["macro_f1"],
                        "val_accuracy": run["val_accuracy"],
                        "epochs_run": run["epochs_run"],
                        "train_seconds": run["train_seconds"],
                        "run_dir": run["run_dir"],
                    }
                )
    effects = pd.DataFrame(rows)
    if effects.empty:
        return effects
    # A group whose only run is the base was not varied: nothing to compare.
    varied = effects.groupby(["model", "technique"])["option"].transform("nunique") > 1
    effects = effects[varied].reset_index(drop=True)
    if effects.empty:
        return effects
    effects["rank"] = effects.groupby(["model", "technique"])["test_accuracy"].rank(
        ascending=False, method="min"
    )
    effects["_missing"] = effects["test_accuracy"].isna()
    effects = effects.sort_values(
        ["model", "technique", "_missing", "test_accuracy"],
        ascending=[True, True, True, False],
        key=lambda column: (
            column.map(_order_key) if column.name in ("model", "technique") else column
        ),
    )
    return effects.drop(columns="_missing").reset_index(drop=True)


def _order_key(value: Any) -> Any:
    if value in TECHNIQUES:
        return TECHNIQUES.index(value)
    return (_FAMILY_ORDER.get(value, len(_FAMILY_ORDER)), str(value))


def best_options(effects: pd.DataFrame) -> pd.DataFrame:
    """The best completed option of each technique per model (rank 1; first on ties)."""
    completed = effects[effects["status"] == COMPLETED]
    return completed.groupby(["model", "technique"], sort=False).head(1).reset_index(drop=True)


def side_by_side(effects: pd.DataFrame, group: str, models: Sequence[str]) -> pd.DataFrame:
    """One group's options as rows, each model's accuracy, delta and rank as columns."""
    data = effects[effects["technique"] == group]
    table = data.pivot_table(
        index="option",
        columns="model",
        values=["test_accuracy", "delta", "rank"],
        aggfunc="first",
        dropna=False,
    )
    options = list(dict.fromkeys(data["option"]))
    mean = table["test_accuracy"].mean(axis=1) if "test_accuracy" in table else None
    if mean is not None:
        options.sort(key=lambda o: -mean.get(o, -1) if not pd.isna(mean.get(o)) else 1)
    statuses = data.pivot_table(index="option", columns="model", values="status", aggfunc="first")
    out = pd.DataFrame(index=options)
    base_options = set(data.loc[data["is_base"], "option"])
    out["option"] = [f"{o} (base)" if o in base_options else o for o in options]
    for model in models:
        for metric in ("test_accuracy", "delta", "rank"):
            column = table[metric][model] if (metric, model) in table.columns else None
            out[f"{model} {metric}"] = column.reindex(options) if column is not None else math.nan
        if model in statuses:
            out[f"{model} status"] = statuses[model].reindex(options)
    return out.reset_index(drop=True)


# --- formatting ------------------------------------------------------------------------------


def _percent(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{value:.2%}"


def _points(value: Any) -> str:
    """A difference of accuracies in percentage points (``+1.25 pp``)."""
    return "" if value is None or pd.isna(value) else f"{value * 100:+.2f} pp"


def _rank(value: Any) -> str:
    return "" if value is None or pd.isna(value) else str(int(value))


def _score_or_status(accuracy: Any, status: Any) -> str:
    if status != COMPLETED:
        return str(status or "")
    return _percent(accuracy)


def _models(summary: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(summary["model"]))


def data_description(summary: pd.DataFrame, sweep_dir: Path, short: bool = False) -> str:
    """The data and training length, read from the first run that saved its config.

    ``short`` gives the few words a plot title has room for.
    """
    for run_dir in summary["run_dir"]:
        metrics = _read_json(sweep_dir / run_dir / "metrics.json") or {}
        try:
            cfg = OmegaConf.load(sweep_dir / run_dir / "config.yaml")
        except OSError:
            continue
        source = Path(str(cfg.data.root)).name or str(cfg.data.root)
        epochs = int(cfg.trainer.epochs)
        epochs_text = f"{epochs} epoch{'s' if epochs != 1 else ''}"
        sizes = ""
        if "train_samples" in metrics:
            sizes = f"{metrics['train_samples']:,} train / {metrics['test_samples']:,} test images"
        if short:
            return ", ".join(part for part in (source, sizes, epochs_text) if part)
        subset = cfg.data.get("subset")
        split = f"{cfg.data.split} split" + (
            f", at most {subset} training images per class" if subset else ""
        )
        if sizes:
            sizes = sizes.replace(" train /", f" train / {metrics['val_samples']:,} validation /")
        return f"Data: {source} ({split}), {sizes}; up to {epochs_text}, seed {cfg.trainer.seed}"
    return "" if short else "Data: unknown (no run saved its config.yaml)"


def status_counts(summary: pd.DataFrame) -> str:
    counts = summary["status"].fillna("unknown").value_counts()
    return ", ".join(f"{count} {status}" for status, count in counts.items())


def _markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _base_rows(summary: pd.DataFrame) -> list[list[str]]:
    base = summary[summary["variant"] == BASE].drop_duplicates("model")
    return [
        [
            r["model"],
            *[r[g] for g in TECHNIQUES],
            _score_or_status(r["test_accuracy"], r["status"]),
            _percent(r["macro_f1"]),
            r["run_dir"],
        ]
        for _, r in base.iterrows()
    ]


def _best_rows(best: pd.DataFrame, models: Sequence[str]) -> list[list[str]]:
    rows = []
    for group in TECHNIQUES:
        if group not in set(best["technique"]):
            continue  # not varied in this sweep
        cells = [group]
        for model in models:
            hit = best[(best["model"] == model) & (best["technique"] == group)]
            if hit.empty:
                cells.append("")
                continue
            top = hit.iloc[0]
            suffix = " (base)" if top["is_base"] else f" ({_points(top['delta'])})"
            cells.append(f"{top['option']}: {_percent(top['test_accuracy'])}{suffix}")
        rows.append(cells)
    return rows


def _side_by_side_rows(table: pd.DataFrame, models: Sequence[str]) -> list[list[str]]:
    rows = []
    for _, r in table.iterrows():
        cells = [r["option"]]
        for model in models:
            status = r.get(f"{model} status")
            cells += [
                _score_or_status(r[f"{model} test_accuracy"], status) if status else "",
                _points(r[f"{model} delta"]),
                _rank(r[f"{model} rank"]),
            ]
        rows.append(cells)
    return rows


def _side_by_side_header(models: Sequence[str]) -> list[str]:
    header = ["option"]
    for model in models:
        header += [f"{model} test acc", f"{model} Δ vs base", f"{model} rank"]
    return header


_RANKED_HEADER = (
    "rank",
    "option",
    "test acc",
    "Δ vs base",
    "macro F1",
    "best val acc",
    "epochs",
    "train s",
    "status",
    "run",
)


def _ranked_rows(data: pd.DataFrame) -> list[list[str]]:
    return [
        [
            _rank(r["rank"]),
            f"{r['option']} (base)" if r["is_base"] else r["option"],
            _percent(r["test_accuracy"]),
            _points(r["delta"]),
            _percent(r["macro_f1"]),
            _percent(r["val_accuracy"]),
            _rank(r["epochs_run"]),
            "" if pd.isna(r["train_seconds"]) else f"{r['train_seconds']:.1f}",
            r["status"],
            r["run_dir"],
        ]
        for _, r in data.iterrows()
    ]


def _problem_rows(summary: pd.DataFrame) -> list[list[str]]:
    problems = summary[summary["status"] != COMPLETED]
    return [[r["run_dir"], r["status"], r["error"] or ""] for _, r in problems.iterrows()]


def write_markdown(
    path: Path, title: str, summary: pd.DataFrame, effects: pd.DataFrame, about: str
) -> Path:
    models = _models(summary)
    best = best_options(effects)
    parts = [
        f"# {title}",
        f"{about}. Runs: {len(summary)} ({status_counts(summary)}).",
        "One factor at a time: each option is compared with its model's base run, all other "
        "techniques as in the base. Δ is the difference in test accuracy in percentage points.",
        "## Base configuration",
        _markdown_table(["model", *TECHNIQUES, "test acc", "macro F1", "run"], _base_rows(summary)),
        "## Best option per technique",
        _markdown_table(["technique", *models], _best_rows(best, models)),
        "## MLP vs CNN, technique by technique",
    ]
    for group in TECHNIQUES:
        table = side_by_side(effects, group, models)
        if len(table):
            parts += [
                f"### {group}",
                _markdown_table(_side_by_side_header(models), _side_by_side_rows(table, models)),
            ]
    for model in models:
        parts.append(f"## {model}: options ranked by test accuracy")
        for group in TECHNIQUES:
            data = effects[(effects["model"] == model) & (effects["technique"] == group)]
            if len(data):
                parts += [
                    f"### {model} · {group}",
                    _markdown_table(_RANKED_HEADER, _ranked_rows(data)),
                ]
    problems = _problem_rows(summary)
    if problems:
        parts += [
            "## Runs that did not complete",
            _markdown_table(["run", "status", "error"], problems),
        ]
    path.write_text("\n\n".join(parts) + "\n")
    return path


# --- plots -----------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    """A constrained-layout figure with its own Agg canvas (no pyplot, no global state)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    return path


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
    return [g for g in TECHNIQUES if g in present]


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
    fig = _figure(5.4 * columns, 4.3 * math.ceil(len(groups) / columns) + 0.6)
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
            heights = [runs["test_accuracy"].get(o, math.nan) for o in options]
            bars = ax.bar(offsets, heights, width * 0.95, color=palette[model], label=model)
            labels = ["" if pd.isna(h) else f"{h:.1%}" for h in heights]
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
        "Test accuracy per option, one technique changed at a time "
        f"({about})\nbase option in bold; dashed line: each model's base run",
        fontsize=11,
    )
    return fig


def _history(sweep_dir: Path, run_dir: str) -> pd.DataFrame | None:
    try:
        history = pd.read_csv(sweep_dir / run_dir / "history.csv")
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return None
    return history if "val_accuracy" in history and len(history) else None


def val_curves_figure(
    effects: pd.DataFrame, model: str, sweep_dir: Path, about: str
) -> Figure | None:
    """Validation accuracy per epoch, one panel per technique group, one line per option."""
    data = effects[effects["model"] == model]
    groups = _groups_present(data)
    if not groups:
        return None
    columns = min(3, len(groups))
    fig = _figure(5.4 * columns, 3.9 * math.ceil(len(groups) / columns) + 0.5)
    drew = False
    for ax, group in zip(_panels(fig, len(groups), columns), groups, strict=True):
        runs = data[data["technique"] == group]
        colors = iter(sns.color_palette("tab10", len(runs)))
        for _, run in runs.iterrows():
            history = _history(sweep_dir, run["run_dir"])
            if history is None:
                continue
            drew = True
            epochs = history["epoch"] + 1 if "epoch" in history else np.arange(1, len(history) + 1)
            label = f"{run['option']} (base)" if run["is_base"] else str(run["option"])
            if run["status"] != COMPLETED:
                label += f" [{run['status']}]"
            style = (
                {"color": "black", "lw": 2.2, "zorder": 3}
                if run["is_base"]
                else {"color": next(colors), "lw": 1.3}
            )
            ax.plot(epochs, history["val_accuracy"], marker="o", ms=3.5, label=label, **style)
        ax.set_title(group, fontsize=12)
        _epoch_axis(ax)
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
        ax.grid(True, alpha=0.3)
        if ax.get_lines():
            ax.legend(fontsize=8, loc="best")
    if not drew:
        return None
    fig.axes[0].set_ylabel("validation accuracy")
    fig.suptitle(
        f"{model}: validation accuracy per option of each technique ({about})\n"
        "base option in black",
        fontsize=11,
    )
    return fig


def _epoch_axis(ax) -> None:
    """Whole epochs on x, with room around a single epoch."""
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    low, high = ax.get_xlim()
    if high - low < 2:
        middle = round((low + high) / 2)
        ax.set_xlim(middle - 1, middle + 1)


def best_runs_figure(summary: pd.DataFrame, sweep_dir: Path, about: str) -> Figure | None:
    """The best run of each model: its scores side by side and its accuracy curves."""
    completed = summary[summary["status"] == COMPLETED].dropna(subset=["test_accuracy"])
    if completed.empty:
        return None
    best = completed.sort_values("test_accuracy", ascending=False).drop_duplicates("model")
    best = best.sort_values("model", key=lambda c: c.map(_order_key))
    models = list(best["model"])
    palette = _palette(models)
    fig = _figure(12.5, 4.6)
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
        bars = bars_ax.bar(
            positions + (i - (len(models) - 1) / 2) * width,
            heights,
            width * 0.95,
            color=palette[run["model"]],
            label=f"{run['model']}: {run['variant']}",
        )
        bars_ax.bar_label(bars, labels=[f"{h:.1%}" for h in heights], fontsize=8, padding=2)
        history = _history(sweep_dir, run["run_dir"])
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
    _epoch_axis(curves_ax)
    curves_ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    curves_ax.grid(True, alpha=0.3)
    if curves_ax.get_lines():
        curves_ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"Best {' vs best '.join(m.upper() for m in models)} ({about})", fontsize=11)
    return fig


def write_plots(
    plots_dir: Path, summary: pd.DataFrame, effects: pd.DataFrame, sweep_dir: Path, about: str
) -> list[Path]:
    """Writes every sweep plot that has data; returns their paths."""
    written = []
    models = _models(summary)
    if not effects.empty:
        written.append(
            _save(effects_figure(effects, models, about), plots_dir / "technique_effects.png")
        )
        for model in models:
            fig = val_curves_figure(effects, model, sweep_dir, about)
            if fig is not None:
                written.append(_save(fig, plots_dir / f"val_curves_{model}.png"))
    fig = best_runs_figure(summary, sweep_dir, about)
    if fig is not None:
        written.append(_save(fig, plots_dir / "best_mlp_vs_cnn.png"))
    return written


# --- HTML ------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;
max-width:1280px;padding:0 16px;color:#1f2328;line-height:1.45}
h1{font-size:1.6em;margin-bottom:4px}h2{margin-top:1.8em;border-bottom:1px solid #d0d7de}
h3{margin:1.2em 0 .4em}.meta{color:#57606a}
table{border-collapse:collapse;margin:8px 0 16px;font-size:.9em}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;white-space:nowrap}
th{background:#f6f8fa}tr.base td{font-weight:600}
td.failed,td.diverged,td.unfinished,td.error{color:#b42318;font-weight:600}
img{max-width:100%;border:1px solid #d0d7de;margin:8px 0}
.grid{display:flex;flex-wrap:wrap;gap:0 32px}.wide{overflow-x:auto}
"""


def _html_table(
    header: Sequence[str], rows: Iterable[Sequence[Any]], base_column: int | None = None
) -> str:
    """An HTML table; cells are escaped unless given as ``("html", markup)``."""

    def cell(value: Any) -> str:
        if isinstance(value, tuple) and value[0] == "html":
            return f"<td>{value[1]}</td>"
        text = html.escape(str(value))
        css = f' class="{text}"' if text in ("failed", "diverged", "unfinished", "error") else ""
        return f"<td{css}>{text}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        is_base = base_column is not None and str(row[base_column]).endswith("(base)")
        css = ' class="base"' if is_base else ""
        body.append(f"<tr{css}>{''.join(cell(v) for v in row)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _href(sweep_dir: Path, path: str) -> str:
    return quote(path, safe="/=,") if (sweep_dir / path).exists() else ""


def _run_links(sweep_dir: Path, run_dir: str) -> str:
    links = []
    for name in RUN_PLOTS:
        href = _href(sweep_dir, f"{run_dir}/plots/{name}.png")
        if href:
            links.append(f'<a href="{href}">{name.replace("_", " ")}</a>')
    href = _href(sweep_dir, f"{run_dir}/metrics.json")
    if href:
        links.append(f'<a href="{href}">metrics.json</a>')
    return " · ".join(links)


def _all_runs_rows(summary: pd.DataFrame, sweep_dir: Path) -> list[list[Any]]:
    return [
        [
            r["run_dir"],
            r["model"],
            *[r[g] for g in TECHNIQUES],
            r["status"],
            _percent(r["test_accuracy"]),
            _percent(r["macro_f1"]),
            _percent(r["val_accuracy"]),
            _rank(r["epochs_run"]),
            "" if pd.isna(r["train_seconds"]) else f"{r['train_seconds']:.1f}",
            "" if pd.isna(r["params"]) else f"{int(r['params']):,}",
            ("html", _run_links(sweep_dir, r["run_dir"])),
        ]
        for _, r in summary.iterrows()
    ]


def write_html(
    path: Path,
    title: str,
    summary: pd.DataFrame,
    effects: pd.DataFrame,
    plots: Sequence[Path],
    about: str,
) -> Path:
    """One self-contained page: tables, the sweep plots embedded, links to every run's plots."""
    sweep_dir = path.parent
    models = _models(summary)
    plot = {p.stem: p for p in plots}
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{html.escape(about)}. Runs: {len(summary)} '
        f"({html.escape(status_counts(summary))}). One factor at a time: each option is compared "
        "with its model's base run, all other techniques as in the base; Δ is the difference in "
        "test accuracy in percentage points.</p>",
        "<h2>Base configuration</h2>",
        _html_table(["model", *TECHNIQUES, "test acc", "macro F1", "run"], _base_rows(summary)),
        "<h2>Best option per technique</h2>",
        _html_table(["technique", *models], _best_rows(best_options(effects), models)),
    ]
    if "technique_effects" in plot:
        parts += ["<h2>Effect of each technique</h2>", _image(plot["technique_effects"], "effects")]
    if "best_mlp_vs_cnn" in plot:
        parts += ["<h2>Best runs side by side</h2>", _image(plot["best_mlp_vs_cnn"], "best runs")]
    parts.append('<h2>MLP vs CNN, technique by technique</h2><div class="grid">')
    for group in TECHNIQUES:
        table = side_by_side(effects, group, models) if not effects.empty else pd.DataFrame()
        if len(table):
            parts += [
                f"<div><h3>{group}</h3>",
                _html_table(
                    _side_by_side_header(models), _side_by_side_rows(table, models), base_column=0
                ),
                "</div>",
            ]
    parts.append("</div><h2>Validation accuracy per technique</h2>")
    for model in models:
        if f"val_curves_{model}" in plot:
            parts.append(_image(plot[f"val_curves_{model}"], f"{model} validation curves"))
    for model in models:
        parts.append(
            f'<h2>{html.escape(model)}: options ranked by test accuracy</h2><div class="grid">'
        )
        for group in TECHNIQUES:
            data = (
                effects[(effects["model"] == model) & (effects["technique"] == group)]
                if not effects.empty
                else effects
            )
            if len(data):
                parts += [
                    f"<div><h3>{group}</h3>",
                    _html_table(_RANKED_HEADER[:-1], [r[:-1] for r in _ranked_rows(data)], 1),
                    "</div>",
                ]
        parts.append("</div>")
    problems = _problem_rows(summary)
    if problems:
        parts += [
            "<h2>Runs that did not complete</h2>",
            _html_table(["run", "status", "error"], problems),
        ]
    parts += [
        '<h2>All runs</h2><div class="wide">',
        _html_table(
            [
                "run",
                "model",
                *TECHNIQUES,
                "status",
                "test acc",
                "macro F1",
                "best val acc",
                "epochs",
                "train s",
                "params",
                "run plots",
            ],
            _all_runs_rows(summary, sweep_dir),
        ),
        "</div>",
    ]
    page = (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
    path.write_text(page, encoding="utf-8")
    return path


# --- terminal and entry point ----------------------------------------------------------------


def best_table(effects: pd.DataFrame, models: Sequence[str], title: str) -> Table:
    """A rich table: the best option of each technique per model, with Δ vs the base run."""
    table = Table(title=title)
    table.add_column("technique", style="bold")
    for model in models:
        table.add_column(f"best for {model}")
    for row in _best_rows(best_options(effects), models):
        table.add_row(*row)
    return table


def write_report(sweep_dir: Path | str, console: Console | None = None) -> dict[str, Path]:
    """Writes summary.csv, summary.md, plots/ and report.html into ``sweep_dir``.

    Returns:
        The written files by name (``summary_csv``, ``summary_md``, ``report_html``, plots).

    Raises:
        UserError: when ``sweep_dir`` is not a folder or holds no run.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir}: not a folder; pass the sweep's output folder")
    summary, bases = load_summary(sweep_dir)
    effects = technique_effects(summary, bases)
    about = data_description(summary, sweep_dir)
    short = data_description(summary, sweep_dir, short=True)
    title = f"Technique comparison: {sweep_dir.resolve().name}"
    written = {"summary_csv": sweep_dir / "summary.csv"}
    summary.to_csv(written["summary_csv"], index=False)
    written["summary_md"] = write_markdown(sweep_dir / "summary.md", title, summary, effects, about)
    plots = write_plots(sweep_dir / "plots", summary, effects, sweep_dir, short)
    written.update({p.stem: p for p in plots})
    written["report_html"] = write_html(
        sweep_dir / "report.html", title, summary, effects, plots, about
    )
    console = console or Console()
    if not effects.empty:
        console.print(best_table(effects, _models(summary), f"{title} ({status_counts(summary)})"))
    console.print(f"Report: {written['report_html']} (summary.csv, summary.md, plots/)")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emnist_bench.report",
        description="Compare the runs of a technique sweep: summary.csv, summary.md, plots/ "
        "and report.html, written into the sweep folder.",
    )
    parser.add_argument(
        "sweep_dir",
        type=Path,
        metavar="SWEEP_DIR",
        help="the sweep's output folder (hydra.sweep.dir)",
    )
    arguments = parser.parse_args(argv)
    try:
        write_report(arguments.sweep_dir)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
