"""The best presets (``+experiment=best_cnn``, ``+experiment=best_mlp``) build what they claim."""

from __future__ import annotations

import keras

from emnist_bench import config as config_lib
from emnist_bench.training import fit as training
from tests.configs import compose_config

NUM_CLASSES = 47


def test_best_cnn_is_convolutions_and_a_dense_head():
    cfg = compose_config(["+experiment=best_cnn"])
    config_lib.validate(cfg)
    model = training.build_model(cfg, NUM_CLASSES)
    kinds = [type(layer) for layer in model.layers]
    convs = [i for i, kind in enumerate(kinds) if kind is keras.layers.Conv2D]
    dense = [i for i, kind in enumerate(kinds) if kind is keras.layers.Dense]
    assert len(convs) == len(cfg.model.conv_filters) >= 2
    assert len(dense) == len(cfg.model.dense_units) + 1 and min(dense) > max(convs)
    assert cfg.data.class_weight == "logit_adjusted" and cfg.trainer.label_smoothing > 0


def test_best_mlp_has_only_dense_layers_with_batch_norm_and_dropout():
    cfg = compose_config(["+experiment=best_mlp"])
    config_lib.validate(cfg)
    model = training.build_model(cfg, NUM_CLASSES)
    allowed = (keras.layers.InputLayer, keras.layers.Rescaling, keras.layers.Flatten,
               keras.layers.Dense, keras.layers.BatchNormalization, keras.layers.Activation,
               keras.layers.Dropout)  # fmt: skip
    assert all(isinstance(layer, allowed) for layer in model.layers)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert len(dense) == len(cfg.model.hidden_units) + 1 >= 4
