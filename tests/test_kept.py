"""What a refusal to replace a completed run names: the keys whose values differ."""

from __future__ import annotations

from emnist_bench.kept import changed_keys


def test_changed_keys_are_dotted_leaves_and_a_null_is_no_key():
    then = {
        "trainer": {"epochs": 3, "seed": 1},
        "model": {"crop": None},
        "logger": {"name": "none"},
    }
    now = {
        "trainer": {"epochs": 4, "seed": 1},
        "model": {"dense_units": [128]},
        "logger": {"name": "mlflow"},  # cannot change what a run computes
        "output_dir": "/elsewhere",  # nor where its folder is
    }

    assert changed_keys(then, now) == [
        ("model.dense_units", None, [128]),
        ("trainer.epochs", 3, 4),
    ]
    assert changed_keys(then, then) == []
