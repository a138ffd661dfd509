"""Test-split figures of a model: probabilities, accuracy, loss, macro and per-class F1, and the
pairs of characters it mixes up most."""

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
    """Accuracy, loss, macro F1, per-class precision/recall/F1 and the most confused pairs
    (:func:`confused_pairs`) from predicted probabilities."""
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
        "confused_pairs": confused_pairs(labels, predictions, classes),
    }


def confused_pairs(
    labels: np.ndarray, predictions: np.ndarray, classes: tuple[str, ...], top: int = 10
) -> list[dict[str, Any]]:
    """The ``top`` pairs of characters the model mistakes for each other, either way round,
    most errors first: ``[{"pair": ["F", "f"], "errors": 93, "share_of_errors": 0.14}, ...]``.

    On EMNIST most errors fall on a few pairs that handwriting itself leaves ambiguous (0/O,
    1/l, F/f), so this says how much of a model's error any architecture could still win back.
    """
    from sklearn.metrics import confusion_matrix

    mistakes = confusion_matrix(labels, predictions, labels=list(range(len(classes))))
    np.fill_diagonal(mistakes, 0)
    either_way = np.triu(mistakes + mistakes.T, k=1)
    errors = int(mistakes.sum())
    # Stable, so that pairs with as many errors keep the classes' order.
    order = np.argsort(-either_way, axis=None, kind="stable")[:top]
    return [
        {
            "pair": [classes[a], classes[b]],
            "errors": int(either_way[a, b]),
            "share_of_errors": float(either_way[a, b] / errors),
        }
        for a, b in zip(*np.unravel_index(order, either_way.shape), strict=True)
        if either_way[a, b]
    ]


def pairs_text(pairs: list[dict[str, Any]]) -> str:
    """``F/f 93 (14%), 1/L 82 (12%)``: the pairs of :func:`confused_pairs` on one line."""
    return ", ".join(
        f"{'/'.join(pair['pair'])} {pair['errors']} ({pair['share_of_errors']:.0%})"
        for pair in pairs
    )
