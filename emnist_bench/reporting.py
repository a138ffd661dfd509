"""The per-run report: test metrics, metrics.json, history, model, plots, TensorBoard hparams."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from emnist_bench import config as config_lib

log = logging.getLogger(__name__)


def predict(model, images: np.ndarray, batch_size: int) -> np.ndarray:
    """Class probabilities for uint8 images, batched through tf.data."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(images).batch(batch_size)
    return model.predict(dataset, verbose=0)


def test_metrics(
    probabilities: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]
) -> dict[str, Any]:
    """Accuracy, loss, macro F1 and per-class precision/recall/F1 from predicted probabilities."""
    from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_recall_fscore_support

    predictions = probabilities.argmax(axis=1)
    everyone = list(range(len(classes)))
    finite = np.isfinite(probabilities).all()
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=everyone, zero_division=0
    )
    return {
        "test_accuracy": float(accuracy_score(labels, predictions)),
        "test_loss": float(log_loss(labels, probabilities, labels=everyone))
        if finite
        else math.nan,
        "macro_f1": float(
            f1_score(labels, predictions, labels=everyone, average="macro", zero_division=0)
        ),
        "test_samples": int(labels.size),
        "per_class": {
            char: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for char, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
        },
    }


def evaluate_and_report(
    model, cfg: DictConfig, data, out: Path, fit: dict[str, Any]
) -> dict[str, Any]:
    """Evaluates on the test split and writes every per-run artifact; returns the metrics."""
    from sklearn.metrics import classification_report

    from emnist_bench import plots
    from emnist_bench.train import write_json

    history = pd.DataFrame(fit["history"])
    probabilities = predict(model, data.x_test, int(cfg.trainer.batch_size))
    predictions = probabilities.argmax(axis=1)
    scores = test_metrics(probabilities, data.y_test, data.classes)
    epochs_run = len(history)
    seconds = fit["train_seconds"]
    best_val = (
        float(history["val_accuracy"].max())
        if "val_accuracy" in history and history["val_accuracy"].notna().any()
        else None
    )
    metrics = {
        "status": "diverged" if fit["diverged"] else "completed",
        **{key: scores[key] for key in ("test_accuracy", "test_loss", "macro_f1")},
        "val_accuracy": best_val,
        "test_samples": scores["test_samples"],
        "train_samples": int(data.y_train.size),
        "val_samples": int(data.y_val.size),
        "epochs_run": epochs_run,
        "train_seconds": seconds,
        "train_images_per_second": data.y_train.size * epochs_run / seconds if seconds else None,
        "params": int(model.count_params()),
        "data_layout": data.layout,
        **config_lib.technique_choices(cfg),
        "per_class": scores["per_class"],
    }
    if fit["diverged"]:
        log.warning("Training diverged (loss became NaN or infinite); status: diverged")
    write_json(out / "metrics.json", metrics)
    model.save(out / "model.keras")
    (out / "classification_report.txt").write_text(
        classification_report(
            data.y_test,
            predictions,
            labels=list(range(data.num_classes)),
            target_names=list(data.classes),
            digits=4,
            zero_division=0,
        )
    )
    figures = out / "plots"
    if epochs_run:
        plots.plot_curves(history, figures / "curves.png")
    plots.plot_confusion_matrix(
        data.y_test, predictions, data.classes, figures / "confusion_matrix.png"
    )
    plots.plot_samples(
        data.x_test,
        data.y_test,
        predictions,
        data.classes,
        figures / "samples.png",
        count=int(cfg.trainer.get("sample_grid", 36)),
        seed=int(cfg.trainer.seed),
    )
    plots.plot_class_distribution(
        data.y_train, data.y_test, data.classes, figures / "class_distribution.png"
    )
    write_hparams(out / "tensorboard", config_lib.technique_choices(cfg), metrics)
    print_summary(metrics, out)
    return metrics


def write_hparams(logdir: Path, hparams: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Records the technique choices as TensorBoard HParams with test and best-val accuracy."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    values = {key: value for key, value in hparams.items() if value is not None}
    with tf.summary.create_file_writer(str(logdir)).as_default():
        hp.hparams(values)
        for key in ("test_accuracy", "val_accuracy", "macro_f1"):
            if metrics.get(key) is not None and math.isfinite(metrics[key]):
                tf.summary.scalar(key, metrics[key], step=0)


def print_summary(metrics: dict[str, Any], out: Path) -> None:
    table = Table(title=f"{metrics['model']} ({metrics['status']})", show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    for key in ("test_accuracy", "macro_f1", "test_loss", "val_accuracy"):
        value = metrics.get(key)
        table.add_row(key, "-" if value is None else f"{value:.4f}")
    for key in ("epochs_run", "params", "train_samples", "test_samples"):
        table.add_row(key, f"{metrics[key]:,}")
    table.add_row("train_seconds", f"{metrics['train_seconds']:.1f}")
    table.add_row("images / s", f"{metrics['train_images_per_second'] or 0:,.0f}")
    table.add_row("output", str(out))
    Console().print(table)
