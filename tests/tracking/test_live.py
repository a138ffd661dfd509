"""``logger=mlflow`` on real runs: a parallel sweep logged to a real MLflow server, and a run
killed mid-training whose resumed run continues the same MLflow run. Both train: slow."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("mlflow")

from mlflow.tracking import MlflowClient  # noqa: E402

from emnist_bench.run import run  # noqa: E402
from emnist_bench.rundir import BACKUP, METRICS, TRACKED  # noqa: E402
from tests.chromium import CHROMIUM, FLAGS  # noqa: E402
from tests.configs import compose_config, smoke_overrides  # noqa: E402
from tests.test_resume import RESUMABLE, history_rows, wait_for  # noqa: E402

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """A real MLflow tracking server on 127.0.0.1 with a sqlite store in a temp folder."""
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination", str(tmp_path / "server-artifacts"), "--workers", "1",
        ],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"the MLflow server did not start: {(tmp_path / 'server.log').read_text()}")
        time.sleep(0.5)
    yield uri
    server.terminate()
    server.wait(timeout=30)
    log.close()


def test_a_parallel_sweep_logs_a_parent_and_nested_runs_to_a_server(
    tmp_path, mlflow_server, smoke_data, proxy_cache
):
    sweep = tmp_path / "sweep"
    command = [
        sys.executable, "-m", "emnist_bench", "-m", "+sweep=technique_grid_smoke",
        "hydra.sweeper.params.model=mlp", "grid.techniques.batch_norm=[]",
        f"data.root={smoke_data}", f"data.cache_dir={proxy_cache}", "data.val_size=0.2",
        "data.subset=10", "trainer.epochs=2", "trainer.early_stopping.enabled=false",
        "trainer.sample_grid=4", "logger=mlflow", f"logger.tracking_uri={mlflow_server}",
        "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}",
    ]  # fmt: skip
    env = {**os.environ, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("technique_grid_smoke")  # the sweep's name
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    jobs = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(jobs) == 2
    parent = parents[0]
    assert {r.data.tags["mlflow.parentRunId"] for r in jobs} == {parent.info.run_id}
    assert {r.data.params["optimizer.name"] for r in jobs} == {"adam", "sgd"}
    for job in jobs:
        folder = sweep / job.info.run_name
        metrics = json.loads((folder / METRICS).read_text())
        assert metrics[TRACKED]["run_id"] == job.info.run_id
        assert job.info.status == "FINISHED"
        steps = [m.step for m in client.get_metric_history(job.info.run_id, "val_accuracy")]
        assert sorted(steps) == list(range(metrics["epochs_run"])) == [0, 1]
        assert job.data.metrics["test_accuracy"] == metrics["test_accuracy"]
        plots = {a.path for a in client.list_artifacts(job.info.run_id, "plots")}
        assert {"plots/curves.png", "plots/confusion_matrix.png"} <= plots
    report = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.html", "report/effects.csv"} <= report
    assert parent.info.status == "FINISHED"
    if CHROMIUM is not None:
        names = [job.info.run_name for job in jobs]
        shown = _screenshot_of_the_sweep(mlflow_server, experiment.experiment_id, names, tmp_path)
        assert all(name in shown for name in names)


def _screenshot_of_the_sweep(uri: str, experiment_id: str, names: list[str], tmp_path) -> str:
    """The MLflow UI's run list of the experiment, in headless Chromium: a PNG (the README's, in
    $EMNIST_BENCH_SCREENSHOTS when set) and the page's text."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (the dev extra)")
    folder = Path(os.environ.get("EMNIST_BENCH_SCREENSHOTS") or tmp_path)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            runs = f"{uri}/#/experiments/{experiment_id}/runs"
            page.goto(runs)  # the UI polls the server: a page that never goes idle
            expand = page.locator("button[data-component-id*=runnamecellrenderer]").first
            expand.wait_for(timeout=60_000)  # the parent's row, closed
            assistant = page.get_by_role("button", name="Close")
            if assistant.count():  # MLflow 3's assistant panel covers the runs
                assistant.first.click()
            expand.click()
            for name in names:  # the parent's rows opened show its jobs'
                page.get_by_text(name).first.wait_for(timeout=60_000)
            text = page.inner_text("body")
            page.goto(f"{runs}?compareRunsMode=CHART")  # each metric's curves, run by run
            page.get_by_text("val_accuracy").first.wait_for(timeout=60_000)
            page.wait_for_timeout(2_000)  # the charts draw after their titles
            page.screenshot(path=str(folder / "mlflow-sweep.png"))
        finally:
            browser.close()
    assert (folder / "mlflow-sweep.png").stat().st_size > 10_000
    return text


def test_a_killed_run_resumes_into_one_mlflow_run_with_its_whole_history(
    tmp_path, smoke_data, proxy_cache
):
    out = tmp_path / "run"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = smoke_overrides(
        smoke_data, proxy_cache, *RESUMABLE, "logger=mlflow", f"logger.tracking_uri={uri}"
    )
    command = [sys.executable, "-m", "emnist_bench", *overrides, f"hydra.run.dir={out}"]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        wait_for(out / BACKUP / "state.json", process)  # epoch 1 backed up: epoch 2 under way
    finally:
        process.kill()
        process.wait(timeout=60)
    killed = json.loads((out / METRICS).read_text())
    assert killed["status"] == "running" and killed[TRACKED]["run_id"]

    metrics = run(compose_config(overrides, output_dir=out))

    assert metrics["status"] == "completed" and metrics["epochs_run"] == 3
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("emnist_bench").experiment_id])
    assert [r.info.run_id for r in runs] == [killed[TRACKED]["run_id"]]
    assert metrics[TRACKED]["run_id"] == killed[TRACKED]["run_id"]
    rows = history_rows(out)
    for key in ("loss", "val_accuracy", "learning_rate"):
        logged = sorted(
            (m.step, m.value) for m in client.get_metric_history(runs[0].info.run_id, key)
        )
        assert logged == [(i, pytest.approx(float(row[key]))) for i, row in enumerate(rows)], key
    assert client.get_run(runs[0].info.run_id).info.status == "FINISHED"
