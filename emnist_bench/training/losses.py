"""Losses and class weighting for unbalanced training splits."""

from __future__ import annotations

import keras
import numpy as np


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


def class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Weights inversely proportional to class frequency (scikit-learn's "balanced")."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    table = dict.fromkeys(range(num_classes), 1.0)
    table.update({int(c): float(w) for c, w in zip(present, weights, strict=True)})
    return table


def keras_loss(loss: keras.losses.Loss) -> keras.losses.Loss:
    """``loss`` as one of Keras's own losses, for a saved model that loads without this package.

    The logit adjustment only steers training; the model predicts the plain softmax, whose
    loss is the cross-entropy (label-smoothed as trained), so that is what the file keeps.
    """
    if isinstance(loss, LogitAdjustedCrossentropy):
        return loss_for(None, loss.label_smoothing, None)
    return loss


def loss_for(
    class_weighting: str | None, label_smoothing: float, prior: np.ndarray | None
) -> keras.losses.Loss:
    """The training loss: logit-adjusted, label-smoothed (one-hot targets) or plain sparse CE.

    ``prior`` (training-class frequencies) is needed for ``logit_adjusted``.
    """
    if class_weighting == "logit_adjusted":
        if prior is None:
            raise ValueError("data.class_weight=logit_adjusted needs the training class prior")
        return LogitAdjustedCrossentropy(prior, label_smoothing=label_smoothing)
    if label_smoothing:
        return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()
