"""``summary.md``: the comparison as Markdown tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from emnist_bench.report.effects import best_options, models_of, side_by_side
from emnist_bench.report.factorial import Factorial
from emnist_bench.report.factorial import tables as factorial_tables
from emnist_bench.report.tables import (
    CONFUSED_ABOUT,
    CONFUSED_HEADER,
    RANKED_HEADER,
    base_rows,
    best_rows,
    confused_rows,
    introduction,
    markdown_table,
    problem_rows,
    ranked_rows,
    side_by_side_header,
    side_by_side_rows,
)
from emnist_bench.rundir import write_text
from emnist_bench.techniques import TECHNIQUE_GROUPS


def write_markdown(
    path: Path,
    title: str,
    summary: pd.DataFrame,
    effects: pd.DataFrame,
    about: str,
    factorials: Sequence[Factorial] = (),
) -> Path:
    models = models_of(effects, summary)
    best = best_options(effects)
    parts = [
        f"# {title}",
        *introduction(summary, effects, about),
        "## Base configuration",
        markdown_table(
            ["model", *TECHNIQUE_GROUPS, "test acc", "macro F1", "run"], base_rows(summary)
        ),
        "## Best option per technique",
        markdown_table(["technique", *models], best_rows(best, models)),
        "## MLP vs CNN, technique by technique",
    ]
    for group in TECHNIQUE_GROUPS:
        table = side_by_side(effects, group, models)
        if len(table):
            parts += [
                f"### {group}",
                markdown_table(side_by_side_header(models), side_by_side_rows(table, models)),
            ]
    for model in models:
        parts.append(f"## {model}: every option, detectable differences ranked")
        for group in TECHNIQUE_GROUPS:
            data = effects[(effects["model"] == model) & (effects["technique"] == group)]
            if len(data):
                parts += [
                    f"### {model} · {group}",
                    markdown_table(RANKED_HEADER, ranked_rows(data)),
                ]
    if factorials:
        parts.append("## Several techniques at once: an additive model of all runs")
    for result in factorials:
        for heading, header, rows in factorial_tables(result):
            if rows:
                parts += [f"### {heading}", markdown_table(header, rows)]
    confused = confused_rows(summary)
    if confused:
        parts += [
            "## Where the best run of each model errs",
            CONFUSED_ABOUT,
            markdown_table(CONFUSED_HEADER, confused),
        ]
    problems = problem_rows(summary)
    if problems:
        parts += [
            "## Runs that did not complete",
            markdown_table(["run", "status", "error"], problems),
        ]
    write_text(path, "\n\n".join(parts) + "\n")
    return path
