"""The TensorFlow side of a run: input pipelines, model, optimizer, callbacks, fit.

Imported only when a run starts; ``--help`` and config composition never load TensorFlow.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig

from emnist_bench import config as config_lib
from emnist_bench import models, schedules


def configure_runtime(trainer: DictConfig) -> None:
    """Seeds every generator and applies thread, determinism and precision settings.

    Thread pools must be sized before TensorFlow runs its first op.
    """
    intra, inter = trainer.get("intra_op_threads"), trainer.get("inter_op_threads")
    try:
        if intra:
            tf.config.threading.set_intra_op_parallelism_threads(int(intra))
        if inter:
            tf.config.threading.set_inter_op_parallelism_threads(int(inter))
    except RuntimeError:  # already initialised in this process (tests, tuner trials)
        pass
    keras.backend.clear_session()  # a fresh graph for each run in one process (tests, sweeps)
    keras.utils.set_random_seed(int(trainer.seed))
    if trainer.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(precision_policy(trainer.get("precision")))


def precision_policy(precision: str | None) -> str:
    """The Keras dtype policy for ``trainer.precision``; ``auto`` picks by hardware.

    ``auto``: ``mixed_float16`` on a GPU; ``mixed_bfloat16`` on a CPU with native bfloat16
    instructions (AVX512-BF16 or AMX), where oneDNN runs the matrix and convolution work about
    twice as fast at the same accuracy per epoch (benchmarks/speed.py); else ``float32``.
    Variables stay float32 under either mixed policy.
    """
    if precision != "auto":
        return precision or "float32"
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_bfloat16() else "float32"


def cpu_has_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU flags list native bfloat16 arithmetic (Linux; False elsewhere)."""
    try:
        flags = next(
            line.split(":", 1)[1].split()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("flags")
        )
    except (OSError, StopIteration):
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_classes: int | None = None,
) -> tf.data.Dataset:
    """A ``tf.data`` pipeline over uint8 arrays: shuffled indices, batched gathers, prefetch.

    Gathering a whole batch at once from tensors held in memory is far cheaper than shuffling
    and batching single images. Labels stay integer unless ``num_classes`` asks for one-hot
    (label smoothing needs it).
    """
    x = tf.constant(images)
    y = tf.constant(labels.astype(np.int32))
    indices = tf.data.Dataset.range(len(images))
    if shuffle:
        indices = indices.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)

    def gather(batch):
        target = tf.gather(y, batch)
        if num_classes:
            target = tf.one_hot(target, num_classes)
        return tf.gather(x, batch), target

    return (
        indices.batch(batch_size)
        .map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )


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
    arguments["augmentation"] = augmentation_layers(cfg.augment)
    builder = models.build_mlp if cfg.model.family == "mlp" else models.build_cnn
    return builder(**arguments)


def build_optimizer(name: str, **options: Any) -> keras.optimizers.Optimizer:
    """An optimizer by its Keras name (``adam``, ``sgd``, ...) with constructor options."""
    return keras.optimizers.get({"class_name": name, "config": options})


@keras.saving.register_keras_serializable(package="emnist_bench")
class LogitAdjustedCrossentropy(keras.losses.Loss):
    """Cross-entropy on the model's logits plus the log class priors (Menon et al., "Long-tail
    learning via logit adjustment", ICLR 2021).

    Training against ``softmax(logits + log prior)`` makes the plain ``softmax(logits)`` that the
    model predicts estimate the class-balanced posterior: the right target when training classes
    are unbalanced and the test split is not. Unlike class weights it leaves every example's
    gradient at full strength. Labels are one-hot (label smoothing) or integer.
    """

    def __init__(
        self, prior, label_smoothing: float = 0.0, name="logit_adjusted_crossentropy", **kwargs
    ):
        super().__init__(name=name, **kwargs)
        self.prior = [float(p) for p in prior]
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        ops = keras.ops
        probabilities = ops.clip(ops.cast(y_pred, "float32"), 1e-7, 1.0)
        logits = ops.log(probabilities) + ops.log(ops.convert_to_tensor(self.prior, "float32"))
        if len(y_true.shape) < len(y_pred.shape):
            y_true = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), len(self.prior))
        return keras.losses.categorical_crossentropy(
            y_true, logits, from_logits=True, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return super().get_config() | {
            "prior": self.prior,
            "label_smoothing": self.label_smoothing,
        }


def class_prior(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Training-class frequencies; a class absent from ``labels`` counts as one image."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    counts = np.maximum(counts, 1.0)
    return counts / counts.sum()


def compile_model(model: keras.Model, cfg: DictConfig, prior: np.ndarray | None = None) -> None:
    """Compiles with the configured optimizer and loss; ``prior`` (training-class frequencies)
    is needed when ``data.class_weight=logit_adjusted``."""
    name, options = config_lib.optimizer_arguments(cfg)
    smoothing = float(cfg.trainer.get("label_smoothing") or 0.0)
    if cfg.data.get("class_weight") == "logit_adjusted":
        if prior is None:
            raise ValueError("data.class_weight=logit_adjusted needs the training class prior")
        loss = LogitAdjustedCrossentropy(prior, label_smoothing=smoothing)
    elif smoothing:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
    model.compile(
        optimizer=build_optimizer(name, **options),
        loss=loss,
        metrics=["accuracy"],
        steps_per_execution=int(cfg.trainer.get("steps_per_execution") or 1),
        jit_compile=bool(cfg.trainer.get("jit_compile")),
    )


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


def class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Weights inversely proportional to class frequency (scikit-learn's "balanced")."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    table = dict.fromkeys(range(num_classes), 1.0)
    table.update({int(c): float(w) for c, w in zip(present, weights, strict=True)})
    return table
