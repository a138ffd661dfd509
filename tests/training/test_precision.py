"""``trainer.precision=auto`` picks by measurement, caches the choice, and leaves a run's
initial weights as they would have been without measuring."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from emnist_bench import provenance
from emnist_bench.training import precision as precision_lib
from emnist_bench.training import runtime
from tests.configs import compose_config
from tests.isa import needs_bfloat16_kernels

MLP = ["model=mlp", "model.hidden_units=[32,16,8]", "trainer.batch_size=32"]
LONG = precision_lib.MEASURE_FROM  # training images per epoch: long enough to measure


class FakeTimer:
    """Seconds per step for each policy: the same every call, or one dict per call in turn."""

    def __init__(self, seconds: dict[str, float] | list[dict[str, float]]):
        self.seconds, self.calls = seconds, 0

    def __call__(self, cfg, num_classes, policies):
        self.calls += 1
        assert policies == precision_lib.CPU_CANDIDATES
        if isinstance(self.seconds, list):
            return dict(self.seconds[self.calls - 1])
        return dict(self.seconds)


@pytest.fixture
def bfloat16_cpu(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_bfloat16", lambda: True)
    monkeypatch.setattr(precision_lib.tf.config, "list_physical_devices", lambda kind=None: [])


@pytest.fixture
def amx_cpu(monkeypatch):
    """A CPU whose flags list AMX and AVX512-BF16, no GPU, and no ISA cap until a test sets one."""
    flags = {"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"}
    monkeypatch.setattr(provenance, "cpu_flags", lambda cpuinfo=None: flags)
    monkeypatch.setattr(precision_lib.tf.config, "list_physical_devices", lambda kind=None: [])
    for name in provenance.ISA_CAP_VARIABLES:
        monkeypatch.delenv(name, raising=False)


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


def test_the_choice_is_measured_twice_per_model_then_cached(tmp_path, bfloat16_cpu):
    timer = FakeTimer({"float32": 1.0, "mixed_bfloat16": 0.5})
    assert choose(tmp_path, timer) == "mixed_bfloat16"
    assert choose(tmp_path, timer, "trainer.seed=7") == "mixed_bfloat16"
    assert timer.calls == precision_lib.MEASUREMENTS == 2
    assert choose(tmp_path, timer, "trainer.seed=8", "optimizer=sgd") == "mixed_bfloat16"
    assert timer.calls == 2  # the same network and batch: the cached choice
    choose(tmp_path, timer, "model.hidden_units=[64,16,8]")
    choose(tmp_path, timer, "trainer.batch_size=64")
    assert timer.calls == 4
    cached = json.loads((tmp_path / precision_lib.CACHE).read_text())
    assert len(cached) == 3
    assert {entry["policy"] for entry in cached.values()} == {"mixed_bfloat16"}
    assert sorted(entry["measurements"] for entry in cached.values()) == [1, 1, 2]


def test_a_measurement_in_a_slow_spell_is_overruled_by_the_next(tmp_path, bfloat16_cpu):
    """A slow spell made bfloat16 look slower; the next run's faster steps decide, pooled."""
    slow_spell = {"float32": 0.130, "mixed_bfloat16": 0.160}
    quiet = {"float32": 0.135, "mixed_bfloat16": 0.094}
    timer = FakeTimer([slow_spell, quiet])
    assert choose(tmp_path, timer) == "float32"
    assert choose(tmp_path, timer) == "mixed_bfloat16"
    assert choose(tmp_path, timer) == "mixed_bfloat16" and timer.calls == 2
    entry = next(iter(json.loads((tmp_path / precision_lib.CACHE).read_text()).values()))
    assert entry["seconds_per_step"] == {"float32": 0.130, "mixed_bfloat16": 0.094}


def test_a_choice_cached_without_a_count_is_measured_once_more(tmp_path, bfloat16_cpu):
    timer = FakeTimer({"float32": 1.0, "mixed_bfloat16": 0.5})
    choose(tmp_path, timer)
    path = tmp_path / precision_lib.CACHE
    cached = json.loads(path.read_text())
    for entry in cached.values():
        del entry["measurements"]
        entry["policy"] = "float32"
    path.write_text(json.dumps(cached))
    assert choose(tmp_path, timer) == "mixed_bfloat16" and timer.calls == 2
    assert choose(tmp_path, timer) == "mixed_bfloat16" and timer.calls == 2


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


@needs_bfloat16_kernels
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


@pytest.mark.parametrize(
    ("model", "policy", "hinted"),
    [
        ("speedrun_cnn", "float32", True),
        ("speedrun_cnn", "mixed_bfloat16", False),
        ("speedrun_cnn_avx2", "float32", False),
        ("best_cnn", "float32", False),
    ],
)
def test_the_speedrun_in_float32_names_the_preset_sized_for_it(model, policy, hinted):
    hint = precision_lib.speedrun_hint(model, policy)
    assert (hint is not None) == hinted
    if hinted:
        assert "+experiment=speedrun_cnn_avx2" in hint and "\n" not in hint


@pytest.mark.parametrize("variable", provenance.ISA_CAP_VARIABLES)
def test_auto_is_float32_without_measuring_under_a_cap_below_bfloat16(
    tmp_path, amx_cpu, monkeypatch, variable
):
    """/proc/cpuinfo still lists AMX under ``ONEDNN_MAX_CPU_ISA=AVX2``, where bfloat16 fails."""
    timer = FakeTimer({"float32": 1.0, "mixed_bfloat16": 0.1})
    assert choose(tmp_path, timer) == "mixed_bfloat16" and timer.calls == 1
    monkeypatch.setenv(variable, "AVX2")
    assert choose(tmp_path, timer) == "float32"
    cfg = compose_config([*MLP, "trainer.epochs=1"])
    assert precision_lib.choose_precision(cfg, 47, 10, tmp_path, timer) == "float32"  # short
    assert timer.calls == 1


def test_a_choice_measured_without_the_cap_is_not_reused_under_it(tmp_path, amx_cpu, monkeypatch):
    """Capped at AVX512_CORE_BF16, an AMX machine still runs bfloat16, more slowly: measured
    apart, and cached apart."""
    uncapped = FakeTimer({"float32": 1.0, "mixed_bfloat16": 0.5})
    for _ in range(precision_lib.MEASUREMENTS):
        assert choose(tmp_path, uncapped) == "mixed_bfloat16"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx512_core_bf16")
    capped = FakeTimer({"float32": 1.0, "mixed_bfloat16": 1.2})
    for _ in range(precision_lib.MEASUREMENTS + 1):
        assert choose(tmp_path, capped) == "float32"
    assert capped.calls == precision_lib.MEASUREMENTS  # then cached under the cap
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert choose(tmp_path, capped) == "mixed_bfloat16"  # the uncapped one
    assert capped.calls == precision_lib.MEASUREMENTS
    cached = json.loads((tmp_path / precision_lib.CACHE).read_text())
    assert sorted(entry["policy"] for entry in cached.values()) == ["float32", "mixed_bfloat16"]
    assert any("oneDNN capped at AVX512_CORE_BF16" in entry["cpu"] for entry in cached.values())


CAPPED_RUN = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    from emnist_bench.run import run
    from tests.configs import compose_config, smoke_overrides
    from tests.emnist_files import write_tiny_split

    out = Path(sys.argv[1])
    write_tiny_split(out / "emnist", per_class=4, layout="idx")
    overrides = smoke_overrides(
        out / "emnist", "false", "data.val_size=47", "model=cnn", "model.conv_filters=[4,8]",
        "model.dense_units=[16]", "batch_norm=on", "trainer.precision=auto",
    )
    print(json.dumps(run(compose_config(overrides, out / "run"))["status"]))
    """
)


def test_under_an_avx2_cap_auto_trains_a_cnn_in_float32(tmp_path):
    """oneDNN reads the cap once, as TensorFlow starts, so the run gets a process of its own;
    in bfloat16 its first convolution would fail there, even on a CPU with AMX."""
    environ = {name: value for name, value in os.environ.items() if "MAX_CPU_ISA" not in name}
    done = subprocess.run(
        [sys.executable, "-c", CAPPED_RUN, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
        env={**environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "MPLBACKEND": "Agg"},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_run"] == 1
    described = metrics["provenance"]
    assert described["precision"] == "float32"
    assert described["onednn_max_cpu_isa"] == "AVX2"
    assert described["cpu"].endswith("; oneDNN capped at AVX2)")
