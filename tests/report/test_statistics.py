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


def test_a_paired_difference_has_mcnemars_p_value_and_a_bootstrap_interval():
    # The option is right on 30 images the base gets wrong, and wrong on 10 the base gets right.
    base = correct(1000, set(range(30)) | set(range(100, 150)))
    option = correct(1000, set(range(40, 50)) | set(range(100, 150)))
    result = statistics.paired_difference([option], [base])
    assert result.delta == pytest.approx(0.02)
    assert result.p_value == pytest.approx(stats.binomtest(30, 40).pvalue)
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
    steady = statistics.paired_difference([better, better], [base, base])
    assert steady.low > 0.04


def test_paired_runs_must_share_their_images_and_seeds():
    with pytest.raises(ValueError, match="same test images"):
        statistics.paired_difference([np.ones(5, bool)], [np.ones(6, bool)])
    with pytest.raises(ValueError, match="one base run per option run"):
        statistics.paired_difference([np.ones(5, bool)] * 2, [np.ones(5, bool)])


def test_detectable_difference_shrinks_with_images_and_seeds():
    one = statistics.detectable_difference(0.1, test_images=7050, seeds=1, comparisons=40)
    three = statistics.detectable_difference(0.1, test_images=7050, seeds=3, comparisons=40)
    small = statistics.detectable_difference(0.1, test_images=470, seeds=1, comparisons=40)
    assert three == pytest.approx(one / math.sqrt(3))
    assert small > one
    assert 0.01 < one < 0.02  # about 1.3 points on the proxy test split
