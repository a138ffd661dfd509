"""A killed run, resumed, stops early and lowers its rate on the plateau where the same run
uninterrupted does: early stopping's and the plateau schedule's counters, early stopping's best
weights and the lowered learning rate are backed up with each epoch (``CallbackState``)."""

from __future__ import annotations

import json
import logging

import keras
import numpy as np
import pytest

from emnist_bench.training.backup import CallbackState, EpochBackup

# The value both callbacks watch, one per epoch: best after epoch 2, worse ever after. Early
# stopping (patience 3) stops after epoch 5; the plateau schedule (patience 1) halves the rate
# after epochs 3, 4 and 5. Counters that started afresh on a resume after epoch 3 would take
# epoch 4's 0.7 for the best and stop after epoch 7.
SCRIPT = [1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]


class Scripted(keras.callbacks.Callback):
    """Puts this epoch's scripted value in the logs, ahead of the callbacks that watch it."""

    def on_epoch_end(self, epoch, logs=None):
        logs["scripted"] = SCRIPT[epoch]


class KillAfter(keras.callbacks.Callback):
    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise KeyboardInterrupt


def train(folder, kill_after: int | None = None):
    """The run's callbacks in the run's order (``fit.fit_model``), on a tiny dense model."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = rng.integers(0, 3, 64)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    backup = EpochBackup(folder)
    stopping = keras.callbacks.EarlyStopping(
        "scripted", patience=3, mode="min", restore_best_weights=True
    )
    plateau = keras.callbacks.ReduceLROnPlateau(
        "scripted", factor=0.5, patience=1, mode="min", min_lr=0
    )
    callbacks = [Scripted(), backup, plateau, stopping]
    callbacks.append(CallbackState(backup, callbacks))
    if kill_after:
        callbacks.append(KillAfter(kill_after))
    history = model.fit(x, y, batch_size=16, epochs=len(SCRIPT), callbacks=callbacks, verbose=0)
    return model, history


def test_a_resumed_run_stops_and_lowers_its_rate_as_the_uninterrupted_one(tmp_path):
    whole, whole_history = train(tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "resumed", kill_after=3)

    resumed, history = train(tmp_path / "resumed")

    assert whole_history.epoch == [0, 1, 2, 3, 4]  # early stopping after epoch 5
    assert history.epoch == [3, 4]  # epochs 4 and 5, then the same stop
    rate = float(resumed.optimizer.learning_rate)
    assert rate == pytest.approx(float(whole.optimizer.learning_rate)) == pytest.approx(0.0125)
    # Both end on epoch 2's weights (restore_best_weights), the resumed one from the backup.
    for mine, theirs in zip(resumed.get_weights(), whole.get_weights(), strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-6)


def test_counters_of_another_epoch_than_the_weights_start_afresh_with_a_warning(tmp_path, caplog):
    """A kill between the weights' backup and the counters' leaves them an epoch apart."""
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path, kill_after=3)
    state = json.loads((tmp_path / CallbackState.FILE).read_text())
    (tmp_path / CallbackState.FILE).write_text(json.dumps({**state, "epoch": 2}))

    with caplog.at_level(logging.WARNING):
        _, history = train(tmp_path)

    assert "counters start afresh" in caplog.text and "it is of epoch 2" in caplog.text
    assert history.epoch == [3, 4, 5, 6]  # counted from epoch 4 on: the stop comes later
