"""The report's tables as rows of text cells, shared by the Markdown and the HTML page."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from emnist_bench.report.effects import comparisons, detectable
from emnist_bench.report.runs import models_in, setup_notes, status_counts
from emnist_bench.rundir import COMPLETED, METRICS, read_json
from emnist_bench.techniques import BASE, TECHNIQUE_GROUPS


def percent(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{value:.2%}"


def points(value: Any) -> str:
    """A difference of accuracies in percentage points (``+1.25 pp``)."""
    return "" if value is None or pd.isna(value) else f"{value * 100:+.2f} pp"


def whole(value: Any) -> str:
    return "" if value is None or pd.isna(value) else str(int(value))


def score_or_status(accuracy: Any, status: Any) -> str:
    if status != COMPLETED:
        return str(status or "")
    return percent(accuracy)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def base_rows(summary: pd.DataFrame) -> list[list[str]]:
    """The base configuration of each model (its first seed's run)."""
    base = summary[summary["variant"] == BASE].drop_duplicates(["model", "cohort"])
    return [
        [
            r["model"],
            *[r[g] for g in TECHNIQUE_GROUPS],
            score_or_status(r["test_accuracy"], r["status"]),
            percent(r["macro_f1"]),
            r["run_dir"],
        ]
        for _, r in base.iterrows()
    ]


def interval(low: Any, high: Any, as_points: bool = False) -> str:
    """``[84.1, 85.8]`` (percent) or ``[-0.4, +1.2]`` (percentage points)."""
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return ""
    if as_points:
        return f"[{low * 100:+.1f}, {high * 100:+.1f}]"
    return f"[{low * 100:.1f}, {high * 100:.1f}]"


def accuracy_cell(row: Any, prefix: str = "") -> str:
    """Mean test accuracy with its 95% interval, or the status of an option that never
    completed."""
    status = row.get(f"{prefix}status")
    if status is None or (not isinstance(status, str) and pd.isna(status)):
        return ""
    if status != COMPLETED:
        return str(status)
    low, high = row.get(f"{prefix}ci_low"), row.get(f"{prefix}ci_high")
    return f"{percent(row[f'{prefix}test_accuracy'])} {interval(low, high)}"


def delta_cell(row: Any, prefix: str = "") -> str:
    """The difference from the base with its 95% interval (blank for the base itself)."""
    delta = row.get(f"{prefix}delta")
    if delta is None or pd.isna(delta):
        return ""
    low, high = row.get(f"{prefix}delta_ci_low"), row.get(f"{prefix}delta_ci_high")
    return f"{points(delta)} {interval(low, high, as_points=True)}".strip()


def introduction(summary: pd.DataFrame, effects: pd.DataFrame, about: str) -> list[str]:
    """The paragraphs that open the report: the data, how sure it can be, how to read it."""
    paragraphs = [f"{about}. Runs: {len(summary)} ({status_counts(summary)})."]
    if not effects.empty:
        size = comparisons(effects)
        paragraphs.append(
            f"Comparisons adjusted for (Holm): {size}. Rows that are not comparisons (base, "
            "no-op, collapsed, unstable, failed, diverged, not compared) are left out of them."
        )
    smallest = detectable(effects) if not effects.empty else float("nan")
    if not pd.isna(smallest):
        paragraphs.append(
            f"Smallest difference this sweep could detect: about {smallest * 100:.1f} "
            "percentage points (80% power at the Holm-adjusted 5% level, from the median "
            "measured standard error). A difference smaller than its own noise is not a "
            "finding, whatever its sign; for each such row, 'seeds needed' says how many seeds "
            "would detect a difference of its size."
        )
    paragraphs += setup_notes(summary)
    paragraphs.append(
        "One factor at a time: each option is compared with its model's base, all other "
        "techniques and settings as in the base, seed by seed on the same test images. "
        "Accuracies are means over seeds with a 95% interval; Δ is the difference from the "
        "base in percentage points with its 95% interval (a bootstrap that resamples seeds and, "
        "once for all of them, test images). p comes from a t-test on the per-image "
        "differences that also carries the seed-to-seed spread of whole runs (each test image "
        "counts once, however many seeds saw it; see docs/statistics.md), adjusted with Holm. "
        "Verdicts: better / worse (adjusted p < 0.05 and the interval excludes 0), no "
        "detectable difference (not ranked), unstable (some seeds failed or diverged: no "
        "verdict), not compared (no predictions to pair), collapsed (at most twice chance), "
        "no-op (trained exactly as the base), failed, diverged."
    )
    return paragraphs


def best_rows(best: pd.DataFrame, models: Sequence[str]) -> list[list[str]]:
    rows = []
    for group in TECHNIQUE_GROUPS:
        if group not in set(best["technique"]):
            continue  # not varied in this sweep
        cells = [group]
        for model in models:
            hit = best[(best["model"] == model) & (best["technique"] == group)]
            if hit.empty:
                cells.append("")
                continue
            top = hit.iloc[0]
            if top["is_base"]:
                cells.append(f"{top['option']} (base; nothing detectably better)")
            else:
                cells.append(f"{top['option']}: {delta_cell(top)}")
        rows.append(cells)
    return rows


def side_by_side_rows(table: pd.DataFrame, models: Sequence[str]) -> list[list[str]]:
    rows = []
    for _, r in table.iterrows():
        cells = [r["option"]]
        for model in models:
            prefix = f"{model} "
            verdict = r[f"{prefix}verdict"]
            cells += [
                accuracy_cell(r, prefix),
                delta_cell(r, prefix),
                "" if not isinstance(verdict, str) else verdict,
            ]
        rows.append(cells)
    return rows


def side_by_side_header(models: Sequence[str]) -> list[str]:
    header = ["option"]
    for model in models:
        header += [f"{model} test acc [95% CI]", f"{model} Δ vs base [95% CI]", f"{model} verdict"]
    return header


RANKED_HEADER = (
    "rank", "option", "seeds", "test acc [95% CI]", "Δ vs base [95% CI]", "p (Holm)", "verdict",
    "seeds needed", "macro F1", "best val acc", "epochs", "train s", "run",
)  # fmt: skip


def seeds_cell(row: Any) -> str:
    """Completed seeds (``2 of 3`` when some did not complete), and the seeds that had no base
    run to pair with (``3 (seed 4 unpaired)``)."""
    cell = f"{row['n_seeds']}" + (f" of {row['n_runs']}" if row["n_runs"] != row["n_seeds"] else "")
    unpaired = row.get("unpaired_seeds")
    if isinstance(unpaired, str) and unpaired:
        cell += f" (seed{'s' if ',' in unpaired else ''} {unpaired} unpaired)"
    return cell


def seeds_needed_cell(value: Any) -> str:
    """Seeds that would detect the difference (80% power): blank where there was a verdict or
    one seed, ``out of reach`` where no number would (the images' own noise is larger)."""
    if value is None or pd.isna(value):
        return ""
    return "out of reach" if value == float("inf") else str(int(value))


def ranked_rows(data: pd.DataFrame) -> list[list[str]]:
    """An option per row; only detectable differences (and the base) carry a rank."""
    return [
        [
            whole(r["rank"]),
            f"{r['option']} (base)" if r["is_base"] else r["option"],
            seeds_cell(r),
            accuracy_cell(r),
            delta_cell(r),
            "" if pd.isna(r["p_adjusted"]) else f"{r['p_adjusted']:.2g}",
            r["verdict"],
            seeds_needed_cell(r["seeds_needed"]),
            percent(r["macro_f1"]),
            percent(r["val_accuracy"]),
            "" if pd.isna(r["epochs_run"]) else f"{r['epochs_run']:.3g}",
            "" if pd.isna(r["train_seconds"]) else f"{r['train_seconds']:.1f}",
            r["run_dir"],
        ]
        for _, r in data.iterrows()
    ]


def problem_rows(summary: pd.DataFrame) -> list[list[str]]:
    problems = summary[summary["status"] != COMPLETED]
    return [
        [r["run_dir"], r["status"], r["error"] if isinstance(r["error"], str) else ""]
        for _, r in problems.iterrows()
    ]


CONFUSED_HEADER = ("model", "pair", "errors", "share of errors", "run")
CONFUSED_ABOUT = (
    "The pairs of characters the best completed run of each model mistakes for each other "
    "most, either way round, on its test images. Where they are pairs that handwriting leaves "
    "ambiguous (0/O, 1/l, F/f), no technique wins those errors back: what is left to win is "
    "the rest. One run each, not a test: a pair's count moves by several images from seed to "
    "seed."
)


def confused_rows(summary: pd.DataFrame, top: int = 5) -> list[list[str]]:
    """The ``top`` confused pairs (``confused_pairs`` in metrics.json) of each model's best
    completed run: one run's test images, so that no image counts twice."""
    done = summary[(summary["status"] == COMPLETED) & summary["test_accuracy"].notna()]
    rows = []
    for model in models_in(done):
        runs = done[done["model"] == model]
        best = runs.loc[runs["test_accuracy"].idxmax()]
        metrics = read_json(Path(best["path"]) / METRICS) or {}
        rows += [
            [model, "/".join(pair["pair"]), str(pair["errors"]),
             f"{pair['share_of_errors']:.0%}", best["run_dir"]]
            for pair in (metrics.get("confused_pairs") or [])[:top]
        ]  # fmt: skip
    return rows
