"""TensorFlow's process settings for a run: seeds, thread pools, determinism, precision."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

import keras
import tensorflow as tf
from omegaconf import DictConfig

from emnist_bench.errors import ConfigError
from emnist_bench.provenance import bfloat16_units

STRATEGIES = ("mirrored",)


def configure_runtime(trainer: DictConfig) -> None:
    """Seeds every generator and applies thread, determinism and precision settings.

    Thread pools must be sized before TensorFlow runs its first op.
    """
    intra, inter = trainer.get("intra_op_threads"), trainer.get("inter_op_threads")
    try:
        if intra:
            tf.config.threading.set_intra_op_parallelism_threads(int(intra))
        if inter:
            tf.config.threading.set_inter_op_parallelism_threads(int(inter))
    except RuntimeError:  # already initialised in this process (tests, tuner trials)
        pass
    keras.backend.clear_session()  # a fresh graph for each run in one process (tests, sweeps)
    keras.utils.set_random_seed(int(trainer.seed))
    if trainer.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(precision_policy(trainer.get("precision")))


def precision_policy(precision: str | None) -> str:
    """The Keras dtype policy for ``trainer.precision``; ``auto`` guesses from the hardware.

    ``auto``: ``mixed_float16`` on a GPU; ``mixed_bfloat16`` on a CPU with native bfloat16
    instructions (AVX512-BF16 or AMX) that oneDNN may use (:func:`cpu_has_bfloat16`); else
    ``float32``. A run then replaces the guess with a measurement for its own model
    (:mod:`emnist_bench.training.precision`); tuner trials and benchmarks keep it. Variables
    stay float32 under either mixed policy.
    """
    if precision != "auto":
        return precision or "float32"
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_bfloat16() else "float32"


def cpu_has_bfloat16(
    cpuinfo: Path = Path("/proc/cpuinfo"), environ: Mapping[str, str] | None = None
) -> bool:
    """Whether TensorFlow's CPU kernels may run bfloat16 natively: the CPU flags list
    AVX512-BF16 or AMX (Linux; False elsewhere) and ``ONEDNN_MAX_CPU_ISA`` (or
    ``DNNL_MAX_CPU_ISA``), if set, is ``AVX512_CORE_BF16`` or above. The flags alone are not
    enough: under a lower cap a bfloat16 convolution fails instead of running slowly."""
    return bool(bfloat16_units(cpuinfo, environ))


def distribution_scope(strategy: str | None) -> contextlib.AbstractContextManager:
    """The scope a model is built and compiled in for ``trainer.strategy``.

    ``mirrored``: ``tf.distribute.MirroredStrategy`` over the local GPUs, or over the logical
    CPU devices when there is no GPU and several CPU devices are configured (tests); the model
    then trains on every device, each batch split between them. ``None``: one device.

    Raises:
        ConfigError: for an unknown strategy.
    """
    if not strategy:
        return contextlib.nullcontext()
    return tf.distribute.MirroredStrategy(_devices(strategy)).scope()


def replica_count(strategy: str | None) -> int:
    """How many devices share each batch under ``trainer.strategy`` (1 for none).

    Raises:
        ConfigError: for an unknown strategy.
    """
    return len(_devices(strategy)) if strategy else 1


def _devices(strategy: str) -> list[str]:
    if strategy not in STRATEGIES:
        raise ConfigError(
            f"trainer.strategy={strategy} must be null or one of: {', '.join(STRATEGIES)}"
        )
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return [device.name for device in devices]


def check_validation_splits(validation_images: int, batch_size: int, replicas: int) -> None:
    """Refuses, before the first epoch, a validation split with a batch the devices of a
    ``mirrored`` run cannot share evenly: Keras's evaluation under ``MirroredStrategy`` fails on
    such a batch (AddN of unequal shapes) after a whole epoch of training. Training batches may
    split unevenly; only evaluation fails.

    Raises:
        ConfigError: naming the batch and a setting that works.
    """
    if replicas < 2 or not validation_images:
        return
    if validation_images >= batch_size and batch_size % replicas:
        raise ConfigError(
            f"trainer.strategy=mirrored: trainer.batch_size={batch_size} cannot be shared evenly "
            f"by {replicas} devices; use a multiple of {replicas}"
        )
    last = validation_images % batch_size or batch_size
    if last % replicas:
        working = validation_images + replicas - last % replicas
        raise ConfigError(
            f"trainer.strategy=mirrored: the last validation batch holds {last} images, which "
            f"{replicas} devices cannot share evenly; use data.val_size={working} or a "
            f"trainer.batch_size that leaves a multiple of {replicas}"
        )
