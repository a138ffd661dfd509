"""``tf.data`` input pipelines over the uint8 arrays, shared by a run's fit and tuner trials."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
from omegaconf import DictConfig

from emnist_bench.training.losses import class_weights


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


def fit_inputs(cfg: DictConfig, data) -> dict[str, Any]:
    """What ``model.fit`` gets from the data: ``x`` (shuffled training batches),
    ``validation_data`` (None without a validation split) and ``class_weight``."""
    trainer = cfg.trainer
    seed, batch_size = int(trainer.seed), int(trainer.batch_size)
    one_hot = data.num_classes if trainer.get("label_smoothing") else None

    def pipeline(x, y, shuffle: bool) -> tf.data.Dataset:
        return make_dataset(
            x, y, batch_size=batch_size, shuffle=shuffle, seed=seed, num_classes=one_hot
        )

    balanced = cfg.data.get("class_weight") == "balanced"
    return {
        "x": pipeline(data.x_train, data.y_train, shuffle=True),
        "validation_data": pipeline(data.x_val, data.y_val, shuffle=False)
        if len(data.y_val)
        else None,
        "class_weight": class_weights(data.y_train, data.num_classes) if balanced else None,
    }
