"""``summary.md``: the comparison as Markdown tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from emnist_bench.report.effects import best_options, side_by_side
from emnist_bench.report.runs import models_in, status_counts
from emnist_bench.report.tables import (
    RANKED_HEADER,
    base_rows,
    best_rows,
    markdown_table,
    problem_rows,
    ranked_rows,
    side_by_side_header,
    side_by_side_rows,
)
from emnist_bench.techniques import TECHNIQUE_GROUPS


def write_markdown(
    path: Path, title: str, summary: pd.DataFrame, effects: pd.DataFrame, about: str
) -> Path:
    models = models_in(summary)
    best = best_options(effects)
    parts = [
        f"# {title}",
        f"{about}. Runs: {len(summary)} ({status_counts(summary)}).",
        "One factor at a time: each option is compared with its model's base run, all other "
        "techniques as in the base. Δ is the difference in test accuracy in percentage points.",
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
        parts.append(f"## {model}: options ranked by test accuracy")
        for group in TECHNIQUE_GROUPS:
            data = effects[(effects["model"] == model) & (effects["technique"] == group)]
            if len(data):
                parts += [
                    f"### {model} · {group}",
                    markdown_table(RANKED_HEADER, ranked_rows(data)),
                ]
    problems = problem_rows(summary)
    if problems:
        parts += [
            "## Runs that did not complete",
            markdown_table(["run", "status", "error"], problems),
        ]
    path.write_text("\n\n".join(parts) + "\n")
    return path
