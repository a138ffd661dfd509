"""The check a run's ``model.keras`` passes before the run is marked completed: the file names
only Keras's own classes, Keras loads it, and the loaded model predicts what the trained one
did. A file that fails would be found only later, by ``evaluate``, ``predict`` or a user's
``keras.saving.load_model``, in a run already marked done; the check costs about a second."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from emnist_bench.errors import reason

# How far a loaded model's probabilities may stray from the trained model's on the same
# batch: the same kernels on the same inputs agree to rounding (bfloat16's ~1e-2 at most); a
# lost or mixed-up weight moves them far more.
TOLERANCE = 0.02


class SavedModelError(RuntimeError):
    """A run's saved model would not serve its user: a bug, not the user's input."""


def foreign_classes(path: Path) -> list[str]:
    """The classes in a ``.keras`` file's config that plain Keras cannot find without the code
    that registered them: every object whose module is outside the ``keras`` package."""
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    found: set[str] = set()
    pending: list[Any] = [config]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            module = item.get("module")
            if isinstance(module, str) and module.split(".")[0] != "keras":
                found.add(item.get("registered_name") or f"{module}.{item.get('class_name')}")
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return sorted(found)


def check_saved_model(path: Path, images: np.ndarray, expected: np.ndarray) -> None:
    """Raises unless ``path`` names Keras's classes only, loads, and predicts ``expected`` (the
    trained model's probabilities for ``images``, one batch) within :data:`TOLERANCE`.

    Raises:
        SavedModelError: saying which of the three failed.
    """
    if problem := _problem(path, images, expected):
        raise SavedModelError(
            f"model.keras as saved {problem}; the run is not marked completed and keeps its "
            "last epoch's backup. This is a bug in emnist_bench: please report it with the "
            "run's config.yaml"
        )


def _problem(path: Path, images: np.ndarray, expected: np.ndarray) -> str | None:
    import keras

    if foreign := foreign_classes(path):
        return f"names classes plain Keras does not know ({', '.join(foreign)})"
    try:
        loaded = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many kinds; each means the same here
        return f"does not load in Keras ({reason(error)[:300]})"
    if not len(images):
        return None
    found = loaded.predict(images, batch_size=len(images), verbose=0).astype(np.float64)
    # A diverged run's NaNs are its own: the loaded model must give them in the same places.
    if not np.array_equal(np.isnan(found), np.isnan(expected)):
        return "predicts NaN where the trained model did not, or the other way round"
    gap = float(np.nanmax(np.abs(found - expected), initial=0.0))
    if gap > TOLERANCE:
        return f"predicts other probabilities than the trained model (by up to {gap:.3g})"
    return None
