"""``report.html``: one self-contained page (plots embedded) linking to each run's own plots.

The markup lives in the Jinja2 template ``templates/report.html.j2``; this module only prepares
the data it shows: tables as rows of cells (which cells are links, which rows are the base row,
which cells carry a status class) and the sweep plots as base64 PNGs. The template autoescapes
every text it is given.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import pandas as pd

from emnist_bench.report.effects import best_options, models_of, side_by_side
from emnist_bench.report.factorial import Factorial
from emnist_bench.report.factorial import tables as factorial_tables
from emnist_bench.report.plots import file_name
from emnist_bench.report.tables import (
    CONFUSED_ABOUT,
    CONFUSED_HEADER,
    RANKED_HEADER,
    base_rows,
    best_rows,
    confused_rows,
    introduction,
    percent,
    problem_rows,
    ranked_rows,
    side_by_side_header,
    side_by_side_rows,
    whole,
)
from emnist_bench.rundir import METRICS, PLOTS, write_text
from emnist_bench.techniques import TECHNIQUE_GROUPS

# A run's own plots, linked from the page.
RUN_PLOTS = ("curves", "confusion_matrix", "samples")

# A cell whose whole text is one of these statuses is shown in red (CSS class of that name).
BAD_STATUSES = frozenset({"failed", "diverged", "unfinished", "error"})

TEMPLATE = "report.html.j2"

ALL_RUNS_HEADER = (
    "run",
    "model",
    *TECHNIQUE_GROUPS,
    "seed",
    "status",
    "test acc",
    "macro F1",
    "best val acc",
    "epochs",
    "train s",
    "params",
    "tags, note",
    "run plots",
)


@dataclass(frozen=True)
class Link:
    href: str
    label: str


@dataclass(frozen=True)
class Cell:
    """A table cell: its text, or (when ``links`` is not empty) links joined by `` · ``."""

    text: str = ""
    status: str = ""  # one of BAD_STATUSES, or empty
    links: tuple[Link, ...] = ()


@dataclass(frozen=True)
class Row:
    cells: tuple[Cell, ...]
    base: bool = False


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Image:
    """A PNG embedded in the page as a ``data:`` URI."""

    base64: str
    alt: str


@dataclass(frozen=True)
class Titled:
    """A table under its own heading (a technique group)."""

    title: str
    table: Table


def _cell(value: Any) -> Cell:
    if isinstance(value, Cell):
        return value
    text = str(value)
    return Cell(text, status=text if text in BAD_STATUSES else "")


def _table(
    header: Sequence[str], rows: Iterable[Sequence[Any]], base_column: int | None = None
) -> Table:
    """A table from rows of values; a row is the base row when ``base_column`` ends "(base)"."""
    return Table(
        tuple(header),
        tuple(
            Row(
                tuple(_cell(value) for value in row),
                base=base_column is not None and str(row[base_column]).endswith("(base)"),
            )
            for row in rows
        ),
    )


def _image(path: Path, alt: str) -> Image:
    return Image(base64.b64encode(path.read_bytes()).decode("ascii"), alt)


def _href(page_dir: Path, target: Path) -> str:
    """A link from the page to ``target`` (relative, percent-encoded), or "" when missing."""
    if not target.exists():
        return ""
    return quote(Path(os.path.relpath(target, page_dir)).as_posix(), safe="/=,.")


def _run_links(page_dir: Path, run_path: str) -> Cell:
    """Links to the run's own plots and its metrics.json, those that exist."""
    run = Path(run_path)
    targets = [(run / PLOTS / f"{name}.png", name.replace("_", " ")) for name in RUN_PLOTS]
    targets.append((run / METRICS, METRICS))
    links = [Link(_href(page_dir, path), label) for path, label in targets]
    return Cell(links=tuple(link for link in links if link.href))


def _annotations(row: pd.Series) -> str:
    """A run's tags and note (``runs tag``, ``runs note``), as one cell."""
    return "; ".join(str(row[key]) for key in ("tags", "note") if not pd.isna(row[key]))


def _all_runs_rows(summary: pd.DataFrame, sweep_dir: Path) -> list[list[Any]]:
    return [
        [
            r["run_dir"],
            r["model"],
            *[r[g] for g in TECHNIQUE_GROUPS],
            whole(r["seed"]),
            r["status"],
            percent(r["test_accuracy"]),
            percent(r["macro_f1"]),
            percent(r["val_accuracy"]),
            whole(r["epochs_run"]),
            "" if pd.isna(r["train_seconds"]) else f"{r['train_seconds']:.1f}",
            "" if pd.isna(r["params"]) else f"{int(r['params']):,}",
            _annotations(r),
            _run_links(sweep_dir, r["path"]),
        ]
        for _, r in summary.iterrows()
    ]


def _side_by_side_tables(effects: pd.DataFrame, models: Sequence[str]) -> list[Titled]:
    tables = []
    for group in TECHNIQUE_GROUPS:
        table = side_by_side(effects, group, models) if not effects.empty else pd.DataFrame()
        if len(table):
            rows = side_by_side_rows(table, models)
            tables.append(Titled(group, _table(side_by_side_header(models), rows, base_column=0)))
    return tables


def _ranked_tables(effects: pd.DataFrame, model: str) -> list[Titled]:
    tables = []
    for group in TECHNIQUE_GROUPS:
        data = (
            effects[(effects["model"] == model) & (effects["technique"] == group)]
            if not effects.empty
            else effects
        )
        if len(data):
            rows = [r[:-1] for r in ranked_rows(data)]  # no "run" column: see All runs
            tables.append(Titled(group, _table(RANKED_HEADER[:-1], rows, base_column=1)))
    return tables


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("emnist_bench.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_html(
    title: str,
    summary: pd.DataFrame,
    effects: pd.DataFrame,
    plots: Sequence[Path],
    about: str,
    sweep_dir: Path,
    factorials: Sequence[Factorial] = (),
) -> str:
    """The page's HTML; ``sweep_dir`` is where it will be written (links are relative to it)."""
    models = models_of(effects, summary)
    plot = {p.stem: p for p in plots}
    problems = problem_rows(summary)
    confused = confused_rows(summary)
    context = {
        "title": title,
        "introduction": introduction(summary, effects, about),
        "base_table": _table(
            ["model", *TECHNIQUE_GROUPS, "test acc", "macro F1", "run"], base_rows(summary)
        ),
        "best_table": _table(["technique", *models], best_rows(best_options(effects), models)),
        "effects_image": (
            _image(plot["technique_effects"], "effects") if "technique_effects" in plot else None
        ),
        "best_image": (
            _image(plot["best_mlp_vs_cnn"], "best runs") if "best_mlp_vs_cnn" in plot else None
        ),
        "side_by_side": _side_by_side_tables(effects, models),
        "val_curves": [
            _image(path, f"{name} validation curves")
            for name, path in plot.items()
            if name.startswith("val_curves_")
        ],
        "factorials": [
            (
                [
                    Titled(heading, _table(header, rows))
                    for heading, header, rows in factorial_tables(result)
                    if rows
                ],
                _image(plot[f"parallel_{name}"], f"{result.model} parallel coordinates")
                if f"parallel_{name}" in plot
                else None,
            )
            for result, name in ((r, file_name(r.model)) for r in factorials)
        ],
        "ranked": [(model, _ranked_tables(effects, model)) for model in models],
        "confused_about": CONFUSED_ABOUT,
        "confused_table": _table(CONFUSED_HEADER, confused) if confused else None,
        "problems_table": _table(["run", "status", "error"], problems) if problems else None,
        "all_runs_table": _table(ALL_RUNS_HEADER, _all_runs_rows(summary, sweep_dir)),
    }
    return _environment().get_template(TEMPLATE).render(context)


def write_html(
    path: Path,
    title: str,
    summary: pd.DataFrame,
    effects: pd.DataFrame,
    plots: Sequence[Path],
    about: str,
    factorials: Sequence[Factorial] = (),
) -> Path:
    """One self-contained page: tables, the sweep plots embedded, links to every run's plots."""
    page = render_html(title, summary, effects, plots, about, path.parent, factorials)
    write_text(path, page)
    return path
