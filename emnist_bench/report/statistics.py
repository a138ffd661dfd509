"""How sure a comparison is, with the test image and the training run as the units of evidence.

Every seed of a sweep is scored on the same test images, and whether a configuration gets a
given image right depends mostly on the configuration, not on the seed. A seed is therefore not
a fresh sample of images: counting each seed's images separately (McNemar's test pooled over
seeds, or a bootstrap that resamples images independently per seed) counts one image once per
seed and makes verdicts far more confident than the evidence. Instead, a difference is read as a
crossed design of images x seeds:

    D[s, i] = correct(option, seed s, image i) - correct(base, seed s, image i)
            = mu + a[i] + c[s] + e[s, i]

``a`` is what an image prefers (one configuration suits it better), ``c`` what a whole run
gained by its seed, ``e`` the rest. The variance of the mean difference is
``var(a) / n + var(c) / k + var(e) / (n k)`` for ``n`` images and ``k`` seeds; its parts come
from the two-way ANOVA mean squares (images, seeds, residual), and the test is a t-test with
Satterthwaite's degrees of freedom. With one seed the seed part cannot be measured and the test
is the paired t-test on the images alone (a run-to-run difference cannot then be told apart
from a seed's luck; the report says how many seeds it has).

* A difference's 95% interval is a two-level percentile bootstrap: each draw resamples the
  seeds and, once for all of them, the test images.
* An accuracy's 95% interval uses the same decomposition on the correctness itself (images and
  seeds), or the Wilson interval for one seed; without predictions, Student's t across seeds.
* p-values are adjusted for the comparisons the report really makes with Holm's method.
* For a difference the test could not detect, :func:`seeds_needed` says how many seeds would
  detect a difference of that size with 80% power, from the measured variances.

``docs/statistics.md`` gives the method's sources and the simulation that checks its error rate
(``tests/report/test_error_rate.py``). Nothing here imports TensorFlow; scipy comes with
scikit-learn.
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
# Beyond this many seeds a difference is called out of reach rather than counted.
MAX_SEEDS = 1000


@dataclass(frozen=True)
class Components:
    """The crossed images x seeds decomposition of a matrix of per-image scores.

    Attributes:
        mean: the grand mean (an accuracy, or a difference of accuracies).
        images: ``n``, the test images.
        seeds: ``k``, the runs (one per seed).
        image_variance: ``var(a)``, how much images differ in their own mean.
        seed_variance: ``var(c)``, how much whole runs differ beyond their images' noise.
        residual_variance: ``var(e)``; with one seed it is folded into ``image_variance``.
        standard_error: of ``mean``.
        dof: Satterthwaite's degrees of freedom of ``standard_error``.
    """

    mean: float
    images: int
    seeds: int
    image_variance: float
    seed_variance: float
    residual_variance: float
    standard_error: float
    dof: float

    def standard_error_with(self, seeds: int) -> float:
        """The standard error the same comparison would have with ``seeds`` seeds."""
        n = self.images
        return math.sqrt(
            self.image_variance / n
            + self.seed_variance / seeds
            + self.residual_variance / (n * seeds)
        )

    def dof_with(self, seeds: int) -> float:
        """The degrees of freedom its t-test would have with ``seeds`` seeds, from the mean
        squares these components would give on average."""
        n, residual = self.images, self.residual_variance
        return _satterthwaite(
            n, seeds, seeds * self.image_variance + residual,
            n * self.seed_variance + residual, residual,
            self.image_variance > 0, self.seed_variance > 0,
        )[1]  # fmt: skip


def components(scores: np.ndarray) -> Components:
    """Variance components of ``scores`` (seeds x images) from the two-way ANOVA mean squares.

    Each component is its method-of-moments estimate clipped at zero; the standard error is the
    sum of the kept parts, and its degrees of freedom Satterthwaite's for that sum of mean
    squares (the usual treatment of a crossed random-effects design).
    """
    scores = np.asarray(scores, dtype=float)
    k, n = scores.shape
    grand = float(scores.mean())
    image_means = scores.mean(axis=0)
    if k == 1 or n == 1:
        # One seed: the paired t-test over images (or, one image, over seeds).
        values = scores.ravel()
        spread = float(values.var(ddof=1)) if len(values) > 1 else 0.0
        image_variance, seed_variance = (spread, 0.0) if k == 1 else (0.0, spread)
        error = math.sqrt(spread / len(values))
        return Components(
            grand, n, k, image_variance, seed_variance, 0.0, error, float(len(values) - 1)
        )
    seed_means = scores.mean(axis=1)
    ms_images = k * float(((image_means - grand) ** 2).sum()) / (n - 1)
    ms_seeds = n * float(((seed_means - grand) ** 2).sum()) / (k - 1)
    residual = scores - image_means[None, :] - seed_means[:, None] + grand
    ms_residual = float((residual**2).sum()) / ((n - 1) * (k - 1))
    image_variance = max(0.0, (ms_images - ms_residual) / k)
    seed_variance = max(0.0, (ms_seeds - ms_residual) / n)
    variance, dof = _satterthwaite(
        n, k, ms_images, ms_seeds, ms_residual, image_variance > 0, seed_variance > 0
    )
    return Components(
        mean=grand,
        images=n,
        seeds=k,
        image_variance=image_variance,
        seed_variance=seed_variance,
        residual_variance=ms_residual,
        standard_error=math.sqrt(max(variance, 0.0)),
        dof=dof,
    )


def _satterthwaite(
    n: int, k: int, ms_images: float, ms_seeds: float, ms_residual: float,
    images: bool, seeds: bool,
) -> tuple[float, float]:  # fmt: skip
    """The variance of the grand mean as a sum of mean squares (one pair of terms per kept
    component: ``var(a) / n = (MS_images - MS_residual) / (n k)``, and so on), and
    Satterthwaite's degrees of freedom for that sum."""
    dof_residual = (n - 1) * (k - 1)
    terms = [(ms_residual / (n * k), dof_residual)]
    if images:
        terms += [(ms_images / (n * k), n - 1), (-ms_residual / (n * k), dof_residual)]
    if seeds:
        terms += [(ms_seeds / (n * k), k - 1), (-ms_residual / (n * k), dof_residual)]
    variance = sum(term for term, _ in terms)
    denominator = sum(term * term / dof for term, dof in terms)
    return variance, (variance * variance / denominator if denominator > 0 else math.inf)


def mean_interval(accuracies: Sequence[float], test_images: int) -> tuple[float, float, float]:
    """Mean accuracy and its 95% interval from run-level figures alone: Student's t across
    seeds when there are several, else the Wilson interval of one seed's ``test_images``.

    Across seeds the interval leaves out the test images' own sampling (every seed saw the same
    images): use :func:`accuracy_interval` where the runs' predictions exist.
    """
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


def accuracy_interval(correct: Sequence[np.ndarray]) -> tuple[float, float, float]:
    """Mean accuracy over seeds and its 95% interval, with images and seeds as the units.

    Args:
        correct: one boolean array per seed, True where that run got the test image right (the
            same images in the same order for every seed).
    """
    matrix = np.vstack([np.asarray(c, dtype=float) for c in correct])
    if len(matrix) == 1:
        mean = float(matrix.mean())
        low, high = wilson(mean, matrix.shape[1])
        return mean, low, high
    parts = components(matrix)
    half = stats.t.ppf(1 - ALPHA / 2, parts.dof) * parts.standard_error
    return parts.mean, max(0.0, parts.mean - half), min(1.0, parts.mean + half)


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
    discordant_share: float  # images right in exactly one of the two runs, per image and seed
    parts: Components

    def seeds_needed(self, comparisons: int = 1) -> float:
        """See :func:`seeds_needed`."""
        return seeds_needed(self.parts, self.delta, comparisons)


def paired_difference(
    option: Sequence[np.ndarray],
    base: Sequence[np.ndarray],
    seed: int = 0,
    samples: int = BOOTSTRAP_SAMPLES,
) -> PairedDifference:
    """Compares per-image correctness of an option's runs with the base's, seed by seed.

    Args:
        option: one boolean array per seed, True where the option's run was right.
        base: the base's arrays for the same seeds, in the same order, same images.
        seed: of the bootstrap's random generator (the result is reproducible).
        samples: the bootstrap's draws.
    """
    if not option or len(option) != len(base):
        raise ValueError("paired_difference needs one base run per option run (same seeds)")
    if any(len(o) != len(b) or len(o) != len(option[0]) for o, b in zip(option, base, strict=True)):
        raise ValueError("paired runs must be scored on the same test images")
    differences = np.vstack(
        [
            np.asarray(o, dtype=np.int8) - np.asarray(b, dtype=np.int8)
            for o, b in zip(option, base, strict=True)
        ]
    )
    parts = components(differences)
    low, high = bootstrap_interval(differences, seed, samples)
    return PairedDifference(
        seeds=len(option),
        delta=parts.mean,
        low=low,
        high=high,
        p_value=t_test(parts),
        discordant_share=float(np.abs(differences).mean()),
        parts=parts,
    )


def t_test(parts: Components) -> float:
    """Two-sided p-value of ``parts.mean`` against zero."""
    if parts.standard_error == 0:
        return 1.0 if parts.mean == 0 else 0.0
    t = parts.mean / parts.standard_error
    return float(2 * stats.t.sf(abs(t), parts.dof))


def bootstrap_interval(
    differences: np.ndarray, seed: int = 0, samples: int = BOOTSTRAP_SAMPLES
) -> tuple[float, float]:
    """Percentile interval of the mean of ``differences`` (seeds x images): each draw resamples
    the seeds, and the images once for all of them.

    Images with the same column of differences are interchangeable, so a draw of images is a
    multinomial draw of counts over the distinct columns (at most 3 ** seeds of them), and a
    bootstrap costs O(samples x columns), not O(samples x images).
    """
    rng = np.random.default_rng(seed)
    k, n = differences.shape
    columns, counts = np.unique(differences.T, axis=0, return_counts=True)  # (m, k), (m,)
    image_draws = rng.multinomial(n, counts / n, size=samples)  # (samples, m)
    seed_draws = (
        rng.multinomial(k, np.full(k, 1 / k), size=samples)
        if k > 1
        else np.ones((samples, 1), dtype=int)
    )  # (samples, k)
    # Per draw: sum over images and seeds of count(image) x count(seed) x difference.
    per_column = seed_draws @ columns.T  # (samples, m)
    means = (per_column * image_draws).sum(axis=1) / (n * k)
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


def _multiplier(comparisons: int, dof: float | np.ndarray) -> float | np.ndarray:
    """``t_alpha + t_power`` at Holm's strictest level (alpha / comparisons): a true difference
    this many standard errors from zero is detected with 80% power."""
    level = 1 - ALPHA / (2 * max(1, comparisons))
    return stats.t.ppf(level, dof) + stats.t.ppf(POWER, dof)


def seeds_needed(parts: Components, delta: float, comparisons: int = 1) -> float:
    """How many seeds would detect a true difference of ``delta`` with 80% power at Holm's
    strictest level, on the same number of test images, from the measured variances (the
    t-test's degrees of freedom grow with the seeds, so few seeds pay twice: a wider standard
    error and a heavier-tailed t).

    Returns ``inf`` when no number of seeds up to ``MAX_SEEDS`` would (the test images' own
    spread, ``var(a) / n``, is already too large, or the difference is zero) and NaN with one
    seed (whose run-to-run spread cannot be measured).
    """
    if parts.seeds < 2 or math.isnan(delta):
        return math.nan
    if delta == 0:
        return math.inf
    seeds = np.arange(2, MAX_SEEDS + 1)
    errors = np.array([parts.standard_error_with(int(k)) for k in seeds])
    dofs = np.array([parts.dof_with(int(k)) for k in seeds])
    enough = np.flatnonzero(_multiplier(comparisons, dofs) * errors <= abs(delta))
    return float(seeds[enough[0]]) if len(enough) else math.inf


def detectable_difference(
    standard_error: float, comparisons: int = 1, dof: float = math.inf
) -> float:
    """The smallest true difference a comparison with this standard error (and degrees of
    freedom) detects with 80% power at Holm's strictest level."""
    if not standard_error > 0:
        return math.nan
    return float(_multiplier(comparisons, dof) * standard_error)
