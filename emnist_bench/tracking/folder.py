"""A run folder mirrored into an MLflow run, idempotently: what the folder has and the run lacks
is logged, nothing twice. The live logger (``logger=mlflow``) and ``runs sync`` both end here,
so a run logged live, one logged after a crash and one synced later look the same."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from emnist_bench.history import read_history
from emnist_bench.report.runs import flat_config, load_run_config
from emnist_bench.rundir import (
    COMPLETED,
    CONFIG,
    HISTORY,
    METRICS,
    MODEL,
    TRACKED,
    read_annotations,
    read_json,
)
from emnist_bench.techniques import TECHNIQUE_GROUPS
from emnist_bench.tracking.store import Store

log = logging.getLogger(__name__)

# Tags that find a folder's run again (absolute paths), whatever the run is named.
RUN_DIR_TAG = "emnist_bench.run_dir"
SWEEP_DIR_TAG = "emnist_bench.sweep_dir"
PARENT_TAG = "mlflow.parentRunId"
NOTE_TAG = "mlflow.note.content"
ARTIFACT_FILES = (METRICS, HISTORY, CONFIG, "classification_report.txt")
PLOTS = "plots"
# The choices of metrics.json a run is tagged with (config.technique_choices writes them).
CHOICE_TAGS = ("model", "family", *TECHNIQUE_GROUPS, "augment")
# The final figures of metrics.json, logged once. The best validation accuracy gets its own
# name: ``val_accuracy`` is the per-epoch curve.
FINAL = {
    "test_accuracy": "test_accuracy",
    "test_loss": "test_loss",
    "macro_f1": "macro_f1",
    "val_accuracy": "best_val_accuracy",
    "epochs_run": "epochs_run",
    "train_seconds": "train_seconds",
    "train_images_per_second": "train_images_per_second",
    "params": "params",
}
# A sweep's comparison report, attached to its parent run.
REPORT_FILES = ("report.html", "effects.csv", "summary.csv", "summary.md")
BATCH = 100  # MLflow's most params or tags per call


def mlflow_status(status: str | None) -> str:
    """The MLflow run status of a folder's ``status``: a diverged run finished (its result is
    that it diverged); a run that stopped without an end was killed."""
    if status in (COMPLETED, "diverged"):
        return "FINISHED"
    if status == "failed":
        return "FAILED"
    return "KILLED"


def _chunks(items: list, size: int = BATCH) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_tags(run_dir: Path, metrics: dict[str, Any], name: str) -> dict[str, str]:
    """The tags a run is found and filtered by: its techniques, seed, provenance, folder, and
    the user's own tags and note (``runs tag``, ``runs note``)."""
    cfg = load_run_config(run_dir) or {}
    provenance = metrics.get("provenance") or {}
    seed = (cfg.get("trainer") or {}).get("seed")
    tags = {
        "mlflow.runName": name,
        RUN_DIR_TAG: str(run_dir.resolve()),
        "run_dir": str(run_dir),
        "status": metrics.get("status", "unfinished"),
        **{key: metrics.get(key) for key in CHOICE_TAGS},
        "seed": seed,
        "commit": provenance.get("git_commit"),
        "cpu": provenance.get("cpu"),
        "precision": provenance.get("precision"),
    }
    annotations = read_annotations(run_dir)
    tags |= annotations["tags"]
    if annotations["note"]:
        tags[NOTE_TAG] = annotations["note"]
    return {key: str(value) for key, value in tags.items() if value is not None}


def create_run(
    store: Store, experiment_id: str, run_dir: Path, name: str, parent_id: str | None = None
) -> str:
    """A new MLflow run for ``run_dir``, started when the folder's config was written."""
    tags = {RUN_DIR_TAG: str(run_dir.resolve())}
    if parent_id:
        tags[PARENT_TAG] = parent_id
    try:
        started = int((run_dir / CONFIG).stat().st_mtime * 1000)
    except OSError:
        started = None
    run = store.create_run(experiment_id, start_time=started, tags=tags, run_name=name)
    return run.info.run_id


def find_tagged(store: Store, experiment_id: str, tag: str, folder: Path):
    """The live run of ``experiment_id`` whose ``tag`` is ``folder``'s absolute path, or None."""
    path = str(folder.resolve()).replace("'", "\\'")
    found = store.search_runs([experiment_id], filter_string=f"tags.`{tag}` = '{path}'")
    return found[0] if found else None


def find_run(store: Store, experiment_id: str, run_dir: Path):
    """The MLflow run of ``run_dir``: the one its metrics.json names on this store, else the
    one tagged with its path; None when there is none."""
    record = (read_json(run_dir / METRICS) or {}).get(TRACKED) or {}
    if record.get("tracking_uri") == store.uri:
        run = store.live_run(record.get("run_id"))
        if run is not None and owns(run, run_dir):
            return run
    return find_tagged(store, experiment_id, RUN_DIR_TAG, run_dir)


def owns(run, run_dir: Path) -> bool:
    """Whether ``run`` is ``run_dir``'s, not the run of a folder it was copied from."""
    return run.data.tags.get(RUN_DIR_TAG) == str(run_dir.resolve())


def logged_steps(store: Store, run_id: str, keys: Iterable[str]) -> dict[str, set[int]]:
    """The steps already logged of each metric in ``keys``."""
    return {key: {m.step for m in store.get_metric_history(run_id, key)} for key in keys}


def log_history(
    store: Store, run_id: str, rows: list[dict[str, float]], logged: dict[str, set[int]]
) -> None:
    """Logs each history row's columns at step = epoch, skipping the (key, step) pairs in
    ``logged`` (updated in place)."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = []
    for row in rows:
        step = int(row["epoch"])
        for key, value in row.items():
            if key == "epoch" or step in logged.setdefault(key, set()):
                continue
            metrics.append(Metric(key, float(value), now, step))
    for chunk in _chunks(metrics, 1000):
        store.log_batch(run_id, metrics=chunk)
    for metric in metrics:
        logged[metric.key].add(metric.step)


def _artifact_sizes(store: Store, run_id: str, path: str | None = None) -> dict[str, int]:
    return {info.path: info.file_size for info in store.list_artifacts(run_id, path)}


def log_files(store: Store, run_id: str, run_dir: Path, log_model: bool) -> None:
    """Uploads the run's files that the run lacks or holds at another size."""
    have = _artifact_sizes(store, run_id) | _artifact_sizes(store, run_id, PLOTS)
    files = [run_dir / name for name in ARTIFACT_FILES]
    files += sorted((run_dir / PLOTS).glob("*.png"))
    if log_model:
        files.append(run_dir / MODEL)
    for path in files:
        if not path.is_file():
            continue
        name = path.relative_to(run_dir).as_posix()
        if have.get(name) == path.stat().st_size:
            continue
        folder = PLOTS if path.parent.name == PLOTS and path.parent != run_dir else None
        store.log_artifact(run_id, str(path), folder)


def complete_run(
    store: Store,
    run_id: str,
    run_dir: Path,
    name: str,
    *,
    log_model: bool = False,
    logged: dict[str, set[int]] | None = None,
    end: bool = True,
) -> None:
    """Logs what ``run_id`` lacks of ``run_dir``: params, tags, history, the final figures,
    files; then, with ``end``, sets its status from the folder's."""
    from mlflow.entities import Metric, Param, RunTag

    metrics = read_json(run_dir / METRICS) or {}
    run = store.get_run(run_id)
    cfg = load_run_config(run_dir) or {}
    params = {k: v for k, v in flat_config(cfg).items() if k not in run.data.params}
    for chunk in _chunks([Param(k, v) for k, v in params.items()]):
        store.log_batch(run_id, params=chunk)
    tags = run_tags(run_dir, metrics, name)
    for chunk in _chunks([RunTag(k, v) for k, v in tags.items() if run.data.tags.get(k) != v]):
        store.log_batch(run_id, tags=chunk)
    rows = read_history(run_dir / HISTORY)
    columns = sorted({key for row in rows for key in row} - {"epoch"})
    if logged is None:
        logged = logged_steps(store, run_id, columns)
    log_history(store, run_id, rows, logged)
    if metrics.get("status") in (COMPLETED, "diverged"):
        now = int(time.time() * 1000)
        final = [
            Metric(logged_as, float(metrics[key]), now, 0)
            for key, logged_as in FINAL.items()
            if isinstance(metrics.get(key), int | float) and logged_as not in run.data.metrics
        ]
        if final:
            store.log_batch(run_id, metrics=final)
    log_files(store, run_id, run_dir, log_model)
    if end:
        ended = int((run_dir / METRICS).stat().st_mtime * 1000) if metrics else None
        store.set_terminated(run_id, mlflow_status(metrics.get("status")), end_time=ended)


def log_annotations(run_dir: Path, removed: Iterable[str] = ()) -> str | None:
    """Sends the run's tags and note (``runs tag``, ``runs note``) to the MLflow run its
    metrics.json names; ``removed`` tags are deleted there. Returns why it could not (one
    line), or None when sent or when the run was never logged (``runs sync`` sends them)."""
    record = (read_json(run_dir / METRICS) or {}).get(TRACKED) or {}
    if not record.get("run_id"):
        return None
    from emnist_bench.errors import UserError
    from emnist_bench.tracking.store import Unavailable

    try:
        store = Store(record["tracking_uri"])
        from mlflow.entities import RunTag

        annotations = read_annotations(run_dir)
        tags = dict(annotations["tags"])
        tags[NOTE_TAG] = annotations["note"] or ""
        store.log_batch(record["run_id"], tags=[RunTag(k, v) for k, v in tags.items()])
        for key in removed:
            if key not in tags:
                store.delete_tag(record["run_id"], key)
    except (Unavailable, UserError) as error:
        return f"not sent to MLflow ({error}); runs sync sends it later"
    return None
