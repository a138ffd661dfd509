"""``logger=mlflow`` while a run trains: its MLflow run opened (or resumed) before training,
each epoch logged as it ends, the rest logged from the folder when the run ends; a multirun's
parent run, and the comparison report attached to it. Every failure of the store is one warning
line and the run goes on; ``python -m emnist_bench.runs sync`` logs what was missed."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from emnist_bench.rundir import METRICS, TRACKED, read_json, write_json
from emnist_bench.tracking.folder import (
    PLOTS,
    REPORT_FILES,
    SWEEP_DIR_TAG,
    complete_run,
    create_run,
    find_tagged,
    log_history,
    logged_steps,
    owns,
)
from emnist_bench.tracking.store import Store, Unavailable, import_mlflow, tracking_uri

log = logging.getLogger(__name__)

# A multirun's parent run, in the sweep folder: every job nests its run under it.
SWEEP_RECORD = "mlflow.json"
# The columns history.csv has (training.callbacks.EpochRecorder), looked up on a resume.
HISTORY_COLUMNS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds")
SYNC_HINT = "python -m emnist_bench.runs sync {folder} logs it afterwards"


def _hydra() -> Any | None:
    try:
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.get()
    except ValueError:  # not under Hydra (tests call run() directly)
        return None


def launched_in() -> Path:
    """The folder the command was started in (a job of a sweep may run elsewhere)."""
    hydra = _hydra()
    return Path(hydra.runtime.cwd) if hydra is not None and hydra.runtime.cwd else Path.cwd()


def sweep_folder() -> Path | None:
    """The multirun folder when this run is one of its jobs."""
    from hydra.types import RunMode

    hydra = _hydra()
    if hydra is None or hydra.mode != RunMode.MULTIRUN:
        return None
    return Path(hydra.sweep.dir).absolute()


def tracked_record(store: Store, run_id: str, experiment_id: str) -> dict[str, str]:
    return {"run_id": run_id, "tracking_uri": store.uri, "experiment_id": experiment_id}


def _warn(error: Exception, folder: Path) -> None:
    log.warning(
        "MLflow tracking stopped (%s); the run goes on, and %s",
        error,
        SYNC_HINT.format(folder=folder),
    )


class RunTracker:
    """One run's MLflow run, or nothing (``logger=none``, or a store that failed once).

    Args:
        out: the run folder.
        store, run_id, experiment_id: the open MLflow run; None when not tracking.
        name: the MLflow run's name: the folder, relative to its sweep's folder in a multirun.
        log_model: upload model.keras too (``logger.log_model``).
    """

    def __init__(
        self,
        out: Path,
        store: Store | None = None,
        run_id: str | None = None,
        experiment_id: str | None = None,
        name: str = "",
        log_model: bool = False,
    ):
        self.out, self.store, self.run_id = out, store, run_id
        self.experiment_id, self.name, self.log_model = experiment_id, name, log_model
        self.logged: dict[str, set[int]] = {}

    @property
    def active(self) -> bool:
        return self.store is not None

    @classmethod
    def start(
        cls,
        cfg: DictConfig,
        out: Path,
        previous: dict[str, Any],
        resuming: bool,
        live: bool = True,
    ) -> RunTracker:
        """Opens the run's MLflow run (``logger=mlflow``): the one its metrics.json names when
        the run resumes, else a new one (the old one deleted: the folder started afresh). The
        record goes into metrics.json, and the config and tags are logged at once. ``live``
        false: a finished run, whose folder is only read.

        Raises:
            UserError: when ``logger=mlflow`` and MLflow is not installed.
        """
        logger = cfg.get("logger") or {}
        if logger.get("name", "none") == "none":
            return cls(out)
        import_mlflow()
        tracker = cls(out, log_model=bool(logger.get("log_model")))
        try:
            tracker._open(logger, previous.get(TRACKED) or {}, resuming, live)
        except Unavailable as error:
            tracker._give_up(error)
        return tracker

    def _open(
        self, logger: DictConfig, previous: dict[str, Any], resuming: bool, live: bool
    ) -> None:
        sweep = sweep_folder()
        parent = (read_json(sweep / SWEEP_RECORD) or {}) if sweep is not None else {}
        uri = parent.get("tracking_uri") or tracking_uri(logger.get("tracking_uri"), launched_in())
        self.store = Store(uri)
        self.experiment_id = parent.get("experiment_id") or self.store.experiment_id(
            str(logger.get("experiment") or "emnist_bench")
        )
        out = self.out.absolute()
        self.name = out.relative_to(sweep).as_posix() if parent else out.name
        earlier = None
        if previous.get("tracking_uri") == uri:
            earlier = self.store.live_run(previous.get("run_id"))
            if earlier is not None and not owns(earlier, self.out):
                earlier = None  # the run of the folder this one was copied from
        if earlier is not None and resuming:
            self.run_id = earlier.info.run_id
            if live:
                self.store.update_run(self.run_id, status="RUNNING")
            self.logged = logged_steps(self.store, self.run_id, HISTORY_COLUMNS)
        else:
            if earlier is not None:  # its epochs were removed from the folder: so from MLflow
                self.store.delete_run(earlier.info.run_id)
            self.run_id = create_run(
                self.store, self.experiment_id, self.out, self.name, parent.get("run_id")
            )
        if live:
            metrics = read_json(self.out / METRICS) or {}
            write_json(self.out / METRICS, {**metrics, **self.record()})
        complete_run(self.store, self.run_id, self.out, self.name, logged=self.logged, end=False)

    def record(self) -> dict[str, Any]:
        """``{"mlflow": {run_id, tracking_uri, experiment_id}}`` for metrics.json; empty when
        not tracking."""
        if not self.active:
            return {}
        return {TRACKED: tracked_record(self.store, self.run_id, self.experiment_id)}

    def log_epoch(self, row: dict[str, float]) -> None:
        """Logs one finished epoch's history row (step = epoch)."""
        if not self.active:
            return
        try:
            log_history(self.store, self.run_id, [row], self.logged)
        except Unavailable as error:
            self._give_up(error)

    def end(self) -> None:
        """Logs what the MLflow run lacks of the folder (history, final figures, files) and sets
        its status from the folder's: finished, failed, or killed (interrupted)."""
        if not self.active:
            return
        try:
            complete_run(
                self.store,
                self.run_id,
                self.out,
                self.name,
                log_model=self.log_model,
                logged=self.logged,
            )
        except Unavailable as error:
            self._give_up(error)

    def _give_up(self, error: Exception) -> None:
        _warn(error, self.out)
        self.store = None

    @classmethod
    def log_finished(cls, cfg: DictConfig, out: Path) -> None:
        """Logs a run that completed earlier and is skipped (a sweep run again with a logger),
        nothing twice."""
        previous = read_json(out / METRICS) or {}
        tracker = cls.start(cfg, out, previous, resuming=True, live=False)
        tracker.end()


def start_sweep(config: DictConfig) -> None:
    """The multirun's parent run (the one in the sweep folder's record when the sweep runs
    again), recorded in ``<sweep dir>/mlflow.json`` for its jobs. Called in the launching
    process before the first job.

    Raises:
        UserError: when ``logger=mlflow`` and MLflow is not installed.
    """
    logger = config.get("logger") or {}
    if logger.get("name", "none") == "none":
        return
    import_mlflow()
    sweep = Path(str(config.hydra.sweep.dir)).absolute()
    cwd = config.hydra.runtime.get("cwd") or os.getcwd()
    try:
        store = Store(tracking_uri(logger.get("tracking_uri"), Path(cwd)))
        experiment_id = store.experiment_id(str(logger.get("experiment") or "emnist_bench"))
        run_id = sweep_parent(store, experiment_id, sweep)
        store.update_run(run_id, status="RUNNING")
    except Unavailable as error:
        _warn(error, sweep)
        return
    sweep.mkdir(parents=True, exist_ok=True)
    write_json(sweep / SWEEP_RECORD, tracked_record(store, run_id, experiment_id))


def sweep_parent(store: Store, experiment_id: str, sweep: Path) -> str:
    """The parent run of the sweep in ``sweep``: its record's, or the one tagged with the
    folder, else a new one."""
    record = read_json(sweep / SWEEP_RECORD) or {}
    if record.get("tracking_uri") == store.uri:
        run = store.live_run(record.get("run_id"))
        if run is not None:
            return run.info.run_id
    run = find_tagged(store, experiment_id, SWEEP_DIR_TAG, sweep)
    if run is not None:
        return run.info.run_id
    created = store.create_run(
        experiment_id, tags={SWEEP_DIR_TAG: str(sweep.resolve())}, run_name=sweep.name
    )
    return created.info.run_id


def attach_report(folder: Path, end: bool = False) -> None:
    """Uploads the comparison report in ``folder`` (report.html, effects.csv, summary.csv,
    summary.md, plots/) to the folder's parent run, when the folder has one; with ``end``,
    marks the parent finished."""
    record = read_json(Path(folder) / SWEEP_RECORD)
    if not record:
        return
    try:
        store = Store(record["tracking_uri"])
        run_id = record["run_id"]
        for name in REPORT_FILES:
            if (folder / name).is_file():
                store.log_artifact(run_id, str(folder / name), "report")
        if (folder / PLOTS).is_dir():
            store.log_artifacts(run_id, str(folder / PLOTS), f"report/{PLOTS}")
        if end:
            store.set_terminated(run_id, "FINISHED")
    except Exception as error:  # the report is written; its copy in MLflow is a convenience
        log.warning("The report was not attached to MLflow run %s: %s", record.get("run_id"), error)
