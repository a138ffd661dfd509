"""``trainer.precision=auto`` picks by measurement, caches the choice, and leaves a run's
initial weights as they would have been without measuring."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from emnist_bench.training import precision as precision_lib
from emnist_bench.training import runtime
from tests.configs import compose_config

MLP = ["model=mlp", "model.hidden_units=[32,16,8]", "trainer.batch_size=32"]
LONG = precision_lib.MEASURE_FROM  # training images per epoch: long enough to measure


class FakeTimer:
    def __init__(self, seconds: dict[str, float]):
        self.seconds, self.calls = seconds, 0

    def __call__(self, cfg, num_classes, policies):
        self.calls += 1
        assert policies == precision_lib.CPU_CANDIDATES
        return dict(self.seconds)


@pytest.fixture
def bfloat16_cpu(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_bfloat16", lambda: True)
    monkeypatch.setattr(precision_lib.tf.config, "list_physical_devices", lambda kind=None: [])


def choose(tmp_path, timer, *overrides):
    cfg = compose_config([*MLP, *overrides])
    return precision_lib.choose_precision(cfg, 47, LONG, tmp_path, measure=timer)


def test_a_named_precision_is_taken_as_it_is(tmp_path, bfloat16_cpu):
    timer = FakeTimer({"float32": 1.0, "mixed_bfloat16": 0.1})
    assert choose(tmp_path, timer, "trainer.precision=float32") == "float32"
    assert choose(tmp_path, timer, "trainer.precision=mixed_bfloat16") == "mixed_bfloat16"
    assert timer.calls == 0


def test_a_cpu_without_bfloat16_trains_in_float32_without_measuring(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_bfloat16", lambda: False)
    monkeypatch.setattr(precision_lib.tf.config, "list_physical_devices", lambda kind=None: [])
    timer = FakeTimer({"float32": 1.0, "mixed_bfloat16": 0.1})
    assert choose(tmp_path, timer) == "float32" and timer.calls == 0


@pytest.mark.parametrize(
    ("bfloat16_seconds", "expected"),
    [(0.50, "mixed_bfloat16"), (0.94, "mixed_bfloat16"), (0.97, "float32"), (1.30, "float32")],
)
def test_bfloat16_must_be_clearly_faster(tmp_path, bfloat16_cpu, bfloat16_seconds, expected):
    timer = FakeTimer({"float32": 1.0, "mixed_bfloat16": bfloat16_seconds})
    assert choose(tmp_path, timer) == expected


def test_the_choice_is_measured_once_per_model(tmp_path, bfloat16_cpu):
    timer = FakeTimer({"float32": 1.0, "mixed_bfloat16": 0.5})
    assert choose(tmp_path, timer) == "mixed_bfloat16"
    assert choose(tmp_path, timer, "trainer.seed=7", "optimizer=sgd") == "mixed_bfloat16"
    assert timer.calls == 1  # the same network and batch: the cached choice
    choose(tmp_path, timer, "model.hidden_units=[64,16,8]")
    choose(tmp_path, timer, "trainer.batch_size=64")
    assert timer.calls == 3
    cached = json.loads((tmp_path / precision_lib.CACHE).read_text())
    assert len(cached) == 3
    assert {entry["policy"] for entry in cached.values()} == {"mixed_bfloat16"}


def test_a_short_run_goes_by_the_cpu_flags_without_measuring(tmp_path, bfloat16_cpu):
    timer = FakeTimer({"float32": 0.5, "mixed_bfloat16": 1.0})
    cfg = compose_config([*MLP, "trainer.epochs=2"])
    short = precision_lib.MEASURE_FROM // 2 - 1
    assert precision_lib.choose_precision(cfg, 47, short, tmp_path, timer) == "mixed_bfloat16"
    assert timer.calls == 0
    assert precision_lib.choose_precision(cfg, 47, short + 1, tmp_path, timer) == "float32"
    assert timer.calls == 1


def test_a_damaged_cache_is_measured_again(tmp_path, bfloat16_cpu):
    (tmp_path / precision_lib.CACHE).write_text("{not json")
    timer = FakeTimer({"float32": 1.0, "mixed_bfloat16": 0.5})
    assert choose(tmp_path, timer) == "mixed_bfloat16" and timer.calls == 1
    assert json.loads((tmp_path / precision_lib.CACHE).read_text())


def test_real_measurement_times_both_policies_and_keeps_the_seed(tmp_path, bfloat16_cpu):
    cfg = compose_config([*MLP, "trainer.seed=3"])
    keras.utils.set_random_seed(3)
    expected = keras.random.uniform((4,), seed=None)
    keras.utils.set_random_seed(3)
    policy = precision_lib.choose_precision(cfg, 47, LONG, tmp_path)
    after = keras.random.uniform((4,), seed=None)
    np.testing.assert_array_equal(np.asarray(after), np.asarray(expected))
    entry = next(iter(json.loads((tmp_path / precision_lib.CACHE).read_text()).values()))
    assert entry["policy"] == policy
    assert set(entry["seconds_per_step"]) == {"float32", "mixed_bfloat16"}
    assert all(seconds > 0 for seconds in entry["seconds_per_step"].values())
    keras.mixed_precision.set_global_policy("float32")
