"""The report's verdicts keep their error rate on simulated sweeps with a known truth.

Every seed is scored on the same test images and configurations keep their preferences for
images over seeds (``emnist_bench.report.simulation``), as in real sweeps: the structure that
made McNemar's test pooled over seeds call a null difference in most grids. The figures these
tests check are in ``docs/statistics.md`` (``benchmarks/statistics_error_rate.py`` gives them
for whole grids).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from emnist_bench.report import statistics
from emnist_bench.report.simulation import World, simulate_runs

WORLD = World()


def called(result: statistics.PairedDifference, p_value: float | None = None) -> bool:
    """A better/worse verdict: p below 5% and the interval clear of zero (as the report)."""
    p = result.p_value if p_value is None else p_value
    return p < statistics.ALPHA and (result.low > 0 or result.high < 0)


@pytest.fixture(scope="module")
def null_comparisons() -> list[tuple[statistics.PairedDifference, float]]:
    """600 comparisons of two configurations with no true difference (5 seeds, 2,000 images):
    the report's result and McNemar's p pooled over seeds."""
    rng = np.random.default_rng(7)
    results = []
    for draw in range(600):
        option, base = simulate_runs(rng, WORLD, [0.0, 0.0], images=2000, seeds=5)
        better = sum(int(np.sum(o & ~b)) for o, b in zip(option, base, strict=True))
        worse = sum(int(np.sum(~o & b)) for o, b in zip(option, base, strict=True))
        pooled = stats.binomtest(better, better + worse).pvalue
        results.append((statistics.paired_difference(option, base, draw, samples=400), pooled))
    return results


def test_with_no_true_difference_verdicts_stay_at_alpha(null_comparisons):
    verdicts = sum(called(result) for result, _ in null_comparisons)
    # Within binomial noise of 5% of 600 (30 expected): a two-sided binomial test at 1%.
    assert stats.binomtest(verdicts, len(null_comparisons), statistics.ALPHA).pvalue > 0.01
    p_values = np.array([result.p_value for result, _ in null_comparisons])
    assert 0.02 < np.mean(p_values < 0.05) < 0.08
    assert np.mean(p_values < 0.5) == pytest.approx(0.5, abs=0.07)  # p is uniform under the null


def test_counting_each_image_once_per_seed_would_fail_the_same_check(null_comparisons):
    # The simulation is sensitive: McNemar's test on discordant images summed over seeds (each
    # image counted five times) calls far more than 5% of these null differences.
    pooled = sum(p < statistics.ALPHA for _, p in null_comparisons)
    assert pooled / len(null_comparisons) > 0.15


def test_intervals_cover_the_true_difference_95_percent_of_the_time():
    # 1,000 draws: the band 93-97% is three standard errors of a true 95% either side.
    rng = np.random.default_rng(11)
    shift = WORLD.shift_for(0.02)
    truth = WORLD.accuracy(shift) - WORLD.accuracy(0.0)
    covered = 0
    draws = 1000
    for draw in range(draws):
        shifts = [shift, 0.0] if draw % 2 else [0.0, 0.0]
        option, base = simulate_runs(rng, WORLD, shifts, images=2000, seeds=5)
        result = statistics.paired_difference(option, base, draw, samples=400)
        covered += result.low <= (truth if draw % 2 else 0.0) <= result.high
    assert 0.93 <= covered / draws <= 0.97


def test_a_true_two_point_difference_is_found_with_five_seeds():
    rng = np.random.default_rng(13)
    shift = WORLD.shift_for(0.02)
    found = []
    for draw in range(30):
        option, base = simulate_runs(rng, WORLD, [shift, 0.0], images=7050, seeds=5)
        result = statistics.paired_difference(option, base, draw, samples=400)
        found.append(called(result) and result.delta > 0)
    assert np.mean(found) >= 0.9
