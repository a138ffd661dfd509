"""Tests of the keras-tuner search: trials.csv, best_hparams.yaml, resuming, failed trials.

Tiny data (10 images per class of ``smoke_data``), one epoch per trial, two trials per search.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from emnist_bench.errors import ConfigError, UserError
from emnist_bench.run import run
from tests.configs import compose_config, smoke_overrides

TUNERS = ("random", "bayesian", "hyperband")
REPO_ROOT = Path(__file__).resolve().parents[2]


def compose_cfg(smoke_data: Path, cache: Path, out: Path, *overrides: str) -> DictConfig:
    """The real config on the smoke data (5 images per class): searches of two 1-epoch trials."""
    tiny = ("tuner.max_trials=2", "tuner.epochs=1", *overrides)
    return compose_config(smoke_overrides(smoke_data, cache, *tiny), output_dir=out)


def read_trials(out: Path) -> list[dict[str, str]]:
    with (out / "trials.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def best_row(rows: list[dict[str, str]]) -> dict[str, str]:
    return max((r for r in rows if r["status"] == "COMPLETED"), key=lambda r: float(r["score"]))


def count_calls(monkeypatch, failing: int | None = None) -> list[int]:
    """Counts the trials that train; the ``failing``-th (1-based) raises instead."""
    from emnist_bench.tuning import search as search_lib

    calls: list[int] = []
    fit = search_lib.ConfigHyperModel.fit

    def counted(self, hp, model, *args, **kwargs):
        calls.append(1)
        if len(calls) == failing:
            raise RuntimeError("forced failure")
        return fit(self, hp, model, *args, **kwargs)

    monkeypatch.setattr(search_lib.ConfigHyperModel, "fit", counted)
    return calls


@pytest.fixture(scope="module")
def searched(smoke_data, proxy_cache, tmp_path_factory):
    """One MLP random search of two trials, re-trained: (its folder, metrics.json). The trials
    train with the logit-adjusted loss, which needs the class prior in every trial."""
    out = tmp_path_factory.mktemp("search")
    overrides = ("model=mlp", "tuner=random", "data.class_weight=logit_adjusted")
    metrics = run(compose_cfg(smoke_data, proxy_cache, out, *overrides))
    return out, metrics


def test_search_records_each_trial_and_retrains_the_best(searched):
    out, metrics = searched
    rows = read_trials(out)
    assert [r["trial_id"] for r in rows] == ["0", "1"]
    assert {r["status"] for r in rows} == {"COMPLETED"}
    trials = [json.loads(p.read_text()) for p in (out / "tuner/mlp_random").glob("*/trial.json")]
    val_accuracy = {t["trial_id"]: t["metrics"]["metrics"]["val_accuracy"] for t in trials}
    for row in rows:
        # The score is the objective: the best val_accuracy keras-tuner observed in the trial.
        observed = [
            v for obs in val_accuracy[row["trial_id"]]["observations"] for v in obs["value"]
        ]
        assert float(row["score"]) == pytest.approx(max(observed))
        assert row["optimizer"] in ("adam", "sgd", "rmsprop", "adadelta")
        layers = int(row["layers"])
        assert 3 <= layers <= 5
        # Per-layer hyperparameters exist for the trial's layers only.
        assert all(row[f"units_{i}"] for i in range(1, layers + 1))
        assert not any(row.get(f"units_{i}") for i in range(layers + 1, 6))
    best = best_row(rows)
    assert metrics["status"] == "completed"
    assert metrics["params"] == int(best["params"])
    assert metrics["optimizer"] == best["optimizer"]
    for artifact in ("metrics.json", "model.keras", "history.csv", "plots/confusion_matrix.png"):
        assert (out / artifact).is_file(), artifact
    assert len(list((out / "tuner" / "mlp_random").glob("trial_*/trial.json"))) == 2
    hparams = OmegaConf.load(out / "best_hparams.yaml")
    # Named as trials.csv names it and as keras-tuner's output counted it ("Running Trial #").
    number = int(best["trial_id"]) + 1
    header = (out / "best_hparams.yaml").read_text().splitlines()[0]
    assert f"trial {best['trial_id']} (Trial #{number})," in header
    layers = int(best["layers"])
    assert hparams.model.hidden_units == [int(best[f"units_{i}"]) for i in range(1, layers + 1)]
    assert hparams.model.activations == [best[f"activation_{i}"] for i in range(1, layers + 1)]
    assert hparams.optimizer.learning_rate == pytest.approx(float(best["learning_rate"]))
    assert hparams.dropout.enabled is True


def test_best_hparams_feed_back_into_a_plain_run(searched, smoke_data, proxy_cache, tmp_path):
    out, metrics = searched
    hparams = OmegaConf.load(out / "best_hparams.yaml")
    # Other group choices on the command line are replaced whole by the file's groups.
    cfg = compose_cfg(
        smoke_data,
        proxy_cache,
        tmp_path,
        "model=cnn",
        "optimizer=adamw",
        f"hparams_file={out / 'best_hparams.yaml'}",
    )
    plain = run(cfg)
    assert not (tmp_path / "trials.csv").exists()
    assert plain["family"] == "mlp"
    assert plain["params"] == metrics["params"] == int(best_row(read_trials(out))["params"])
    saved = OmegaConf.load(tmp_path / "config.yaml")
    for group in hparams:
        assert saved[group] == hparams[group], group  # no adamw weight_decay left over


def test_resume_keeps_finished_trials_and_runs_only_new_ones(
    searched, smoke_data, proxy_cache, tmp_path, monkeypatch
):
    out, _ = searched
    resumed = tmp_path / "resumed"
    shutil.copytree(out, resumed)
    calls = count_calls(monkeypatch)
    # The same command with more trials (the search's own class weights as well).
    overrides = ("model=mlp", "tuner=random", "data.class_weight=logit_adjusted")
    run(compose_cfg(smoke_data, proxy_cache, resumed, *overrides, "tuner.max_trials=3"))
    assert len(calls) == 1
    before, after = read_trials(out), read_trials(resumed)
    assert len(after) == 3
    assert after[:2] == before
    assert after[2]["trial_id"] == "2" and after[2]["status"] == "COMPLETED"


@pytest.fixture(scope="module")
def tiny_data(smoke_data, proxy_cache):
    from emnist_bench.data import load_dataset

    cfg = compose_cfg(smoke_data, proxy_cache, Path("unused"))
    return load_dataset(cfg.data, seed=int(cfg.trainer.seed))


def test_a_failing_trial_is_recorded_and_the_search_goes_on(
    smoke_data, proxy_cache, tiny_data, tmp_path, monkeypatch
):
    from emnist_bench.tuning.search import search

    calls = count_calls(monkeypatch, failing=1)
    cfg = compose_cfg(smoke_data, proxy_cache, tmp_path, "tuner=random")
    best = search(cfg, tiny_data, tmp_path)
    assert len(calls) == 2
    failed, completed = read_trials(tmp_path)
    assert failed["status"] == "FAILED" and not failed["score"]
    assert failed["error"] == "RuntimeError: forced failure"
    assert completed["status"] == "COMPLETED" and not completed["error"]
    units = [int(completed[f"units_{i}"]) for i in range(1, int(completed["layers"]) + 1)]
    assert list(best.model.hidden_units) == units
    assert OmegaConf.load(tmp_path / "best_hparams.yaml").model.hidden_units == units


def test_when_every_trial_fails_the_run_stops_with_one_line(smoke_data, proxy_cache, tmp_path):
    # Three 7x7 'valid' conv blocks shrink a 28x28 image below zero: no trial can build.
    cfg = compose_cfg(
        smoke_data,
        proxy_cache,
        tmp_path,
        "model=cnn",
        "tuner=random",
        "model.padding=valid",
        "search_space.cnn.conv_blocks.min=3",
        "search_space.cnn.conv_blocks.max=3",
        "search_space.cnn.kernel_size.values=[7]",
    )
    with pytest.raises(UserError) as raised:
        run(cfg)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("all 2 tuner trials failed")
    assert "smaller than its 7x7 kernel" in message  # each trial's config is checked
    assert [r["status"] for r in read_trials(tmp_path)] == ["FAILED", "FAILED"]
    # The folder says so (it said `running` from the start), and is not taken for completed.
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "failed" and metrics["error"] == message


@pytest.mark.slow  # trains several models or epochs: make test-all
@pytest.mark.parametrize("tuner", ["bayesian", "hyperband"])
def test_each_tuner_searches_the_cnn_space(tuner, smoke_data, proxy_cache, tiny_data, tmp_path):
    from emnist_bench.training.fit import build_model
    from emnist_bench.tuning.search import gradient_registry, search

    cfg = compose_cfg(smoke_data, proxy_cache, tmp_path, "model=cnn", f"tuner={tuner}")
    gradients = set(gradient_registry())
    best_cfg = search(cfg, tiny_data, tmp_path)
    # Trials leave no global gradient functions behind (each would hold its train step graph).
    assert set(gradient_registry()) == gradients
    rows = read_trials(tmp_path)
    assert [r["status"] for r in rows] == ["COMPLETED", "COMPLETED"]
    if tuner == "hyperband":
        assert {r["tuner/epochs"] for r in rows} == {"1"}  # tuner.epochs is max_epochs
    best = best_row(rows)
    blocks = int(best["conv_blocks"])
    assert list(best_cfg.model.conv_filters) == [
        int(best[f"filters_{i}"]) for i in range(1, blocks + 1)
    ]
    assert list(best_cfg.model.kernel_size) == [
        int(best[f"kernel_size_{i}"]) for i in range(1, blocks + 1)
    ]
    model = build_model(best_cfg, tiny_data.num_classes)
    assert model.count_params() == int(best["params"])


def test_a_missing_hparams_file_is_one_config_error(smoke_data, proxy_cache, tmp_path):
    cfg = compose_cfg(smoke_data, proxy_cache, tmp_path, f"hparams_file={tmp_path / 'nope.yaml'}")
    with pytest.raises(ConfigError, match="hparams_file=.*nope.yaml") as raised:
        run(cfg)
    assert "\n" not in str(raised.value)


def test_cli_lists_tuners_and_composes_them_without_tensorflow():
    env = {**os.environ, "MPLBACKEND": "Agg"}
    shown = subprocess.run(
        [sys.executable, "-m", "emnist_bench", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert "tuner: bayesian, hyperband, none, random" in shown
    script = f"""
import sys
from tests.configs import compose_config
for name in {TUNERS + ("none",)!r}:
    cfg = compose_config(["tuner=" + name, "model=cnn"])
    print(name, cfg.tuner.name, cfg.tuner.max_trials, cfg.tuner.epochs, cfg.tuner.objective,
          len(cfg.search_space.cnn), "tensorflow" in sys.modules)
"""
    lines = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=REPO_ROOT,
    ).stdout.splitlines()
    for name, line in zip(TUNERS + ("none",), lines, strict=True):
        assert line.split() == [name, name, "10", "5", "val_accuracy", "14", "False"]


def test_each_tuner_name_has_a_tuner_and_its_own_keys_are_keras_tuner_arguments():
    import dataclasses
    import inspect

    from emnist_bench.schema import SCHEMAS, TunerName
    from emnist_bench.tuning.search import SHARED_TUNER_KEYS, TUNERS

    assert {name.value for name in TunerName} == {"none", *TUNERS}
    for name, tuner in TUNERS.items():
        schema = SCHEMAS.get(f"tuner/{name}", SCHEMAS["tuner/base"])
        own = {f.name for f in dataclasses.fields(schema)} - SHARED_TUNER_KEYS
        accepted = set(inspect.signature(tuner.__mro__[2].__init__).parameters)
        assert own <= accepted, (name, own - accepted)
