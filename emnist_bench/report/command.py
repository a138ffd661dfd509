"""``python -m emnist_bench.report DIR``: compares the runs in a folder (a sweep, or any).

Writes into DIR:

* ``summary.csv``: one row per run (its technique choices, status and scores);
* ``summary.md``: per model and technique group, the options ranked by test accuracy with the
  difference from the base run, and MLP vs CNN side by side;
* ``plots/``: the effect of each technique, validation-accuracy curves per group, the best
  MLP against the best CNN;
* ``report.html``: one self-contained page (plots embedded) that links to each run's plots;

and prints the best option of each technique per model. Runs that failed or diverged keep
their status and have no scores. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from emnist_bench.errors import UserError, exit_on_user_error
from emnist_bench.report.effects import best_options, technique_effects
from emnist_bench.report.html import write_html
from emnist_bench.report.markdown import write_markdown
from emnist_bench.report.plots import write_plots
from emnist_bench.report.runs import data_description, load_summary, models_in, status_counts
from emnist_bench.report.tables import best_rows


def best_table(effects: pd.DataFrame, models: Sequence[str], title: str) -> Table:
    """A rich table: the best option of each technique per model, with Δ vs the base run."""
    table = Table(title=title)
    table.add_column("technique", style="bold")
    for model in models:
        table.add_column(f"best for {model}")
    for row in best_rows(best_options(effects), models):
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
        console.print(
            best_table(effects, models_in(summary), f"{title} ({status_counts(summary)})")
        )
    console.print(f"Report: {written['report_html']} (summary.csv, summary.md, plots/)")
    return written


def main(argv: Sequence[str] | None = None) -> None:
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
    with exit_on_user_error():
        write_report(arguments.sweep_dir)
