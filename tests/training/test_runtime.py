"""Precision policies and the CPU's bfloat16 support (emnist_bench.training.runtime)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hydra.errors import ConfigCompositionException

from emnist_bench import provenance
from emnist_bench.training import fit as training
from emnist_bench.training import runtime
from tests.configs import compose_config
from tests.isa import needs_bfloat16_kernels

NUM_CLASSES = 47


def fake_cpuinfo(tmp_path, flags: str, model: str = "test"):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: {model}\nflags\t\t: {flags}\n")
    return cpuinfo


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("fpu sse2 avx2 avx512f", False),
        ("fpu avx2 avx512f avx512_bf16", True),
        ("fpu avx2 amx_tile amx_bf16", True),
    ],
)
def test_cpu_bfloat16_is_read_from_the_cpu_flags(tmp_path, flags, expected):
    cpuinfo = fake_cpuinfo(tmp_path, flags)
    assert runtime.cpu_has_bfloat16(cpuinfo, environ={}) is expected
    assert runtime.cpu_has_bfloat16(tmp_path / "missing", environ={}) is False


AVX512_BF16 = "fpu avx2 avx512f avx512bw avx512vl avx512dq avx512_vnni avx512_bf16"
AMX = f"{AVX512_BF16} avx512_fp16 amx_tile amx_int8 amx_bf16"


@pytest.mark.parametrize(
    ("flags", "environ", "expected"),
    [
        (AMX, {"ONEDNN_MAX_CPU_ISA": "AVX2"}, False),
        (AMX, {"ONEDNN_MAX_CPU_ISA": "avx2"}, False),  # oneDNN reads it in any case
        (AMX, {"DNNL_MAX_CPU_ISA": "AVX2"}, False),  # the older name
        (AMX, {"ONEDNN_MAX_CPU_ISA": "SSE41"}, False),
        (AMX, {"ONEDNN_MAX_CPU_ISA": "AVX2_VNNI_2"}, False),
        (AMX, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, False),
        (AMX, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_VNNI"}, False),
        (AMX, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, True),
        (AMX, {"ONEDNN_MAX_CPU_ISA": "AVX10_1_512"}, True),
        (AMX, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_FP16"}, True),
        (AMX, {"ONEDNN_MAX_CPU_ISA": "avx512_core_amx"}, True),
        (AMX, {"ONEDNN_MAX_CPU_ISA": "AVX10_1_512_AMX_FP16"}, True),
        (AMX, {"ONEDNN_MAX_CPU_ISA": "DEFAULT"}, True),
        (AMX, {"ONEDNN_MAX_CPU_ISA": "ALL"}, True),
        (AMX, {"ONEDNN_MAX_CPU_ISA": "NOT_AN_ISA"}, True),  # oneDNN ignores it too
        (AMX, {"ONEDNN_MAX_CPU_ISA": ""}, True),  # set but empty: no cap
        (AVX512_BF16, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, True),
        (AVX512_BF16, {"ONEDNN_MAX_CPU_ISA": "AVX2"}, False),
        ("fpu avx2 avx512f", {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}, False),  # no unit
        # ONEDNN_ is read before DNNL_, as oneDNN does
        (AMX, {"ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "ALL"}, False),
        (AMX, {"ONEDNN_MAX_CPU_ISA": "ALL", "DNNL_MAX_CPU_ISA": "AVX2"}, True),
    ],
)
def test_bfloat16_needs_an_isa_cap_that_allows_it(tmp_path, flags, environ, expected):
    """Under a cap below AVX512_CORE_BF16 a bfloat16 convolution fails inside TensorFlow,
    however the CPU flags read: ``auto`` must not choose it there."""
    assert runtime.cpu_has_bfloat16(fake_cpuinfo(tmp_path, flags), environ=environ) is expected


def test_the_isa_cap_is_read_from_the_process_environment(tmp_path, monkeypatch):
    cpuinfo = fake_cpuinfo(tmp_path, AMX)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    assert provenance.onednn_isa_cap() == "AVX2"
    assert runtime.cpu_has_bfloat16(cpuinfo) is False
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert provenance.onednn_isa_cap() is None
    assert runtime.cpu_has_bfloat16(cpuinfo) is True


@pytest.mark.parametrize(
    "flags, environ, units",
    [
        ("fpu avx512f", {}, "no bfloat16 units"),
        ("avx512_bf16 amx_bf16", {}, "AMX, AVX512-BF16"),
        (
            "avx512_bf16 amx_bf16",
            {"ONEDNN_MAX_CPU_ISA": "avx2"},
            "AMX, AVX512-BF16; oneDNN capped at AVX2",
        ),
    ],
)
def test_the_cpu_is_described_with_its_bfloat16_units(tmp_path, flags, environ, units):
    """Figures name the CPU: a virtual machine's bare "Xeon" says nothing of AMX, and the
    cap changes the speed as much as the CPU does."""
    cpuinfo = fake_cpuinfo(tmp_path, flags, model="Intel(R) Xeon(R) Processor")
    assert provenance.cpu_description(cpuinfo, environ) == f"Intel(R) Xeon(R) Processor ({units})"


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


@needs_bfloat16_kernels
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


def test_unknown_precision_is_refused_as_the_config_composes():
    with pytest.raises(ConfigCompositionException, match="trainer.precision=half") as raised:
        compose_config(["trainer.precision=half"])
    assert "Invalid value 'half', expected one of [auto, float32" in str(raised.value.__cause__)
