"""Precision policies and the CPU's bfloat16 support (emnist_bench.training.runtime)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from emnist_bench import config as config_lib
from emnist_bench import provenance
from emnist_bench.errors import ConfigError
from emnist_bench.training import fit as training
from emnist_bench.training import runtime
from tests.configs import compose_config

NUM_CLASSES = 47


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("fpu sse2 avx2 avx512f", False),
        ("fpu avx2 avx512f avx512_bf16", True),
        ("fpu avx2 amx_tile amx_bf16", True),
    ],
)
def test_cpu_bfloat16_is_read_from_the_cpu_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n")
    assert runtime.cpu_has_bfloat16(cpuinfo) is expected
    assert runtime.cpu_has_bfloat16(tmp_path / "missing") is False


@pytest.mark.parametrize(
    "flags, units",
    [("fpu avx512f", "no bfloat16 units"), ("avx512_bf16 amx_bf16", "AMX, AVX512-BF16")],
)
def test_the_cpu_is_described_with_its_bfloat16_units(tmp_path, flags, units):
    """Figures name the CPU: a virtual machine's bare "Xeon" says nothing of AMX."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"model name\t: Intel(R) Xeon(R) Processor\nflags\t\t: {flags}\n")
    assert provenance.cpu_description(cpuinfo) == f"Intel(R) Xeon(R) Processor ({units})"


def test_precision_policy_names_and_auto(monkeypatch):
    assert runtime.precision_policy("float32") == "float32"
    assert runtime.precision_policy(None) == "float32"
    assert runtime.precision_policy("mixed_bfloat16") == "mixed_bfloat16"
    monkeypatch.setattr(runtime.tf.config, "list_physical_devices", lambda kind: [])
    monkeypatch.setattr(runtime, "cpu_has_bfloat16", lambda: True)
    assert runtime.precision_policy("auto") == "mixed_bfloat16"
    monkeypatch.setattr(runtime, "cpu_has_bfloat16", lambda: False)
    assert runtime.precision_policy("auto") == "float32"
    monkeypatch.setattr(runtime.tf.config, "list_physical_devices", lambda kind: ["GPU:0"])
    assert runtime.precision_policy("auto") == "mixed_float16"


def test_bfloat16_model_keeps_float32_variables_and_outputs():
    cfg = compose_config(["model=cnn", "trainer.precision=mixed_bfloat16"])
    runtime.configure_runtime(cfg.trainer)
    try:
        model = training.build_model(cfg, NUM_CLASSES)
        assert all(v.dtype == "float32" for v in model.trainable_variables)
        conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
        assert conv.compute_dtype == "bfloat16"
        assert model(np.zeros((2, 28, 28), np.uint8)).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_unknown_precision_is_a_config_error():
    with pytest.raises(ConfigError, match="trainer.precision=half"):
        config_lib.validate(compose_config(["trainer.precision=half"]))
