"""``python -m emnist_bench.report.notebook DIR``: the original notebook's models, reproduced.

``python -m emnist_bench +sweep=notebook_report data.root=DIR`` trains ``mlp_baseline``,
``mlp_notebook_tuned``, ``cnn_baseline`` and ``cnn_notebook_tuned``
(conf/sweep/notebook_report.yaml) and, at the end, this module writes ``notebook_report.md``
and ``notebook_report.csv`` into the sweep folder: each model's validation and test accuracy
here, next to the figure the notebook published for it. The notebook's figures are EMNIST
Balanced validation accuracies; the runs' figures are on whatever data ``data.root`` holds,
and the table says which.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from emnist_bench import config_dir
from emnist_bench.aliases import RENAMED
from emnist_bench.errors import UserError, exit_on_user_error
from emnist_bench.report.runs import data_description, load_summary
from emnist_bench.report.tables import markdown_table
from emnist_bench.rundir import METRICS, find_run_dirs, read_json, write_text

NAME = "notebook_report"
"""The sweep (``conf/sweep/notebook_report.yaml``), its config key and its files' name."""
COLUMNS = (
    "model", "status", "epochs_run", "lr_schedule", "optimizer", "val_accuracy", "test_accuracy",
    "macro_f1", "train_seconds", "published_val_accuracy", "run_dir",
)  # fmt: skip


def _percent(value: Any) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:.2%}"


def collect(sweep_dir: Path, published: Mapping[str, float]) -> pd.DataFrame:
    """One row per run folder in ``sweep_dir``, with the notebook's figure for its model."""
    rows = []
    for run_dir in find_run_dirs(sweep_dir):
        metrics = read_json(run_dir / METRICS) or {"status": "unfinished"}
        row = {key: metrics.get(key) for key in COLUMNS}
        row["model"] = row["model"] or run_dir.name
        row["run_dir"] = run_dir.relative_to(sweep_dir).as_posix()
        model = RENAMED["experiment"].get(row["model"], row["model"])  # a run of its old name
        row["published_val_accuracy"] = published.get(model)
        rows.append(row)
    order = {name: i for i, name in enumerate(published)}
    rows.sort(key=lambda row: (order.get(row["model"], len(order)), row["model"]))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def write_notebook_report(
    sweep_dir: Path | str, published: Mapping[str, float], console: Console | None = None
) -> pd.DataFrame:
    """Writes ``notebook_report.csv`` and ``.md`` into ``sweep_dir``, prints the table."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir}: no such folder; pass the notebook_report sweep folder")
    table = collect(sweep_dir, published)
    if table.empty:
        raise UserError(f"{sweep_dir}: no runs found; run +sweep=notebook_report first")
    write_text(sweep_dir / f"{NAME}.csv", table.to_csv(index=False))
    summary, _ = load_summary([sweep_dir])
    about = data_description(summary)
    header = [
        "model", "status", "epochs", "schedule", "optimizer", "val accuracy (here)",
        "test accuracy (here)", "macro F1 (here)", "train time", "notebook val accuracy",
    ]  # fmt: skip
    rows = [
        [
            row.model, row.status, int(row.epochs_run) if pd.notna(row.epochs_run) else "-",
            row.lr_schedule or "-", row.optimizer or "-", _percent(row.val_accuracy),
            _percent(row.test_accuracy), _percent(row.macro_f1),
            f"{row.train_seconds:.0f} s" if pd.notna(row.train_seconds) else "-",
            _percent(row.published_val_accuracy),
        ]
        for row in table.itertuples()
    ]  # fmt: skip
    text = [
        "# The original notebook's models, reproduced",
        "",
        f"{about}. The notebook's figures are validation accuracies on EMNIST "
        "Balanced, as it published them; compare them with the validation column only where "
        "the data here is EMNIST Balanced.",
        "",
        markdown_table(header, rows),
        "",
    ]
    write_text(sweep_dir / f"{NAME}.md", "\n".join(text))
    terminal = Table(title=f"The notebook's models ({data_description(summary, short=True)})")
    for name in header:
        terminal.add_column(name, justify="left" if name in ("model", "status") else "right")
    for row in rows:
        terminal.add_row(*map(str, row))
    (console or Console()).print(terminal)
    return table


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m emnist_bench.report.notebook", description=__doc__.splitlines()[0]
    )
    parser.add_argument("sweep_dir", type=Path, help=f"the folder +sweep={NAME} wrote")
    args = parser.parse_args(argv)
    published = OmegaConf.load(config_dir() / "sweep" / f"{NAME}.yaml")[NAME].published
    with exit_on_user_error():
        write_notebook_report(args.sweep_dir, OmegaConf.to_container(published))


if __name__ == "__main__":
    main()
