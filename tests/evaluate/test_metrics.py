"""The pairs of characters a model mixes up, counted either way round."""

from __future__ import annotations

import numpy as np
import pytest

from emnist_bench.evaluate.metrics import confused_pairs, pairs_text

CLASSES = ("0", "O", "1", "l", "A")


def test_pairs_count_both_directions_most_errors_first():
    # 0 read as O twice and O as 0 once: 3 errors on 0/O; 1 read as l twice; A always right.
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 4])
    predictions = np.array([1, 1, 0, 0, 1, 3, 3, 2, 3, 4])
    pairs = confused_pairs(labels, predictions, CLASSES)
    assert pairs == [
        {"pair": ["0", "O"], "errors": 3, "share_of_errors": pytest.approx(3 / 5)},
        {"pair": ["1", "l"], "errors": 2, "share_of_errors": pytest.approx(2 / 5)},
    ]
    assert pairs_text(pairs) == "0/O 3 (60%), 1/l 2 (40%)"


def test_ties_keep_the_classes_order_and_top_cuts_the_list():
    labels = np.array([4, 2, 0])
    predictions = np.array([3, 4, 1])  # one error each on A/l, 1/A and 0/O
    pairs = confused_pairs(labels, predictions, CLASSES, top=2)
    assert [pair["pair"] for pair in pairs] == [["0", "O"], ["1", "A"]]


def test_a_model_without_errors_confuses_nothing():
    labels = np.arange(5)
    assert confused_pairs(labels, labels.copy(), CLASSES) == []
