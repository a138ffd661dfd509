"""``python -m emnist_bench.runs sync DIR``: logs (or completes) every run under a folder to
MLflow afterwards, e.g. runs made without a logger or on a cluster without network. Run it
twice and nothing is duplicated: each folder's run is found again (by the id its metrics.json
keeps, else by its path tag) and only what it lacks is logged."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emnist_bench.errors import UserError
from emnist_bench.report.runs import load_run_config
from emnist_bench.rundir import RunBusy, run_folders, run_lock, write_json
from emnist_bench.tracking.folder import complete_run, create_run, find_run
from emnist_bench.tracking.live import SWEEP_RECORD, attach_report, sweep_parent, tracked_record
from emnist_bench.tracking.store import Store, tracking_uri

DEFAULT_EXPERIMENT = "emnist_bench"


@dataclass
class Synced:
    """One folder's outcome: ``created`` (a new MLflow run), ``completed`` (an existing run,
    given what it lacked) or ``skipped`` (another process is running it)."""

    name: str
    run_id: str | None
    action: str


def experiment_of(run_dir: Path) -> str:
    """The experiment a run logs to: its ``logger.experiment``, else its sweep's name
    (``grid.name``), else ``emnist_bench``."""
    cfg = load_run_config(run_dir) or {}
    logger, grid = cfg.get("logger") or {}, cfg.get("grid") or {}
    return str(logger.get("experiment") or grid.get("name") or DEFAULT_EXPERIMENT)


def sync_folder(
    folder: Path, uri: str | None = None, experiment: str | None = None
) -> list[Synced]:
    """Logs every run under ``folder`` to the store at ``uri`` (default: as ``logger=mlflow``
    would: ``$MLFLOW_TRACKING_URI``, else ``outputs/mlflow.db`` here). A Hydra multirun folder
    (``multirun.yaml``) gets a parent run with each run nested under it, and its comparison
    report attached.

    Raises:
        UserError: when ``folder`` holds no run, or MLflow is not installed.
    """
    folder = Path(folder)
    runs = run_folders(folder) if folder.is_dir() else []
    if not runs:
        raise UserError(f"{folder}: no runs found (no */metrics.json); pass a run or sweep folder")
    store = Store(tracking_uri(uri))
    experiment_id = store.experiment_id(experiment or experiment_of(runs[0]))
    parent = None
    if (folder / "multirun.yaml").is_file():
        parent = sweep_parent(store, experiment_id, folder)
        write_json(folder / SWEEP_RECORD, tracked_record(store, parent, experiment_id))
    synced = []
    for run_dir in runs:
        name = run_dir.relative_to(folder).as_posix() if run_dir != folder else run_dir.name
        try:
            with run_lock(run_dir):
                found = find_run(store, experiment_id, run_dir)
                run_id = (
                    found.info.run_id
                    if found is not None
                    else create_run(store, experiment_id, run_dir, name, parent)
                )
                log_model = bool(
                    ((load_run_config(run_dir) or {}).get("logger") or {}).get("log_model")
                )
                complete_run(store, run_id, run_dir, name, log_model=log_model)
        except RunBusy:
            synced.append(Synced(name, None, "skipped"))
            continue
        synced.append(Synced(name, run_id, "completed" if found is not None else "created"))
    if parent is not None:
        attach_report(folder, end=True)
    return synced
