"""One run's files after training: metrics.json, model, classification report, plots, TensorBoard
hparams, and the summary table printed at the end."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from emnist_bench import config as config_lib
from emnist_bench.evaluate import plots, samples
from emnist_bench.evaluate.metrics import pairs_text, predict, test_metrics
from emnist_bench.evaluate.saved import check_saved_model
from emnist_bench.provenance import describe_run
from emnist_bench.rundir import (
    CLASSES,
    CLASSIFICATION_REPORT,
    COMPLETED,
    METRICS,
    MODEL,
    PLOTS,
    PREDICTIONS,
    TENSORBOARD,
    atomic_path,
    write_json,
    write_predictions,
    write_text,
)

log = logging.getLogger(__name__)


def write_run_files(
    model,
    cfg: DictConfig,
    data,
    out: Path,
    fit: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluates on the test split and writes every per-run file, ``metrics.json`` last;
    returns the metrics. ``extra`` keys go into metrics.json too (the experiment tracker's
    record, a debug preset's verdict)."""
    history = pd.DataFrame(fit["history"])
    probabilities = predict(model, data.x_test, int(cfg.trainer.batch_size))
    predictions = probabilities.argmax(axis=1)
    scores = test_metrics(probabilities, data.y_test, data.classes)
    metrics = {**run_metrics(model, cfg, data, fit, history, scores), **(extra or {})}
    write_predictions(out / PREDICTIONS, data.y_test, predictions)
    # Every file goes to a temporary name first: a kill or a full disk leaves no half file, and
    # a file that would not serve its user is not put in place.
    checked = min(int(cfg.trainer.batch_size), len(data.y_test))  # one batch, batched alike
    with atomic_path(out / MODEL) as temporary:
        model.save(temporary)
        check_saved_model(temporary, data.x_test[:checked], probabilities[:checked])
    write_text(
        out / CLASSIFICATION_REPORT,
        classification_text(data, predictions, scores["confused_pairs"]),
    )
    write_run_plots(cfg, data, history, predictions, out / PLOTS)
    write_hparams(out / TENSORBOARD, hparams_of(cfg, out), metrics)
    write_classes(out, cfg.data.split, data.mapping)
    write_json(out / METRICS, metrics)  # last: its status says every file is whole
    log.info(
        "Result: %s, test accuracy %.4f, macro F1 %.4f, %d epochs in %.1f s; written to %s",
        metrics["status"],
        metrics["test_accuracy"],
        metrics["macro_f1"],
        metrics["epochs_run"],
        metrics["train_seconds"],
        out,
    )
    print_summary(metrics, out)
    return metrics


def run_metrics(
    model, cfg: DictConfig, data, fit: dict[str, Any], history: pd.DataFrame, scores: dict
) -> dict[str, Any]:
    """What ``metrics.json`` holds: the status, the test scores, the best validation accuracy,
    sizes and speed, the technique choices, per-class scores and the run's provenance."""
    epochs_run = len(history)
    seconds = fit["train_seconds"]
    best_val = (
        float(history["val_accuracy"].max())
        if "val_accuracy" in history and history["val_accuracy"].notna().any()
        else None
    )
    return {
        "status": "diverged" if fit["diverged"] else COMPLETED,
        **({"reason": fit["diverged"]} if fit["diverged"] else {}),
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
        "confused_pairs": scores["confused_pairs"],
        "provenance": describe_run(data),
    }


def classification_text(data, predictions, pairs: list[dict[str, Any]]) -> str:
    """scikit-learn's classification report of the test split, one row per character, then
    the pairs of characters mistaken for each other most."""
    from sklearn.metrics import classification_report

    report = classification_report(
        data.y_test,
        predictions,
        labels=list(range(data.num_classes)),
        target_names=list(data.classes),
        digits=4,
        zero_division=0,
    )
    lines = [f"{'/'.join(p['pair'])}  {p['errors']:6d}  {p['share_of_errors']:7.1%}" for p in pairs]
    return "\n".join([report, "Most confused pairs, either way round: errors, share of errors",
                      *lines, ""])  # fmt: skip


def write_run_plots(cfg: DictConfig, data, history: pd.DataFrame, predictions, figures: Path):
    """The run's plots: learning curves (when an epoch ran), confusion matrix, sample
    predictions and the class distribution."""
    if len(history):
        plots.plot_curves(history, figures / "curves.png")
    plots.plot_confusion_matrix(
        data.y_test, predictions, data.classes, figures / "confusion_matrix.png"
    )
    samples.plot_samples(
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


def write_classes(out: Path, split: str, mapping) -> None:
    """Writes ``classes.json``: the character of each output, in label order, so that a saved
    model is used without guessing its labels (``python -m emnist_bench.predict``)."""
    payload = {
        "split": split,
        "labels": list(mapping.labels),
        "characters": list(mapping.characters),
    }
    write_json(out / CLASSES, payload)


def hparams_of(cfg: DictConfig, out: Path) -> dict[str, Any]:
    """Every value that tells runs apart, for TensorBoard's HParams dashboard: the techniques,
    and the seed, length, data and model sizes, so that no two different runs merge there."""
    model = cfg.model
    sizes = [*(model.get("hidden_units") or []), *(model.get("conv_filters") or []),
             *(model.get("dense_units") or [])]  # fmt: skip
    return {
        **config_lib.technique_choices(cfg),
        "run": out.resolve().name,
        "seed": int(cfg.trainer.seed),
        "epochs": int(cfg.trainer.epochs),
        "label_smoothing": float(cfg.trainer.label_smoothing),
        "data_folder": Path(str(cfg.data.root)).name,
        "data_split": cfg.data.split,
        "data_subset": -1 if cfg.data.subset is None else int(cfg.data.subset),
        "val_size": str(cfg.data.val_size),
        "class_weight": str(cfg.data.class_weight),
        "layer_sizes": "-".join(map(str, sizes)),
    }


def write_hparams(logdir: Path, hparams: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Records ``hparams`` as TensorBoard HParams with test and best-val accuracy."""
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
    if metrics.get("confused_pairs"):
        table.add_row("most confused", pairs_text(metrics["confused_pairs"][:3]))
    table.add_row("output", str(out))
    Console().print(table)
