"""Reading a run's ``history.csv`` (one row per finished epoch), without TensorFlow: the trainer
keeps a resumed run's earlier rows, the experiment tracker logs them."""

from __future__ import annotations

import csv
from pathlib import Path


def read_history(path: Path, before: int | None = None) -> list[dict[str, float]]:
    """The rows of ``history.csv`` as numbers (``epoch`` an int), those for the epochs before
    ``before`` if given; a blank cell (a metric the run did not have) is left out of its row.
    Empty when the file is missing or unreadable."""
    try:
        with path.open(newline="") as handle:
            rows = [
                {
                    key: int(value) if key == "epoch" else float(value)
                    for key, value in row.items()
                    if value not in ("", None)
                }
                for row in csv.DictReader(handle)
            ]
    except (OSError, ValueError, TypeError):
        return []
    return [row for row in rows if before is None or row["epoch"] < before]
