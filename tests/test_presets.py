"""The best presets (``+experiment=best_cnn``, ``best_mlp``) and the speedrun
(``+experiment=speedrun_cnn``) build what they claim; the notebook presets' old names still
compose, with a deprecation line."""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from emnist_bench import config as config_lib
from emnist_bench import config_dir
from emnist_bench.aliases import RENAMED, deprecation_lines
from emnist_bench.training import fit as training
from tests.configs import compose_config

NUM_CLASSES = 47


@pytest.mark.parametrize("preset", ["best_cnn", "speedrun_cnn", "speedrun_cnn_avx2"])
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


def test_the_avx2_speedrun_is_the_speedrun_at_about_half_the_arithmetic():
    """Multiply-adds of the convolutions and dense layers per image, from the built models."""

    def multiply_adds(preset: str) -> int:
        model = training.build_model(compose_config([f"+experiment={preset}"]), NUM_CLASSES)
        total = 0
        for layer in model.layers:
            if isinstance(layer, keras.layers.Conv2D):
                _, height, width, filters = layer.output.shape
                total += height * width * filters * int(np.prod(layer.kernel.shape[:-1]))
            elif isinstance(layer, keras.layers.Dense):
                total += int(np.prod(layer.kernel.shape))
        return total

    ratio = multiply_adds("speedrun_cnn_avx2") / multiply_adds("speedrun_cnn")
    assert 0.4 < ratio < 0.6
    cfg = compose_config(["+experiment=speedrun_cnn_avx2"])
    assert cfg.trainer.batch_size == 256 and cfg.trainer.epochs == 10


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


def test_best_cnn_is_the_speedrun_as_an_ensemble_of_three():
    best = OmegaConf.to_container(compose_config(["+experiment=best_cnn"]), resolve=True)
    speedrun = OmegaConf.to_container(compose_config(["+experiment=speedrun_cnn"]), resolve=True)
    assert (best["model"].pop("name"), speedrun["model"].pop("name")) == (
        "best_cnn",
        "speedrun_cnn",
    )
    assert (best["model"].pop("members"), speedrun["model"].pop("members")) == (3, 1)
    assert best == speedrun
    preset = OmegaConf.load(config_dir() / "experiment" / "best_cnn.yaml")
    assert list(preset) == ["defaults", "model"] and set(preset.model) == {"name", "members"}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (["+experiment=mlp_seed_tuned"], ["+experiment=mlp_notebook_tuned"]),
        (["+experiment=cnn_seed_tuned"], ["+experiment=cnn_notebook_tuned"]),
        (["+sweep=seed_report", "+experiment=cnn_seed_tuned"],
         ["+sweep=notebook_report", "+experiment=cnn_notebook_tuned"]),
    ],
)  # fmt: skip
def test_the_notebook_presets_old_names_compose_the_new_ones(old, new):
    assert OmegaConf.to_container(compose_config(old, hydra=True).hydra.sweeper) == (
        OmegaConf.to_container(compose_config(new, hydra=True).hydra.sweeper)
    )
    assert compose_config(old) == compose_config(new)


def test_an_old_name_is_one_deprecation_line_naming_the_new_one():
    assert deprecation_lines(["-m", "+experiment=mlp_seed_tuned,cnn_baseline", "model=cnn"]) == [
        "warning: experiment=mlp_seed_tuned is deprecated and goes in the next release; "
        "use experiment=mlp_notebook_tuned"
    ]
    assert deprecation_lines(["+sweep=seed_report", "+experiment=mlp_notebook_tuned"]) == [
        "warning: sweep=seed_report is deprecated and goes in the next release; "
        "use sweep=notebook_report"
    ]
    assert set(RENAMED) == {"experiment", "sweep"} and all(
        (config_dir() / group / f"{new}.yaml").is_file() and new not in names
        for group, names in RENAMED.items()
        for new in names.values()
    )
    result = subprocess.run(
        [sys.executable, "-m", "emnist_bench", "--cfg", "job", "+experiment=cnn_seed_tuned"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "name: cnn_notebook_tuned" in result.stdout
    assert result.stderr.splitlines() == [
        "warning: experiment=cnn_seed_tuned is deprecated and goes in the next release; "
        "use experiment=cnn_notebook_tuned"
    ]
