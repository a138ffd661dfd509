"""Nothing lost: a killed run resumes from its last finished epoch, Ctrl-C and SIGTERM leave a
resumable folder, and one process at a time runs a folder. (A completed run whose model was
damaged runs again: tests/test_faults.py.)"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from emnist_bench.errors import INTERRUPTED, UserError, exit_on_user_error
from emnist_bench.run import run
from emnist_bench.rundir import BACKUP, completed_metrics, run_lock
from tests.configs import compose_config, smoke_overrides

# Three CNN epochs of most of a second each: time to stop one in epoch 2.
RESUMABLE = ("model=cnn", "data.subset=30", "trainer.epochs=3", "trainer.batch_size=32")
# A one-epoch MLP on 5 images per class: the cheapest complete run.
TINY = ("model=mlp",)


def history_rows(out: Path) -> list[dict[str, str]]:
    with (out / "history.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def wait_for(path: Path, process: subprocess.Popen | None = None, timeout: float = 240) -> None:
    """Polls until ``path`` exists (the process, if given, must still be running)."""
    deadline = time.monotonic() + timeout
    while not path.is_file():
        if process is not None and process.poll() is not None:
            pytest.fail(f"the run ended before {path.name} appeared: {process.stderr.read()}")
        assert time.monotonic() < deadline, f"{path} did not appear in {timeout} s"
        time.sleep(0.02)


@pytest.mark.slow  # trains several models or epochs: make test-all
def test_a_run_killed_in_epoch_2_resumes_without_training_epoch_1_again(
    smoke_data, proxy_cache, tmp_path
):
    out = tmp_path / "run"
    overrides = smoke_overrides(smoke_data, proxy_cache, *RESUMABLE)
    command = [sys.executable, "-m", "emnist_bench", *overrides, f"hydra.run.dir={out}"]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        # The backup of epoch 1 is written after its history row: epoch 2 is under way.
        wait_for(out / BACKUP / "state.json", process)
    finally:
        process.kill()  # SIGKILL: no handler runs, nothing is cleaned up
        process.wait(timeout=60)
    killed = history_rows(out)
    assert [row["epoch"] for row in killed] == ["0"]
    assert json.loads((out / "metrics.json").read_text())["status"] == "running"
    assert completed_metrics(compose_config(overrides, out), out) is None

    # The same command again (the config it composes is the one the command line resolved).
    metrics = run(compose_config(overrides, output_dir=out))

    assert metrics["status"] == "completed" and metrics["epochs_run"] == 3
    rows = history_rows(out)
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    assert rows[0] == killed[0]  # epoch 1 kept as it was: not trained again
    assert metrics["train_seconds"] > float(rows[0]["seconds"])  # epoch 1's time counts
    assert not (out / BACKUP).exists()  # removed once the run completed
    # TensorBoard: the resumed run logs epochs 2 and 3 beside what the killed one flushed,
    # no epoch twice (a restart from 0 would log epoch 1 again).
    steps = tensorboard_steps(out / "tensorboard" / "train", "epoch_loss")
    assert sorted(set(steps)) == sorted(steps) and {1, 2} <= set(steps) <= {0, 1, 2}


def tensorboard_steps(folder: Path, tag: str) -> list[int]:
    import tensorflow as tf

    return [
        event.step
        for path in folder.glob("events.out.tfevents.*")
        for event in tf.compat.v1.train.summary_iterator(str(path))
        if any(value.tag == tag for value in event.summary.value)
    ]


def test_a_run_stopped_after_its_last_epoch_finishes_without_training_again(
    smoke_data, proxy_cache, tmp_path, monkeypatch
):
    """Stopped while it wrote its files: the backup holds every epoch, the same command only
    writes the files, with the history as it was."""
    import emnist_bench.evaluate.artifacts as artifacts

    cfg = compose_config(smoke_overrides(smoke_data, proxy_cache, *TINY), output_dir=tmp_path)
    with monkeypatch.context() as patch:

        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt

        patch.setattr(artifacts, "write_run_files", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run(cfg)
    before = history_rows(tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "interrupted"

    metrics = run(cfg)

    assert metrics["status"] == "completed" and metrics["epochs_run"] == 1
    assert history_rows(tmp_path) == before
    assert metrics["train_seconds"] >= float(before[0]["seconds"])


def test_sigterm_leaves_a_resumable_folder_and_one_line(smoke_data, proxy_cache, tmp_path, capsys):
    """What SLURM sends before it preempts a job: the run stops, says so in one line, exit 143,
    and the same command goes on from the last finished epoch."""
    out = tmp_path / "run"
    cfg = compose_config(smoke_overrides(smoke_data, proxy_cache, *RESUMABLE), output_dir=out)

    def terminate_in_epoch_2():
        wait_for(out / BACKUP / "state.json")
        os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    threading.Thread(target=terminate_in_epoch_2, daemon=True).start()
    with pytest.raises(SystemExit) as exited, exit_on_user_error():
        run(cfg)

    assert exited.value.code == 128 + signal.SIGTERM
    assert capsys.readouterr().err == f"{INTERRUPTED}\n"
    assert json.loads((out / "metrics.json").read_text())["status"] == "interrupted"
    assert len(history_rows(out)) in (1, 2)  # stopped in epoch 2 (or just after it)
    assert (out / BACKUP / "state.json").is_file()
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is gone again


def test_ctrl_c_exits_130_with_one_line():
    with pytest.raises(SystemExit) as exited, exit_on_user_error():
        raise KeyboardInterrupt
    assert exited.value.code == 130


def test_one_process_per_run_folder(smoke_data, proxy_cache, tmp_path, monkeypatch):
    """A second copy of a command or sweep on a folder another process is running: refused in
    one line, or in a sweep (continue_on_error) skipped without touching the folder."""
    import emnist_bench.run as run_module

    monkeypatch.setattr(run_module, "_run", lambda *a: pytest.fail("ran a busy folder"))
    overrides = smoke_overrides(smoke_data, proxy_cache, *TINY)
    with run_lock(tmp_path):  # held as another process would
        with pytest.raises(UserError, match=r"another process \(pid \d+\) is running this run"):
            run(compose_config(overrides, output_dir=tmp_path))
        skipped = run(compose_config([*overrides, "continue_on_error=true"], tmp_path))
    assert skipped["status"] == "busy"
    assert not (tmp_path / "metrics.json").exists()
    # Released: the folder can be run again.
    with run_lock(tmp_path):
        pass
