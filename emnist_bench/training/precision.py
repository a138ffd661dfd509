"""``trainer.precision=auto``: the fastest dtype policy for this model on this machine, measured.

Whether bfloat16 pays on a CPU depends on the CPU and on the model (AMX or AVX512-BF16, a
batch-normalized model or not: the figures are in benchmarks/RESULTS.md), so ``auto`` does
not guess from the CPU flags alone. On a CPU that has native bfloat16, and where oneDNN may use it
(``ONEDNN_MAX_CPU_ISA``, if set, at ``AVX512_CORE_BF16`` or above), the first run of a model
times a few training steps in each candidate policy (alternating, the fastest of five rounds)
and keeps the fastest; bfloat16 must win by at least ``MARGIN``, or float32 (exact, and what
every other machine gives) stays. The choice is cached per CPU model, ISA cap, TensorFlow
version, thread pools, model and batch size in ``precision.json`` in the data cache folder,
and kept once ``MEASUREMENTS`` runs have measured it (each policy's fastest step over all of
them), so a sweep measures each architecture twice, and one measurement taken in a slow spell
of a shared host does not fix a wrong choice for good. On a GPU ``auto`` is mixed float16; on a
CPU without bfloat16, or with oneDNN capped below it, float32. A short run (fewer than
``MEASURE_FROM`` training images over all its epochs: smoke runs, tests) is not worth the half
minute a measurement takes and goes by the CPU flags and the cap alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig, OmegaConf

from emnist_bench import config as config_lib
from emnist_bench.provenance import cpu_description, onednn_isa_cap
from emnist_bench.rundir import write_json
from emnist_bench.training.runtime import precision_policy

log = logging.getLogger(__name__)

CACHE = "precision.json"
CPU_CANDIDATES = ("float32", "mixed_bfloat16")
MARGIN = 0.05
"""bfloat16 is chosen only when its step is at least this much faster than float32's."""
MEASURE_FROM = 200_000
"""Training images (epochs x split size) from which a run measures: about two full epochs."""
ROUNDS = 5
"""Alternating timing rounds per policy. A shared machine's noise only ever adds time (another
process may hold one of two cores for a whole round), so each policy is scored by its fastest
round, as ``timeit`` advises, not by the median."""
EXECUTIONS = 2
"""Timed calls into TensorFlow per round, each ``trainer.steps_per_execution`` steps."""
MEASUREMENTS = 2
"""Runs that measure a model before its cached choice is final. On a noisy host one run's five
rounds can all fall in a slow spell for one policy (an EPYC measured a CNN's bfloat16 step at
0.160 s against 0.094-0.099 s in runs of the same network beside it), and the choice would
cost every later run of that model; pooling the fastest steps of two runs overrules it."""


def measurement_key(cfg: DictConfig, num_classes: int) -> str:
    """What the measured speeds depend on: machine, oneDNN's ISA cap, TensorFlow, threads,
    model and batch. A cap of ``AVX512_CORE_BF16`` on a CPU with AMX leaves bfloat16 possible
    but slower, so a choice measured without the cap is not reused under it, nor the reverse."""
    threads = tf.config.threading
    cap = onednn_isa_cap()
    described = {
        "cpu": cpu_description(),
        # only when set, so that the choices cached on uncapped machines keep their keys
        **({"onednn_max_cpu_isa": cap} if cap else {}),
        "tensorflow": tf.__version__,
        "threads": [
            threads.get_intra_op_parallelism_threads(),
            threads.get_inter_op_parallelism_threads(),
        ],
        "model": config_lib.model_arguments(cfg, num_classes),
        "members": int(cfg.model.get("members") or 1),
        "augment": OmegaConf.to_container(cfg.augment, resolve=True),
        "batch_size": int(cfg.trainer.batch_size),
        "steps_per_execution": int(cfg.trainer.get("steps_per_execution") or 1),
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


def seconds_per_step(cfg: DictConfig, num_classes: int, policies: tuple[str, ...]) -> dict:
    """Seconds per training step of the run's model in each of ``policies``: the fastest of
    ``ROUNDS`` alternating rounds on random pixels (the speed does not depend on the values)."""
    from emnist_bench.training.fit import build_model, compile_model

    batch = int(cfg.trainer.batch_size)
    steps = int(cfg.trainer.get("steps_per_execution") or 1)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, num_classes, batch)
    smoothing = bool(cfg.trainer.get("label_smoothing"))
    targets = np.eye(num_classes, dtype=np.float32)[labels] if smoothing else labels
    dataset = tf.data.Dataset.from_tensors((images, targets)).repeat()
    prior = np.full(num_classes, 1.0 / num_classes)
    models = {}
    for policy in policies:
        keras.mixed_precision.set_global_policy(policy)
        model = build_model(cfg, num_classes)
        compile_model(model, cfg, prior)
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)  # traces
        models[policy] = model
    times: dict[str, list[float]] = {policy: [] for policy in policies}
    for _ in range(ROUNDS):
        for policy, model in models.items():
            started = time.perf_counter()
            model.fit(
                dataset, steps_per_epoch=steps * EXECUTIONS, epochs=1, verbose=0, shuffle=False
            )
            times[policy].append((time.perf_counter() - started) / (steps * EXECUTIONS))
    return {policy: min(values) for policy, values in times.items()}


def fastest(seconds: dict[str, float]) -> str:
    """float32 unless bfloat16's step is at least ``MARGIN`` faster."""
    if seconds["mixed_bfloat16"] <= seconds["float32"] * (1 - MARGIN):
        return "mixed_bfloat16"
    return "float32"


def choose_precision(
    cfg: DictConfig,
    num_classes: int,
    train_images: int,
    cache_dir: Path | None,
    measure: Callable[..., dict] = seconds_per_step,
) -> str:
    """The dtype policy for ``trainer.precision`` (see the module's docstring).

    Measuring builds throw-away models, so afterwards Keras's global state is reset and the run's
    seed set again: a run's initial weights do not depend on whether the choice was cached.
    """
    precision = cfg.trainer.get("precision")
    guess = precision_policy(precision)  # GPU: mixed_float16; no bfloat16 on the CPU: float32
    if precision != "auto" or guess != "mixed_bfloat16":
        return guess
    if train_images * int(cfg.trainer.epochs) < MEASURE_FROM:
        return guess
    key = measurement_key(cfg, num_classes)
    path = cache_dir / CACHE if cache_dir else None
    earlier = _entry(_read(path).get(key))
    if earlier and earlier["measurements"] >= MEASUREMENTS:
        return earlier["policy"]
    seconds = measure(cfg, num_classes, CPU_CANDIDATES)
    keras.backend.clear_session()
    keras.utils.set_random_seed(int(cfg.trainer.seed))
    measurements = 1
    if earlier:  # noise only ever adds time: each policy's fastest step of both runs
        seconds = {
            name: min(value, earlier["seconds_per_step"][name]) for name, value in seconds.items()
        }
        measurements += earlier["measurements"]
    policy, cpu = fastest(seconds), cpu_description()
    log.info(
        "trainer.precision=auto: %s (seconds per step: %s), measured for this model on %s "
        "(%d of %d measurements)",
        policy,
        ", ".join(f"{name} {value:.4f}" for name, value in seconds.items()),
        cpu,
        measurements,
        MEASUREMENTS,
    )
    if path is not None:
        entry = {
            "policy": policy,
            "seconds_per_step": seconds,
            "measurements": measurements,
            "cpu": cpu,
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json(path, {**_read(path), key: entry})
        except OSError as error:  # a read-only cache: measure again next time
            log.warning("Could not keep the precision measurement in %s: %s", path, error)
    return policy


def speedrun_hint(model_name: str, policy: str) -> str | None:
    """A line for whoever runs ``speedrun_cnn``, sized for bfloat16, on a CPU in float32: the
    preset sized for that, which fits the same 10 minutes."""
    on_cpu = not tf.config.list_physical_devices("GPU")
    if model_name != "speedrun_cnn" or policy != "float32" or not on_cpu:
        return None
    return (
        "speedrun_cnn is sized for CPUs with bfloat16 units and this run trains in float32: "
        "+experiment=speedrun_cnn_avx2 is the speedrun that fits 10 minutes on 2 cores there"
    )


def _entry(entry: Any) -> dict[str, Any] | None:
    """A cached measurement with what pooling needs, or None (measure afresh); an entry without
    a count of its measurements holds one."""
    if not isinstance(entry, dict) or entry.get("policy") not in CPU_CANDIDATES:
        return None
    seconds = entry.get("seconds_per_step")
    if not isinstance(seconds, dict) or not all(
        isinstance(seconds.get(name), int | float) for name in CPU_CANDIDATES
    ):
        return None
    measurements = entry.get("measurements", 1)
    return {**entry, "measurements": measurements if isinstance(measurements, int) else 1}


def _read(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return payload if isinstance(payload, dict) else {}
