"""``report.html``: one self-contained page (plots embedded) linking to each run's own plots."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from emnist_bench.report.effects import best_options, side_by_side
from emnist_bench.report.runs import models_in, status_counts
from emnist_bench.report.tables import (
    RANKED_HEADER,
    base_rows,
    best_rows,
    percent,
    problem_rows,
    ranked_rows,
    side_by_side_header,
    side_by_side_rows,
    whole,
)
from emnist_bench.techniques import TECHNIQUE_GROUPS

# A run's own plots, linked from the page.
RUN_PLOTS = ("curves", "confusion_matrix", "samples")

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
            *[r[g] for g in TECHNIQUE_GROUPS],
            r["status"],
            percent(r["test_accuracy"]),
            percent(r["macro_f1"]),
            percent(r["val_accuracy"]),
            whole(r["epochs_run"]),
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
    models = models_in(summary)
    plot = {p.stem: p for p in plots}
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{html.escape(about)}. Runs: {len(summary)} '
        f"({html.escape(status_counts(summary))}). One factor at a time: each option is compared "
        "with its model's base run, all other techniques as in the base; Δ is the difference in "
        "test accuracy in percentage points.</p>",
        "<h2>Base configuration</h2>",
        _html_table(
            ["model", *TECHNIQUE_GROUPS, "test acc", "macro F1", "run"], base_rows(summary)
        ),
        "<h2>Best option per technique</h2>",
        _html_table(["technique", *models], best_rows(best_options(effects), models)),
    ]
    if "technique_effects" in plot:
        parts += ["<h2>Effect of each technique</h2>", _image(plot["technique_effects"], "effects")]
    if "best_mlp_vs_cnn" in plot:
        parts += ["<h2>Best runs side by side</h2>", _image(plot["best_mlp_vs_cnn"], "best runs")]
    parts.append('<h2>MLP vs CNN, technique by technique</h2><div class="grid">')
    for group in TECHNIQUE_GROUPS:
        table = side_by_side(effects, group, models) if not effects.empty else pd.DataFrame()
        if len(table):
            parts += [
                f"<div><h3>{group}</h3>",
                _html_table(
                    side_by_side_header(models), side_by_side_rows(table, models), base_column=0
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
        for group in TECHNIQUE_GROUPS:
            data = (
                effects[(effects["model"] == model) & (effects["technique"] == group)]
                if not effects.empty
                else effects
            )
            if len(data):
                parts += [
                    f"<div><h3>{group}</h3>",
                    _html_table(RANKED_HEADER[:-1], [r[:-1] for r in ranked_rows(data)], 1),
                    "</div>",
                ]
        parts.append("</div>")
    problems = problem_rows(summary)
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
                *TECHNIQUE_GROUPS,
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
