"""Keras callbacks of a run: the history file and the divergence check, the progress display
(a bar on a terminal, one plain line per epoch otherwise), the learning-rate schedule. The
backup a killed run resumes from is in ``backup``."""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from pathlib import Path

import keras
from omegaconf import DictConfig

from emnist_bench import config as config_lib
from emnist_bench.history import read_history
from emnist_bench.rundir import write_text
from emnist_bench.training import schedules

log = logging.getLogger(__name__)

# How many times chance a training accuracy must beat to count as learning.
CHANCE_MARGIN = 1.5


def divergence(
    rows: list[dict[str, float]],
    num_classes: int,
    loss_factor: float | None = None,
    chance_epochs: int | None = None,
) -> str | None:
    """Why training has diverged, from the epochs so far (``history.csv`` rows); None if not.

    * the loss is NaN or infinite;
    * the loss is over ``loss_factor`` times its starting value, ln(classes): the cross-entropy
      of the uniform guess a freshly initialised classifier makes;
    * after ``chance_epochs`` epochs, the training accuracy is still at chance (at most 1.5
      times 1/classes).
    """
    row = rows[-1]
    epoch, loss = int(row["epoch"]) + 1, float(row["loss"])
    if not math.isfinite(loss):
        return f"the loss became {loss} in epoch {epoch}"
    start = math.log(num_classes)
    if loss_factor and loss > loss_factor * start:
        return (
            f"the loss reached {loss:.3g} in epoch {epoch}, over {loss_factor:g} times its "
            f"starting value ln({num_classes}) = {start:.2f}"
        )
    accuracy = row.get("accuracy")
    at_chance = accuracy is not None and accuracy <= CHANCE_MARGIN / num_classes
    if chance_epochs and epoch >= chance_epochs and at_chance:
        return (
            f"the training accuracy is {accuracy:.2%} after {epoch} epochs, still at chance "
            f"(1/{num_classes} = {1 / num_classes:.2%})"
        )
    return None


def write_history(path: Path, rows: list[dict[str, float]]) -> None:
    """Writes ``history.csv`` whole (a temporary file, then a rename)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def _number(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.3g}"


def epoch_line(row: dict[str, float], epochs: int) -> str:
    """One plain line per epoch: ``epoch 2/10: loss 0.8123, accuracy 0.7421, ...``."""
    parts = [f"epoch {int(row['epoch']) + 1}/{epochs}:"]
    shown = ("loss", "accuracy", "val_accuracy")
    parts += [f"{key} {_number(row[key])}," for key in shown if key in row]
    parts.append(f"learning rate {row['learning_rate']:.3g}, {row['seconds']:.1f} s")
    return " ".join(parts)


def _to_log_files(message: str) -> None:
    """Logs ``message`` to the run's log file only (the terminal shows the progress bar)."""
    record = log.makeRecord(log.name, logging.INFO, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


class EpochRecorder(keras.callbacks.Callback):
    """Writes ``history.csv`` as epochs end (so an interrupted run keeps them), logs one line
    per epoch, and stops training when it diverges (:func:`divergence`; ``diverged`` says why).

    A resumed run (Keras starts at its ``initial_epoch``) keeps the rows of the epochs it does
    not train again. It must come first among the callbacks: it reads the learning rate at the
    end of the epoch, before ReduceLROnPlateau changes it for the next one.

    Args:
        path: the run's ``history.csv``.
        epochs: the epochs the run trains in all.
        num_classes: the classes, which set the starting loss and chance.
        loss_factor, chance_epochs: :func:`divergence`'s thresholds (None: not checked).
        console: log the epoch lines to the console too, not only to the log file.
    """

    def __init__(
        self,
        path: Path,
        *,
        epochs: int = 0,
        num_classes: int = 2,
        loss_factor: float | None = None,
        chance_epochs: int | None = None,
        console: bool = True,
    ):
        super().__init__()
        self.path, self.epochs, self.num_classes = path, epochs, num_classes
        self.loss_factor, self.chance_epochs, self.console = loss_factor, chance_epochs, console
        self.rows: list[dict[str, float]] = []
        self.diverged: str | None = None
        self._started = 0.0
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        if epoch and not self.rows:  # resumed after `epoch` finished epochs
            self.rows = read_history(self.path, before=epoch)
        self._epoch = epoch
        self._started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        loss = float(logs.get("loss", 0.0)) if logs else 0.0
        if not math.isfinite(loss):
            self._stop(f"the loss became {loss} in epoch {self._epoch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        row = {"epoch": epoch}
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if key in logs:
                row[key] = float(logs[key])
        row["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row["seconds"] = time.perf_counter() - self._started
        self.rows.append(row)
        write_history(self.path, self.rows)
        line = epoch_line(row, self.epochs or epoch + 1)
        if self.console:
            log.info(line)
        else:
            _to_log_files(line)
        reason = self.diverged or divergence(
            self.rows, self.num_classes, self.loss_factor, self.chance_epochs
        )
        if reason:
            self._stop(reason)

    def _stop(self, reason: str) -> None:
        if self.diverged is None:
            log.warning("Training diverged: %s; stopping (status: diverged)", reason)
        self.diverged = reason
        self.model.stop_training = True


class EpochListener(keras.callbacks.Callback):
    """Hands each epoch's ``history.csv`` row, as ``recorder`` wrote it, to ``listener`` (an
    experiment tracker). Placed after the backup, so that an epoch it passed on is never trained
    again by a resumed run."""

    def __init__(self, recorder: EpochRecorder, listener):
        super().__init__()
        self.recorder, self.listener = recorder, listener

    def on_epoch_end(self, epoch, logs=None):
        if self.recorder.rows and int(self.recorder.rows[-1]["epoch"]) == epoch:
            self.listener(dict(self.recorder.rows[-1]))


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
        self.progress.update(self.epoch_task, completed=epoch)  # a resumed run starts later
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
        self.progress.update(self.epoch_task, completed=epoch + 1, metrics=text)

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
