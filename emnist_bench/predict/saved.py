"""A finished run, opened for use: its model, the character of each output, its settings.

``predict``, ``export`` and ``serve`` all start here. The characters come from the run's
``classes.json``; a run made before that file existed falls back to the split's mapping file
in the run folder or in the run's ``data.root``, and without one it stops: labels are never
guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from emnist_bench.errors import UserError
from emnist_bench.rundir import CLASSES, MODEL, load_saved_model, read_json, read_saved_config

NEEDED = ("data.split", "data.root", "trainer.batch_size")
"""The settings of a run that predict, export and serve read."""


@dataclass(frozen=True)
class SavedRun:
    """A run folder's model (Keras, loaded without its loss) and what it needs to be used."""

    folder: Path
    model: Any
    classes: tuple[str, ...]
    config: DictConfig

    @property
    def batch_size(self) -> int:
        return int(self.config.trainer.batch_size)


def read_classes(run_dir: Path, cfg: DictConfig) -> tuple[str, ...]:
    """The character of each model output, in order.

    Raises:
        UserError: when neither ``classes.json`` nor the split's mapping file can be found.
    """
    payload = read_json(run_dir / CLASSES)
    if payload is not None and isinstance(payload.get("characters"), list):
        return tuple(str(character) for character in payload["characters"])
    from emnist_bench.data.files import mapping_path, read_mapping

    split = str(cfg.data.split)
    root = Path(str(cfg.data.root)).expanduser()
    for folder in (run_dir, root):
        if mapping_path(folder, split).is_file():
            return read_mapping(mapping_path(folder, split)).characters
    raise UserError(
        f"{run_dir}: no {CLASSES}, and the {split} mapping is not in {root}; copy "
        f"{mapping_path(root, split).name} from the EMNIST files it was trained on into {run_dir}"
    )


def open_run(run_dir: Path | str) -> SavedRun:
    """Loads a run's model and class characters.

    Raises:
        UserError: when the folder is not a run, or its mapping and model disagree.
    """
    run_dir = Path(run_dir)
    cfg = read_saved_config(run_dir, NEEDED)
    classes = read_classes(run_dir, cfg)
    model = load_saved_model(run_dir)
    outputs = model.output_shape[-1]
    if outputs != len(classes):
        raise UserError(
            f"{run_dir / MODEL}: the model has {outputs} outputs but the run's mapping has "
            f"{len(classes)} classes"
        )
    return SavedRun(run_dir, model, classes, cfg)


def classify(run: SavedRun, images: np.ndarray) -> np.ndarray:
    """Class probabilities (N, classes) of upright uint8 images (N, 28, 28)."""
    from emnist_bench.evaluate.metrics import predict

    return np.asarray(predict(run.model, np.asarray(images, dtype=np.uint8), run.batch_size))


def top_k(probabilities: np.ndarray, classes: tuple[str, ...], k: int = 3) -> list[list[dict]]:
    """The ``k`` likeliest characters of each row: ``[{"label": "A", "probability": 0.91}]``."""
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [
        [{"label": classes[i], "probability": round(float(row[i]), 6)} for i in best]
        for row, best in zip(probabilities, order, strict=True)
    ]
