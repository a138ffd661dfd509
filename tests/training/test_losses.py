"""Class weights, the class prior and the logit-adjusted loss (emnist_bench.training.losses)."""

from __future__ import annotations

import numpy as np
import pytest

from emnist_bench.training import losses


def test_balanced_class_weights_are_inverse_to_frequency():
    labels = np.array([0] * 30 + [1] * 10 + [3] * 20)
    weights = losses.class_weights(labels, num_classes=5)
    assert set(weights) == set(range(5))
    assert weights[0] * 30 == pytest.approx(weights[1] * 10) == pytest.approx(weights[3] * 20)
    assert weights[0] == pytest.approx(len(labels) / (3 * 30))
    assert weights[2] == weights[4] == 1.0  # absent classes keep a neutral weight


def test_logit_adjusted_loss_is_crossentropy_on_logits_shifted_by_the_log_prior():
    labels = np.array([0] * 60 + [1] * 30 + [2] * 10)
    prior = losses.class_prior(labels, num_classes=4)
    np.testing.assert_allclose(prior, np.array([60, 30, 10, 1]) / 101)  # absent class counts 1

    probabilities = np.array([[0.7, 0.2, 0.05, 0.05], [0.1, 0.3, 0.5, 0.1]], np.float32)
    targets = np.array([1, 2])
    loss = losses.LogitAdjustedCrossentropy(prior)
    adjusted = np.log(probabilities) + np.log(prior)
    adjusted = np.exp(adjusted) / np.exp(adjusted).sum(axis=1, keepdims=True)
    expected = -np.log(adjusted[np.arange(2), targets]).mean()
    assert float(loss(targets, probabilities)) == pytest.approx(expected, rel=1e-5)
    one_hot = np.eye(4, dtype=np.float32)[targets]
    assert float(loss(one_hot, probabilities)) == pytest.approx(expected, rel=1e-5)
    # A uniform prior shifts every logit alike: plain cross-entropy.
    uniform = losses.LogitAdjustedCrossentropy(np.full(4, 0.25))
    plain = -np.log(probabilities[np.arange(2), targets]).mean()
    assert float(uniform(targets, probabilities)) == pytest.approx(plain, rel=1e-5)
