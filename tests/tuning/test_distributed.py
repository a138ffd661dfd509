"""keras-tuner's distributed search: a chief and workers on 127.0.0.1, started as keras-tuner
documents it (``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP``, ``KERASTUNER_ORACLE_PORT``),
every process the same command with the same ``hydra.run.dir``; and the chief's handling of
a worker that dies, on a real oracle without training.

Tiny data (5 images per class of ``smoke_data``), one epoch per trial.
"""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from emnist_bench.errors import ConfigError
from emnist_bench.tuning import distributed

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def search_command(smoke_data: Path, cache: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "emnist_bench", "model=mlp", "tuner=random",
        "tuner.max_trials=6", "tuner.epochs=1", "trainer.epochs=1", "trainer.sample_grid=4",
        f"data.root={smoke_data}", f"data.cache_dir={cache}", "data.subset=5",
        "data.val_size=0.2", "data.download=false", f"hydra.run.dir={out}", *extra,
    ]  # fmt: skip


def start(command: list[str], tuner_id: str, port: int, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "KERASTUNER_TUNER_ID": tuner_id,
        "KERASTUNER_ORACLE_IP": "127.0.0.1",
        "KERASTUNER_ORACLE_PORT": str(port),
        "MPLBACKEND": "Agg",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    handle = log.open("w")
    return subprocess.Popen(
        command, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO_ROOT
    )


def wait_all(processes: dict[str, subprocess.Popen], logs: Path, timeout: float) -> dict[str, int]:
    """Every process's exit code; on a timeout the processes still running are killed and the
    test fails with their logs."""
    deadline = time.monotonic() + timeout
    codes = {}
    try:
        for name, process in processes.items():
            codes[name] = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        tails = {name: (logs / f"{name}.log").read_text()[-2000:] for name in processes}
        pytest.fail(f"the search did not end in {timeout} s: {tails}")
    return codes


def read_trials(out: Path) -> list[dict[str, str]]:
    with (out / "trials.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def hparams(row: dict[str, str]) -> tuple:
    skip = {"trial_id", "status", "score", "error", "params"}
    return tuple(
        v for k, v in row.items() if k not in skip and not k.startswith(("val_", "loss", "acc"))
    )


@pytest.mark.slow
def test_a_chief_and_two_workers_run_every_trial_once(smoke_data, proxy_cache, tmp_path):
    out, port = tmp_path / "search", free_port()
    command = search_command(smoke_data, proxy_cache, out)
    processes = {
        tuner_id: start(command, tuner_id, port, tmp_path / f"{tuner_id}.log")
        for tuner_id in ("chief", "tuner0", "tuner1")
    }
    codes = wait_all(processes, tmp_path, timeout=480)
    logs = {name: (tmp_path / f"{name}.log").read_text() for name in processes}
    assert codes == {"chief": 0, "tuner0": 0, "tuner1": 0}, {k: v[-3000:] for k, v in logs.items()}

    rows = read_trials(out)
    assert sorted(row["trial_id"] for row in rows) == ["0", "1", "2", "3", "4", "5"]
    assert all(row["status"] == "COMPLETED" for row in rows)
    assert len({hparams(row) for row in rows}) == 6  # six distinct configurations
    best = OmegaConf.load(out / "best_hparams.yaml")
    assert best.model.family == "mlp"
    # Both workers trained; the chief never did (it only re-trained the best afterwards).
    trained = {tuner_id: logs[tuner_id].count(f"Worker {tuner_id}: trial ") for tuner_id in logs}
    assert trained["chief"] == 0 and trained["tuner0"] + trained["tuner1"] == 6
    assert trained["tuner0"] and trained["tuner1"]
    metrics = OmegaConf.load(out / "metrics.json")
    assert metrics.status == "completed" and (out / "model.keras").is_file()

    # The same worker command again finds the completed search and has nothing to do.
    again = subprocess.run(
        command,
        env={**os.environ, "KERASTUNER_TUNER_ID": "tuner0", "KERASTUNER_ORACLE_IP": "127.0.0.1",
             "KERASTUNER_ORACLE_PORT": str(port)},  # fmt: skip
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    assert "nothing to do" in again.stdout + again.stderr


@pytest.mark.slow
def test_a_worker_killed_mid_trial_hangs_nothing_and_loses_no_trial(
    smoke_data, proxy_cache, tmp_path
):
    out, port = tmp_path / "search", free_port()
    fast = [
        "tuner.max_trials=4",
        "tuner.distributed.heartbeat=1",
        "tuner.distributed.worker_timeout=8",
    ]
    command = search_command(smoke_data, proxy_cache, out, *fast)
    # The victim trains its trials for long, so that it is killed in the middle of one.
    slow = [*command, "tuner.epochs=400", "tuner.early_stopping.enabled=false"]
    processes = {
        "chief": start(command, "chief", port, tmp_path / "chief.log"),
        "victim": start(slow, "tuner1", port, tmp_path / "victim.log"),
    }
    victim_log = tmp_path / "victim.log"
    deadline = time.monotonic() + 240
    while "Worker tuner1: trial " not in victim_log.read_text():
        assert time.monotonic() < deadline and processes["victim"].poll() is None, (
            victim_log.read_text()[-2000:]
        )
        time.sleep(0.5)
    processes["victim"].send_signal(signal.SIGKILL)
    processes["victim"].wait()
    processes["tuner0"] = start(command, "tuner0", port, tmp_path / "tuner0.log")
    del processes["victim"]
    codes = wait_all(processes, tmp_path, timeout=300)
    chief_log = (tmp_path / "chief.log").read_text()
    assert codes == {"chief": 0, "tuner0": 0}, chief_log[-3000:]
    assert "Worker tuner1 has not reported" in chief_log and "goes back to the queue" in chief_log
    rows = read_trials(out)
    assert sorted(row["trial_id"] for row in rows) == ["0", "1", "2", "3"]
    assert all(row["status"] == "COMPLETED" for row in rows)


# --- the chief's bookkeeping, on a real oracle ----------------------------------------------


@pytest.fixture
def oracle(tmp_path):
    import keras_tuner as kt

    oracle = kt.oracles.RandomSearchOracle(objective="val_accuracy", max_trials=3, seed=1)
    oracle._set_project_dir(str(tmp_path), "project")
    hp = oracle.get_space()
    hp.Int("units", 8, 512)
    oracle.update_space(hp)
    return oracle


def test_a_silent_worker_s_trial_goes_back_to_the_queue_then_fails(oracle, monkeypatch):
    contacts = distributed._Contacts()
    first = oracle.create_trial("tuner0")
    contacts.runs[first.trial_id] = "tuner0"
    contacts.heard(tuner_id="tuner0")
    assert distributed._take_back_dead(oracle, contacts, timeout=60) == []
    assert distributed._search_state(oracle, contacts) == "running"

    contacts.seen["tuner0"] -= 120  # silent for two minutes
    assert distributed._take_back_dead(oracle, contacts, timeout=60) == ["tuner0"]
    assert oracle._retry_queue == [first.trial_id] and not oracle.ongoing_trials
    # No worker left while a trial waits: the chief gives up instead of waiting forever.
    assert distributed._search_state(oracle, contacts) == "abandoned"

    again = oracle.create_trial("tuner1")  # the next worker gets the same trial
    assert again.trial_id == first.trial_id
    contacts.runs[again.trial_id] = "tuner1"
    contacts.heard(tuner_id="tuner1")
    contacts.seen["tuner1"] -= 120
    distributed._take_back_dead(oracle, contacts, timeout=60)
    assert oracle.trials[first.trial_id].status == "FAILED"  # its second worker died too
    assert "stopped reporting twice" in oracle.trials[first.trial_id].message


def test_the_search_is_over_when_every_trial_ended_and_every_worker_was_told(oracle):
    contacts = distributed._Contacts()
    for _ in range(3):
        trial = oracle.create_trial("tuner0")
        contacts.heard(tuner_id="tuner0")
        trial.status = "COMPLETED"
        oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
        oracle.end_trial(trial)
    assert distributed._search_state(oracle, contacts) == "running"  # tuner0 not told yet
    assert oracle.create_trial("tuner0").status == "STOPPED"
    contacts.stop_triggered = True
    assert distributed._search_state(oracle, contacts) == "over"


def test_role_follows_keras_tuner_s_variables(monkeypatch):
    for name in distributed.ENV:
        monkeypatch.delenv(name, raising=False)
    assert distributed.role() is None
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    with pytest.raises(ConfigError, match="KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_PORT"):
        distributed.role()
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    assert distributed.role() == distributed.CHIEF
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner3")
    assert distributed.role() == distributed.WORKER


def test_a_worker_waits_while_another_s_trial_may_come_back(oracle):
    from keras_tuner.src import protos

    contacts = distributed._Contacts()
    servicer = distributed._servicer(oracle, contacts)
    status = protos.get_proto().TrialStatus

    def ask(tuner_id: str):
        request = protos.get_service().CreateTrialRequest(tuner_id=tuner_id)
        return servicer.CreateTrial(request, None).trial

    def finish(trial_id: str) -> None:
        trial = oracle.trials[trial_id]
        oracle.update_trial(trial_id, {"val_accuracy": 0.5})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)

    handed = [ask(tuner_id).trial_id for tuner_id in ("tuner0", "tuner1", "tuner2")]
    assert len(set(handed)) == 3 == oracle.max_trials  # every trial handed out
    finish(handed[2])
    # tuner0's and tuner1's trials are not over, and would come back if their worker died:
    # tuner2 waits (IDLE) instead of leaving.
    assert ask("tuner2").status == status.IDLE and "tuner2" in oracle.tuner_ids
    assert not contacts.stop_triggered
    finish(handed[0])
    finish(handed[1])
    assert ask("tuner2").status == status.STOPPED and contacts.stop_triggered
