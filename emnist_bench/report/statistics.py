"""How sure a comparison is: intervals, paired tests on the same test images, Holm's correction.

Runs are compared pair by pair on the same test images and seeds (``predictions.npz``): for a
seed both runs used, each test image is right in both, wrong in both, or right in only one of
them. Only those discordant images carry information about which run is better.

* An accuracy's 95% interval is Student's t across seeds when there are several, else the
  Wilson interval from the test images.
* A difference's 95% interval comes from a paired bootstrap: seeds resampled, then the test
  images within each seed (the same images for both runs).
* Its p-value is McNemar's exact test on the discordant images pooled over the paired seeds.
* p-values are adjusted for the number of comparisons in the sweep with Holm's method.

Nothing here imports TensorFlow; scipy comes with scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95
ALPHA = 1 - LEVEL
POWER = 0.8
BOOTSTRAP_SAMPLES = 4000


def mean_interval(accuracies: Sequence[float], test_images: int) -> tuple[float, float, float]:
    """Mean accuracy and its 95% interval: Student's t across seeds, or with one seed the
    Wilson interval of that seed's accuracy on ``test_images`` images."""
    values = np.asarray(accuracies, dtype=float)
    mean = float(values.mean())
    if len(values) > 1:
        half = (
            stats.t.ppf(1 - ALPHA / 2, len(values) - 1)
            * values.std(ddof=1)
            / math.sqrt(len(values))
        )
        return mean, max(0.0, mean - half), min(1.0, mean + half)
    low, high = wilson(mean, test_images)
    return mean, low, high


def wilson(accuracy: float, n: int) -> tuple[float, float]:
    """The Wilson score 95% interval of a proportion measured on ``n`` trials."""
    if n <= 0:
        return math.nan, math.nan
    z = stats.norm.ppf(1 - ALPHA / 2)
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class PairedDifference:
    """The difference in accuracy of a run against its base, paired by seed and test image."""

    seeds: int
    delta: float
    low: float
    high: float
    p_value: float
    discordant_share: float  # images right in exactly one of the two runs, per image


def paired_difference(
    option: Sequence[np.ndarray], base: Sequence[np.ndarray], seed: int = 0
) -> PairedDifference:
    """Compares per-image correctness of an option's runs with the base's, seed by seed.

    Args:
        option: one boolean array per seed, True where the option's run was right.
        base: the base's arrays for the same seeds, in the same order, same images.
        seed: of the bootstrap's random generator (the result is reproducible).
    """
    if not option or len(option) != len(base):
        raise ValueError("paired_difference needs one base run per option run (same seeds)")
    n_images = [len(o) for o in option]
    if any(len(o) != len(b) for o, b in zip(option, base, strict=True)):
        raise ValueError("paired runs must be scored on the same test images")
    better = np.array([int(np.sum(o & ~b)) for o, b in zip(option, base, strict=True)])
    worse = np.array([int(np.sum(~o & b)) for o, b in zip(option, base, strict=True)])
    sizes = np.array(n_images)
    deltas = (better - worse) / sizes
    discordant = int(better.sum() + worse.sum())
    p_value = stats.binomtest(int(better.sum()), discordant, 0.5).pvalue if discordant else 1.0
    low, high = _bootstrap_interval(better, worse, sizes, seed)
    return PairedDifference(
        seeds=len(option),
        delta=float(deltas.mean()),
        low=low,
        high=high,
        p_value=float(p_value),
        discordant_share=float(discordant / sizes.sum()),
    )


def _bootstrap_interval(
    better: np.ndarray, worse: np.ndarray, sizes: np.ndarray, seed: int
) -> tuple[float, float]:
    """Percentile interval of the mean per-seed difference: seeds resampled, then images.

    Resampling n images where each is +1 (only the option right), -1 (only the base right) or
    0 is a multinomial draw of counts, so each bootstrap sample costs O(seeds), not O(images).
    """
    rng = np.random.default_rng(seed)
    k = len(sizes)
    picked = (
        rng.integers(0, k, size=(BOOTSTRAP_SAMPLES, k))
        if k > 1
        else np.zeros((BOOTSTRAP_SAMPLES, 1), dtype=int)
    )
    n = sizes[picked]
    p_better = better[picked] / n
    p_worse = worse[picked] / n
    draws_better = rng.binomial(n, p_better)
    # Of the images not drawn as "better", the share that are "worse".
    rest = np.where(p_better < 1, p_worse / np.maximum(1 - p_better, 1e-12), 0.0)
    draws_worse = rng.binomial(n - draws_better, np.clip(rest, 0.0, 1.0))
    means = ((draws_better - draws_worse) / n).mean(axis=1)
    low, high = np.quantile(means, [ALPHA / 2, 1 - ALPHA / 2])
    return float(low), float(high)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of p-values for the number of comparisons (NaN kept)."""
    values = np.asarray(p_values, dtype=float)
    finite = np.flatnonzero(~np.isnan(values))
    adjusted = np.full(values.shape, math.nan)
    order = finite[np.argsort(values[finite], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * values[index]))
        adjusted[index] = running
    return adjusted.tolist()


def detectable_difference(
    discordant_share: float, test_images: int, seeds: int, comparisons: int
) -> float:
    """The smallest difference in accuracy a paired comparison detects with 80% power at the
    Holm-adjusted 5% level (its strictest step, alpha / comparisons), for a given share of
    discordant images: ``(z_a + z_power) * sqrt(discordant / (images * seeds))``."""
    if test_images <= 0 or seeds <= 0 or not discordant_share > 0:
        return math.nan
    z_alpha = stats.norm.ppf(1 - ALPHA / (2 * max(1, comparisons)))
    z_power = stats.norm.ppf(POWER)
    return float((z_alpha + z_power) * math.sqrt(discordant_share / (test_images * seeds)))
