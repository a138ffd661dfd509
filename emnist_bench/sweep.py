"""The technique grid: one-factor-at-a-time variants, whole-sweep progress, threads per job.

A *variant* is one config-group choice applied on top of the base configuration, written
``group=option`` (``optimizer=rmsprop``), or ``base`` for none. Importing this module registers
every such choice as an option of the Hydra config group ``variant`` (a ``_global_`` config
whose defaults list says ``override /optimizer: rmsprop``), so a variant composes the real
group YAML exactly as the command line would. ``conf/sweep/technique_grid.yaml`` sweeps
``model`` x ``variant``; the list of variants comes from its ``grid.techniques`` table through
the ``one_factor_at_a_time`` resolver below.

Nothing here imports TensorFlow: the sweep's callbacks run in the launching process.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf

from emnist_bench import config_dir

log = logging.getLogger(__name__)

BASE = "base"
VARIANT_GROUP = "variant"
# The config groups a variant may change: the techniques the comparison is about. They are
# also the keys of metrics.json that the report compares (emnist_bench.config.technique_choices).
TECHNIQUE_GROUPS = (
    "lr_schedule", "activation", "optimizer", "batch_norm", "regularization", "dropout",
)  # fmt: skip
# One marker per finished job, so the count is right whichever process ran the job.
PROGRESS_DIR = ".sweep_progress"


def variant_name(group: str, option: str) -> str:
    return f"{group}={option}"


def register_variants(root: Path | None = None) -> list[str]:
    """Stores ``base`` and one ``group=option`` config per option of each technique group.

    Returns:
        The registered variant names.
    """
    root = root or config_dir()
    store = ConfigStore.instance()
    store.store(group=VARIANT_GROUP, name=BASE, node={}, package="_global_")
    names = [BASE]
    for group in TECHNIQUE_GROUPS:
        for option in sorted(p.stem for p in (root / group).glob("*.yaml")):
            name = variant_name(group, option)
            node = {"defaults": [{f"override /{group}": option}]}
            store.store(group=VARIANT_GROUP, name=name, node=node, package="_global_")
            names.append(name)
    return names


def _quote(value: str) -> str:
    """A Hydra override value: ``=`` must be quoted (``'optimizer=sgd'``)."""
    return value if value.isidentifier() else f"'{value}'"


def one_factor_at_a_time(techniques: DictConfig, choices: DictConfig) -> str:
    """The Hydra sweep string of variants: ``base``, then each value of each group alone.

    Args:
        techniques: group -> the options compared (the base's own option may be listed; it is
            the base run, not a second run).
        choices: the base configuration's choice per group (``hydra.runtime.choices``).

    A group or option without a registered variant is listed anyway: composing that job then
    fails with Hydra's own message, which names the variants there are.
    """
    variants = [BASE]
    for group, options in techniques.items():
        base = choices.get(group)
        variants += [variant_name(group, str(o)) for o in options if str(o) != base]
    return ",".join(_quote(v) for v in variants)


def sweep_over(options: ListConfig) -> str:
    """A Hydra sweep string over a list (``[adam, sgd]`` -> ``adam,sgd``)."""
    return ",".join(_quote(str(o)) for o in options)


def _register_resolvers() -> None:
    OmegaConf.register_new_resolver(
        "one_factor_at_a_time", one_factor_at_a_time, replace=True, use_cache=False
    )
    OmegaConf.register_new_resolver("sweep_over", sweep_over, replace=True, use_cache=False)


register_variants()
_register_resolvers()


def job_overrides(config: DictConfig) -> list[list[str]]:
    """The override list of every job the basic sweeper will launch, in launch order.

    This is the basic sweeper's own expansion (``hydra.sweeper.params`` first, then the
    command line), so tests and the progress display see exactly the jobs that run.
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = OmegaConf.select(config, "hydra.sweeper.params")
    arguments = [f"{key}={value}" for key, value in (params or {}).items()]
    arguments += list(OmegaConf.select(config, "hydra.overrides.task") or [])
    overrides = OverridesParser.create().parse_overrides(arguments)
    return BasicSweeper.split_arguments(overrides, None)[0]


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
        status = "skipped (completed earlier)" if outcome["skipped"] else outcome["status"]
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
            from emnist_bench import report

            report.write_report(sweep_dir)
