"""The engines' own Hydra launchers: the smoke grid through submitit (2 jobs at a time) and
through Ray (a head this test starts on 127.0.0.1), re-runs that redo nothing, one report row
per job; and what the callbacks do in a launcher's job process (cores, folders).

The launcher tests skip, saying which extra to install, when its plugin is missing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf, open_dict, read_write

from emnist_bench.sweep import callbacks
from tests.configs import compose_config

SMOKE_RUNS = sorted(
    f"{model}/{variant}/seed=42"
    for model in ("mlp", "cnn")
    for variant in ("base", "optimizer=sgd", "batch_norm=on")
)


def needs(plugin: str, extra: str):
    return pytest.mark.skipif(
        importlib.util.find_spec(f"hydra_plugins.{plugin}") is None,
        reason=f"{plugin} is not installed: pip install -e '.[cpu,{extra}]'",
    )


def sweep(sweep_dir: str, smoke_data: Path, cache: Path, cwd: Path, env=None, *extra: str):
    """The smoke grid (6 jobs) as a user would run it; returns the command's output."""
    command = [
        sys.executable, "-m", "emnist_bench", "-m", "+sweep=technique_grid_smoke",
        f"data.root={smoke_data}", "data.val_size=0.2", "data.subset=10",
        f"data.cache_dir={cache}", "data.download=false", "trainer.epochs=1",
        "trainer.sample_grid=4", f"hydra.sweep.dir={sweep_dir}", *extra,
    ]  # fmt: skip
    env = {**os.environ, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, cwd=cwd)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def finished(sweep_dir: Path) -> dict[str, int]:
    return {
        str(p.parent.relative_to(sweep_dir)): p.stat().st_mtime_ns
        for p in sweep_dir.glob("*/*/seed=*/metrics.json")
    }


def assert_report_lists_every_job_once(sweep_dir: Path) -> None:
    summary = pd.read_csv(sweep_dir / "summary.csv")
    assert sorted(summary["run_dir"]) == SMOKE_RUNS  # each of the 6 jobs, once
    assert (summary["status"] == "completed").all()
    assert (sweep_dir / "report.html").is_file()


@pytest.mark.slow
@needs("hydra_submitit_launcher", "slurm")
def test_smoke_grid_through_submitit_two_jobs_at_a_time(tmp_path, smoke_data, proxy_cache):
    sweep_dir = tmp_path / "submitit"
    local = [
        "hydra/launcher=submitit_local",
        "hydra.launcher.cpus_per_task=1",
        "hydra.sweeper.max_batch_size=2",  # 2 jobs at a time: submitit starts a batch at once
    ]
    sweep(str(sweep_dir), smoke_data, proxy_cache, tmp_path, None, *local)

    assert_report_lists_every_job_once(sweep_dir)
    jobs = [p for p in (sweep_dir / ".submitit").iterdir() if p.name.isdigit()]
    assert len(jobs) == 6  # one submitit job (a process of its own) per run
    for run_dir in SMOKE_RUNS:
        log = (sweep_dir / run_dir / "emnist_bench.log").read_text()
        assert "submitit task of 1 cores: 1 TensorFlow threads per job" in log

    before = finished(sweep_dir)
    sweep(str(sweep_dir), smoke_data, proxy_cache, tmp_path, None, *local)
    assert finished(sweep_dir) == before  # the re-run redid nothing
    assert_report_lists_every_job_once(sweep_dir)


# Ray on loopback only: with this variable a single-node Ray takes 127.0.0.1 as its address.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head on 127.0.0.1 (2 CPUs), as ``ray start --head`` runs on a cluster's head
    node; its address. Stopped (every Ray process it started) when the module is done."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Ray's sockets need a short path
    ray = Path(sys.executable).with_name("ray")
    command = [
        str(ray), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
        f"--port={port}", "--num-cpus=2", "--num-gpus=0", "--include-dashboard=false",
        "--object-store-memory=100000000", f"--temp-dir={root / 'ray'}",
    ]  # fmt: skip
    log = (root / "head.log").open("w")
    head = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **RAY_ENV}, cwd=root
    )
    deadline = time.monotonic() + 120
    while "Ray runtime started" not in (root / "head.log").read_text():
        if head.poll() is not None or time.monotonic() > deadline:
            head.kill()
            pytest.fail("the Ray head did not start: " + (root / "head.log").read_text()[-2000:])
        time.sleep(0.5)
    yield f"127.0.0.1:{port}"
    head.terminate()  # --block: the head stops every Ray process it started
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        head.kill()
        head.wait()
    log.close()
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
@needs("hydra_ray_launcher", "ray")
def test_smoke_grid_through_ray_on_a_running_head(ray_head, tmp_path, smoke_data, proxy_cache):
    # A relative sweep folder: Ray's workers start in the head's folder, not in this one.
    launched_in = tmp_path / "here"
    launched_in.mkdir()
    extra = ["hydra/launcher=ray", f"hydra.launcher.ray.init.address={ray_head}"]
    out = sweep("sweep", smoke_data, proxy_cache, launched_in, RAY_ENV, *extra)

    assert "Connected to Ray cluster" in out or "Connecting to existing Ray cluster" in out
    sweep_dir = launched_in / "sweep"
    assert_report_lists_every_job_once(sweep_dir)
    for run_dir in SMOKE_RUNS:
        log = (sweep_dir / run_dir / "emnist_bench.log").read_text()
        assert "Ray task of 1 CPUs: 1 TensorFlow threads per job" in log

    before = finished(sweep_dir)
    out = sweep("sweep", smoke_data, proxy_cache, launched_in, RAY_ENV, *extra)
    assert finished(sweep_dir) == before  # the re-run redid nothing
    assert "6 runs (6 skipped)" in out
    assert_report_lists_every_job_once(sweep_dir)


# --- the callbacks in a job's process ----------------------------------------------------------


@pytest.mark.parametrize(
    ("launcher", "sweeper", "environ", "cores"),
    [
        ({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}, {}, {}, None),
        ({"_target_": "JoblibLauncher", "n_jobs": 4}, {}, {}, 2),
        ({"_target_": "submitit.Local", "cpus_per_task": 3}, {}, {}, 3),
        ({"_target_": "submitit.Local", "cpus_per_task": None}, {"max_batch_size": 2}, {}, 4),
        ({"_target_": "submitit.Local", "cpus_per_task": None}, {}, {}, None),
        ({"_target_": "submitit.Slurm", "cpus_per_task": 8}, {}, {"SLURM_CPUS_PER_TASK": "6"}, 6),
        ({"_target_": "submitit.Slurm", "cpus_per_task": 64}, {}, {}, 8),
        ({"_target_": "RayLauncher", "ray": {"init": {}, "remote": {}}}, {}, {}, 1),
        ({"_target_": "RayLauncher", "ray": {"remote": {"num_cpus": 4}}}, {}, {}, 4),
    ],
)  # fmt: skip
def test_each_job_gets_the_cores_its_launcher_gave_it(
    launcher, sweeper, environ, cores, monkeypatch
):
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    given, why = callbacks.job_cores(OmegaConf.create(launcher), OmegaConf.create(sweeper), 8)
    assert given == cores, why


def test_jobs_find_the_launching_folder_and_a_running_ray_cluster(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    master = compose_config(
        ["+sweep=technique_grid_smoke", "hydra.sweep.dir=rel/sweep"], hydra=True
    )
    with read_write(master.hydra), open_dict(master.hydra):
        master.hydra.launcher = {"ray": {"init": {"address": "127.0.0.1:1"}, "remote": {}}}
    callbacks.JobsAnywhere().on_multirun_start(master)

    assert master.hydra.sweep.dir == str(tmp_path / "rel/sweep")
    # Launchers compose each job afresh from the overrides: the absolute folder is one of them.
    assert master.hydra.overrides.hydra[-1] == f"hydra.sweep.dir='{tmp_path / 'rel/sweep'}'"
    # hydra-ray-launcher's 75 MB object-store request would make ray.init refuse the cluster.
    assert master.hydra.launcher.ray.init.object_store_memory is None

    job = OmegaConf.create({"hydra": {"runtime": {"cwd": str(tmp_path)}}})
    monkeypatch.chdir("/")  # a Ray worker starts elsewhere
    callbacks.JobsAnywhere().on_job_start(job)
    assert Path.cwd() == tmp_path


class Submitted(Exception):
    """Stops a launch at sbatch: there is no SLURM cluster here."""


@needs("hydra_submitit_launcher", "slurm")
def test_the_slurm_config_becomes_an_sbatch_job_array(tmp_path, monkeypatch):
    import submitit
    from hydra.utils import instantiate

    srun = tmp_path / "bin" / "srun"  # submitit insists on a cluster's srun
    srun.parent.mkdir()
    srun.write_text("#!/bin/sh\n")
    srun.chmod(0o755)
    monkeypatch.setenv("PATH", f"{srun.parent}{os.pathsep}{os.environ['PATH']}")
    master = compose_config(
        [
            "+sweep=technique_grid_smoke", f"hydra.sweep.dir={tmp_path / 'sweep'}",
            "hydra/launcher=slurm", "hydra.launcher.partition=gpu",
            "hydra.launcher.gpus_per_task=1", "hydra.launcher.array_parallelism=4",
        ],
        hydra=True,
    )  # fmt: skip
    launcher = instantiate(master.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=master)
    submitted = {}

    def sbatch(executor, function, *arguments):
        submitted["executor"], submitted["jobs"] = executor, len(arguments[0])
        raise Submitted

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", sbatch)
    with pytest.raises(Submitted):
        launcher.launch([[f"model={m}", f"variant={v}"] for m in ("mlp", "cnn") for v in "abc"], 0)
    slurm = submitted["executor"]._executor
    slurm.parameters["map_count"] = submitted["jobs"]  # what submitit sets for an array
    script = slurm._make_submission_file_text("srun python -m submitit.core._submit", "uid")
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --array=0-5%4",  # 6 jobs, at most 4 at once
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --time=120",
        "#SBATCH --mem=8GB",
    ):
        assert line in script, script
