"""``python -m emnist_bench.export``: files TensorFlow's own loaders read, checked on the test
split against the Keras model before they are reported written."""

from __future__ import annotations

import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from emnist_bench.data import load_test
from emnist_bench.errors import UserError
from emnist_bench.evaluate.metrics import predict
from emnist_bench.export import command, formats
from emnist_bench.predict.saved import open_run
from emnist_bench.rundir import MODEL


@pytest.fixture(scope="module")
def keras_reference(cnn_run):
    """The run's test images, labels, and the float32 Keras model's probabilities on them."""
    folder, _ = cnn_run
    run = open_run(folder)
    test, _ = load_test(OmegaConf.load(folder / "config.yaml").data)
    model = formats.float32_model(run.model)
    return test.images, test.labels, predict(model, test.images, 256)


def test_savedmodel_loads_with_tensorflow_and_predicts_exactly_as_keras(
    cnn_run, keras_reference, tmp_path, capsys
):
    import tensorflow as tf

    folder, _ = cnn_run
    images, labels, reference = keras_reference
    command.main([str(folder), "--format", "savedmodel", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "savedmodel written" in printed and "same class as the Keras model on 100.00%" in printed
    saved = tmp_path / "savedmodel" / "1"
    serve = tf.saved_model.load(str(saved)).signatures["serving_default"]
    given = serve(pixels=tf.constant(images.astype(np.float32)))["output_0"].numpy()
    assert given.shape == reference.shape
    assert (given.argmax(axis=1) == reference.argmax(axis=1)).all()
    np.testing.assert_allclose(given, reference, atol=1e-5)
    check = json.loads((tmp_path / "check_savedmodel.json").read_text())
    assert check["agreement"] == 1.0 and check["test_samples"] == labels.size
    assert check["export_accuracy"] == pytest.approx((reference.argmax(1) == labels).mean())
    classes = json.loads((tmp_path / "classes.json").read_text())["characters"]
    assert classes == list(open_run(folder).classes)
    assert not list(tmp_path.rglob(".*.tmp*"))  # no temporary file or folder left


def test_tflite_files_load_with_the_interpreter_and_agree_with_keras(
    cnn_run, keras_reference, tmp_path
):
    folder, _ = cnn_run
    images, labels, reference = keras_reference
    sizes = {}
    for quantize, name in (("none", "model.tflite"), ("dynamic", "model_dynamic.tflite")):
        result = command.export(folder, "tflite", tmp_path, quantize)
        assert result["path"] == str(tmp_path / name)
        given = formats.tflite_predict(tmp_path / name, images)  # tf.lite.Interpreter
        agreement = (given.argmax(axis=1) == reference.argmax(axis=1)).mean()
        assert agreement >= command.MIN_AGREEMENT[quantize]
        assert result["agreement"] == pytest.approx(agreement)
        assert result["export_accuracy"] == pytest.approx((given.argmax(1) == labels).mean())
        sizes[quantize] = result["size_bytes"]
        if quantize == "none":
            np.testing.assert_allclose(given, reference, atol=1e-4)
    assert sizes["dynamic"] < 0.4 * sizes["none"]  # int8 weights: about a quarter
    assert json.loads((tmp_path / "check_model_dynamic.tflite.json").read_text())["quantize"] == (
        "dynamic"
    )


def test_a_failed_check_writes_nothing(cnn_run, tmp_path, monkeypatch):
    folder, _ = cnn_run
    monkeypatch.setattr(
        formats, "tflite_predict", lambda path, images: np.eye(47)[np.zeros(len(images), int)]
    )
    with pytest.raises(UserError, match="nothing written"):
        command.export(folder, "tflite", tmp_path)
    assert not list(tmp_path.glob("*.tflite")) and not list(tmp_path.glob(".*"))


def test_the_check_needs_the_test_split(cnn_run, tmp_path):
    folder, _ = cnn_run
    with pytest.raises(UserError, match="the check needs the run's test split"):
        command.export(folder, "savedmodel", tmp_path, overrides=[f"data.root={tmp_path}"])
    with pytest.raises(UserError, match="--quantize applies to --format tflite only"):
        command.export(folder, "savedmodel", tmp_path, "dynamic")


def test_a_mixed_precision_model_is_exported_in_float32(cnn_run):
    folder, _ = cnn_run
    model = open_run(folder).model
    exported = formats.float32_model(model)
    assert {layer.dtype_policy.name for layer in exported.layers} == {"float32"}
    np.testing.assert_array_equal(exported.get_weights()[0], model.get_weights()[0])


@pytest.fixture
def float32_policy():
    """Keras' global dtype policy at float32 for the test (an earlier run in this process may
    have left it at mixed_bfloat16), restored afterwards."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy(previous)


def test_augmentation_layers_are_left_out_of_the_exported_files(tmp_path, float32_policy):
    import keras

    inputs = keras.Input((28, 28), name="pixels")
    x = keras.layers.Reshape((28, 28, 1))(inputs)
    x = keras.layers.RandomRotation(0.5)(x)  # active only in training
    x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(x))
    model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(x))
    images = np.random.default_rng(0).integers(0, 256, (16, 28, 28)).astype(np.float32)
    expected = model.predict(images, verbose=0)
    saved = formats.write_savedmodel(model, tmp_path / "saved")
    np.testing.assert_allclose(formats.savedmodel_predict(saved, images), expected, atol=1e-6)
    (tmp_path / "model.tflite").write_bytes(formats.tflite_bytes(saved))  # no random ops left
    np.testing.assert_allclose(formats.tflite_predict(tmp_path / "model.tflite", images), expected,
                               atol=1e-5)  # fmt: skip


def test_an_out_that_is_a_file_is_one_line_before_any_work(cnn_run, tmp_path, capsys):
    import time

    folder, _ = cnn_run
    taken = tmp_path / "taken"
    taken.write_text("mine")
    for out in (taken, taken / "inside"):
        started = time.perf_counter()
        with pytest.raises(SystemExit) as stopped:
            command.main([str(folder), "--format", "tflite", "--out", str(out)])
        err = capsys.readouterr().err.strip()
        assert stopped.value.code == 2 and err.splitlines() == [
            f"error: --out {taken}: exists and is not a folder; name a folder (new or existing)"
        ]
        assert time.perf_counter() - started < 2 and taken.read_text() == "mine"


def test_overrides_may_follow_the_options_and_are_checked_against_the_schema(cnn_run, capsys):
    folder, _ = cnn_run
    with pytest.raises(SystemExit) as stopped:
        command.main([str(folder), "--format", "tflite", "data.split=bylass"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.startswith("error: data.split=bylass: Invalid value 'bylass'")


def test_a_damaged_model_is_one_line(cnn_run, tmp_path, capsys):
    import shutil

    folder, _ = cnn_run
    run = tmp_path / "run"
    shutil.copytree(folder, run)
    (run / "model.keras").write_bytes((run / "model.keras").read_bytes()[:5000])
    with pytest.raises(SystemExit) as stopped:
        command.main([str(run), "--format", "savedmodel", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    damaged = "damaged (not a whole .keras file); run its training command again"
    assert (
        stopped.value.code == 2 and err == f"error: {run / MODEL}: {damaged}, which trains it again"
    )
    assert not (tmp_path / "out").exists()
