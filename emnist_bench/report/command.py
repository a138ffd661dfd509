"""``python -m emnist_bench.report DIR [DIR ...]``: compares the runs in folders (sweeps, or any).

Writes into the first DIR (or ``--out``):

* ``summary.csv``: one row per run (its technique choices, seed, status and scores);
* ``effects.csv``: per model, technique and option: seeds, mean test accuracy and its 95%
  interval, the difference from the base with its interval, p-values (raw and Holm-adjusted)
  and a verdict (``emnist_bench.report.effects``);
* ``summary.md``: the same as tables, MLP vs CNN side by side, detectable differences ranked;
* ``plots/``: each technique's effect, validation curves per group, the best runs;
* ``report.html``: one self-contained page (plots embedded) that links to each run's plots;

and prints the best option of each technique per model. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from emnist_bench.errors import UserError, exit_on_user_error
from emnist_bench.report.effects import (
    best_options,
    comparisons,
    effects_csv,
    models_of,
    technique_effects,
)
from emnist_bench.report.factorial import fit_all
from emnist_bench.report.html import write_html
from emnist_bench.report.markdown import write_markdown
from emnist_bench.report.plots import write_plots
from emnist_bench.report.runs import data_description, load_summary, status_counts
from emnist_bench.report.tables import best_rows
from emnist_bench.rundir import PLOTS, write_text


def best_table(effects: pd.DataFrame, models: Sequence[str], title: str) -> Table:
    """A rich table: the best option of each technique per model, with Δ vs the base run."""
    table = Table(title=title)
    table.add_column("technique", style="bold")
    for model in models:
        table.add_column(f"best for {model}")
    for row in best_rows(best_options(effects), models):
        table.add_row(*row)
    return table


def write_report(
    folders: Path | str | Sequence[Path | str],
    out: Path | str | None = None,
    console: Console | None = None,
) -> dict[str, Path]:
    """Writes summary.csv, effects.csv, summary.md, plots/ and report.html into ``out`` (the
    first folder unless given).

    Returns:
        The written files by name (``summary_csv``, ``effects_csv``, ``summary_md``,
        ``report_html``, plots).

    Raises:
        UserError: when a folder is missing or none holds a run.
    """
    folders = [Path(folders)] if isinstance(folders, str | Path) else [Path(f) for f in folders]
    for folder in folders:
        if not folder.is_dir():
            raise UserError(f"{folder}: not a folder; pass folders holding runs (a sweep's)")
    out = Path(out) if out is not None else folders[0]
    summary, bases = load_summary(folders)
    effects = technique_effects(summary, bases)
    factorials = fit_all(summary, bases)
    about = data_description(summary)
    short = data_description(summary, short=True)
    title = f"Technique comparison: {', '.join(f.resolve().name for f in folders)}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = {"summary_csv": out / "summary.csv", "effects_csv": out / "effects.csv"}
        runs = summary.drop(columns=["path", "settings"])
        write_text(written["summary_csv"], runs.to_csv(index=False))
        write_text(written["effects_csv"], effects_csv(effects).to_csv(index=False))
        written["summary_md"] = write_markdown(
            out / "summary.md", title, summary, effects, about, factorials
        )
        plots = write_plots(out / PLOTS, summary, effects, short, factorials)
        written.update({p.stem: p for p in plots})
        written["report_html"] = write_html(
            out / "report.html", title, summary, effects, plots, about, factorials
        )
    except OSError as error:
        raise UserError(f"{out}: cannot write the report ({error.strerror or error})") from None
    from emnist_bench.tracking.live import attach_report

    attach_report(out, end=True)  # a sweep logged to MLflow (logger=mlflow): its parent run
    console = console or Console()
    if not effects.empty:
        models = models_of(effects, summary)
        made = comparisons(effects)
        counts = f"{status_counts(summary)}; {made} comparison{'s' * (made != 1)} under Holm"
        console.print(best_table(effects, models, f"{title} ({counts})"))
    console.print(
        f"Report: {written['report_html']} (summary.csv, effects.csv, summary.md, plots/)"
    )
    return written


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m emnist_bench.report",
        description="Compare the runs in one or more folders (merged into one comparison): "
        "summary.csv, effects.csv, summary.md, plots/ and report.html.",
    )
    parser.add_argument(
        "folders", type=Path, nargs="+", metavar="DIR",
        help="a folder of runs, e.g. a sweep's output folder (hydra.sweep.dir)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, help="where to write the report (default: first DIR)")
    arguments = parser.parse_args(argv)
    with exit_on_user_error():
        write_report(arguments.folders, arguments.out)
