"""A run's Keras model as a TensorFlow SavedModel and a TFLite file, and running each back
with TensorFlow's own loaders (``tf.saved_model.load``, ``tf.lite.Interpreter``).

Both take what the Keras model takes: upright pixels 0-255 as float32, shape (N, 28, 28)
(input ``pixels``), and give the class probabilities (N, classes). Both are float32 throughout:
a model trained in mixed precision (bfloat16 or float16 compute) is rebuilt in float32 first,
as serving hardware and TFLite expect.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

QUANTIZATIONS = ("none", "dynamic", "float16")
"""``none``: float32; ``dynamic``: weights stored as int8 (about 4x smaller), computed in float;
``float16``: weights stored as float16 (about 2x smaller)."""


def _float32_policies(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and "config" in node:
            return "float32"
        return {key: _float32_policies(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_float32_policies(value) for value in node]
    return node


def float32_model(model):
    """``model`` itself when every layer computes in float32, else a float32 copy of it."""
    import keras

    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")  # for layers whose config names no policy
    try:
        copy = model.__class__.from_config(_float32_policies(model.get_config()))
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights(model.get_weights())
    return copy


def write_savedmodel(model, folder: Path) -> Path:
    """Writes ``model`` as a SavedModel (signature ``serving_default``: ``pixels`` ->
    ``output_0``, the probabilities) into ``folder``."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    # training=False: augmentation layers are identities and dropout is off, as in predict.
    archive.add_endpoint(
        name="serve",
        fn=lambda pixels: model(pixels, training=False),
        input_signature=[tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="pixels")],
    )
    archive.write_out(str(folder), verbose=False)
    return folder


def savedmodel_predict(folder: Path, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Probabilities from the SavedModel in ``folder``, loaded with ``tf.saved_model.load``."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(folder)).signatures["serving_default"]
    pixels = np.asarray(images, dtype=np.float32)
    batches = [
        next(iter(serve(pixels=tf.constant(pixels[start : start + batch_size])).values())).numpy()
        for start in range(0, len(pixels), batch_size)
    ]
    return np.concatenate(batches) if batches else np.zeros((0, 0), np.float32)


def tflite_bytes(savedmodel: Path, quantize: str = "none") -> bytes:
    """A TFLite flatbuffer converted from a SavedModel, optionally quantized (see
    :data:`QUANTIZATIONS`)."""
    import tensorflow as tf

    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(savedmodel))
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def tflite_predict(path: Path, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Probabilities from the TFLite file at ``path``, run with ``tf.lite.Interpreter``."""
    import tensorflow as tf

    with warnings.catch_warnings():  # its deprecation notice; it is TensorFlow's own loader
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(path))
    given, taken = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    pixels = np.asarray(images, dtype=np.float32)
    batches = []
    for start in range(0, len(pixels), batch_size):
        batch = pixels[start : start + batch_size]
        interpreter.resize_tensor_input(given["index"], list(batch.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(given["index"], batch)
        interpreter.invoke()
        batches.append(interpreter.get_tensor(taken["index"]).copy())
    return np.concatenate(batches) if batches else np.zeros((0, 0), np.float32)
