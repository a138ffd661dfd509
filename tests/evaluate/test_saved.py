"""The check a run's model.keras passes before the run is marked completed."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from emnist_bench.evaluate.saved import SavedModelError, check_saved_model, foreign_classes


def tiny_cnn(fused_batch_norm: bool = False):
    import keras

    from emnist_bench.models import FusedBatchNormalization

    norm = FusedBatchNormalization() if fused_batch_norm else keras.layers.BatchNormalization()
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(4, 3),
            norm,
            keras.layers.Flatten(),
            keras.layers.Dense(47, activation="softmax"),
        ]
    )


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (16, 28, 28, 1)).astype("float32")


def saved(model, path):
    model.save(path)
    return path


def test_a_keras_model_passes(tmp_path, images):
    model = tiny_cnn()
    path = saved(model, tmp_path / "model.keras")
    assert foreign_classes(path) == []
    check_saved_model(path, images, model.predict(images, verbose=0))


def test_a_class_of_this_package_in_the_file_is_refused(tmp_path, images):
    """It loads here, where emnist_bench registered it, but not in a user's plain Keras."""
    model = tiny_cnn(fused_batch_norm=True)
    path = saved(model, tmp_path / "model.keras")
    assert foreign_classes(path) == ["emnist_bench>FusedBatchNormalization"]
    with pytest.raises(SavedModelError, match=r"names classes plain Keras does not know \(emnist"):
        check_saved_model(path, images, model.predict(images, verbose=0))


def test_a_file_keras_cannot_load_is_refused(tmp_path, images):
    model = tiny_cnn()
    path = saved(model, tmp_path / "model.keras")
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["config.json"] = members["config.json"].replace(b'"Conv2D"', b'"NoSuchConv"')
    broken = tmp_path / "broken.keras"
    with zipfile.ZipFile(broken, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(SavedModelError, match=r"does not load in Keras \(.*NoSuchConv"):
        check_saved_model(broken, images, model.predict(images, verbose=0))


def test_a_file_that_predicts_otherwise_is_refused(tmp_path, images):
    model = tiny_cnn()
    path = saved(model, tmp_path / "model.keras")
    other = tiny_cnn()  # other initial weights: what a lost or mixed-up weight would predict
    expected = other.predict(images, verbose=0)
    with pytest.raises(SavedModelError, match=r"predicts other probabilities .*by up to") as error:
        check_saved_model(path, images, expected)
    assert "not marked completed" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(SavedModelError, match="predicts NaN where the trained model did not"):
        check_saved_model(path, images, np.full_like(expected, np.nan))


def test_a_diverged_model_passes_with_its_nans(tmp_path, images):
    model = tiny_cnn()
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    path = saved(model, tmp_path / "model.keras")
    expected = model.predict(images, verbose=0)
    assert np.isnan(expected).all()
    check_saved_model(path, images, expected)


def test_the_config_walk_sees_nested_objects(tmp_path):
    config = {"module": "keras", "class_name": "Functional",
              "config": {"layers": [{"module": "my_pkg.layers", "class_name": "Odd",
                                     "registered_name": None, "config": {}}]}}  # fmt: skip
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
    assert foreign_classes(path) == ["my_pkg.layers.Odd"]
