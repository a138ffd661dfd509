"""The debug presets: ``debug=fast`` (a few batches, no tuner, outputs/debug/), ``overfit``
(one batch, and whether the loss fell below a threshold), ``profile`` (a profiler trace)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from emnist_bench import debug as debug_lib
from emnist_bench.data import Dataset
from emnist_bench.data.files import Mapping
from tests.configs import compose_config, data_overrides, options

ROOT = Path(__file__).resolve().parents[1]


def test_every_logger_and_debug_option_composes_without_tensorflow():
    script = (
        "import sys\n"
        "from emnist_bench import config as config_lib\n"
        "from tests.configs import compose_config, options\n"
        "for group in ('logger', 'debug'):\n"
        "    for option in options(group):\n"
        "        config_lib.validate(compose_config([f'{group}={option}', 'model=cnn']))\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert options("debug") == ["fast", "overfit", "profile"]
    assert {"none", "mlflow"} <= set(options("logger"))


@pytest.mark.parametrize("preset", ["fast", "overfit", "profile"])
def test_debug_presets_need_no_tuner_and_write_under_outputs_debug(preset):
    cfg = compose_config([f"debug={preset}"], output_dir=None, hydra=True)
    assert cfg.tuner.name == "none" and cfg.debug.name == preset
    assert cfg.hydra.run.dir.startswith("outputs/debug/")
    assert cfg.hydra.sweep.dir.startswith("outputs/debug/")
    assert compose_config([]).get("debug") is None  # a plain run has no debug keys at all


def dataset(train: int, val: int, test: int) -> Dataset:
    rng = np.random.default_rng(0)

    def split(count):
        return rng.integers(0, 255, (count, 28, 28), dtype=np.uint8), np.arange(count) % 47

    mapping = Mapping(labels=tuple(range(47)), characters=tuple(str(i) for i in range(47)))
    return Dataset(*split(train), *split(val), *split(test), mapping, "idx")


def test_limit_batches_keeps_that_many_batches_of_each_split():
    data = dataset(1000, 300, 50)
    small = debug_lib.limited(data, {"name": "fast", "limit_batches": 3}, batch_size=64, seed=1)
    assert (len(small.y_train), len(small.y_val), len(small.y_test)) == (192, 192, 50)
    assert small.x_train.shape == (192, 28, 28)
    # Drawn at random, not the first images of the file (which may all be one class).
    assert len(np.unique(small.y_train)) == 47
    assert debug_lib.limited(data, None, 64, 1) is data


def test_overfit_trains_and_validates_on_one_batch():
    data = dataset(1000, 300, 500)
    debug = {"name": "overfit", "overfit_batches": 1, "limit_batches": 2}
    small = debug_lib.limited(data, debug, batch_size=32, seed=1)
    assert len(small.y_train) == 32
    assert np.array_equal(small.x_val, small.x_train) and np.array_equal(small.y_val, small.y_train)
    assert len(small.y_test) == 64


def test_the_overfit_verdict_says_whether_the_loss_fell_below_the_threshold(caplog):
    debug = {"name": "overfit", "overfit_batches": 1, "overfit_loss": 0.1}
    falling = [{"epoch": i, "loss": loss} for i, loss in enumerate([3.8, 0.5, 0.05])]
    stuck = [{"epoch": i, "loss": loss} for i, loss in enumerate([3.8, 3.7, 3.6])]
    with caplog.at_level(logging.INFO):
        passed = debug_lib.overfit_verdict(debug, falling, 128)["debug"]
        failed = debug_lib.overfit_verdict(debug, stuck, 128)["debug"]
    assert passed["passed"] and passed["final_loss"] == 0.05
    assert not failed["passed"] and failed["lowest_loss"] == 3.6
    assert "Overfit check passed" in caplog.text and "Overfit check failed" in caplog.text
    assert debug_lib.overfit_verdict({"name": "fast", "limit_batches": 3}, falling, 128) == {}


def run_preset(*arguments: str, cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "emnist_bench", *arguments],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return time.monotonic() - started, done


def only_run(folder: Path) -> Path:
    runs = [p.parent for p in folder.rglob("metrics.json")]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.slow
def test_debug_fast_finishes_a_cnn_run_on_the_idx_proxy_in_under_30_seconds(
    idx_proxy, proxy_cache, tmp_path
):
    # The proxy's training file is parsed into the cache first: the figure is the debug run.
    from emnist_bench.data import load_dataset
    from tests.configs import data_config

    load_dataset(data_config(idx_proxy, proxy_cache), seed=42)
    seconds, _ = run_preset(
        "debug=fast", "model=cnn", f"data.root={idx_proxy}", f"data.cache_dir={proxy_cache}",
        cwd=tmp_path,
    )  # fmt: skip
    out = only_run(tmp_path / "outputs" / "debug")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["model"] == "cnn"
    assert metrics["train_samples"] == metrics["test_samples"] == 3 * 128
    assert seconds < 30, f"debug=fast took {seconds:.1f} s"


@pytest.mark.slow
def test_debug_overfit_fits_one_batch_and_says_so(smoke_data, proxy_cache, tmp_path):
    _, done = run_preset(
        "debug=overfit",
        *data_overrides(smoke_data, proxy_cache, subset=None),
        "data.val_size=0.2",
        cwd=tmp_path,
    )
    metrics = json.loads((only_run(tmp_path / "outputs" / "debug") / "metrics.json").read_text())
    assert metrics["train_samples"] == 128 and metrics["epochs_run"] == 100
    assert metrics["debug"]["passed"] and metrics["debug"]["final_loss"] < 0.1
    assert "Overfit check passed" in done.stdout + done.stderr


@pytest.mark.slow
def test_debug_profile_writes_a_trace(smoke_data, proxy_cache, tmp_path):
    run_preset(
        "debug=profile",
        *data_overrides(smoke_data, proxy_cache, subset=None),
        "data.val_size=0.2",
        cwd=tmp_path,
    )
    out = only_run(tmp_path / "outputs" / "debug")
    traces = list((out / "tensorboard").rglob("plugins/profile/*/*.xplane.pb"))
    assert len(traces) == 1 and traces[0].stat().st_size > 0
