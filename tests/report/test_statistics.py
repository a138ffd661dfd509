"""Intervals, paired tests and Holm's correction against independent references (scipy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from emnist_bench.report import statistics


def test_one_seed_interval_is_wilsons_from_the_test_images():
    mean, low, high = statistics.mean_interval([6000 / 7050], test_images=7050)
    reference = stats.binomtest(6000, 7050).proportion_ci(method="wilson")
    assert mean == 6000 / 7050
    assert (low, high) == pytest.approx((reference.low, reference.high), abs=1e-9)
    assert high - low == pytest.approx(0.0166, abs=0.001)  # about +/-0.8 points


def test_several_seeds_give_students_t_interval():
    accuracies = [0.80, 0.82, 0.81, 0.84]
    mean, low, high = statistics.mean_interval(accuracies, test_images=100)
    reference = stats.t.interval(0.95, 3, loc=np.mean(accuracies), scale=stats.sem(accuracies))
    assert mean == pytest.approx(0.8175)
    assert (low, high) == pytest.approx(reference)


def test_holm_adjusts_step_down_and_keeps_nan():
    adjusted = statistics.holm([0.01, 0.04, 0.03, 0.005, math.nan])
    assert adjusted[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(adjusted[4])
    assert statistics.holm([0.6, 0.9]) == [1.0, 1.0]


def correct(n: int, wrong: set[int]) -> np.ndarray:
    right = np.ones(n, dtype=bool)
    right[list(wrong)] = False
    return right


def test_identical_runs_differ_by_nothing():
    base = correct(1000, set(range(0, 1000, 7)))
    result = statistics.paired_difference([base.copy()], [base])
    assert (result.delta, result.low, result.high, result.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_one_seed_is_the_paired_t_test_on_the_images():
    # The option is right on 30 images the base gets wrong, and wrong on 10 the base gets right.
    base = correct(1000, set(range(30)) | set(range(100, 150)))
    option = correct(1000, set(range(40, 50)) | set(range(100, 150)))
    result = statistics.paired_difference([option], [base])
    assert result.delta == pytest.approx(0.02)
    differences = option.astype(int) - base.astype(int)
    assert result.p_value == pytest.approx(stats.ttest_1samp(differences, 0).pvalue)
    assert result.discordant_share == pytest.approx(0.04)
    # The normal approximation of the same paired difference, for scale.
    half = 1.96 * math.sqrt((0.04 - 0.02**2) / 1000)
    assert result.low == pytest.approx(0.02 - half, abs=0.003)
    assert result.high == pytest.approx(0.02 + half, abs=0.003)
    assert 0 < result.low < result.delta < result.high


def test_seeds_that_disagree_widen_the_interval():
    base = correct(1000, set(range(100)))
    # Seed 1: much better; seed 2: much worse. Pooled over images alone this would look
    # like nothing, and each seed alone like a strong effect; across seeds it is unsure.
    better = correct(1000, set(range(50)))
    worse = correct(1000, set(range(150)))
    result = statistics.paired_difference([better, worse], [base, base])
    assert result.delta == pytest.approx(0.0)
    assert result.low < -0.03 and result.high > 0.03
    assert result.p_value > 0.5
    steady = statistics.paired_difference([better, better], [base, base])
    assert steady.low > 0.03 and steady.p_value < 1e-6


def test_seeds_that_agree_do_not_count_their_images_twice():
    # Five seeds right on the same 50 more images are one piece of evidence about those
    # images, not five: the interval is one seed's, not sqrt(5) times narrower.
    base, better = correct(1000, set(range(100))), correct(1000, set(range(50)))
    one = statistics.paired_difference([better], [base])
    five = statistics.paired_difference([better] * 5, [base] * 5)
    assert five.high - five.low == pytest.approx(one.high - one.low, rel=0.15)
    assert five.parts.standard_error == pytest.approx(one.parts.standard_error, rel=0.01)


def test_variance_components_are_recovered_from_a_crossed_design():
    rng = np.random.default_rng(3)
    images, seeds = 4000, 40
    scores = (
        rng.normal(0, 0.3, images)[None, :]  # var(a) = 0.09
        + rng.normal(0, 0.1, seeds)[:, None]  # var(c) = 0.01
        + rng.normal(0, 0.5, (seeds, images))  # var(e) = 0.25
    )
    parts = statistics.components(scores)
    assert parts.image_variance == pytest.approx(0.09, rel=0.1)
    assert parts.seed_variance == pytest.approx(0.01, rel=0.5)
    assert parts.residual_variance == pytest.approx(0.25, rel=0.02)
    expected = math.sqrt(
        parts.image_variance / images
        + parts.seed_variance / seeds
        + parts.residual_variance / (images * seeds)
    )
    assert parts.standard_error == pytest.approx(expected, rel=1e-6)
    assert parts.standard_error_with(seeds) == pytest.approx(expected, rel=1e-6)
    assert seeds - 1 < parts.dof < images * seeds


def test_accuracy_interval_counts_each_image_once():
    right = correct(470, set(range(188)))  # 60%
    mean, low, high = statistics.accuracy_interval([right])
    assert (low, high) == pytest.approx(statistics.wilson(0.6, 470))
    mean, low, high = statistics.accuracy_interval([right, right.copy()])
    half = stats.t.ppf(0.975, 469) * math.sqrt(0.6 * 0.4 / 469)
    assert (mean, low, high) == pytest.approx((0.6, 0.6 - half, 0.6 + half))


def test_paired_runs_must_share_their_images_and_seeds():
    with pytest.raises(ValueError, match="same test images"):
        statistics.paired_difference([np.ones(5, bool)], [np.ones(6, bool)])
    with pytest.raises(ValueError, match="one base run per option run"):
        statistics.paired_difference([np.ones(5, bool)] * 2, [np.ones(5, bool)])


def test_a_few_seeds_pay_twice_for_a_run_to_run_spread():
    # Three seeds 7, 9.6 and 7.8 points worse, as SGD in the proxy grid: a large effect, but
    # its standard error is mostly the seeds' spread, measured with 2 degrees of freedom.
    rng = np.random.default_rng(9)
    base = [rng.random(7050) < 0.75 for _ in range(3)]
    option = [
        b & (rng.random(7050) > drop) for b, drop in zip(base, (0.095, 0.128, 0.104), strict=True)
    ]
    result = statistics.paired_difference(option, base)
    assert result.parts.dof < 4
    assert result.p_value < 0.05 and result.low < result.delta < result.high < 0
    assert result.p_value * 38 > 0.05  # too few seeds to pass Holm over 38 comparisons
    needed = result.seeds_needed(38)
    assert 3 < needed <= 10  # but a handful more would do


def test_seeds_needed_reach_80_percent_power_from_the_measured_variances():
    rng = np.random.default_rng(5)
    differences = (
        rng.normal(0.004, 0.3, 7050)[None, :]
        + rng.normal(0, 0.004, 3)[:, None]
        + rng.normal(0, 0.2, (3, 7050))
    )
    parts = statistics.components(differences)
    delta, comparisons = 0.015, 10
    needed = int(statistics.seeds_needed(parts, delta, comparisons))

    def power_multiplier(seeds: int) -> float:  # t_alpha + t_power at Holm's strictest level
        dof = parts.dof_with(seeds)
        return stats.t.ppf(1 - 0.05 / (2 * comparisons), dof) + stats.t.ppf(0.8, dof)

    assert 2 <= needed < statistics.MAX_SEEDS
    assert power_multiplier(needed) * parts.standard_error_with(needed) <= delta
    assert (
        needed == 2 or power_multiplier(needed - 1) * parts.standard_error_with(needed - 1) > delta
    )
    # Below what the test images themselves can resolve, no number of seeds will do.
    assert statistics.seeds_needed(parts, 0.001, comparisons) == math.inf
    one_seed = statistics.components(differences[:1])
    assert math.isnan(statistics.seeds_needed(one_seed, delta, comparisons))


def test_detectable_difference_is_the_standard_error_times_the_power_multiplier():
    z = stats.norm.ppf(1 - 0.05 / 80) + stats.norm.ppf(0.8)
    assert statistics.detectable_difference(0.005, comparisons=40) == pytest.approx(z * 0.005)
    t = stats.t.ppf(1 - 0.05 / 80, 2) + stats.t.ppf(0.8, 2)
    assert statistics.detectable_difference(0.005, 40, dof=2) == pytest.approx(t * 0.005)
    assert statistics.detectable_difference(0.005, 1) < statistics.detectable_difference(0.005, 40)
    assert math.isnan(statistics.detectable_difference(0.0, 40))
