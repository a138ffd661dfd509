"""Hydra callbacks of a sweep: threads per parallel job, whole-sweep progress, reports at the end.

``on_multirun_*`` hooks run in the launching process, ``on_job_*`` hooks in the job's process
(the launcher's own, a joblib, submitit or Ray worker, possibly on another node), so the objects
are pickled and each job's facts come from its config and its folder. Nothing here imports
TensorFlow.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from emnist_bench.errors import UserError, exit_on_user_error
from emnist_bench.kept import was_kept
from emnist_bench.rundir import METRICS, RUNNING, write_json
from emnist_bench.sweep.variants import job_overrides, swept_keys, unnamed_in_folder

log = logging.getLogger(__name__)

# One marker per finished job, so the count is right whichever process ran the job.
PROGRESS_DIR = ".sweep_progress"


def parallel_jobs(n_jobs: Any, cores: int) -> int:
    """Jobs at once for joblib's ``n_jobs`` (None: 1, -1: every core, -2: all but one)."""
    if n_jobs is None:
        return 1
    n_jobs = int(n_jobs)
    return max(1, cores + 1 + n_jobs if n_jobs < 0 else n_jobs)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class OneFolderPerJob(Callback):
    """Refuses, before its first job, a sweep where two jobs would write one folder: every key
    whose value differs between jobs must be named in ``hydra.sweep.subdir``.

    Hydra turns an exception in a callback into a warning and goes on, so the refusal is an
    exit (code 2, one line on stderr).
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            jobs = job_overrides(config)
        except Exception:  # another sweeper expands its own jobs: nothing to check here
            return
        with exit_on_user_error():
            self.check(config, jobs)

    @staticmethod
    def check(config: DictConfig, jobs: list[list[str]]) -> None:
        unnamed = unnamed_in_folder(config, swept_keys(jobs))
        if unnamed:
            template = OmegaConf.to_container(config.hydra.sweep, resolve=False)["subdir"]
            raise UserError(
                f"sweep refused: its jobs differ in {', '.join(unnamed)}, which the job folder "
                f"(hydra.sweep.subdir={template}) does not name, so two jobs would write one "
                f"folder; name it there, e.g. hydra.sweep.subdir='{template}/"
                f"{unnamed[0]}=${{{unnamed[0]}}}'"
            )


def job_cores(
    launcher: DictConfig | None, sweeper: DictConfig | None, cores: int
) -> tuple[int | None, str]:
    """The cores one job may use under ``launcher`` (``hydra.launcher``), as ``(cores, why)``;
    ``(None, why)`` when one job runs at a time and TensorFlow keeps its defaults.

    joblib: ``cores // n_jobs``. SLURM (``submitit_slurm``): the task's ``SLURM_CPUS_PER_TASK``.
    ``submitit_local``: ``cpus_per_task``, else ``cores // hydra.sweeper.max_batch_size`` (the
    jobs it starts at once). Ray: the task's ``num_cpus`` (``hydra.launcher.ray.remote``; Ray's
    default is 1). Never more than ``cores``, the cores this process may run on.
    """
    launcher = launcher or {}
    target = str(launcher.get("_target_", ""))
    batch = OmegaConf.select(sweeper, "max_batch_size") if sweeper is not None else None
    if "n_jobs" in launcher:
        jobs = parallel_jobs(launcher.n_jobs, cores)
        return max(1, cores // jobs), f"{jobs} parallel jobs on {cores} cores"
    if "submitit" in target:
        if os.environ.get("SLURM_CPUS_PER_TASK"):
            given = int(os.environ["SLURM_CPUS_PER_TASK"])
            return min(given, cores), f"SLURM gave the task {given} cores"
        if launcher.get("cpus_per_task"):
            given = int(launcher.cpus_per_task)
            return min(given, cores), f"submitit task of {given} cores"
        if batch:
            return max(1, cores // int(batch)), f"{batch} parallel jobs on {cores} cores"
        return None, "submitit without cpus_per_task"
    if "ray" in launcher:
        given = OmegaConf.select(launcher, "ray.remote.num_cpus") or 1
        return min(max(1, int(given)), cores), f"Ray task of {given} CPUs"
    return None, "one job at a time"


class ThreadsPerJob(Callback):
    """Sizes TensorFlow's thread pools to the cores each job of a parallel sweep was given.

    With ``hydra/launcher=joblib hydra.launcher.n_jobs=N``, N processes each start a
    TensorFlow that would otherwise use every core; under submitit and Ray each job is a task
    given its own cores (``job_cores``). TensorFlow reads these variables when it initialises,
    which in a fresh worker process is after this hook; explicit ``trainer.intra_op_threads`` /
    ``inter_op_threads`` still win (``configure_runtime``).
    """

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        launcher = OmegaConf.select(config, "hydra.launcher")
        sweeper = OmegaConf.select(config, "hydra.sweeper")
        cores, why = job_cores(launcher, sweeper, available_cores())
        if cores is None:
            return  # the basic launcher: one job at a time, TensorFlow's defaults
        threads = str(cores)
        for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
            os.environ[name] = threads
        log.info("%s: %s TensorFlow threads per job", why, threads)


class JobsAnywhere(Callback):
    """Lets a sweep's jobs run in processes that start elsewhere (Ray workers, SLURM nodes).

    A Ray worker starts in the folder its node's ``ray start`` ran in, not in the launching
    process's, so a relative ``hydra.sweep.dir`` (the default ``outputs/sweeps/...``) or
    ``data.root`` would point elsewhere there. Before the first job, the sweep folder becomes
    absolute (also as an override, because launchers compose each job's config afresh from the
    overrides); each job then works in the launching process's folder (``hydra.runtime.cwd``)
    when that folder exists where the job runs (a shared file system).

    hydra-ray-launcher 1.2 also asks every ``ray.init`` for a 75 MB object store, which Ray
    refuses when it connects to a running cluster (Hydra issue #2893): with an ``address``, the
    request is dropped.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        with read_write(config.hydra), open_dict(config.hydra):
            self._absolute_sweep_dir(config)
            init = OmegaConf.select(config, "hydra.launcher.ray.init")
            if init is not None and init.get("address") and "object_store_memory" not in init:
                with open_dict(init):
                    init.object_store_memory = None

    @staticmethod
    def _absolute_sweep_dir(config: DictConfig) -> None:
        sweep_dir = str(config.hydra.sweep.dir)
        if os.path.isabs(sweep_dir) or "'" in sweep_dir or "\\" in sweep_dir:
            return
        absolute = os.path.abspath(sweep_dir)
        config.hydra.sweep.dir = absolute
        overrides = [
            override
            for override in config.hydra.overrides.hydra
            if not override.startswith("hydra.sweep.dir=")
        ]
        config.hydra.overrides.hydra = [*overrides, f"hydra.sweep.dir='{absolute}'"]

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        launched_in = OmegaConf.select(config, "hydra.runtime.cwd")
        if launched_in and os.path.isdir(launched_in) and launched_in != os.getcwd():
            os.chdir(launched_in)


class TrackedSweep(Callback):
    """``logger=mlflow`` in a multirun: before the first job, the sweep's parent run, which
    every job's run is nested under (``emnist_bench.tracking``); at the end, the report (when
    one was written) attached to it and the parent marked finished. MLflow missing stops the
    sweep before its first job, in one line."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from emnist_bench.tracking.live import start_sweep

        with exit_on_user_error():
            start_sweep(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from emnist_bench.tracking.live import attach_report

        attach_report(Path(config.hydra.sweep.dir), end=True)


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def job_outcome(out: Path, started: float) -> dict[str, Any]:
    """Status of the job in ``out`` from its metrics.json; ``skipped`` when written earlier."""
    metrics_file = out / METRICS
    try:
        metrics = json.loads(metrics_file.read_text())
    except (OSError, ValueError):
        return {"status": "unfinished", "skipped": False, "test_accuracy": None}
    return {
        "status": metrics.get("status", "unknown"),
        "skipped": metrics_file.stat().st_mtime < started,
        "test_accuracy": metrics.get("test_accuracy"),
    }


class SweepProgress(Callback):
    """Prints ``run k of n``, elapsed time and time left over the whole sweep; then the report.

    Jobs may run in joblib worker processes, each with its own copy of this object, so the
    finished count is the number of marker files in ``<sweep dir>/.sweep_progress``.

    Args:
        report: write the comparison report (``emnist_bench.report``) when the sweep ends.
    """

    def __init__(self, report: bool = True):
        self.report = report
        self.total: int | None = None
        self.started = time.time()
        self._job_started = 0.0

    def _console(self):
        from rich.console import Console

        return Console(highlight=False, soft_wrap=True)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.time()
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            self.total = len(job_overrides(config))
        except Exception:  # another sweeper: its job count is its own business
            self.total = None
        markers = sweep_dir / PROGRESS_DIR
        shutil.rmtree(markers, ignore_errors=True)
        markers.mkdir(parents=True)
        self._console().print(
            f"[bold]Sweep[/]: {self.total or '?'} runs into {sweep_dir} "
            "(completed runs with the same config are skipped)"
        )

    def _of_total(self) -> str:
        return f" of {self.total}" if self.total else ""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._job_started = time.time()
        self._console().print(
            f"[bold cyan]run {config.hydra.job.num + 1}{self._of_total()}[/] "
            f"{config.hydra.sweep.subdir}"
        )

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        out = Path(config.hydra.runtime.output_dir)
        outcome = job_outcome(out, self._job_started)
        if getattr(job_return.status, "name", "") == "FAILED":
            outcome["status"] = "error"
        elif outcome["skipped"] and was_kept(out):
            outcome["status"] = KEPT
        markers = Path(config.hydra.sweep.dir) / PROGRESS_DIR
        markers.mkdir(parents=True, exist_ok=True)
        seconds = time.time() - self._job_started
        marker = {**outcome, "seconds": seconds, "run_dir": str(config.hydra.sweep.subdir)}
        write_json(markers / f"{config.hydra.job.num}.json", marker)
        done = len(list(markers.glob("*.json")))
        elapsed = time.time() - self.started
        status = outcome["status"]
        if status == RUNNING:  # the job's lock is held: another copy of the sweep runs it
            status = "skipped (another process is running it)"
        elif status == KEPT:
            status = "kept (its folder holds a completed run of another config)"
        elif outcome["skipped"]:
            status = "skipped (completed earlier)"
        accuracy = outcome["test_accuracy"]
        score = f", test accuracy {accuracy:.2%}" if accuracy is not None else ""
        left = ""
        if self.total:
            left = f" · about {_clock(elapsed / done * (self.total - done))} left"
        color = "green" if outcome["status"] == "completed" else "red"
        self._console().print(
            f"[bold {color}]done {done}{self._of_total()}[/] {config.hydra.sweep.subdir}: "
            f"{status}{score} in {_clock(seconds)} · elapsed {_clock(elapsed)}{left}"
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        markers = [json.loads(p.read_text()) for p in (sweep_dir / PROGRESS_DIR).glob("*.json")]
        counts: dict[str, int] = {}
        for marker in markers:
            key = "skipped" if marker["skipped"] and marker["status"] != KEPT else marker["status"]
            counts[key] = counts.get(key, 0) + 1
        tally = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
        self._console().print(
            f"[bold]Sweep finished[/]: {len(markers)} runs ({tally}) in "
            f"{_clock(time.time() - self.started)}"
        )
        if self.report:
            from emnist_bench.report.command import write_report

            write_report(sweep_dir)
        exit_on_failures(counts, len(markers))


# Job outcomes that make a sweep's exit status non-zero ("error": Hydra's own job failure).
FAILURES = ("failed", "diverged", "error")
# A job that left its folder's completed run of another config as it was (exit status 2).
KEPT = "kept"


def exit_on_failures(counts: dict[str, int], total: int) -> None:
    """Ends the sweep with exit status 1, after one line counting them, when any job failed or
    diverged: the others ran (``continue_on_error``) and the report is written, but a CI smoke
    sweep must not go green on failures. Jobs that kept a completed run of another config get
    a line of their own, and exit status 2 where nothing failed: the command asked for runs it
    did not make."""
    if counts.get(KEPT):
        print(
            f"error: {counts[KEPT]} of {total} runs were not trained: their folders hold "
            "completed runs of another config (the warnings above name what differs); delete "
            "those folders to replace them, or give the sweep another hydra.sweep.dir",
            file=sys.stderr,
            flush=True,
        )
    failures = {status: counts.get(status, 0) for status in FAILURES if counts.get(status)}
    if not failures:
        if counts.get(KEPT):
            raise SystemExit(2)
        return
    parts = ", ".join(f"{count} {status}" for status, count in failures.items())
    print(
        f"error: {sum(failures.values())} of {total} runs did not complete ({parts}); "
        "the report lists why, and the same command retries them",
        file=sys.stderr,
        flush=True,
    )
    raise SystemExit(1)


class NotebookReport(Callback):
    """Writes the notebook report (the notebook's models beside its figures) when the multirun
    ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from emnist_bench.report.notebook import write_notebook_report

        published = OmegaConf.to_container(config.notebook_report.published)
        write_notebook_report(Path(config.hydra.sweep.dir), published)
