"""What a debug preset (``debug=fast``, ``overfit``, ``profile``; ``conf/debug/``) changes in a
run: fewer images per split, one batch to overfit and the verdict on it, the profiled steps.
A run without ``debug`` in its config is untouched."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def _pick(size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` of ``size`` indices drawn at random, in their original order (all if fewer)."""
    if size <= count:
        return np.arange(size)
    return np.sort(rng.choice(size, count, replace=False))


def limited(data, debug: Mapping[str, Any] | None, batch_size: int, seed: int):
    """``data`` as the preset trains on it.

    * ``overfit_batches: N``: train on N batches drawn once, the same images every epoch, and
      validate on those same images;
    * ``limit_batches: N``: at most N batches of each split (train, validation, test).
    """
    if not debug:
        return data
    rng = np.random.default_rng(seed)
    x_train, y_train, x_val, y_val = data.x_train, data.y_train, data.x_val, data.y_val
    if debug.get("overfit_batches"):
        keep = _pick(len(y_train), int(debug["overfit_batches"]) * batch_size, rng)
        x_train, y_train = x_train[keep], y_train[keep]
        x_val, y_val = x_train, y_train
    x_test, y_test = data.x_test, data.y_test
    if debug.get("limit_batches"):
        count = int(debug["limit_batches"]) * batch_size
        train, val, test = (_pick(len(y), count, rng) for y in (y_train, y_val, y_test))
        x_train, y_train = x_train[train], y_train[train]
        x_val, y_val = x_val[val], y_val[val]
        x_test, y_test = x_test[test], y_test[test]
    log.info(
        "debug=%s: %d train, %d validation, %d test images",
        debug.get("name"),
        len(y_train),
        len(y_val),
        len(y_test),
    )
    return dataclasses.replace(
        data, x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val, x_test=x_test,
        y_test=y_test,
    )  # fmt: skip


def overfit_verdict(
    debug: Mapping[str, Any] | None, history: list[dict[str, float]], images: int
) -> dict[str, Any]:
    """``{"debug": {...}}`` for metrics.json under ``debug=overfit``: whether the training loss
    fell below ``debug.overfit_loss``, said in one log line; empty for any other run."""
    if not debug or not debug.get("overfit_batches") or not history:
        return {}
    threshold = float(debug["overfit_loss"])
    final = float(history[-1]["loss"])
    passed = final < threshold
    if passed:
        log.info(
            "Overfit check passed: the training loss on one batch of %d images fell to %.4g, "
            "below debug.overfit_loss=%g",
            images,
            final,
            threshold,
        )
    else:
        log.warning(
            "Overfit check failed: the training loss on one batch of %d images is %.4g after "
            "%d epochs, not below debug.overfit_loss=%g; check the learning rate, the loss and "
            "the labels, or give it more epochs (trainer.epochs)",
            images,
            final,
            len(history),
            threshold,
        )
    return {
        "debug": {
            "name": debug.get("name"),
            "final_loss": final,
            "lowest_loss": min(float(row["loss"]) for row in history),
            "overfit_loss": threshold,
            "passed": passed,
        }
    }


def profile_steps(debug: Mapping[str, Any] | None) -> int | tuple[int, int]:
    """The TensorBoard callback's ``profile_batch``: the steps ``debug.profile_steps`` traces,
    or 0 (no trace)."""
    steps = (debug or {}).get("profile_steps")
    return (int(steps[0]), int(steps[1])) if steps else 0
