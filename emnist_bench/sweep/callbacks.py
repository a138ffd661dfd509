"""Hydra callbacks of a sweep: threads per parallel job, whole-sweep progress, reports at the end.

They run in the launching process (and in joblib workers); nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from emnist_bench.errors import UserError, exit_on_user_error
from emnist_bench.rundir import RUNNING
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


class ThreadsPerJob(Callback):
    """Sizes TensorFlow's thread pools to ``cores // jobs`` when jobs run in parallel.

    With ``hydra/launcher=joblib hydra.launcher.n_jobs=N``, N processes each start a
    TensorFlow that would otherwise use every core. TensorFlow reads these variables when it
    initialises, which in a fresh joblib worker is after this hook; explicit
    ``trainer.intra_op_threads`` / ``inter_op_threads`` still win (``configure_runtime``).
    """

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if "n_jobs" not in (OmegaConf.select(config, "hydra.launcher") or {}):
            return  # the basic launcher: one job at a time, TensorFlow's defaults
        cores = available_cores()
        jobs = parallel_jobs(config.hydra.launcher.n_jobs, cores)
        threads = str(max(1, cores // jobs))
        for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
            os.environ[name] = threads
        log.info(
            "%s parallel jobs on %s cores: %s TensorFlow threads per job", jobs, cores, threads
        )


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def job_outcome(out: Path, started: float) -> dict[str, Any]:
    """Status of the job in ``out`` from its metrics.json; ``skipped`` when written earlier."""
    metrics_file = out / "metrics.json"
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
        markers = Path(config.hydra.sweep.dir) / PROGRESS_DIR
        markers.mkdir(parents=True, exist_ok=True)
        seconds = time.time() - self._job_started
        marker = {**outcome, "seconds": seconds, "run_dir": str(config.hydra.sweep.subdir)}
        (markers / f"{config.hydra.job.num}.json").write_text(json.dumps(marker))
        done = len(list(markers.glob("*.json")))
        elapsed = time.time() - self.started
        status = outcome["status"]
        if status == RUNNING:  # the job's lock is held: another copy of the sweep runs it
            status = "skipped (another process is running it)"
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
            key = "skipped" if marker["skipped"] else marker["status"]
            counts[key] = counts.get(key, 0) + 1
        tally = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
        self._console().print(
            f"[bold]Sweep finished[/]: {len(markers)} runs ({tally}) in "
            f"{_clock(time.time() - self.started)}"
        )
        if self.report:
            from emnist_bench.report.command import write_report

            write_report(sweep_dir)


class SeedReport(Callback):
    """Writes the seed report (the notebook's models beside its figures) when the multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from emnist_bench.report.seed_table import write_seed_report

        published = OmegaConf.to_container(config.seed_report.published)
        write_seed_report(Path(config.hydra.sweep.dir), published)
