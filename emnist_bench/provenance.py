"""Where a run's numbers came from: code, packages, data, machine, threads and precision.

Recorded in ``metrics.json`` under ``provenance``, so that a comparison can tell runs trained
on different data or code apart instead of pooling them.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
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
"""The CPU flags of native bfloat16 arithmetic, with the names the README uses."""


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


def cpu_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU model with its bfloat16 units: ``Intel(R) Xeon(R) Processor (AMX, AVX512-BF16)``.

    Virtual machines often report a bare model name, which does not tell a Xeon with AMX from
    one without, and bfloat16 halves an epoch on the first and does little on the second.
    """
    flags = cpu_flags(cpuinfo)
    units = [name for flag, name in BFLOAT16_UNITS.items() if flag in flags]
    return f"{cpu_model(cpuinfo)} ({', '.join(units) or 'no bfloat16 units'})"


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
        "gpus": [device.name for device in tf.config.list_physical_devices("GPU")],
        "intra_op_threads": threads.get_intra_op_parallelism_threads(),
        "inter_op_threads": threads.get_inter_op_parallelism_threads(),
        "precision": keras.mixed_precision.global_policy().name,
    }
