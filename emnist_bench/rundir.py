"""A run folder on disk: its JSON files, whether it completed, and finding runs under a folder.

Every stage that reads or writes a run's files goes through here, so the layout is in one
place: ``config.yaml`` (the resolved config), ``metrics.json`` (status and scores, written
last), ``history.csv``, ``model.keras``, ``plots/``, ``tensorboard/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

METRICS = "metrics.json"
CONFIG = "config.yaml"
# The test split's true and predicted labels, so that runs on the same images pair up.
PREDICTIONS = "predictions.npz"
COMPLETED = "completed"


def output_dir(cfg: DictConfig) -> Path:
    """The run's folder (``output_dir``), created if missing."""
    path = Path(str(cfg.output_dir))
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Writes ``payload`` whole or not at all: a temporary file, then a rename into place."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    os.replace(partial, path)


def write_predictions(path: Path, true: np.ndarray, predicted: np.ndarray) -> None:
    """Writes the test labels and a run's predictions (uint8 when they fit), whole or not at all."""
    dtype = (
        np.uint8 if max(int(true.max(initial=0)), int(predicted.max(initial=0))) < 256 else np.int32
    )
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("wb") as handle:
        np.savez_compressed(handle, true=true.astype(dtype), predicted=predicted.astype(dtype))
    os.replace(partial, path)


def read_predictions(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """A run's (true, predicted) test labels, or None when missing or unreadable."""
    try:
        with np.load(path) as saved:
            return saved["true"], saved["predicted"]
    except (OSError, ValueError, KeyError):
        return None


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def completed_metrics(cfg: DictConfig, out: Path) -> dict[str, Any] | None:
    """The metrics of a completed earlier run in ``out`` with the same resolved config, if any.

    This is what makes re-running a sweep skip finished jobs and redo failed or unfinished ones.
    """
    metrics = read_json(out / METRICS)
    if metrics is None or metrics.get("status") != COMPLETED:
        return None
    try:
        previous = OmegaConf.to_container(OmegaConf.load(out / CONFIG), resolve=True)
    except (ValueError, OSError):
        return None
    return metrics if previous == OmegaConf.to_container(cfg, resolve=True) else None


def find_run_dirs(root: Path) -> list[Path]:
    """Folders under ``root`` holding a run: a metrics.json, or a started Hydra job."""
    found = {p.parent for p in root.rglob(METRICS)}
    found |= {p.parent for p in root.rglob(".hydra") if p.is_dir()}
    return sorted(d for d in found if d != root)
