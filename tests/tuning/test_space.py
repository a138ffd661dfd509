"""The search space: declared from ``conf/search_space``, checked, and mapped back to whole
config groups (emnist_bench.tuning.space)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from emnist_bench.errors import ConfigError
from tests.configs import compose_config


def test_a_trial_fragment_holds_whole_groups():
    from emnist_bench.config import apply_hparams
    from emnist_bench.tuning.space import hparams_fragment

    cfg = compose_config(["optimizer=adamw", "dropout=off"])
    values = {
        "layers": 4,
        "batch_norm": True,
        "regularization": "l2",
        "regularization_strength": 3e-5,
        "optimizer": "sgd",
        "learning_rate": 0.0123456789,
        **{f"units_{i}": 32 * i for i in range(1, 5)},
        **{f"activation_{i}": "elu" for i in range(1, 5)},
        **{f"dropout_{i}": 0.1 * i for i in range(1, 5)},
    }
    fragment = hparams_fragment(cfg, values)
    assert fragment.model.hidden_units == [32, 64, 96, 128]
    assert fragment.model.dropout_rates == [0.1, 0.2, 0.3, 0.4]  # 0.30000000000000004 rounded
    assert fragment.dropout.enabled is True
    assert fragment.batch_norm.enabled is True
    assert OmegaConf.to_container(fragment.regularization) == {"name": "l2", "l1": 0.0, "l2": 3e-5}
    # sgd comes with the momentum of conf/optimizer/sgd.yaml; adamw's weight decay is gone.
    optimizer = OmegaConf.to_container(apply_hparams(cfg, fragment).optimizer)
    assert optimizer == {
        "name": "sgd",
        "learning_rate": 0.0123457,
        "weight_decay": None,
        "momentum": 0.9,
        "nesterov": True,
    }


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ("+search_space.mlp.unitz={type:int,min:1,max:2}", "unknown entries ['unitz']"),
        ("search_space.mlp.units.type=integer", "search_space.mlp.units="),
        ("search_space.mlp.optimizer.values=[adam,adamm]", "['adamm']"),
        ("search_space.mlp.learning_rate.min=0", "search_space.mlp.learning_rate="),
    ],
)
def test_a_bad_search_space_is_one_config_error(override, problem):
    import keras_tuner as kt

    from emnist_bench.tuning.space import declare_space

    cfg = compose_config([override])
    with pytest.raises(ConfigError, match=problem.replace("[", r"\[")) as raised:
        declare_space(kt.HyperParameters(), cfg)
    assert "\n" not in str(raised.value)
