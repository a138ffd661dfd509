"""Building and compiling the configured model (emnist_bench.training.fit): augmentation, label
smoothing, the logit-adjusted loss and weight decay, as the best presets use them."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from emnist_bench.training import fit as training
from emnist_bench.training import inputs, losses
from tests.configs import compose_config

NUM_CLASSES = 47
AUGMENT_LAYERS = (keras.layers.RandomRotation, keras.layers.RandomTranslation,
                  keras.layers.RandomZoom)  # fmt: skip


def layer_types(model: keras.Model) -> set[type]:
    return {type(layer) for layer in model.layers}


@pytest.mark.parametrize("family", ["mlp", "cnn"])
def test_augmentation_layers_exist_exactly_when_on_and_only_act_in_training(family):
    plain = training.build_model(compose_config([f"model={family}"]), NUM_CLASSES)
    assert not layer_types(plain) & set(AUGMENT_LAYERS)

    cfg = compose_config([f"model={family}", "augment=strong"])
    model = training.build_model(cfg, NUM_CLASSES)
    assert set(AUGMENT_LAYERS) <= layer_types(model)
    rotation = next(layer for layer in model.layers if isinstance(layer, AUGMENT_LAYERS[0]))
    assert rotation.factor == (pytest.approx(-15 / 360), pytest.approx(15 / 360))

    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    inference = [model(images, training=False).numpy() for _ in range(2)]
    np.testing.assert_allclose(inference[0], inference[1])
    keras.utils.set_random_seed(1)
    trained = model(images, training=True).numpy()
    assert not np.allclose(trained, inference[0], atol=1e-6)


def test_label_smoothing_uses_one_hot_targets_and_the_configured_factor():
    cfg = compose_config(["model=mlp", "trainer.label_smoothing=0.1"])
    model = training.build_model(cfg, NUM_CLASSES)
    training.compile_model(model, cfg)
    assert isinstance(model.loss, keras.losses.CategoricalCrossentropy)
    assert model.loss.get_config()["label_smoothing"] == pytest.approx(0.1)
    images = np.zeros((6, 28, 28), np.uint8)
    batch = inputs.make_dataset(images, np.arange(6), batch_size=6, shuffle=False, seed=0,
                                  num_classes=NUM_CLASSES)  # fmt: skip
    _, targets = next(iter(batch))
    assert targets.shape == (6, NUM_CLASSES)
    np.testing.assert_array_equal(targets.numpy().argmax(1), np.arange(6))

    plain = compose_config(["model=mlp"])
    model = training.build_model(plain, NUM_CLASSES)
    training.compile_model(model, plain)
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)


def test_logit_adjustment_is_compiled_in_with_the_prior_and_smoothing():
    cfg = compose_config(
        ["model=mlp", "data.class_weight=logit_adjusted", "trainer.label_smoothing=0.1"]
    )
    model = training.build_model(cfg, NUM_CLASSES)
    with pytest.raises(ValueError, match="needs the training class prior"):
        training.compile_model(model, cfg)
    prior = np.full(NUM_CLASSES, 1 / NUM_CLASSES)
    training.compile_model(model, cfg, prior)
    assert isinstance(model.loss, losses.LogitAdjustedCrossentropy)
    assert model.loss.get_config()["label_smoothing"] == pytest.approx(0.1)
    assert model.loss.get_config()["prior"] == pytest.approx(list(prior))


def test_weight_decay_reaches_the_optimizer():
    cfg = compose_config(["model=mlp", "optimizer=adamw", "optimizer.weight_decay=0.003"])
    model = training.build_model(cfg, NUM_CLASSES)
    training.compile_model(model, cfg)
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    assert model.optimizer.weight_decay == pytest.approx(0.003)


@pytest.mark.parametrize(
    ("optimizer", "keras_class"),
    [
        ("sgd", keras.optimizers.SGD),
        ("rmsprop", keras.optimizers.RMSprop),
        ("adam", keras.optimizers.Adam),
    ],
)
def test_a_presets_weight_decay_holds_for_the_optimizer_swapped_in(optimizer, keras_class):
    cfg = compose_config(["+experiment=speedrun_cnn", f"optimizer={optimizer}"])
    model = training.build_model(cfg, NUM_CLASSES)
    training.compile_model(model, cfg, prior=np.full(NUM_CLASSES, 1 / NUM_CLASSES))
    assert type(model.optimizer) is keras_class
    assert model.optimizer.weight_decay == pytest.approx(0.0005)  # speedrun_cnn's


def test_no_weight_decay_unless_asked_for():
    cfg = compose_config(["model=mlp", "optimizer=sgd"])
    model = training.build_model(cfg, NUM_CLASSES)
    training.compile_model(model, cfg)
    assert model.optimizer.weight_decay is None  # not 0.0: Keras then skips the decay's ops


def test_trainer_callbacks_are_made_from_hydra_targets(tmp_path):
    cfg = compose_config(
        [
            "trainer.callbacks=[{_target_:keras.callbacks.ModelCheckpoint,"
            f"filepath:'{tmp_path}/{{epoch:02d}}.weights.h5',save_weights_only:true}}]"
        ]
    )
    (made,) = training.user_callbacks(cfg.trainer.callbacks)
    assert isinstance(made, keras.callbacks.ModelCheckpoint)
    assert made.filepath == f"{tmp_path}/{{epoch:02d}}.weights.h5" and made.save_weights_only


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{_target_:keras.callbacks.NoSuchCallback}", r"trainer.callbacks\[0\]: .*NoSuchCallback"),
        ("{_target_:collections.OrderedDict}", r"made a OrderedDict, not a keras.callbacks"),
        # Hydra names the target on one line and the reason on the next: both are kept.
        ("{_target_:keras.callbacks.ModelCheckpoint}", r"ModelCheckpoint'?: .*filepath"),
    ],
)
def test_a_wrong_trainer_callback_is_one_config_error(spec, message):
    from emnist_bench.errors import ConfigError

    cfg = compose_config([f"trainer.callbacks=[{spec}]"])
    with pytest.raises(ConfigError, match=message) as error:
        training.user_callbacks(cfg.trainer.callbacks)
    assert "\n" not in str(error.value)
