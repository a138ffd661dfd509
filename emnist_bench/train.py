"""One run: seed, data, model, optional search, fit, evaluate, report. Tests call :func:`run`."""

from __future__ import annotations

import json
import logging
import time
import traceback
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from emnist_bench import config as config_lib
from emnist_bench.data import load_dataset
from emnist_bench.errors import UserError

log = logging.getLogger(__name__)


def output_dir(cfg: DictConfig) -> Path:
    path = Path(str(cfg.output_dir))
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, default=float) + "\n")


def run(cfg: DictConfig) -> dict[str, Any]:
    """Trains and evaluates the configured model; writes every artifact under ``output_dir``.

    Returns:
        The metrics written to ``metrics.json``.

    Raises:
        UserError: for bad config values or data files (unless ``continue_on_error`` is set,
            in which case the failure is recorded in ``metrics.json`` and returned).
    """
    out = output_dir(cfg)
    try:
        config_lib.validate(cfg)
        return _run(cfg, out)
    except Exception as error:
        if not cfg.get("continue_on_error"):
            raise
        message = str(error) if isinstance(error, UserError) else traceback.format_exc()
        log.error("Run failed: %s", message)
        metrics = {"status": "failed", "error": message, **config_lib.technique_choices(cfg)}
        write_json(out / "metrics.json", metrics)
        return metrics


def _run(cfg: DictConfig, out: Path) -> dict[str, Any]:
    from emnist_bench import reporting, training

    OmegaConf.save(cfg, out / "config.yaml", resolve=True)
    training.configure_runtime(cfg.trainer)
    data = load_dataset(cfg.data, seed=int(cfg.trainer.seed))
    if cfg.tuner.name != "none":
        from emnist_bench.search import search

        cfg = search(cfg, data, out)
    model = training.build_model(cfg, data.num_classes)
    training.compile_model(model, cfg)
    fit = fit_model(model, cfg, data, out)
    metrics = reporting.evaluate_and_report(model, cfg, data, out, fit)
    return metrics


def fit_model(model, cfg: DictConfig, data, out: Path) -> dict[str, Any]:
    """Fits ``model`` with the configured callbacks; returns what the report needs."""
    import keras

    from emnist_bench import training

    trainer = cfg.trainer
    seed, batch_size = int(trainer.seed), int(trainer.batch_size)
    one_hot = data.num_classes if trainer.get("label_smoothing") else None
    train = training.make_dataset(
        data.x_train, data.y_train, batch_size=batch_size, shuffle=True, seed=seed,
        num_classes=one_hot,
    )
    val = None
    if len(data.y_val):
        val = training.make_dataset(
            data.x_val, data.y_val, batch_size=batch_size, shuffle=False, seed=seed,
            num_classes=one_hot,
        )
    recorder = training.EpochRecorder(out / "history.csv")
    callbacks = [
        recorder,
        keras.callbacks.TensorBoard(log_dir=str(out / "tensorboard"), write_graph=False,
                                    profile_batch=0),
    ]
    schedule = training.learning_rate_callback(cfg)
    if schedule is not None:
        callbacks.append(schedule)
    stopping = trainer.early_stopping
    if stopping.enabled and val is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=stopping.monitor,
                patience=int(stopping.patience),
                restore_best_weights=bool(stopping.restore_best_weights),
            )
        )
    steps = -(-len(data.y_train) // batch_size)
    callbacks.append(training.RichProgress(int(trainer.epochs), steps))
    weights = (
        training.class_weights(data.y_train, data.num_classes)
        if cfg.data.get("class_weight") == "balanced"
        else None
    )
    started = time.perf_counter()
    model.fit(
        train,
        validation_data=val,
        epochs=int(trainer.epochs),
        callbacks=callbacks,
        class_weight=weights,
        shuffle=False,  # the tf.data pipeline reshuffles every epoch
        verbose=0,
    )
    seconds = time.perf_counter() - started
    return {
        "history": recorder.rows,
        "diverged": recorder.diverged,
        "train_seconds": seconds,
    }
