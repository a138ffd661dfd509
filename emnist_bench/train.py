"""One run: seed, data, model, optional search, fit, evaluate, report. Tests call :func:`run`."""

from __future__ import annotations

import json
import logging
import time
import traceback
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from emnist_bench import config as config_lib
from emnist_bench.data import load_dataset
from emnist_bench.errors import ConfigError, UserError

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
    cfg = with_hparams_file(cfg)
    out = output_dir(cfg)
    finished = completed_metrics(cfg, out)
    if finished is not None:
        log.info("%s already completed with this config; skipping (delete it to re-run)", out)
        return finished
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


def apply_hparams(cfg: DictConfig, fragment: DictConfig) -> DictConfig:
    """``cfg`` with each group in ``fragment`` (a search's ``best_hparams.yaml``) replacing its own.

    Groups are replaced whole, not merged: an sgd run given rmsprop keeps no sgd ``momentum``.
    """
    return OmegaConf.merge(cfg, dict.fromkeys(fragment), fragment)


def with_hparams_file(cfg: DictConfig) -> DictConfig:
    """``cfg`` with the groups of ``hparams_file`` applied, if it names one."""
    path = cfg.get("hparams_file")
    if not path:
        return cfg
    try:
        return apply_hparams(cfg, OmegaConf.load(path))
    except (OSError, yaml.YAMLError, OmegaConfBaseException) as error:
        problem = str(error).splitlines()[0]
        message = f"hparams_file={path}: {problem} (give a search's best_hparams.yaml)"
        raise ConfigError(message) from None


def completed_metrics(cfg: DictConfig, out: Path) -> dict[str, Any] | None:
    """The metrics of a completed earlier run in ``out`` with the same resolved config, if any.

    This is what makes re-running a sweep skip finished jobs and redo failed or unfinished ones.
    """
    metrics_file, config_file = out / "metrics.json", out / "config.yaml"
    if not (metrics_file.is_file() and config_file.is_file()):
        return None
    try:
        metrics = json.loads(metrics_file.read_text())
        previous = OmegaConf.to_container(OmegaConf.load(config_file), resolve=True)
    except (ValueError, OSError):
        return None
    same = previous == OmegaConf.to_container(cfg, resolve=True)
    return metrics if same and metrics.get("status") == "completed" else None


def _run(cfg: DictConfig, out: Path) -> dict[str, Any]:
    OmegaConf.save(cfg, out / "config.yaml", resolve=True)
    # Data first: a broken file is reported before TensorFlow is even imported.
    data = load_dataset(cfg.data, seed=int(cfg.trainer.seed))

    from emnist_bench import reporting, training

    training.configure_runtime(cfg.trainer)
    if cfg.tuner.name != "none":
        from emnist_bench.search import search

        cfg = search(cfg, data, out)
    model = training.build_model(cfg, data.num_classes)
    training.compile_model(model, cfg, training.class_prior(data.y_train, data.num_classes))
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
        data.x_train,
        data.y_train,
        batch_size=batch_size,
        shuffle=True,
        seed=seed,
        num_classes=one_hot,
    )
    val = None
    if len(data.y_val):
        val = training.make_dataset(
            data.x_val,
            data.y_val,
            batch_size=batch_size,
            shuffle=False,
            seed=seed,
            num_classes=one_hot,
        )
    recorder = training.EpochRecorder(out / "history.csv")
    callbacks = [
        recorder,
        keras.callbacks.TensorBoard(
            log_dir=str(out / "tensorboard"), write_graph=False, profile_batch=0
        ),
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
