"""The best presets (``+experiment=best_cnn``, ``best_mlp``) and the speedrun
(``+experiment=speedrun_cnn``) build what they claim."""

from __future__ import annotations

import keras
import pytest

from emnist_bench import config as config_lib
from emnist_bench.training import fit as training
from tests.configs import compose_config

NUM_CLASSES = 47


@pytest.mark.parametrize("preset", ["best_cnn", "speedrun_cnn"])
def test_cnn_presets_are_convolutions_and_a_dense_head(preset):
    cfg = compose_config([f"+experiment={preset}"])
    config_lib.validate(cfg)
    model = training.build_model(cfg, NUM_CLASSES)
    members = getattr(model, "members", [model])  # best_cnn is an ensemble
    assert len(members) == cfg.model.members
    kinds = [type(layer) for layer in members[0].layers]
    convs = [i for i, kind in enumerate(kinds) if kind is keras.layers.Conv2D]
    dense = [i for i, kind in enumerate(kinds) if kind is keras.layers.Dense]
    assert len(convs) == len(cfg.model.conv_filters) >= 2
    assert len(dense) == len(cfg.model.dense_units) + 1 and min(dense) > max(convs)
    assert cfg.data.class_weight == "logit_adjusted" and cfg.trainer.label_smoothing > 0


def test_best_mlp_is_networks_of_only_dense_layers_with_batch_norm_and_dropout():
    cfg = compose_config(["+experiment=best_mlp"])
    config_lib.validate(cfg)
    model = training.build_model(cfg, NUM_CLASSES)
    members = getattr(model, "members", [model])  # an ensemble of MLPs: still no convolutions
    assert len(members) == cfg.model.members
    allowed = (keras.layers.InputLayer, keras.layers.Rescaling, keras.layers.Flatten,
               keras.layers.Dense, keras.layers.BatchNormalization, keras.layers.Activation,
               keras.layers.Dropout)  # fmt: skip
    for member in members:
        assert all(isinstance(layer, allowed) for layer in member.layers)
        dense = [layer for layer in member.layers if isinstance(layer, keras.layers.Dense)]
        assert len(dense) == len(cfg.model.hidden_units) + 1 >= 4


def test_the_speedrun_trains_a_fixed_number_of_epochs():
    """Its 10-minute budget is for a known amount of work: no early stop cuts it short."""
    cfg = compose_config(["+experiment=speedrun_cnn"])
    assert not cfg.trainer.early_stopping.enabled and cfg.lr_schedule.name == "cosine"
    assert cfg.model.name == "speedrun_cnn" and cfg.model.family == "cnn"
