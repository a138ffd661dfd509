"""Keras callbacks of a run: the history file, the progress display, the learning-rate schedule."""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import keras
from omegaconf import DictConfig

from emnist_bench import config as config_lib
from emnist_bench.training import schedules


class EpochRecorder(keras.callbacks.Callback):
    """Writes ``history.csv`` as epochs end (so an interrupted run keeps them) and notices
    divergence: a NaN or infinite loss stops training.

    It must come first among the callbacks: it reads the learning rate at the end of the epoch,
    before ReduceLROnPlateau changes it for the next one.
    """

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self.rows: list[dict[str, float]] = []
        self.diverged = False
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if logs and not math.isfinite(float(logs.get("loss", 0.0))):
            self.diverged = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        row = {"epoch": epoch}
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if key in logs:
                row[key] = float(logs[key])
        row["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row["seconds"] = time.perf_counter() - self._started
        self.rows.append(row)
        if not math.isfinite(row["loss"]):
            self.diverged = True
            self.model.stop_training = True
        with self.path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(self.rows[0]))
            writer.writeheader()
            writer.writerows(self.rows)


class RichProgress(keras.callbacks.Callback):
    """A rich progress bar over epochs and batches with the live loss and accuracy."""

    def __init__(self, epochs: int, steps: int):
        super().__init__()
        self.epochs, self.steps = epochs, steps

    def on_train_begin(self, logs=None):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self.progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            "{task.fields[metrics]}",
        )
        self.progress.start()
        self.epoch_task = self.progress.add_task("epochs", total=self.epochs, metrics="")
        self.batch_task = self.progress.add_task("batches", total=self.steps, metrics="")

    def on_epoch_begin(self, epoch, logs=None):
        self.progress.reset(self.batch_task, total=self.steps, description=f"epoch {epoch + 1}")

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        text = f"loss {logs.get('loss', math.nan):.4f} acc {logs.get('accuracy', math.nan):.4f}"
        # With steps_per_execution > 1, ``batch`` is the last step of the chunk just run.
        self.progress.update(self.batch_task, completed=min(batch + 1, self.steps), metrics=text)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        text = "  ".join(
            f"{key} {logs[key]:.4f}"
            for key in ("loss", "accuracy", "val_loss", "val_accuracy")
            if key in logs
        )
        self.progress.update(self.epoch_task, advance=1, metrics=text)

    def on_train_end(self, logs=None):
        self.progress.stop()


def learning_rate_callback(cfg: DictConfig) -> keras.callbacks.Callback | None:
    options = config_lib.schedule_options(cfg)
    name = cfg.lr_schedule.name
    if name == "reduce_on_plateau":
        return keras.callbacks.ReduceLROnPlateau(**options)
    schedule = schedules.epoch_schedule(
        name,
        initial=float(cfg.optimizer.learning_rate),
        epochs=int(cfg.trainer.epochs),
        **options,
    )
    return (
        keras.callbacks.LearningRateScheduler(lambda epoch, _: schedule(epoch))
        if schedule
        else None
    )
