"""The one writer of fabricated run folders, as ``emnist_bench.run.run`` leaves them.

The report tests (sweep report, seed report) read folders written here instead of training:
known accuracies in, known rows, ranks and deltas out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from emnist_bench.rundir import write_predictions

# The base configuration's technique choices (config.yaml's defaults).
BASE = {
    "optimizer": "adam",
    "activation": "relu",
    "batch_norm": "off",
    "regularization": "none",
    "dropout": "on",
    "lr_schedule": "constant",
}


TEST_IMAGES = 470  # 10 per class, as the CSV proxy's test split
CLASSES = 47


def fake_predictions(accuracy: float, independent: int | None = None):
    """True and predicted labels of ``TEST_IMAGES`` images, right on ``accuracy`` of them."""
    true = np.repeat(np.arange(CLASSES), TEST_IMAGES // CLASSES)
    order = np.random.default_rng(0 if independent is None else 1000 + independent).permutation(
        TEST_IMAGES
    )
    right = np.zeros(TEST_IMAGES, dtype=bool)
    right[order[: round(accuracy * TEST_IMAGES)]] = True
    return true, np.where(right, true, (true + 1) % CLASSES)


def tiny_png(path: Path) -> None:
    """A 2x2 PNG, standing in for one of a run's own plots."""
    from matplotlib.image import imsave

    imsave(path, np.zeros((2, 2, 3)))


def write_run(
    sweep: Path,
    run_dir: str,
    accuracy: float | None,
    *,
    model: str = "mlp",
    status: str = "completed",
    epochs: int = 3,
    error: str | None = None,
    data_root: str = "/data/emnist-proxy-csv",
    seed: int = 42,
    independent: int | None = None,
    learning_rates: list[float] | None = None,
    settings: dict[str, object] | None = None,
    confused: dict[str, int] | None = None,
    **techniques: str,
) -> Path:
    """Writes ``sweep/run_dir`` as a run leaves it: metrics, history, config, plots.

    Args:
        accuracy: the test accuracy; validation accuracy is ``accuracy - 0.01`` and macro F1
            ``accuracy - 0.05``. A failed run (``status="failed"``) records ``error`` instead.
        model: the model (or preset) name; its family is the part before the first ``_``.
        status: ``completed``, ``diverged`` or ``failed`` (which records ``error``).
        seed: the run's ``trainer.seed``.
        independent: by default the test images a run gets right are the first ``accuracy``
            share of one fixed order, so a better run is right wherever a worse one is (every
            difference shows in the paired test); with a number, they are a random draw of
            that seed instead (differences drown in the discordant images).
        learning_rates: the ``learning_rate`` column of history.csv, one per epoch.
        settings: other resolved config values, by dotted key (``{"augment.name": "light"}``).
        confused: the run's confused pairs, errors by pair (``{"0/O": 12}``), as metrics.json
            records them; none by default, as runs made before they were recorded.
        techniques: technique choices that differ from :data:`BASE`.

    Returns:
        The run folder.
    """
    from emnist_bench.report.html import RUN_PLOTS

    out = sweep / run_dir
    (out / "plots").mkdir(parents=True)
    (out / ".hydra").mkdir()
    choices = {**BASE, **techniques}
    metrics = {"status": status, "model": model, "family": model.split("_")[0], **choices}
    if status == "failed":
        metrics["error"] = error or "ConfigError: broken"
    elif accuracy is not None:
        metrics |= {
            "test_accuracy": accuracy,
            "test_loss": 1.5,
            "macro_f1": accuracy - 0.05,
            "val_accuracy": accuracy - 0.01,
            "test_samples": TEST_IMAGES,
            "train_samples": 2115,
            "val_samples": 235,
            "epochs_run": epochs,
            "train_seconds": 4.0,
            "params": 1234,
            "per_class": {str(c): {} for c in range(CLASSES)},
        }
        if confused:
            errors = round((1 - accuracy) * TEST_IMAGES)
            metrics["confused_pairs"] = [
                {"pair": pair.split("/"), "errors": count, "share_of_errors": count / errors}
                for pair, count in confused.items()
            ]
        curve = np.linspace(0.05, accuracy, epochs)
        pd.DataFrame(
            {
                "epoch": range(epochs),
                "loss": 2.0,
                "accuracy": curve,
                "val_loss": 2.1,
                "val_accuracy": curve - 0.01,
                "learning_rate": learning_rates or 1e-3,
                "seconds": 1.0,
            }
        ).to_csv(out / "history.csv", index=False)
        write_predictions(out / "predictions.npz", *fake_predictions(accuracy, independent))
        for name in RUN_PLOTS:
            tiny_png(out / "plots" / f"{name}.png")
    (out / "metrics.json").write_text(json.dumps(metrics))
    config = {
        "data": {"root": data_root, "split": "balanced", "subset": None},
        "trainer": {"epochs": epochs, "seed": seed},
    }
    saved = OmegaConf.create(config)
    for key, value in (settings or {}).items():
        OmegaConf.update(saved, key, value, force_add=True)
    OmegaConf.save(saved, out / "config.yaml")
    return out
