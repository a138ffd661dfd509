"""Test-split figures of a model: probabilities, accuracy, loss, macro and per-class F1."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


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
