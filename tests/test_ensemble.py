"""The ensemble model (``model.members``): independent members, the mean as its output. A run
saves it as Keras's own functional model; an ``Ensemble`` saved as such loads, predicts and
rebuilds in float32 too."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from emnist_bench.ensemble import Ensemble
from emnist_bench.export.formats import float32_model
from emnist_bench.models import build_mlp
from emnist_bench.run import run
from tests.configs import compose_config, smoke_overrides
from tests.isa import needs_bfloat16_kernels


def tiny_mlp(name: str, seed: int, l2: float = 0.0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return build_mlp(num_classes=5, hidden_units=[16, 12, 8], l2=l2, name=name)


def batch(seed: int = 0, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size, 28, 28), dtype=np.uint8), rng.integers(0, 5, size)


@pytest.fixture(autouse=True)
def float32_policy():
    keras.mixed_precision.set_global_policy("float32")


def test_the_output_is_the_mean_of_the_members():
    members = [tiny_mlp("a", 1), tiny_mlp("b", 2)]
    model = Ensemble(members, name="pair")
    x, _ = batch()
    each = [member.predict(x, verbose=0) for member in members]
    assert not np.allclose(each[0], each[1])  # different initial weights
    np.testing.assert_allclose(model.predict(x, verbose=0), np.mean(each, axis=0), atol=1e-6)
    assert model.output_shape == (None, 5) and model.input_shape == (None, 28, 28)


@pytest.mark.parametrize("l2", [0.0, 0.01])
def test_each_member_trains_exactly_as_it_would_alone(l2):
    """One SGD step of the ensemble moves each member's weights as one step of that member
    alone on the same batch: a member's loss never reaches another member's gradient."""
    x, y = batch()
    members = [tiny_mlp("a", 1, l2), tiny_mlp("b", 2, l2)]
    alone = [tiny_mlp("a", 1, l2), tiny_mlp("b", 2, l2)]
    model = Ensemble(members)
    for network in (model, *alone):
        network.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    reported = model.train_on_batch(x, y)
    own = [network.train_on_batch(x, y) for network in alone]
    for member, single in zip(members, alone, strict=True):
        for ours, theirs in zip(member.get_weights(), single.get_weights(), strict=True):
            np.testing.assert_allclose(ours, theirs, atol=1e-5)
    if not l2:  # the reported loss is one network's: the members' mean
        assert reported == pytest.approx(float(np.mean(own)), rel=1e-4)


@needs_bfloat16_kernels
def test_save_load_and_float32_rebuild_keep_the_predictions(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = Ensemble([tiny_mlp("a", 1), tiny_mlp("b", 2)])
    x, _ = batch()
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", compile=False)
    assert isinstance(loaded, Ensemble) and [m.name for m in loaded.members] == ["a", "b"]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-6)
    again = Ensemble([tiny_mlp("a", 5), tiny_mlp("b", 6)])  # what a resumed run restores into
    model.save_weights(tmp_path / "backup.weights.h5")
    again.load_weights(tmp_path / "backup.weights.h5")
    np.testing.assert_allclose(again.predict(x, verbose=0), expected, atol=1e-6)
    rebuilt = float32_model(loaded)
    assert all(layer.dtype_policy.name == "float32" for layer in rebuilt.layers)
    np.testing.assert_allclose(rebuilt.predict(x, verbose=0), expected, atol=0.02)


@pytest.mark.parametrize("family", ["mlp", "cnn"])
def test_an_augmented_ensemble_of_three_saves_a_file_keras_loads(tmp_path, family):
    """Each member augments with layers of its own: shared by three members, they made a
    graph Keras refused to load back ('The name "pixels" is used 2 times')."""
    from emnist_bench.training.fit import build_model, savable_model

    shapes = ["model.hidden_units=[16,12,8]"] if family == "mlp" else ["model.dense_units=[16]"]
    cfg = compose_config(
        [f"model={family}", *shapes, "model.members=3", "augment=light", "batch_norm=on"]
    )
    model = build_model(cfg, num_classes=5)
    augmenting = [
        {id(layer) for layer in member.layers if layer.name.startswith("random_")}
        for member in model.members
    ]
    assert all(augmenting) and len(set.union(*augmenting)) == sum(map(len, augmenting))
    x, _ = batch()
    expected = model.predict(x, verbose=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    savable_model(model).save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", compile=False)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-6)


def test_one_member_is_refused():
    with pytest.raises(ValueError, match="at least 2 members"):
        Ensemble([tiny_mlp("a", 1)])


def test_model_members_must_be_positive():
    from emnist_bench.config import validate
    from emnist_bench.errors import ConfigError

    with pytest.raises(ConfigError, match="model.members=0 must be >= 1"):
        validate(compose_config(["model.members=0"]))


@pytest.mark.slow  # trains several models or epochs: make test-all
def test_a_run_with_members_trains_and_scores_the_ensemble(smoke_data, proxy_cache, tmp_path):
    """The whole path: a run of a batch-normalized CNN ensemble, then predict in a fresh process
    through the package's own loader."""
    overrides = ["model=cnn", "batch_norm=on", "model.members=2"]
    cfg = compose_config([*overrides, *smoke_overrides(smoke_data, proxy_cache)], tmp_path)
    run(cfg)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    model = keras.saving.load_model(tmp_path / "model.keras", compile=False)
    members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    assert not isinstance(model, Ensemble) and len(members) == 2  # saved as Keras's own model
    assert metrics["params"] == model.count_params()
    assert model.count_params() == 2 * members[0].count_params()
    image = tmp_path / "stroke.png"
    pixels = np.full((40, 40), 255, np.uint8)
    pixels[8:32, 18:22] = 0  # a dark vertical stroke on white paper
    Image.fromarray(pixels).save(image)
    result = subprocess.run(
        [sys.executable, "-m", "emnist_bench.predict", str(tmp_path), str(image), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(json.loads(result.stdout)["top"]) == 3
