"""End-to-end runs on the real CSV proxy: every per-run artifact, evaluate, determinism."""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys

import pytest

from emnist_bench.run import run
from tests.configs import compose_config, smoke_overrides

ARTIFACTS = (
    "metrics.json",
    "history.csv",
    "model.keras",
    "classification_report.txt",
    "config.yaml",
    "plots/curves.png",
    "plots/confusion_matrix.png",
    "plots/samples.png",
    "plots/class_distribution.png",
)
CNN_RUN = (
    "model=cnn",
    "batch_norm=on",
    "regularization=l2",
    "dropout=on",
    "optimizer=rmsprop",
    "activation=elu",
    "lr_schedule=step_decay",
    "lr_schedule.every=1",
    "data.class_weight=logit_adjusted",
    "trainer.epochs=2",
)


@pytest.fixture(scope="module")
def cnn_run(csv_proxy, proxy_cache, tmp_path_factory):
    """A 2-epoch CNN run with batch norm, L2, dropout, a halving step-decay schedule and the
    logit-adjusted loss (a custom loss saved with the model: evaluate must still load it)."""
    out = tmp_path_factory.mktemp("cnn_run")
    overrides = smoke_overrides(csv_proxy, proxy_cache, *CNN_RUN)
    metrics = run(compose_config(overrides, output_dir=out))
    return out, metrics


def test_run_writes_every_artifact(cnn_run):
    out, _ = cnn_run
    missing = [name for name in ARTIFACTS if not (out / name).is_file()]
    assert missing == []
    assert all((out / name).stat().st_size > 1000 for name in ARTIFACTS if name.endswith(".png"))
    assert list((out / "tensorboard").rglob("events.out.tfevents.*"))


def test_metrics_hold_sane_values(cnn_run):
    out, returned = cnn_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(returned, default=float))
    assert metrics["status"] == "completed"
    assert metrics["test_samples"] == 470
    assert metrics["train_samples"] + metrics["val_samples"] == 2350
    assert metrics["val_samples"] == 470
    assert metrics["epochs_run"] == 2
    # 47 classes: chance is 2%; two epochs of a CNN do much better.
    assert 0.1 < metrics["test_accuracy"] <= 1 and 0 < metrics["macro_f1"] <= 1
    assert 0 < metrics["val_accuracy"] <= 1 and math.isfinite(metrics["test_loss"])
    assert metrics["train_seconds"] > 0 and metrics["train_images_per_second"] > 0
    assert metrics["params"] > 10_000
    assert set(metrics["per_class"]) == set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghnqrt")
    assert {"precision", "recall", "f1", "support"} == set(metrics["per_class"]["A"])
    assert sum(c["support"] for c in metrics["per_class"].values()) == 470
    assert {
        k: metrics[k]
        for k in (
            "model",
            "optimizer",
            "activation",
            "batch_norm",
            "regularization",
            "dropout",
            "lr_schedule",
        )
    } == {
        "model": "cnn",
        "optimizer": "rmsprop",
        "activation": "elu",
        "batch_norm": "on",
        "regularization": "l2",
        "dropout": "on",
        "lr_schedule": "step_decay",
    }


def test_history_has_one_row_per_epoch_with_the_schedule(cnn_run):
    out, _ = cnn_run
    with (out / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert set(rows[0]) >= {
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "learning_rate",
        "seconds",
    }
    rates = [float(r["learning_rate"]) for r in rows]
    assert rates == pytest.approx([1e-3, 5e-4])  # step decay, drop 0.5 every epoch
    assert all(float(r["seconds"]) > 0 for r in rows)


def test_classification_report_names_every_character(cnn_run):
    out, _ = cnn_run
    report = (out / "classification_report.txt").read_text()
    lines = {line.split()[0] for line in report.splitlines() if line.strip()}
    assert set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghnqrt") <= lines
    assert "macro avg" in report


def test_evaluate_on_a_test_only_folder(cnn_run, csv_proxy, tmp_path):
    out, metrics = cnn_run
    test_only = tmp_path / "official-test"
    test_only.mkdir()
    for name in ("emnist-balanced-test.csv", "emnist-balanced-mapping.txt"):
        shutil.copy(csv_proxy / name, test_only / name)
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


def test_cli_mlp_run_writes_metrics(csv_proxy, proxy_cache, tmp_path):
    """The issue's form: python -m emnist_bench model=mlp data.root=DIR ... hydra.run.dir=OUT"""
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "emnist_bench",
            "model=mlp",
            *smoke_overrides(csv_proxy, proxy_cache),
            "data.subset=20",
            f"hydra.run.dir={out}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["model"] == "mlp"
    assert metrics["train_samples"] + metrics["val_samples"] == 47 * 20
    assert metrics["test_samples"] == 470 and 0 <= metrics["test_accuracy"] <= 1
    assert "test_accuracy" in result.stdout  # the summary table
    assert not (tmp_path / "outputs").exists()  # nothing lands in the working directory


def test_deterministic_runs_agree(csv_proxy, proxy_cache, tmp_path):
    overrides = smoke_overrides(
        csv_proxy,
        proxy_cache,
        "model=cnn",
        "data.subset=20",
        "trainer.deterministic=true",
        "trainer.seed=7",
        "trainer.epochs=2",
    )
    first = run(compose_config(overrides, output_dir=tmp_path / "a"))
    second = run(compose_config(overrides, output_dir=tmp_path / "b"))
    for key in ("test_accuracy", "test_loss", "macro_f1", "val_accuracy"):
        assert first[key] == second[key], key
    history = [(tmp_path / d / "history.csv").read_text().splitlines() for d in "ab"]
    losses = [[row.split(",")[1] for row in rows] for rows in history]
    assert losses[0] == losses[1]


def test_divergence_is_detected_and_recorded(csv_proxy, proxy_cache, tmp_path):
    overrides = smoke_overrides(
        csv_proxy,
        proxy_cache,
        "model=mlp",
        "data.subset=20",
        "optimizer=sgd",
        "optimizer.learning_rate=1e12",
        "trainer.epochs=3",
        "dropout=off",
    )
    metrics = run(compose_config(overrides, output_dir=tmp_path))
    assert metrics["status"] == "diverged"
    assert metrics["epochs_run"] == 1
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "diverged"


def test_a_completed_run_is_not_repeated(cnn_run, csv_proxy, proxy_cache, monkeypatch):
    out, metrics = cnn_run
    overrides = smoke_overrides(csv_proxy, proxy_cache, *CNN_RUN)
    import emnist_bench.run as run_module

    monkeypatch.setattr(run_module, "_run", lambda *a: pytest.fail("re-ran a completed run"))
    again = run(compose_config(overrides, output_dir=out))
    assert again["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    with pytest.raises(pytest.fail.Exception):  # a changed config does run again
        run(compose_config([*overrides, "trainer.seed=1"], output_dir=out))
