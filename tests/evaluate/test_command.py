"""``python -m emnist_bench.evaluate RUN_DIR``: a saved run's model on another test folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest


def test_evaluate_on_a_test_only_folder(cnn_run, smoke_data, tmp_path):
    out, metrics = cnn_run
    test_only = tmp_path / "official-test"
    test_only.mkdir()
    for name in ("emnist-balanced-test.csv", "emnist-balanced-mapping.txt"):
        shutil.copy(smoke_data / name, test_only / name)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "emnist_bench.evaluate",
            str(out),
            f"data.root={test_only}",
            "data.cache_dir=false",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    written = json.loads((out / "eval_official-test.json").read_text())
    assert written["test_samples"] == 470
    # The same model on the same test images gives the same figures as the run itself.
    assert written["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert written["macro_f1"] == pytest.approx(metrics["macro_f1"])
    assert f"accuracy {written['test_accuracy']:.4f}" in result.stdout
    assert written["confused_pairs"] == metrics["confused_pairs"]
    first = written["confused_pairs"][0]
    assert f"most confused: {'/'.join(first['pair'])} {first['errors']} (" in result.stdout


def test_evaluate_refuses_a_folder_that_is_not_a_run(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "emnist_bench.evaluate", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {tmp_path / 'config.yaml'}: not found; RUN_DIR must be the output folder of a run"
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.split=bylass", "data.split=bylass: Invalid value 'bylass', expected one of [bal"),
        ("data.subset=0", "data.subset=0 must be >= 1"),
        ("data.roott=/x", "data.roott=/x: Key 'roott' not in 'DataSchema'"),
        ("trainer.batch_size=abc", "trainer.batch_size=abc: Value 'abc' of type 'str' could not"),
        ("foo.bar=1", "foo.bar=1: foo: the run's config has no such key"),
        # a group, as on the training command line: the run's groups stay as it ran
        ("data=digits", "data=digits: data is a group of keys; set one of them (data.split=..."),
        ("notkv", "'notkv' is not key=value; usage: python -m emnist_bench.evaluate RUN_DIR"),
    ],
)
def test_a_wrong_override_is_one_line_before_any_data_is_looked_for(cnn_run, override, message):
    """As composing a run would refuse it: a misspelt split is not a download of its files."""
    from emnist_bench.errors import ConfigError
    from emnist_bench.evaluate.command import evaluate

    with pytest.raises(ConfigError) as refused:
        evaluate(cnn_run[0], [override])
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)
