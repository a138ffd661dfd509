"""Where a run's numbers came from: code, packages, data, machine, threads and precision.

Recorded in ``metrics.json`` under ``provenance``, so that a comparison can tell runs trained
on different data or code apart instead of pooling them.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "numpy", "scikit-learn")
PACKAGE_DIR = Path(__file__).resolve().parent


def fingerprint(*arrays: np.ndarray) -> str:
    """A short content hash of arrays (their bytes, shapes and dtypes)."""
    digest = hashlib.blake2b(digest_size=8)
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.data)
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    from emnist_bench import __version__

    versions = {"python": platform.python_version(), "emnist_bench": __version__}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _git(*arguments: str) -> str:
    return subprocess.run(
        ["git", "-C", str(PACKAGE_DIR), *arguments],
        capture_output=True, text=True, timeout=10, check=True,
    ).stdout.strip()  # fmt: skip


def git_commit() -> str | None:
    """The commit of the checkout this package runs from (``+dirty`` when tracked files differ
    from it), or None when it is not run from a git checkout of this project."""
    try:
        if Path(_git("rev-parse", "--show-toplevel")) / "emnist_bench" != PACKAGE_DIR:
            return None  # installed inside some other repository
        commit = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if dirty else commit


BFLOAT16_UNITS = {"amx_bf16": "AMX", "avx512_bf16": "AVX512-BF16"}
"""The CPU flags of native bfloat16 arithmetic, with the names people know them by."""

ISA_CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
"""The variables that cap the instructions oneDNN (TensorFlow's CPU kernels) may use; oneDNN
reads the first that is set, case-insensitively, once, when TensorFlow starts."""
ONEDNN_ISAS = (
    "SSE41",
    "AVX",
    "AVX2",
    "AVX2_VNNI",
    "AVX2_VNNI_2",
    "AVX512_CORE",
    "AVX512_CORE_VNNI",
    "AVX512_CORE_BF16",
    "AVX10_1_512",
    "AVX10_1_512_AMX",
    "AVX10_1_512_AMX_FP16",
)
"""oneDNN's x86 ISA levels in its own order, each allowing those before it (its
``dnnl_cpu_isa_t``); the older names of the last three are in ``ONEDNN_ISA_ALIASES``."""
ONEDNN_ISA_ALIASES = {
    "AVX512_CORE_FP16": "AVX10_1_512",
    "AVX512_CORE_AMX": "AVX10_1_512_AMX",
    "AVX512_CORE_AMX_FP16": "AVX10_1_512_AMX_FP16",
}
BFLOAT16_ISA = "AVX512_CORE_BF16"
"""The lowest cap under which oneDNN runs bfloat16 natively; below it a bfloat16 convolution
fails inside TensorFlow (seen under ``AVX2`` on a CPU that has AVX512-BF16)."""


def cpu_fields(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, str]:
    """The first CPU's fields of ``/proc/cpuinfo`` (Linux; empty elsewhere)."""
    fields: dict[str, str] = {}
    try:
        for line in cpuinfo.read_text().splitlines():
            name, colon, value = line.partition(":")
            if colon:
                fields.setdefault(name.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    return cpu_fields(cpuinfo).get("model name") or platform.processor() or platform.machine()


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (Linux; empty elsewhere)."""
    return set(cpu_fields(cpuinfo).get("flags", "").split())


def onednn_isa_cap(environ: Mapping[str, str] | None = None) -> str | None:
    """The ISA cap set for oneDNN (``ONEDNN_MAX_CPU_ISA``, else ``DNNL_MAX_CPU_ISA``), in
    upper case as given, or None when neither is set."""
    environ = os.environ if environ is None else environ
    for name in ISA_CAP_VARIABLES:
        value = environ.get(name, "").strip().upper()
        if value:
            return value
    return None


def onednn_allows_bfloat16(cap: str | None) -> bool:
    """Whether oneDNN capped at ``cap`` may run bfloat16 natively (``AVX512_CORE_BF16`` or
    above). No cap, ``DEFAULT``/``ALL``, or a name oneDNN does not know (it ignores those)
    leave every ISA the CPU has."""
    level = ONEDNN_ISA_ALIASES.get(cap, cap) if cap else None
    if level not in ONEDNN_ISAS:
        return True
    return ONEDNN_ISAS.index(level) >= ONEDNN_ISAS.index(BFLOAT16_ISA)


def bfloat16_units(
    cpuinfo: Path = Path("/proc/cpuinfo"), environ: Mapping[str, str] | None = None
) -> list[str]:
    """The CPU's native bfloat16 units that oneDNN may use (none under a cap below them)."""
    if not onednn_allows_bfloat16(onednn_isa_cap(environ)):
        return []
    flags = cpu_flags(cpuinfo)
    return [name for flag, name in BFLOAT16_UNITS.items() if flag in flags]


def cpu_description(
    cpuinfo: Path = Path("/proc/cpuinfo"), environ: Mapping[str, str] | None = None
) -> str:
    """The CPU model with its bfloat16 units: ``Intel(R) Xeon(R) Processor (AMX, AVX512-BF16)``,
    and oneDNN's ISA cap when one is set: ``... (AMX, AVX512-BF16; oneDNN capped at AVX2)``.

    Virtual machines often report a bare model name, which does not tell a Xeon with AMX from
    one without, and bfloat16 halves an epoch on the first and does little on the second. The
    cap changes the speed as much as the CPU does, so figures name it too.
    """
    flags = cpu_flags(cpuinfo)
    units = [name for flag, name in BFLOAT16_UNITS.items() if flag in flags]
    cap = onednn_isa_cap(environ)
    capped = f"; oneDNN capped at {cap}" if cap else ""
    return f"{cpu_model(cpuinfo)} ({', '.join(units) or 'no bfloat16 units'}{capped})"


def describe_run(data) -> dict[str, Any]:
    """Provenance of a run in this process (TensorFlow is loaded by then)."""
    import keras
    import tensorflow as tf

    threads = tf.config.threading
    return {
        "packages": package_versions(),
        "git_commit": git_commit(),
        "data": {
            "test_fingerprint": fingerprint(data.x_test, data.y_test),
            "train_fingerprint": fingerprint(data.x_train, data.y_train),
            "layout": data.layout,
        },
        "cpu": cpu_description(),
        "onednn_max_cpu_isa": onednn_isa_cap(),
        "gpus": [device.name for device in tf.config.list_physical_devices("GPU")],
        "intra_op_threads": threads.get_intra_op_parallelism_threads(),
        "inter_op_threads": threads.get_inter_op_parallelism_threads(),
        "precision": keras.mixed_precision.global_policy().name,
    }
