"""Tests that run bfloat16 kernels need oneDNN allowed to: under ``ONEDNN_MAX_CPU_ISA`` below
``AVX512_CORE_BF16`` (how the suite is timed as on an AVX2 machine) a bfloat16 convolution or
matmul aborts the whole test process rather than failing one test."""

from __future__ import annotations

import pytest

from emnist_bench.provenance import onednn_allows_bfloat16, onednn_isa_cap

needs_bfloat16_kernels = pytest.mark.skipif(
    not onednn_allows_bfloat16(onednn_isa_cap()),
    reason=f"ONEDNN_MAX_CPU_ISA={onednn_isa_cap()} rules out oneDNN's bfloat16 kernels",
)
