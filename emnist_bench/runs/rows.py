"""Run folders as rows, for ``runs ls`` and ``runs diff``: what the report reads of each run
(``emnist_bench.report.runs.run_row``), its config as dotted keys, filters and sort orders."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emnist_bench.errors import UserError
from emnist_bench.report.runs import flat_config, load_run_config, run_row
from emnist_bench.rundir import METRICS, read_annotations, read_json, run_folders
from emnist_bench.techniques import TECHNIQUE_GROUPS

# The choices ``ls`` shows when they differ between the listed runs.
CHOICES = (*TECHNIQUE_GROUPS, "augment", "family")
SHOWN = ("run", "model", "seed", "status", "test_accuracy", "epochs_run", "train_seconds")
UNSET = "(unset)"


def load_rows(folders: Sequence[Path]) -> list[dict[str, Any]]:
    """One row per run under ``folders`` (a folder may be a run itself): the report's summary
    fields, ``tags`` (a dict), ``note``, ``config`` (dotted keys) and ``metrics.json``.

    Raises:
        UserError: when a folder is missing or no folder holds a run.
    """
    rows = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise UserError(f"{folder}: not a folder; pass run folders or a sweep's folder")
        for run_dir in run_folders(folder):
            label = run_dir.relative_to(folder).as_posix() if run_dir != folder else run_dir.name
            if len(folders) > 1 and run_dir != folder:
                label = f"{folder.name}/{label}"
            row = run_row(run_dir, label)
            metrics = read_json(run_dir / METRICS) or {}
            augment = metrics.get("augment")
            row |= {
                "run": label,
                "augment": augment,
                "tags": read_annotations(run_dir)["tags"],
                "config": flat_config(load_run_config(run_dir) or {}),
            }
            rows.append(row)
    if not rows:
        names = ", ".join(str(f) for f in folders)
        raise UserError(f"{names}: no runs found (no */metrics.json)")
    return rows


def value_of(row: dict[str, Any], key: str) -> Any:
    """A row's value for ``key``: a listed field, else a tag, else a config key (dotted);
    :data:`UNSET` when none has it."""
    if key in row and key not in ("tags", "config"):
        return row[key]
    if key in row["tags"]:
        return row["tags"][key]
    return row["config"].get(key, UNSET)


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    return value if isinstance(value, str) else json.dumps(value)


def parse_condition(condition: str) -> tuple[str, str]:
    key, equals, value = condition.partition("=")
    if not equals or not key:
        raise UserError(
            f"--where {condition!r}: write KEY=VALUE, e.g. --where optimizer=adam "
            "(KEY: a column, a tag or a config key such as trainer.epochs)"
        )
    return key.strip(), value.strip()


def where(rows: list[dict[str, Any]], conditions: Sequence[str]) -> list[dict[str, Any]]:
    """The rows matching every ``KEY=VALUE`` condition (values compared as text)."""
    parsed = [parse_condition(c) for c in conditions]
    return [row for row in rows if all(_text(value_of(row, k)) == v for k, v in parsed)]


def sort_rows(rows: list[dict[str, Any]], key: str | None) -> list[dict[str, Any]]:
    """Sorted by ``key`` (``-key``: descending); runs without it last either way."""
    if not key:
        return rows
    descending, key = key.startswith("-"), key.lstrip("-")
    present = [r for r in rows if value_of(r, key) not in (None, UNSET)]
    absent = [r for r in rows if value_of(r, key) in (None, UNSET)]
    if not present and rows:
        raise UserError(f"--sort {key}: no listed run has it; sort by a column, tag or config key")

    def order(row):
        value = value_of(row, key)
        return (0, value, "") if isinstance(value, int | float) else (1, 0, str(value))

    return sorted(present, key=order, reverse=descending) + absent


def varying(rows: list[dict[str, Any]]) -> list[str]:
    """The choices (technique groups, augment) with more than one value among ``rows``."""
    return [c for c in CHOICES if len({_text(r.get(c)) for r in rows}) > 1]


def listing(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What ``ls`` shows of each row: the run, model, the choices that vary, seed, status,
    scores, epochs, time, tags and note."""
    columns = ["run", "model", *varying(rows), *SHOWN[2:]]
    return [
        {**{c: row.get(c) for c in columns}, "tags": row["tags"], "note": row.get("note")}
        for row in rows
    ]


def _scalars(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            # One entry per class or pair: the classification report's job.
            if key not in ("per_class", "confused_pairs"):
                _scalars(item, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value


def differences(a: Path, b: Path) -> dict[str, dict[str, tuple[Any, Any]]]:
    """The config keys and the metrics (metrics.json, per-class scores left out) whose values
    differ between runs ``a`` and ``b``, and the tags and notes: ``{"config": {key: (a, b)},
    "metrics": {...}, "annotations": {...}}``.

    Raises:
        UserError: when ``a`` or ``b`` is not a run folder.
    """
    sides = []
    for run_dir in (a, b):
        metrics = read_json(Path(run_dir) / METRICS)
        cfg = load_run_config(Path(run_dir))
        if metrics is None and cfg is None:
            raise UserError(f"{run_dir}: not a run folder (no metrics.json or config.yaml)")
        flat: dict[str, Any] = {}
        _scalars(metrics or {}, "", flat)
        annotations = read_annotations(Path(run_dir))
        notes = {f"tag.{k}": v for k, v in annotations["tags"].items()}
        notes["note"] = annotations["note"]
        sides.append({"config": flat_config(cfg or {}), "metrics": flat, "annotations": notes})
    found: dict[str, dict[str, tuple[Any, Any]]] = {}
    for part in ("config", "metrics", "annotations"):
        left, right = sides[0][part], sides[1][part]
        keys = sorted(set(left) | set(right))
        found[part] = {
            k: (left.get(k, UNSET), right.get(k, UNSET))
            for k in keys
            if left.get(k, UNSET) != right.get(k, UNSET)
        }
    return found
