"""Several networks trained side by side as one Keras model, predicting their mean probabilities.

``model.members: K`` builds K copies of the configured network, each with its own initial
weights, dropout masks and random augmentation. They see the same batches, and each learns from
its own loss (the training loss is the mean of the members' losses), so they are K independent
models, not one wide one; the model's output, in evaluation, prediction and export, is the mean
of their class probabilities. That is the plain ensemble of deep-learning practice
(Lakshminarayanan et al., 2017), trained in one ``fit`` so that a run, its backup and its saved
model stay one of each.
This class only changes how the members train: a run saves the same graph as Keras's own
functional model (:func:`emnist_bench.models.standard_keras`), which loads without this package.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf
from keras import layers


@keras.saving.register_keras_serializable(package="emnist_bench")
class Ensemble(keras.Model):
    """The mean of ``members``' probabilities; each member trains on its own loss."""

    def __init__(self, members: Sequence[keras.Model], name: str = "ensemble", **kwargs):
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        inputs = keras.Input(shape=members[0].input_shape[1:], name="pixels")
        outputs = layers.Average(dtype="float32", name="classes")(
            [member(inputs) for member in members]
        )
        super().__init__(inputs, outputs, name=name, **kwargs)

    @property
    def members(self) -> list[keras.Model]:
        return [layer for layer in self.layers if isinstance(layer, keras.Model)]

    def train_step(self, data):
        """Keras's own TensorFlow train step, with one loss per member.

        Each member's gradient is exactly what training it alone would give: the optimized
        total is the members' data losses summed plus the weight penalties once. The ``loss``
        Keras reports is the members' mean data loss plus the penalties, on the scale of one
        network's loss (what the divergence check compares with ln(classes)).
        """
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            predictions = [member(x, training=True) for member in self.members]
            penalty = keras.ops.sum(keras.ops.stack(self.losses)) if self.losses else 0.0
            data_losses = keras.ops.stack(
                [
                    self.compute_loss(x=x, y=y, y_pred=prediction, sample_weight=sample_weight)
                    - penalty  # compute_loss adds every member's weight penalty
                    for prediction in predictions
                ]
            )
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            reported = (keras.ops.mean(data_losses) + penalty) * replicas
            self._loss_tracker.update_state(reported, sample_weight=tf.shape(x)[0])
            total = self.optimizer.scale_loss(keras.ops.sum(data_losses) + penalty)
        gradients = tape.gradient(total, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights, strict=True))
        mean = keras.ops.mean(keras.ops.stack(predictions), axis=0)
        return self.compute_metrics(x, y, mean, sample_weight=sample_weight)

    def get_config(self):
        return {
            "name": self.name,
            "members": [keras.saving.serialize_keras_object(m) for m in self.members],
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        members = [
            keras.saving.deserialize_keras_object(member, custom_objects=custom_objects)
            for member in config["members"]
        ]
        return cls(members, name=config.get("name", "ensemble"))
