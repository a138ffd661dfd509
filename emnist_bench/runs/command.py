"""``python -m emnist_bench.runs ls|diff|tag|note|sync``: browse run folders without TensorFlow.

* ``ls DIR ...``: a table of the runs (folder, model, the techniques that vary, seed, status,
  test accuracy, epochs, time, tags, note); ``--where KEY=VALUE``, ``--sort [-]KEY``,
  ``--json``, ``--csv``;
* ``diff A B``: the config keys, metrics, tags and notes that differ, side by side;
* ``tag RUN KEY=VALUE ...`` / ``note RUN TEXT``: kept in the run's ``annotations.json``,
  shown by ``ls``, the report (summary.csv) and MLflow;
* ``sync DIR``: logs (or completes) the runs to MLflow, idempotently.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from emnist_bench.errors import UserError, exit_on_user_error
from emnist_bench.rundir import read_annotations, write_annotations
from emnist_bench.runs.rows import differences, listing, load_rows, sort_rows, where

EXAMPLES = """examples:
  python -m emnist_bench.runs ls outputs/sweeps/technique_grid --where optimizer=adam \\
      --where status=completed --sort -test_accuracy
  python -m emnist_bench.runs diff SWEEP/cnn/base/seed=42 SWEEP/cnn/optimizer=sgd/seed=42
  python -m emnist_bench.runs tag OUT baseline=yes
  python -m emnist_bench.runs note OUT "learning rate too high?"
  python -m emnist_bench.runs sync outputs/sweeps/technique_grid [--tracking-uri URI]
"""


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key == "test_accuracy":
        return f"{value:.2%}"
    if key == "train_seconds":
        return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"
    if key == "tags":
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


HEADERS = {"test_accuracy": "test acc", "epochs_run": "epochs", "train_seconds": "time"}
PIPE_WIDTH = 240
"""Characters a table may take when the output is not a terminal."""


def _worth_a_column(shown: list[dict[str, Any]]) -> list[str]:
    """The table's columns: tags and note only where a run has them, family only where it says
    more than the model (``--json`` and ``--csv`` keep every column)."""
    columns = list(shown[0])
    left_out = {c for c in ("tags", "note") if not any(row[c] for row in shown)}
    if "family" in columns and all(row["family"] == row["model"] for row in shown):
        left_out.add("family")
    return [c for c in columns if c not in left_out]


def print_ls(shown: list[dict[str, Any]], console: Console) -> None:
    if not shown:
        console.print("no run matches")
        return
    table = Table(title=f"{len(shown)} run{'s' if len(shown) != 1 else ''}")
    columns = _worth_a_column(shown)
    for column in columns:
        numeric = column in ("test_accuracy", "epochs_run", "train_seconds", "seed")
        table.add_column(
            HEADERS.get(column, column),
            justify="right" if numeric else "left",
            overflow="fold",
        )
    for row in shown:
        table.add_row(*(_cell(c, row[c]) for c in columns))
    console.print(table)


def print_csv(shown: list[dict[str, Any]]) -> None:
    if not shown:
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=list(shown[0]), lineterminator="\n")
    writer.writeheader()
    for row in shown:
        writer.writerow({**row, "tags": _cell("tags", row["tags"]) if row["tags"] else ""})


def print_diff(found: dict[str, dict[str, tuple[Any, Any]]], a: Path, b: Path, console) -> None:
    if not any(found.values()):
        # One line whatever the paths' length: a wrapped line breaks scripts that grep it.
        console.print(f"{a} and {b}: same config, metrics, tags and note", soft_wrap=True)
        return
    table = Table(title="What differs", show_lines=False)
    table.add_column("key", style="bold", overflow="fold")
    table.add_column(str(a), overflow="fold")
    table.add_column(str(b), overflow="fold")
    for part, keys in found.items():
        if not keys:
            continue
        table.add_section()
        table.add_row(f"[italic]{part}[/]", "", "")
        for key, (left, right) in keys.items():
            table.add_row(key, str(left), str(right))
    console.print(table)


def single_run(path: Path) -> Path:
    if not (path / "metrics.json").is_file() and not (path / "config.yaml").is_file():
        raise UserError(f"{path}: not a run folder (no metrics.json or config.yaml)")
    return path


def tag(run_dir: Path, assignments: Sequence[str]) -> list[str]:
    """Sets (``KEY=VALUE``) or removes (``KEY=``) tags of a run; returns the removed keys."""
    annotations = read_annotations(single_run(run_dir))
    tags, removed = annotations["tags"], []
    for assignment in assignments:
        key, equals, value = assignment.partition("=")
        key = key.strip()
        if not equals or not key:
            raise UserError(f"tag {assignment!r}: write KEY=VALUE (KEY= removes the tag)")
        if value:
            tags[key] = value
        elif tags.pop(key, None) is not None:
            removed.append(key)
    write_annotations(run_dir, tags, annotations["note"])
    return removed


def note(run_dir: Path, text: str) -> None:
    """Sets a run's note (empty text removes it)."""
    annotations = read_annotations(single_run(run_dir))
    write_annotations(run_dir, annotations["tags"], text.strip() or None)


def _send(run_dir: Path, removed: Sequence[str] = ()) -> None:
    from emnist_bench.tracking.folder import log_annotations

    problem = log_annotations(run_dir, removed)
    if problem:
        print(f"warning: {run_dir}: {problem}", file=sys.stderr)


def sync(folder: Path, uri: str | None, experiment: str | None, console: Console) -> None:
    from emnist_bench.tracking.store import Unavailable, tracking_uri
    from emnist_bench.tracking.sync import sync_folder

    try:
        synced = sync_folder(folder, uri, experiment)
    except Unavailable as error:  # a wrong URI or a store that is down: nothing is lost
        raise UserError(
            f"{error}; check --tracking-uri (or $MLFLOW_TRACKING_URI) and run the same "
            "command again: runs already sent are not sent twice"
        ) from None
    for item in synced:
        console.print(f"{item.action:9} {item.name} {item.run_id or ''}".rstrip(), soft_wrap=True)
    counts: dict[str, int] = {}
    for item in synced:
        counts[item.action] = counts.get(item.action, 0) + 1
    tally = ", ".join(f"{n} {action}" for action, n in counts.items())
    console.print(f"{len(synced)} runs synced to {tracking_uri(uri)} ({tally})", soft_wrap=True)


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        prog="python -m emnist_bench.runs",
        description="List, compare, tag and note run folders; sync them to MLflow.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = main_parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ls = commands.add_parser("ls", help="a table of the runs in folders")
    ls.add_argument("folders", type=Path, nargs="+", metavar="DIR")
    ls.add_argument(
        "--where", action="append", default=[], metavar="KEY=VALUE",
        help="keep runs whose column, tag or config key (trainer.epochs) has VALUE; repeatable",
    )  # fmt: skip
    ls.add_argument("--sort", metavar="[-]KEY", help="sort by KEY (-KEY: descending)")
    output = ls.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="one JSON array of the rows")
    output.add_argument("--csv", action="store_true", help="the rows as CSV")
    diff = commands.add_parser("diff", help="what differs between two runs")
    diff.add_argument("a", type=Path, metavar="A")
    diff.add_argument("b", type=Path, metavar="B")
    diff.add_argument("--json", action="store_true", help="the differences as JSON")
    tags = commands.add_parser("tag", help="set (KEY=VALUE) or remove (KEY=) a run's tags")
    tags.add_argument("run", type=Path, metavar="RUN")
    tags.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    notes = commands.add_parser("note", help='set a run\'s note ("" removes it)')
    notes.add_argument("run", type=Path, metavar="RUN")
    notes.add_argument("text", metavar="TEXT")
    syncs = commands.add_parser("sync", help="log (or complete) runs in MLflow, idempotently")
    syncs.add_argument("folder", type=Path, metavar="DIR")
    syncs.add_argument(
        "--tracking-uri", metavar="URI",
        help="default: $MLFLOW_TRACKING_URI, else sqlite:///outputs/mlflow.db here",
    )  # fmt: skip
    syncs.add_argument(
        "--experiment", metavar="NAME",
        help="default: each run's logger.experiment, its sweep's name, or emnist_bench",
    )  # fmt: skip
    return main_parser


def _descending_sort(argv: Sequence[str]) -> list[str]:
    """``--sort -test_accuracy`` as ``--sort=-test_accuracy``: argparse would take the key for
    an option."""
    joined: list[str] = []
    for argument in argv:
        if joined and joined[-1] == "--sort" and argument.startswith("-"):
            joined[-1] = f"--sort={argument}"
        else:
            joined.append(argument)
    return joined


def main(argv: Sequence[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    arguments = parser().parse_args(_descending_sort(argv))
    # Plain lines print with soft_wrap=True (one line whatever the paths' length); the console
    # keeps False, which centres the tables' titles. Into a pipe or a file, where no screen
    # sets the width, the tables keep their natural width instead of folding each cell at 80.
    console = Console(
        highlight=False,
        soft_wrap=False,
        width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else PIPE_WIDTH,
    )
    with exit_on_user_error():
        if arguments.command == "ls":
            rows = sort_rows(where(load_rows(arguments.folders), arguments.where), arguments.sort)
            shown = listing(rows)
            if arguments.json:
                print(json.dumps(shown, indent=2, default=str))
            elif arguments.csv:
                print_csv(shown)
            else:
                print_ls(shown, console)
        elif arguments.command == "diff":
            found = differences(arguments.a, arguments.b)
            if arguments.json:
                print(json.dumps(found, indent=2, default=str))
            else:
                print_diff(found, arguments.a, arguments.b, console)
        elif arguments.command == "tag":
            removed = tag(arguments.run, arguments.assignments)
            _send(arguments.run, removed)
        elif arguments.command == "note":
            note(arguments.run, arguments.text)
            _send(arguments.run)
        else:
            sync(arguments.folder, arguments.tracking_uri, arguments.experiment, console)
