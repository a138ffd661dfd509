"""Building, compiling and fitting a run's model from its config."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig

from emnist_bench import config as config_lib
from emnist_bench import models
from emnist_bench.debug import profile_steps
from emnist_bench.errors import ConfigError, reason
from emnist_bench.history import read_history
from emnist_bench.rundir import BACKUP, HISTORY, TENSORBOARD
from emnist_bench.training.backup import CallbackState, EpochBackup
from emnist_bench.training.callbacks import (
    EpochListener,
    EpochRecorder,
    RichProgress,
    learning_rate_callback,
)
from emnist_bench.training.inputs import fit_inputs
from emnist_bench.training.losses import keras_loss, loss_for


def augmentation_layers(augment: DictConfig) -> list[keras.layers.Layer]:
    """Random shifts, rotations and zoom, active only while training."""
    if not augment.get("enabled"):
        return []
    layers = []
    if augment.get("rotation"):
        layers.append(keras.layers.RandomRotation(augment.rotation / 360, fill_mode="constant"))
    if augment.get("shift"):
        layers.append(
            keras.layers.RandomTranslation(augment.shift, augment.shift, fill_mode="constant")
        )
    if augment.get("zoom"):
        layers.append(keras.layers.RandomZoom(augment.zoom, fill_mode="constant"))
    return layers


def build_model(cfg: DictConfig, num_classes: int) -> keras.Model:
    arguments = config_lib.model_arguments(cfg, num_classes)
    builder = models.build_mlp if cfg.model.family == "mlp" else models.build_cnn
    members = int(cfg.model.get("members") or 1)
    if members == 1:
        return builder(**arguments, augmentation=augmentation_layers(cfg.augment))
    from emnist_bench.ensemble import Ensemble

    # Each member gets layers of its own: augmentation layers shared by three members or more
    # make a saved model that Keras cannot load ('The name "pixels" is used 2 times').
    name = arguments.pop("name")
    return Ensemble(
        [
            builder(**arguments, augmentation=augmentation_layers(cfg.augment), name=f"{name}_{k}")
            for k in range(1, members + 1)
        ],
        name=name,
    )


def build_optimizer(name: str, **options: Any) -> keras.optimizers.Optimizer:
    """An optimizer by its Keras name (``adam``, ``sgd``, ...) with constructor options."""
    return keras.optimizers.get({"class_name": name, "config": options})


def compile_model(model: keras.Model, cfg: DictConfig, prior: np.ndarray | None = None) -> None:
    """Compiles with the configured optimizer and loss; ``prior`` (training-class frequencies)
    is needed when ``data.class_weight=logit_adjusted``."""
    name, options = config_lib.optimizer_arguments(cfg)
    smoothing = float(cfg.trainer.get("label_smoothing") or 0.0)
    steps = int(cfg.trainer.get("steps_per_execution") or 1)
    if tf.distribute.has_strategy():  # Keras 3 fails there with several (keras#19246)
        steps = 1
    model.compile(
        optimizer=build_optimizer(name, **options),
        loss=loss_for(cfg.data.get("class_weight"), smoothing, prior),
        metrics=["accuracy"],
        steps_per_execution=steps,
        jit_compile=bool(cfg.trainer.get("jit_compile")),
    )


def savable_model(model: keras.Model) -> keras.Model:
    """The trained ``model`` as a run saves and scores it: the same network and weights in
    Keras's own classes (:func:`emnist_bench.models.standard_keras`), compiled with the same
    optimizer, its state included, and a Keras loss, so that a user's plain
    ``keras.saving.load_model`` reads the file, compiled, without this package.

    Built in the strategy ``model`` trained in (``trainer.strategy``): its optimizer's
    variables belong to that one, and TensorFlow refuses to mix two."""
    with model.distribute_strategy.scope():
        plain = models.standard_keras(model)
        plain.compile(
            optimizer=model.optimizer,
            loss=keras_loss(model.loss),
            metrics=["accuracy"],
            steps_per_execution=model.steps_per_execution,
            jit_compile=model.jit_compile,
        )
    return plain


def user_callbacks(specs) -> list[keras.callbacks.Callback]:
    """``trainer.callbacks``: Keras callbacks from Hydra ``_target_`` specs.

    Raises:
        ConfigError: naming the entry that cannot be made, or is not a Keras callback.
    """
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    made = []
    for index, spec in enumerate(specs):
        where = f"trainer.callbacks[{index}]"
        try:
            callback = instantiate(spec)
        except InstantiationException as error:
            raise ConfigError(f"{where}: {reason(error)}") from None
        if not isinstance(callback, keras.callbacks.Callback):
            raise ConfigError(
                f"{where} made a {type(callback).__name__}, not a keras.callbacks.Callback"
            )
        made.append(callback)
    return made


def training_callbacks(
    cfg: DictConfig,
    data,
    out: Path,
    has_validation: bool,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> tuple[EpochRecorder, EpochBackup, list[keras.callbacks.Callback]]:
    """The run's callbacks, in the order they must run: the history row, its backup, TensorBoard,
    the tracker, the schedule, early stopping, the progress bar, the user's, then the backup of
    the others' counters. Returns the recorder and the backup too (fit_model reads them)."""
    trainer = cfg.trainer
    divergence = trainer.get("divergence") or {}
    interactive = sys.stdout.isatty()
    recorder = EpochRecorder(
        out / HISTORY,
        epochs=int(trainer.epochs),
        num_classes=data.num_classes,
        loss_factor=divergence.get("loss_factor"),
        chance_epochs=divergence.get("chance_epochs"),
        console=not interactive,  # a terminal shows the progress bar instead
    )
    backup = EpochBackup(out / BACKUP)
    callbacks = [
        recorder,  # first: see EpochRecorder
        backup,  # right after the history row, so that a backed-up epoch has its row
        keras.callbacks.TensorBoard(
            log_dir=str(out / TENSORBOARD),
            write_graph=False,
            profile_batch=profile_steps(cfg.get("debug")),  # debug=profile traces a few steps
        ),
    ]
    if on_epoch is not None:
        callbacks.append(EpochListener(recorder, on_epoch))
    schedule = learning_rate_callback(cfg)
    if schedule is not None:
        callbacks.append(schedule)
    stopping = trainer.early_stopping
    if stopping.enabled and has_validation:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=stopping.monitor,
                patience=int(stopping.patience),
                restore_best_weights=bool(stopping.restore_best_weights),
            )
        )
    if interactive:
        steps = -(-len(data.y_train) // int(trainer.batch_size))
        callbacks.append(RichProgress(int(trainer.epochs), steps))
    callbacks.extend(user_callbacks(trainer.get("callbacks") or []))
    callbacks.append(CallbackState(backup, callbacks))  # last: the others' state after an epoch
    return recorder, backup, callbacks


def fit_model(
    model: keras.Model,
    cfg: DictConfig,
    data,
    out: Path,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Fits ``model`` with the configured callbacks; returns what the run's files need:
    the per-epoch ``history`` rows, why it ``diverged`` (None if it did not) and
    ``train_seconds`` (the epochs' seconds, those before a resume included). ``on_epoch``
    gets each finished epoch's history row (an experiment tracker), once it is backed up.

    Every finished epoch is backed up in ``out/backup``: a killed run given the same folder
    goes on from there (``rundir.start_run`` keeps it only for the same config).
    """
    trainer = cfg.trainer
    inputs = fit_inputs(cfg, data)
    recorder, backup, callbacks = training_callbacks(
        cfg, data, out, has_validation=inputs["validation_data"] is not None, on_epoch=on_epoch
    )
    started = time.perf_counter()
    model.fit(
        **inputs,
        epochs=int(trainer.epochs),
        callbacks=callbacks,
        shuffle=False,  # the tf.data pipeline reshuffles every epoch
        verbose=0,
    )
    rows = recorder.rows
    if backup.resumed_epochs and not rows:  # resumed after its last epoch: nothing to train
        rows = read_history(out / HISTORY, before=backup.resumed_epochs)
    earlier = sum(row["seconds"] for row in rows[: backup.resumed_epochs])
    return {
        "history": rows,
        "diverged": recorder.diverged,
        "train_seconds": earlier + time.perf_counter() - started,
    }
