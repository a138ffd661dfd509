"""The report's tables as rows of text cells, shared by the Markdown and the HTML page."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from emnist_bench.rundir import COMPLETED
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
    base = summary[summary["variant"] == BASE].drop_duplicates("model")
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
            suffix = " (base)" if top["is_base"] else f" ({points(top['delta'])})"
            cells.append(f"{top['option']}: {percent(top['test_accuracy'])}{suffix}")
        rows.append(cells)
    return rows


def side_by_side_rows(table: pd.DataFrame, models: Sequence[str]) -> list[list[str]]:
    rows = []
    for _, r in table.iterrows():
        cells = [r["option"]]
        for model in models:
            status = r.get(f"{model} status")
            cells += [
                score_or_status(r[f"{model} test_accuracy"], status) if status else "",
                points(r[f"{model} delta"]),
                whole(r[f"{model} rank"]),
            ]
        rows.append(cells)
    return rows


def side_by_side_header(models: Sequence[str]) -> list[str]:
    header = ["option"]
    for model in models:
        header += [f"{model} test acc", f"{model} Δ vs base", f"{model} rank"]
    return header


RANKED_HEADER = (
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


def ranked_rows(data: pd.DataFrame) -> list[list[str]]:
    return [
        [
            whole(r["rank"]),
            f"{r['option']} (base)" if r["is_base"] else r["option"],
            percent(r["test_accuracy"]),
            points(r["delta"]),
            percent(r["macro_f1"]),
            percent(r["val_accuracy"]),
            whole(r["epochs_run"]),
            "" if pd.isna(r["train_seconds"]) else f"{r['train_seconds']:.1f}",
            r["status"],
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
