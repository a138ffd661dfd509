"""MLflow tracking without training: a run folder mirrored into MLflow and found again, a
resumed run continuing its MLflow run, ``runs sync`` idempotent, and failures of the store that
never cost a run (a locked sqlite file, an unreachable server, MLflow missing)."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("mlflow")

from mlflow.tracking import MlflowClient  # noqa: E402

from emnist_bench.errors import UserError  # noqa: E402
from emnist_bench.rundir import METRICS, TRACKED  # noqa: E402
from emnist_bench.runs.command import main as runs_main  # noqa: E402
from emnist_bench.tracking import store as store_lib  # noqa: E402
from emnist_bench.tracking.live import RunTracker  # noqa: E402
from emnist_bench.tracking.store import INSTALL_MLFLOW, Store, Unavailable  # noqa: E402
from emnist_bench.tracking.sync import sync_folder  # noqa: E402
from tests.configs import compose_config  # noqa: E402
from tests.fake_runs import write_run  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def uri(tmp_path_factory) -> str:
    """One sqlite store for the module (creating one takes seconds); each test logs into its
    own experiment (:func:`experiment`)."""
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


@pytest.fixture
def experiment(request) -> str:
    return request.node.name


def runs_of(uri: str, experiment: str):
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment}"
    return client, client.search_runs([found.experiment_id])


def history(client, run, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))


def artifacts(client, run) -> set[str]:
    paths = {a.path for a in client.list_artifacts(run.info.run_id)}
    return paths | {a.path for a in client.list_artifacts(run.info.run_id, "plots")}


def test_sync_twice_on_three_folders_made_without_a_logger_gives_three_runs(
    tmp_path, uri, experiment
):
    folder = tmp_path / "runs"
    write_run(folder, "adam", 0.8, epochs=3)
    write_run(folder, "sgd", 0.7, epochs=4, optimizer="sgd", settings={"optimizer.name": "sgd"})
    write_run(folder, "broken", None, status="failed", error="ConfigError: broken")

    sync_folder(folder, uri, experiment)
    client, first = runs_of(uri, experiment)
    again = sync_folder(folder, uri, experiment)

    assert [item.action for item in again] == ["completed"] * 3
    client, runs = runs_of(uri, experiment)
    assert len(runs) == 3 and {r.info.run_id for r in runs} == {r.info.run_id for r in first}
    by_name = {run.info.run_name: run for run in runs}
    assert sorted(by_name) == ["adam", "broken", "sgd"]
    for name, epochs in (("adam", 3), ("sgd", 4)):
        run = by_name[name]
        metrics = json.loads((folder / name / METRICS).read_text())
        rows = pd.read_csv(folder / name / "history.csv")
        # Every column of history.csv, one value per epoch at step = epoch, nothing twice.
        for column in ("loss", "val_accuracy", "learning_rate", "seconds"):
            assert history(client, run, column) == [
                (epoch, pytest.approx(value)) for epoch, value in enumerate(rows[column])
            ], column
        assert len(history(client, run, "val_accuracy")) == epochs
        assert run.data.metrics["test_accuracy"] == metrics["test_accuracy"]
        assert run.data.metrics["best_val_accuracy"] == metrics["val_accuracy"]
        assert run.info.status == "FINISHED"
        assert {"metrics.json", "history.csv", "config.yaml", "plots/curves.png"} <= artifacts(
            client, run
        )
        assert run.data.params["trainer.epochs"] == str(epochs)
        assert run.data.tags["optimizer"] == name and run.data.tags["seed"] == "42"
    assert by_name["sgd"].data.params["optimizer.name"] == "sgd"
    assert by_name["broken"].info.status == "FAILED"
    assert "test_accuracy" not in by_name["broken"].data.metrics


def test_a_multirun_folder_syncs_as_a_parent_with_nested_runs_and_its_report(
    tmp_path, uri, experiment
):
    sweep = tmp_path / "sweep"
    write_run(sweep, "mlp/base/seed=42", 0.8)
    write_run(sweep, "mlp/optimizer=sgd/seed=42", 0.7, optimizer="sgd")
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    (sweep / "report.html").write_text("<html>report</html>")

    sync_folder(sweep, uri, experiment)
    sync_folder(sweep, uri, experiment)

    client, runs = runs_of(uri, experiment)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 2
    parent = parents[0]
    assert parent.info.run_name == "sweep" and parent.info.status == "FINISHED"
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert {r.info.run_name for r in children} == {"mlp/base/seed=42", "mlp/optimizer=sgd/seed=42"}
    report = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert report == {"report/report.html"}


def test_a_copied_run_folder_gets_its_own_run(tmp_path, uri, experiment):
    folder = tmp_path / "runs"
    write_run(folder, "a", 0.8)
    sync_folder(folder, uri, experiment)
    shutil.copytree(folder / "a", folder / "b")

    actions = {item.name: item.action for item in sync_folder(folder, uri, experiment)}

    assert actions == {"a": "completed", "b": "created"}
    _, runs = runs_of(uri, experiment)
    assert len(runs) == 2


def tracked_config(uri: str, experiment: str, out: Path):
    return compose_config(
        ["logger=mlflow", f"logger.tracking_uri={uri}", f"logger.experiment={experiment}"], out
    )


def test_a_resumed_run_continues_its_mlflow_run_and_logs_no_epoch_twice(
    tmp_path, uri, experiment, capsys
):
    out = write_run(tmp_path, "run", 0.8, epochs=3)
    rows = pd.read_csv(out / "history.csv").to_dict("records")
    final = json.loads((out / METRICS).read_text())
    (out / METRICS).write_text(json.dumps({"status": "running"}))
    cfg = tracked_config(uri, experiment, out)

    tracker = RunTracker.start(cfg, out, {}, resuming=False)
    for row in rows[:2]:
        tracker.log_epoch(row)
    # Killed here: no end. The same command resumes from the backup of epoch 1, so epoch 2
    # trains (and is handed over) again.
    previous = json.loads((out / METRICS).read_text())
    assert previous[TRACKED]["run_id"] == tracker.run_id
    resumed = RunTracker.start(cfg, out, previous, resuming=True)
    for row in rows[1:]:
        resumed.log_epoch(row)
    (out / METRICS).write_text(json.dumps({**final, **resumed.record()}))
    resumed.end()

    client, runs = runs_of(uri, experiment)
    assert len(runs) == 1 and runs[0].info.run_id == tracker.run_id == resumed.run_id
    assert [step for step, _ in history(client, runs[0], "loss")] == [0, 1, 2]
    assert runs[0].info.status == "FINISHED"
    assert runs[0].data.metrics["test_accuracy"] == final["test_accuracy"]

    # Tags and notes reach the run's MLflow run at once.
    runs_main(["tag", str(out), "baseline=yes"])
    runs_main(["note", str(out), "a first look"])
    tags = MlflowClient(uri).get_run(tracker.run_id).data.tags
    assert tags["baseline"] == "yes" and tags["mlflow.note.content"] == "a first look"
    assert capsys.readouterr().err == ""


def test_a_run_started_afresh_replaces_its_old_mlflow_run(tmp_path, uri, experiment):
    out = write_run(tmp_path, "run", 0.8)
    cfg = tracked_config(uri, experiment, out)
    first = RunTracker.start(cfg, out, {}, resuming=False)
    previous = json.loads((out / METRICS).read_text())

    second = RunTracker.start(cfg, out, previous, resuming=False)

    assert second.run_id != first.run_id
    _, runs = runs_of(uri, experiment)
    assert [r.info.run_id for r in runs] == [second.run_id]  # the old one is deleted


def test_a_locked_database_is_waited_for():
    calls = []

    def locked_twice():
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "logged"

    store = Store.__new__(Store)  # no client: only its retries are tried
    store.uri = "sqlite:///mlflow.db"
    assert store.call(locked_twice) == "logged" and len(calls) == 3
    with pytest.raises(Unavailable, match="no such table"):
        store.call(lambda: (_ for _ in ()).throw(RuntimeError("no such table: runs")))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_server_is_one_warning_and_the_run_goes_on(tmp_path, caplog, monkeypatch):
    for name in store_lib.HTTP_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    out = write_run(tmp_path, "run", 0.8)
    cfg = compose_config(
        ["logger=mlflow", f"logger.tracking_uri=http://127.0.0.1:{closed_port()}"], out
    )
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        tracker = RunTracker.start(cfg, out, {}, resuming=False)
        tracker.log_epoch({"epoch": 0, "loss": 1.0})
        tracker.end()

    assert time.monotonic() - started < 30
    assert not tracker.active and tracker.record() == {}
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "runs sync" in warnings[0], warnings
    assert TRACKED not in json.loads((out / METRICS).read_text())


def test_logger_mlflow_without_mlflow_stops_in_one_line_naming_the_extra(tmp_path, smoke_data):
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["mlflow"] = None  # as if not installed
        sys.argv = ["emnist_bench", "logger=mlflow", "data.root={smoke_data}",
                    "hydra.run.dir={tmp_path / "run"}"]
        from emnist_bench.cli import main
        try:
            main()
        finally:
            print("tensorflow" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == f"error: {INSTALL_MLFLOW}"
    assert done.stdout.strip().splitlines()[-1] == "False"  # stopped before TensorFlow loaded


def test_runs_sync_without_mlflow_names_the_extra(monkeypatch, tmp_path):
    write_run(tmp_path, "run", 0.8)
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(UserError, match=r"pip install 'emnist_bench\[track\]'"):
        sync_folder(tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}")


def test_runs_sync_to_a_store_it_cannot_use_is_one_line(tmp_path, capsys):
    write_run(tmp_path, "run", 0.8)
    with pytest.raises(SystemExit) as exited:
        runs_main(["sync", str(tmp_path), "--tracking-uri", "notascheme://x"])
    assert exited.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: notascheme://x: ") and "check --tracking-uri" in line
