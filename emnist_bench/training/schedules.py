"""Learning-rate schedules as plain functions of the epoch (no TensorFlow).

Each schedule maps ``epoch`` (0-based) to a learning rate; Keras' ``LearningRateScheduler``
calls it at the start of every epoch. ``reduce_on_plateau`` is a Keras callback instead, and
``constant`` needs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial


def step_decay(epoch: int, *, initial: float, drop: float, every: int) -> float:
    return initial * drop ** (epoch // every)


def exponential(epoch: int, *, initial: float, decay_rate: float) -> float:
    return initial * decay_rate**epoch


def cosine(
    epoch: int, *, initial: float, epochs: int, warmup_epochs: int, min_fraction: float
) -> float:
    """Linear warm-up to ``initial`` over ``warmup_epochs``, then cosine decay."""
    if epoch < warmup_epochs:
        return initial * (epoch + 1) / (warmup_epochs + 1)
    span = max(1, epochs - warmup_epochs - 1)
    progress = min(1.0, (epoch - warmup_epochs) / span)
    floor = initial * min_fraction
    return floor + (initial - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def one_cycle(
    epoch: int,
    *,
    initial: float,
    epochs: int,
    max_factor: float,
    warmup_fraction: float,
    final_div: float,
) -> float:
    """Linear rise from ``initial`` to ``initial * max_factor``, then cosine to the floor."""
    peak = initial * max_factor
    rise = max(1, round(epochs * warmup_fraction))
    if epoch < rise:
        return initial + (peak - initial) * epoch / rise
    progress = min(1.0, (epoch - rise) / max(1, epochs - rise - 1))
    floor = initial / final_div
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))


EPOCH_SCHEDULES: dict[str, Callable[..., float]] = {
    "step_decay": step_decay,
    "exponential": exponential,
    "cosine": cosine,
    "one_cycle": one_cycle,
}
NEEDS_EPOCHS = {"cosine", "one_cycle"}
ALL = ("constant", "reduce_on_plateau", *EPOCH_SCHEDULES)


def epoch_schedule(
    name: str, *, initial: float, epochs: int, **options: float
) -> Callable[[int], float] | None:
    """Returns ``epoch -> learning rate`` for ``name``, or None for constant / plateau."""
    if name not in EPOCH_SCHEDULES:
        return None
    if name in NEEDS_EPOCHS:
        options["epochs"] = epochs
    return partial(EPOCH_SCHEDULES[name], initial=initial, **options)
