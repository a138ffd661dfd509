"""Every option of every technique group builds the model it names."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from emnist_bench import config as config_lib
from emnist_bench.techniques import TECHNIQUE_GROUPS, options
from emnist_bench.training import fit as training
from tests.configs import compose_config
from tests.isa import needs_bfloat16_kernels

NUM_CLASSES = 47


def build(*overrides: str) -> tuple[keras.Model, object]:
    cfg = compose_config(list(overrides))
    config_lib.validate(cfg)
    return training.build_model(cfg, NUM_CLASSES), cfg


def hidden_layer_count(cfg) -> int:
    if cfg.model.family == "mlp":
        return len(cfg.model.hidden_units)
    return len(cfg.model.conv_filters) + len(cfg.model.dense_units)


def layers_of(model: keras.Model, kind: type) -> list:
    return [layer for layer in model.layers if isinstance(layer, kind)]


# Every option of every group that shapes a model, found in conf/ (a new YAML file is tested
# without touching this list) and built into both families; and every model and preset.
EVERY_OPTION = [
    *((f"model={family}", f"{group}={option}") for group in (*TECHNIQUE_GROUPS, "augment")
      for option in options(group) for family in ("mlp", "cnn")),
    *((f"model={option}",) for option in options("model")),
    *((f"+experiment={option}",) for option in options("experiment")),
]  # fmt: skip


@pytest.mark.parametrize("overrides", EVERY_OPTION, ids=" ".join)
def test_every_option_builds_a_model_with_47_outputs(overrides):
    model, cfg = build(*overrides)
    assert model.output_shape == (None, NUM_CLASSES)
    assert model.input_shape == (None, 28, 28)
    assert model.count_params() > 0
    if overrides[0].startswith("model="):
        assert cfg.model.family == overrides[0].removeprefix("model=")
    # Every compiled optimizer is the one named, with the configured learning rate.
    training.compile_model(model, cfg, prior=np.full(NUM_CLASSES, 1 / NUM_CLASSES))
    assert type(model.optimizer).__name__.lower() == cfg.optimizer.name.replace("_", "")
    assert float(model.optimizer.learning_rate) == pytest.approx(cfg.optimizer.learning_rate)


@pytest.mark.parametrize("family", ["mlp", "cnn"])
@pytest.mark.parametrize("state", ["on", "off"])
def test_batch_norm_layers_exist_exactly_when_on(family, state):
    model, cfg = build(f"model={family}", f"batch_norm={state}")
    norms = layers_of(model, keras.layers.BatchNormalization)
    assert len(norms) == (hidden_layer_count(cfg) if state == "on" else 0)


@pytest.mark.parametrize("family", ["mlp", "cnn"])
@pytest.mark.parametrize("kind", ["none", "l1", "l2", "l1_l2"])
def test_regularization_losses_exist_exactly_when_l1_or_l2(family, kind):
    model, cfg = build(f"model={family}", f"regularization={kind}")
    penalised = [
        layer for layer in model.layers if getattr(layer, "kernel_regularizer", None) is not None
    ]
    if kind == "none":
        assert penalised == [] and model.losses == []
        return
    assert len(penalised) == hidden_layer_count(cfg)
    assert len(model.losses) == hidden_layer_count(cfg)
    config = penalised[0].kernel_regularizer.get_config()
    assert config.get("l1", 0.0) == pytest.approx(cfg.regularization.l1 if "l1" in kind else 0.0)
    assert config.get("l2", 0.0) == pytest.approx(cfg.regularization.l2 if "l2" in kind else 0.0)


@pytest.mark.parametrize("family", ["mlp", "cnn"])
@pytest.mark.parametrize("state", ["on", "off"])
def test_dropout_layers_exist_exactly_when_on(family, state):
    model, cfg = build(f"model={family}", f"dropout={state}", "dropout.rate=0.3")
    dropouts = layers_of(model, keras.layers.Dropout)
    if state == "off":
        assert dropouts == []
    else:
        assert len(dropouts) == hidden_layer_count(cfg)
        assert {layer.rate for layer in dropouts} == {0.3}


@pytest.mark.parametrize("family", ["mlp", "cnn"])
@pytest.mark.parametrize("name", options("activation"))
def test_activations_are_the_named_ones(family, name):
    model, cfg = build(f"model={family}", f"activation={name}")
    if name == "leaky_relu":
        found = layers_of(model, keras.layers.LeakyReLU)
        assert {layer.negative_slope for layer in found} == {cfg.activation.negative_slope}
    else:
        found = [layer.activation.__name__ for layer in layers_of(model, keras.layers.Activation)]
        assert set(found) == {name}
    assert len(found) == hidden_layer_count(cfg)


def test_cnn_notebook_tuned_preset_has_per_layer_values():
    model, cfg = build("+experiment=cnn_notebook_tuned")
    assert cfg.optimizer.name == "rmsprop" and cfg.lr_schedule.name == "reduce_on_plateau"
    convs = layers_of(model, keras.layers.Conv2D)
    assert [c.filters for c in convs] == [64, 104]
    assert {c.kernel_size for c in convs} == {(5, 5)} and {c.padding for c in convs} == {"valid"}
    assert [d.rate for d in layers_of(model, keras.layers.Dropout)] == [0.12, 0.16, 0.08]
    activations = [a.activation.__name__ for a in layers_of(model, keras.layers.Activation)]
    assert activations == ["elu", "relu", "relu", "relu"]
    dense = [layer.units for layer in layers_of(model, keras.layers.Dense)]
    assert dense == [96, 112, 47]


def test_mlp_presets_reproduce_the_notebook():
    model, _ = build("+experiment=mlp_baseline")
    assert [layer.units for layer in layers_of(model, keras.layers.Dense)] == [128, 64, 32, 16, 47]
    assert [d.rate for d in layers_of(model, keras.layers.Dropout)] == [0.2, 0.2, 0.1, 0.1]
    assert len(model.losses) == 4  # L1+L2 on every hidden layer
    tuned, cfg = build("+experiment=mlp_notebook_tuned")
    assert [layer.units for layer in layers_of(tuned, keras.layers.Dense)] == [93, 8, 8, 47]
    assert len(layers_of(tuned, keras.layers.LeakyReLU)) == 1
    assert cfg.optimizer.name == "adam"


def test_cnn_baseline_matches_the_notebook():
    model, _ = build("+experiment=cnn_baseline")
    assert [c.filters for c in layers_of(model, keras.layers.Conv2D)] == [32, 64]
    assert len(layers_of(model, keras.layers.MaxPooling2D)) == 2
    assert [layer.units for layer in layers_of(model, keras.layers.Dense)] == [128, 64, 47]
    assert layers_of(model, keras.layers.Dropout) == []


def test_command_line_choice_beats_the_preset():
    _, cfg = build("+experiment=cnn_notebook_tuned", "optimizer=adam", "lr_schedule=constant")
    assert cfg.optimizer.name == "adam" and cfg.lr_schedule.name == "constant"


def test_pool_after_places_pooling_after_the_numbered_blocks():
    model, _ = build(
        "model=cnn", "model.conv_filters=[16,32,32,64]", "model.pool_after=[1,3]", "dropout=off"
    )
    maps = [layer.output.shape[1] for layer in layers_of(model, keras.layers.Conv2D)]
    assert maps == [28, 14, 14, 7]  # pooled after blocks 1 and 3 only
    pairs, _ = build("model=cnn", "model.conv_filters=[16,16,32,32]", "model.pool_every=2")
    assert [layer.output.shape[1] for layer in layers_of(pairs, keras.layers.Conv2D)] == [
        28, 28, 14, 14,
    ]  # fmt: skip


def test_pool_first_pools_before_normalization_and_activation():
    """model.pool_first moves each pooling layer to straight after its convolution: the same
    map sizes and weights, with batch norm and the activation on the pooled map."""
    overrides = ("model=cnn", "model.conv_filters=[16,32]", "batch_norm=on", "dropout=off")
    later, _ = build(*overrides)
    first, _ = build(*overrides, "model.pool_first=true")

    def kinds(model):
        wanted = (keras.layers.Conv2D, keras.layers.MaxPooling2D, keras.layers.BatchNormalization)
        return [type(layer).__name__ for layer in model.layers if isinstance(layer, wanted)]

    assert kinds(later)[:3] == ["Conv2D", "BatchNormalization", "MaxPooling2D"]
    assert kinds(first)[:3] == ["Conv2D", "MaxPooling2D", "BatchNormalization"]
    assert first.output.shape == later.output.shape
    assert first.count_params() == later.count_params()


@pytest.mark.parametrize("family", ["mlp", "cnn"])
def test_crop_cuts_the_frame_inside_the_model(family):
    """model.crop=2: every layer sees the inner 24x24 pixels, the model still takes 28x28
    images, and what it predicts depends on those pixels alone."""
    cropped, _ = build(f"model={family}", "model.crop=2", "dropout=off")
    full, _ = build(f"model={family}", "dropout=off")
    first = layers_of(cropped, keras.layers.Dense if family == "mlp" else keras.layers.Conv2D)[0]
    if family == "mlp":
        assert first.kernel.shape[0] == 24 * 24
    else:
        assert first.output.shape[1:3] == (24, 24)
        assert layers_of(full, keras.layers.Conv2D)[0].output.shape[1:3] == (28, 28)
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28)).astype("uint8")
    framed = images.copy()
    framed[:, :2], framed[:, -2:], framed[:, :, :2], framed[:, :, -2:] = 255, 255, 255, 255
    np.testing.assert_allclose(
        cropped.predict(images, verbose=0), cropped.predict(framed, verbose=0)
    )
    assert not np.allclose(full.predict(images, verbose=0), full.predict(framed, verbose=0))


@pytest.mark.parametrize(
    "policy", ["float32", pytest.param("mixed_bfloat16", marks=needs_bfloat16_kernels)]
)
def test_fused_batch_norm_trains_as_keras_batch_norm_does(policy):
    """The fused kernel gives Keras's outputs, gradients and moving statistics (up to the
    n / (n - 1) of the fused kernel's variance, 1.0003 here), in float32 and bfloat16."""
    from emnist_bench.models import BatchNormalization

    keras.mixed_precision.set_global_policy(policy)
    try:
        rng = np.random.default_rng(0)
        x = rng.normal(2.0, 3.0, (64, 7, 7, 8)).astype("float32")
        weights = rng.normal(0.0, 1.0, x.shape).astype("float32")  # a loss with real gradients
        plain = keras.layers.BatchNormalization(momentum=0.9)
        fused = BatchNormalization(momentum=0.9)
        import tensorflow as tf

        results = []
        for layer in (plain, fused):
            layer.build(x.shape)
            inputs = tf.constant(x, dtype=layer.compute_dtype)
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                outputs = layer(inputs, training=True)
                loss = tf.reduce_sum(tf.cast(outputs, "float32") * weights)
            gradients = tape.gradient(loss, [inputs, layer.gamma, layer.beta])
            results.append([np.asarray(tf.cast(t, "float32")) for t in (outputs, *gradients)])
        tolerance = 1e-4 if policy == "float32" else 0.05
        for ours, theirs in zip(results[1], results[0], strict=True):
            np.testing.assert_allclose(ours, theirs, atol=tolerance * max(1, np.abs(theirs).max()))
        np.testing.assert_allclose(fused.moving_mean, plain.moving_mean, atol=1e-5)
        np.testing.assert_allclose(fused.moving_variance, plain.moving_variance, rtol=1e-3)
        inference = [np.asarray(layer(x, training=False), "float32") for layer in (plain, fused)]
        np.testing.assert_allclose(inference[1], inference[0], atol=tolerance * 10)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_cnn_batch_norm_is_the_fused_layer():
    from emnist_bench.models import BatchNormalization

    model, _ = build("model=cnn", "batch_norm=on")
    assert layers_of(model, BatchNormalization)


def test_members_build_an_ensemble_of_the_configured_network():
    from emnist_bench.ensemble import Ensemble

    model, _ = build("+experiment=best_cnn", "model.members=3")
    assert isinstance(model, Ensemble)
    assert [member.name for member in model.members] == ["best_cnn_1", "best_cnn_2", "best_cnn_3"]
    single, _ = build("+experiment=best_cnn", "model.members=1")
    assert model.count_params() == 3 * single.count_params()


DENSE = "model.dense_units=[16]"
KERAS_ONLY = [
    ("model=mlp", "batch_norm=on", "model.hidden_units=[16,12,8]"),
    ("model=cnn", "batch_norm=on", "augment=light", "model.conv_filters=[8,8]", DENSE),
    ("model=cnn", "batch_norm=on", "model.members=2", "model.conv_filters=[8,8]", DENSE),
]


@pytest.mark.parametrize(
    "policy", ["float32", pytest.param("mixed_bfloat16", marks=needs_bfloat16_kernels)]
)
@pytest.mark.parametrize("overrides", KERAS_ONLY, ids=lambda o: "-".join(o[:3]))
def test_the_saved_form_is_keras_only_and_predicts_the_same(tmp_path, overrides, policy):
    """What a run saves (``models.standard_keras``) names no class of this package and gives
    the trained model's probabilities exactly, batch statistics and ensemble included."""
    import zipfile

    from emnist_bench.models import standard_keras

    keras.mixed_precision.set_global_policy(policy)
    try:
        model, cfg = build(*overrides)
        training.compile_model(model, cfg)
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)
        model.fit(x, rng.integers(0, NUM_CLASSES, 64), epochs=1, batch_size=32, verbose=0)
        plain = standard_keras(model)
        assert type(plain) is keras.Model or type(plain).__module__.startswith("keras.")
        np.testing.assert_array_equal(plain.predict(x, verbose=0), model.predict(x, verbose=0))
        assert plain.count_params() == model.count_params()
        plain.save(tmp_path / "model.keras")
        with zipfile.ZipFile(tmp_path / "model.keras") as saved:
            assert "emnist_bench" not in saved.read("config.json").decode()
        # Weights saved while training (trainer.callbacks checkpoints) load into the saved form.
        model.save_weights(tmp_path / "epoch.weights.h5")
        again = standard_keras(model)
        again.set_weights([np.zeros_like(weights) for weights in again.get_weights()])
        again.load_weights(tmp_path / "epoch.weights.h5")
        np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_a_layer_without_a_keras_equivalent_is_refused():
    from emnist_bench.models import standard_keras

    class Doubling(keras.layers.Layer):
        def call(self, inputs):
            return inputs * 2

    inputs = keras.Input((3,))
    model = keras.Model(inputs, Doubling()(inputs))
    with pytest.raises(TypeError, match="no Keras equivalent for .*Doubling"):
        standard_keras(model)


def test_a_model_file_that_names_the_fused_layer_still_loads(tmp_path):
    """Older runs saved the training layer itself, as ``emnist_bench>FusedBatchNormalization``."""
    from emnist_bench.models import FusedBatchNormalization, load_model

    inputs = keras.Input((28, 28))
    x = keras.layers.Reshape((28, 28, 1))(inputs)
    x = keras.layers.Conv2D(4, 3)(x)
    x = FusedBatchNormalization(momentum=0.5)(x)
    model = keras.Model(inputs, keras.layers.Flatten()(x))
    images = np.random.default_rng(0).integers(0, 256, (8, 28, 28)).astype("float32")
    model.compile(optimizer="sgd", loss="mse")
    model.fit(images, np.ones((8, 26 * 26 * 4)), epochs=1, verbose=0)  # moving statistics move
    model.save(tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras")
    assert isinstance(loaded.layers[3], FusedBatchNormalization)
    np.testing.assert_array_equal(
        loaded.predict(images, verbose=0), model.predict(images, verbose=0)
    )


@pytest.mark.parametrize(
    "overrides",
    [
        ("model.conv_filters=[8,8,8]", "model.padding=valid"),  # 28 > 26 > 13 > 11 > 6 > 4: fits
        ("model.conv_filters=[8,8,8,8]", "model.padding=valid"),  # block 4 gets 2x2
        ("model.conv_filters=[8,8,8,8]", "model.padding=valid", "model.pooling=none"),  # 20x20
        ("model.conv_filters=[8,8,8]", "model.padding=valid", "model.kernel_size=[5,5,7]"),
        ("model.conv_filters=[8,8,8]", "model.padding=valid", "model.kernel_size=[5,5,4]"),  # 1x1
        ("model.conv_filters=[8,8,8,8]", "model.padding=valid", "model.pool_after=[1,2]"),
        ("model.conv_filters=[8,8]", "model.kernel_size=[3,3,3]"),
        ("model.conv_filters=[8,8,8]", "model.padding=valid", "model.crop=2", "model.pool_size=3"),
    ],
)
def test_a_cnn_the_config_refuses_is_one_keras_cannot_build(overrides):
    """validate refuses exactly the networks whose maps would vanish (or whose kernel sizes do
    not match the blocks): Keras builds every other one."""
    cfg = compose_config(["model=cnn", *overrides])
    try:
        config_lib.validate(cfg)
    except config_lib.ConfigError as refused:
        with pytest.raises(ValueError):
            training.build_model(cfg, NUM_CLASSES)
        assert str(refused).startswith("model")
    else:
        assert training.build_model(cfg, NUM_CLASSES).output_shape == (None, NUM_CLASSES)
