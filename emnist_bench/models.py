"""Plain Keras builders for the MLP and the CNN. They know nothing of Hydra or the tuner.

Every hidden layer is ``Dense|Conv -> [BatchNormalization] -> activation -> [Dropout]``; the
per-layer lists give each layer its own activation and dropout rate (0 = no Dropout layer).
Models take raw uint8 pixels (N, 28, 28) and scale them by 1/255 inside the graph; ``crop``
cuts that many pixels from each side of the image inside the graph too, so a saved model takes
the same 28x28 images whatever it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf
from keras import layers

from emnist_bench.techniques import MIN_CNN_CONV_BLOCKS, MIN_MLP_HIDDEN_LAYERS, pooled_blocks

IMAGE_SHAPE = (28, 28)
POOLING = {"max": layers.MaxPooling2D, "average": layers.AveragePooling2D, "none": None}
"""``model.pooling``: the layer a CNN pools with."""


def activation_layer(name: str, negative_slope: float = 0.2) -> layers.Layer:
    """Returns the activation ``name`` as a layer (leaky ReLU with its slope)."""
    if name == "leaky_relu":
        return layers.LeakyReLU(negative_slope=negative_slope)
    return layers.Activation(name)


@keras.saving.register_keras_serializable(package="emnist_bench")
class BatchNormalization(layers.BatchNormalization):
    """Keras's batch normalization, trained on 4-D feature maps with TensorFlow's fused kernel.

    Keras 3 normalizes with separate mean, variance and arithmetic ops; on a CPU the fused
    kernel (oneDNN's, which also takes bfloat16 maps) does the same work in one pass forward
    and one backward, which is faster (benchmarks/RESULTS.md). Inference, dense layers and
    other layouts use Keras's own code.
    The moving statistics are updated as Keras does, from the batch's mean and variance.

    Only training uses it: a run saves Keras's own ``BatchNormalization`` in its place
    (:func:`standard_keras`), which predicts the same. It bears Keras's class name because
    Keras names a layer's weights in a weights file after its class: so weights saved while
    training (backups, ``trainer.callbacks`` checkpoints) load into the saved model too.
    """

    def call(self, inputs, training=None, mask=None):
        plain = self.renorm or not (self.center and self.scale and self.trainable)
        if plain or not training or mask is not None or len(inputs.shape) != 4:
            return super().call(inputs, training=training, mask=mask)
        if self.axis not in (-1, 3):  # channels first
            return super().call(inputs, training=training, mask=mask)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs,
            tf.cast(self.gamma, "float32"),
            tf.cast(self.beta, "float32"),
            epsilon=self.epsilon,
            data_format="NHWC",
            is_training=True,
        )
        for moving, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            moving.assign(moving * self.momentum + batch * (1.0 - self.momentum))
        return keras.ops.cast(outputs, self.compute_dtype)


@keras.saving.register_keras_serializable(package="emnist_bench")
class FusedBatchNormalization(BatchNormalization):
    """The same layer under the name that older model files give it (their weights are filed
    under that name): :func:`load_model` still reads them."""


def _regularizer(l1: float, l2: float) -> keras.regularizers.Regularizer | None:
    if l1 and l2:
        return keras.regularizers.L1L2(l1=l1, l2=l2)
    if l1:
        return keras.regularizers.L1(l1)
    if l2:
        return keras.regularizers.L2(l2)
    return None


def _hidden_block(
    x,
    layer: layers.Layer,
    *,
    activation: str,
    negative_slope: float,
    batch_norm: bool,
    bn_momentum: float,
    dropout: float,
    pool: layers.Layer | None = None,
    pool_first: bool = False,
):
    x = layer(x)
    if pool is not None and pool_first:
        x = pool(x)
    if batch_norm:
        x = BatchNormalization(momentum=bn_momentum)(x)
    x = activation_layer(activation, negative_slope)(x)
    if pool is not None and not pool_first:
        x = pool(x)
    if dropout > 0:
        x = layers.Dropout(dropout)(x)
    return x


def _inputs(augmentation: Sequence[layers.Layer] = (), crop: int = 0):
    """The input, scaled, augmented, then cropped: the augmentation moves ink across the full
    frame before the crop, as a shifted character would be written."""
    inputs = keras.Input(shape=IMAGE_SHAPE, name="pixels")
    x = layers.Rescaling(1 / 255, name="scale")(inputs)
    if augmentation or crop:
        x = layers.Reshape((*IMAGE_SHAPE, 1))(x)
    for layer in augmentation:
        x = layer(x)
    if crop:
        # EMNIST centres each character in a 2-pixel frame: the outer 2 pixels hold about a
        # thousandth of the ink, and every layer after them costs (28 - 2 crop)^2 / 28^2.
        x = layers.Cropping2D(crop, name="crop")(x)
    return inputs, x


def _per_layer(value, count: int, what: str) -> list:
    values = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else None
    if values is None:
        return [value] * count
    if len(values) != count:
        raise ValueError(f"{what} has {len(values)} entries, expected one per layer ({count})")
    return values


def build_mlp(
    *,
    num_classes: int,
    hidden_units: Sequence[int],
    activations: str | Sequence[str] = "relu",
    dropout_rates: float | Sequence[float] = 0.0,
    batch_norm: bool = False,
    bn_momentum: float = 0.99,
    l1: float = 0.0,
    l2: float = 0.0,
    negative_slope: float = 0.2,
    augmentation: Sequence[layers.Layer] = (),
    crop: int = 0,
    name: str = "mlp",
) -> keras.Model:
    """Builds an MLP with at least three hidden Dense layers and a softmax output."""
    if len(hidden_units) < MIN_MLP_HIDDEN_LAYERS:
        raise ValueError(
            f"an MLP needs at least {MIN_MLP_HIDDEN_LAYERS} hidden layers, got {len(hidden_units)}"
        )
    activations = _per_layer(activations, len(hidden_units), "activations")
    dropout_rates = _per_layer(dropout_rates, len(hidden_units), "dropout_rates")
    inputs, x = _inputs(augmentation, crop)
    x = layers.Flatten()(x)
    block = {"negative_slope": negative_slope, "batch_norm": batch_norm, "bn_momentum": bn_momentum}
    x = _dense_blocks(x, hidden_units, activations, dropout_rates, _regularizer(l1, l2), **block)
    return keras.Model(inputs, _classes(x, num_classes), name=name)


def build_cnn(
    *,
    num_classes: int,
    conv_filters: Sequence[int],
    kernel_size: int | Sequence[int] = 3,
    padding: str = "same",
    pooling: str = "max",
    pool_size: int = 2,
    pool_every: int = 1,
    pool_after: Sequence[int] | None = None,
    pool_first: bool = False,
    dense_units: Sequence[int] = (128,),
    conv_activations: str | Sequence[str] = "relu",
    conv_dropout_rates: float | Sequence[float] = 0.0,
    dense_activations: str | Sequence[str] = "relu",
    dense_dropout_rates: float | Sequence[float] = 0.0,
    batch_norm: bool = False,
    bn_momentum: float = 0.99,
    l1: float = 0.0,
    l2: float = 0.0,
    negative_slope: float = 0.2,
    augmentation: Sequence[layers.Layer] = (),
    crop: int = 0,
    name: str = "cnn",
) -> keras.Model:
    """Builds a CNN: at least two conv blocks (conv, BN, activation, pool, dropout), then a
    dense head and a softmax output. Pooling follows every ``pool_every``-th block (2 gives
    VGG-style pairs of convolutions), or the blocks numbered (from 1) in ``pool_after``, which
    lets a network spend few convolutions at full resolution and more on smaller maps.
    ``pool_first`` pools straight after the convolution, so batch normalization and the
    activation work on a quarter of the values: a different network (the statistics are the
    pooled map's), at most about a tenth cheaper to train (benchmarks/RESULTS.md)."""
    if len(conv_filters) < MIN_CNN_CONV_BLOCKS:
        raise ValueError(
            f"a CNN needs at least {MIN_CNN_CONV_BLOCKS} conv layers, got {len(conv_filters)}"
        )
    blocks = len(conv_filters)
    kernel_sizes = _per_layer(kernel_size, blocks, "kernel_size")
    conv_activations = _per_layer(conv_activations, blocks, "conv_activations")
    conv_dropout_rates = _per_layer(conv_dropout_rates, blocks, "conv_dropout_rates")
    dense_activations = _per_layer(dense_activations, len(dense_units), "dense_activations")
    dense_dropout_rates = _per_layer(dense_dropout_rates, len(dense_units), "dense_dropout_rates")
    if pooling not in POOLING:
        raise ValueError(f"pooling must be one of {sorted(POOLING)}, got {pooling!r}")
    pooled, pool_layer = pooled_blocks(blocks, pool_every, pool_after), POOLING[pooling]
    block = {"negative_slope": negative_slope, "batch_norm": batch_norm, "bn_momentum": bn_momentum}
    conv_block = {**block, "pool_first": pool_first}
    inputs, x = _inputs(augmentation, crop)
    if len(x.shape) == 3:  # neither augmented nor cropped: add the channel axis
        x = layers.Reshape((*IMAGE_SHAPE, 1))(x)
    regularizer = _regularizer(l1, l2)
    for number, (filters, size, activation, dropout) in enumerate(
        zip(conv_filters, kernel_sizes, conv_activations, conv_dropout_rates, strict=True), start=1
    ):
        conv = layers.Conv2D(
            filters, size, padding=padding, use_bias=not batch_norm, kernel_regularizer=regularizer
        )
        pool = pool_layer(pool_size, padding="same") if pool_layer and number in pooled else None
        x = _hidden_block(x, conv, activation=activation, dropout=dropout, pool=pool, **conv_block)
    x = layers.Flatten()(x)
    x = _dense_blocks(x, dense_units, dense_activations, dense_dropout_rates, regularizer, **block)
    return keras.Model(inputs, _classes(x, num_classes), name=name)


def _dense_blocks(x, units, activations, dropout_rates, regularizer, **block):
    """Hidden ``Dense`` blocks on ``x``, one per entry of ``units``."""
    for size, activation, dropout in zip(units, activations, dropout_rates, strict=True):
        dense = layers.Dense(size, use_bias=not block["batch_norm"], kernel_regularizer=regularizer)
        x = _hidden_block(x, dense, activation=activation, dropout=dropout, **block)
    return x


def _classes(x, num_classes: int):
    """The softmax output, in float32 whatever the dtype policy."""
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="classes")(x)


def _keras_layer(layer: layers.Layer) -> layers.Layer:
    """A new layer of Keras's own class for ``layer`` (clone_model's default otherwise)."""
    if isinstance(layer, BatchNormalization):  # this package's: same config, same inference
        return layers.BatchNormalization.from_config(layer.get_config())
    return layer.__class__.from_config(layer.get_config())


def _layers_within(model: keras.Model) -> list[layers.Layer]:
    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found.extend(_layers_within(layer))
    return found


def standard_keras(model: keras.Model) -> keras.Model:
    """A copy of a functional ``model``, weights included, made of Keras's own classes only:
    what a run saves, so that ``keras.saving.load_model`` reads it without this package.

    This package's ``BatchNormalization`` becomes Keras's (the same inference), and a
    functional subclass such as ``emnist_bench.ensemble.Ensemble`` a plain functional model of
    the same graph (its class changes only how it trains); nested members are copied too.
    Each layer keeps its name and dtype policy, so the copy predicts what ``model`` does.

    Raises:
        TypeError: when a layer of another package's class would remain (a new custom layer
            needs its Keras equivalent in ``_keras_layer``).
    """
    plain = keras.models.clone_model(model, clone_function=_keras_layer, recursive=True)
    custom = sorted(
        {
            f"{type(layer).__module__}.{type(layer).__name__}"
            for layer in [plain, *_layers_within(plain)]
            if not type(layer).__module__.startswith("keras.")
        }
    )
    if custom:
        raise TypeError(f"no Keras equivalent for {', '.join(custom)}: the saved model needs one")
    plain.set_weights(model.get_weights())
    return plain


def load_model(path) -> keras.Model:
    """A run's saved model (without its loss). Runs save Keras's own classes only; this also
    knows this package's layers, so that older model files that name them still load: the
    fused batch norm here and the ensemble (``emnist_bench.ensemble``)."""
    from emnist_bench import ensemble  # noqa: F401  (registers Ensemble with Keras)

    return keras.saving.load_model(path, compile=False)
