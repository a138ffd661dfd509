"""A run folder on disk: its files written whole, its life (running, resumable, completed),
one process at a time, and finding runs under a folder.

Every stage that reads or writes a run's files goes through here, so the layout is in one
place: ``config.yaml`` (the resolved config), ``metrics.json`` (``status: running`` from the
start; the scores and ``completed`` written last), ``history.csv``, ``model.keras``,
``predictions.npz``, ``classes.json``, ``plots/``, ``tensorboard/``, and while training
``backup/`` (the last finished epoch, which a killed run resumes from) and ``.lock``; the
user's own ``annotations.json`` (tags and a note: ``python -m emnist_bench.runs tag``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from emnist_bench.config import same_run
from emnist_bench.errors import UserError, reason

log = logging.getLogger(__name__)

METRICS = "metrics.json"
CONFIG = "config.yaml"
HISTORY = "history.csv"
MODEL = "model.keras"
CLASSES = "classes.json"
"""The run's class mapping: ``split``, file ``labels`` and ``characters``, in output order."""
# The test split's true and predicted labels, so that runs on the same images pair up.
PREDICTIONS = "predictions.npz"
# Keras BackupAndRestore's folder: the weights and optimizer state of the last finished epoch.
BACKUP = "backup"
TENSORBOARD = "tensorboard"
PLOTS = "plots"
CLASSIFICATION_REPORT = "classification_report.txt"
TRIALS = "trials.csv"
"""A search's trials, one row each (``trainer.tune``)."""
BEST_HPARAMS = "best_hparams.yaml"
"""A search's best configuration, to train again with ``hparams_file=``."""
TUNER = "tuner"
"""keras-tuner's own state, one folder per search."""
HYDRA = ".hydra"
"""Hydra's record of a job: its config before the run resolved it, and the overrides."""
LOCK = ".lock"
# The user's tags and note on a run; no run ever rewrites or removes it.
ANNOTATIONS = "annotations.json"
# The metrics.json key of a run's experiment-tracker record (MLflow's run id and URI); kept
# when the run resumes, so that it goes on logging into the same tracked run.
TRACKED = "mlflow"
COMPLETED = "completed"
SCORES = ("test_accuracy", "macro_f1", "val_accuracy", "test_loss")  # numbers, once completed
RUNNING = "running"
INTERRUPTED = "interrupted"
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)
"""What reading a damaged NumPy archive or ``.keras`` file raises."""


class RunBusy(UserError):
    """Another process holds the run folder's lock (two copies of one sweep or command)."""


def output_dir(cfg: DictConfig) -> Path:
    """The run's folder (``output_dir``), created if missing."""
    path = Path(str(cfg.output_dir))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


_UMASK = _umask()
"""To give a temporary file the mode a plain ``open`` would (``mkstemp`` makes it 0600)."""


@contextmanager
def atomic_path(path: Path | str, *, folder: bool = False) -> Iterator[Path]:
    """A new temporary file (or folder) beside ``path`` to write to, put in its place when the
    block ends without an error and removed otherwise: a reader never sees half a file.

    The temporary name comes from ``mkstemp``/``mkdtemp``: unpredictable, and created by this
    call, so nothing planted beforehand (a symlink) is followed. The writer may replace the
    file. Its data is flushed to the disk before the rename, which is atomic on one file
    system; a folder replaces an existing ``path`` after it has been removed. An ``OSError``
    about the temporary name is raised naming ``path``, the file the user knows.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.name[: len(path.name) - len("".join(path.suffixes))] or path.name
    prefix, suffix = f".{stem}.", ".tmp" + "".join(path.suffixes)  # Keras checks the suffixes
    if folder:
        temporary = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=path.parent))
        temporary.chmod(0o777 & ~_UMASK)
    else:
        descriptor, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
        if hasattr(os, "fchmod"):  # not on Windows
            os.fchmod(descriptor, 0o666 & ~_UMASK)
        os.close(descriptor)
        temporary = Path(name)
    try:
        yield temporary
        _fsync(temporary)
        if folder:
            shutil.rmtree(path, ignore_errors=True)
        os.replace(temporary, path)
    except OSError as error:
        if error.filename == str(temporary):
            error.filename = str(path)
        raise
    finally:
        if temporary.is_dir() and not temporary.is_symlink():
            shutil.rmtree(temporary, ignore_errors=True)
        else:
            temporary.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    for file in files:
        with file.open("rb") as handle:
            os.fsync(handle.fileno())


@contextmanager
def atomic_open(path: Path | str, mode: str = "wb", **kwargs: Any) -> Iterator[IO]:
    """``open(path, mode)`` written whole or not at all (:func:`atomic_path`)."""
    with atomic_path(path) as temporary, temporary.open(mode, **kwargs) as handle:
        yield handle


def write_bytes(path: Path | str, data: bytes) -> None:
    """Writes ``data`` to ``path`` whole or not at all."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def write_text(path: Path | str, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` whole or not at all."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path | str, payload: dict[str, Any]) -> None:
    """Writes ``payload`` as indented JSON, whole or not at all."""
    write_text(path, json.dumps(payload, indent=2, default=float) + "\n")


def write_predictions(path: Path, true: np.ndarray, predicted: np.ndarray) -> None:
    """Writes the test labels and a run's predictions (uint8 when they fit), whole or not at all."""
    dtype = (
        np.uint8 if max(int(true.max(initial=0)), int(predicted.max(initial=0))) < 256 else np.int32
    )
    with atomic_open(path) as handle:
        np.savez_compressed(handle, true=true.astype(dtype), predicted=predicted.astype(dtype))


def read_predictions(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """A run's (true, predicted) test labels, or None when missing or unreadable."""
    try:
        with np.load(path) as saved:
            return saved["true"], saved["predicted"]
    except _UNREADABLE:
        return None


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing or unreadable."""
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def read_metrics(out: Path) -> dict[str, Any] | None:
    """The run's ``metrics.json``; None when missing, unreadable, or a completed run's scores are
    not numbers (its test accuracy in [0, 1]): a file edited by hand or by another tool counts as
    none, so the run is done again and a report shows it unfinished instead of stopping on it."""
    metrics = read_json(out / METRICS)
    if metrics is None or metrics.get("status") != COMPLETED:
        return metrics
    accuracy, *others = (metrics.get(key) for key in SCORES)  # type(): a bool is no score
    numbers = all(value is None or type(value) in (int, float) for value in others)
    return metrics if numbers and type(accuracy) in (int, float) and 0 <= accuracy <= 1 else None


def read_annotations(out: Path) -> dict[str, Any]:
    """The user's ``tags`` (a dict) and ``note`` (text or None) on the run in ``out``."""
    saved = read_json(out / ANNOTATIONS) or {}
    tags = saved.get("tags") if isinstance(saved.get("tags"), dict) else {}
    note = saved.get("note") if isinstance(saved.get("note"), str) else None
    return {"tags": {str(k): str(v) for k, v in tags.items()}, "note": note}


def write_annotations(out: Path, tags: dict[str, str], note: str | None) -> None:
    write_json(out / ANNOTATIONS, {"tags": tags, "note": note})


def _same_config(out: Path, cfg: DictConfig) -> bool:
    """Whether the run saved in ``out`` asked for what ``cfg`` does (``config.same_run``)."""
    try:
        saved = OmegaConf.to_container(OmegaConf.load(out / CONFIG), resolve=True)
    except (OSError, ValueError, yaml.YAMLError, OmegaConfBaseException):
        return False  # missing, unreadable or not YAML: no earlier run to match
    return same_run(saved, cfg)


def model_is_whole(path: Path) -> bool:
    """Whether ``path`` is a complete ``.keras`` file: a zip with the model's config and weights
    whose every member passes its CRC check."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            return {"config.json", "model.weights.h5"} <= names and archive.testzip() is None
    except (OSError, zipfile.BadZipFile, EOFError, ValueError, RuntimeError):
        return False


def read_saved_config(run_dir: Path, needed: Sequence[str] = ()) -> DictConfig:
    """The resolved ``config.yaml`` of the run saved in ``run_dir``.

    Raises:
        UserError: in one line, when ``run_dir`` holds no ``config.yaml`` or ``model.keras``
            (not a run), or the config is damaged or lacks one of the ``needed`` keys.
    """
    run_dir = Path(run_dir)
    for required in (run_dir / CONFIG, run_dir / MODEL):
        if not required.is_file():
            raise UserError(f"{required}: not found; RUN_DIR must be the output folder of a run")
    damaged = f"{run_dir / CONFIG}: damaged or not a run's config"
    fix = "run its training command again or restore the file"
    try:
        cfg = OmegaConf.load(run_dir / CONFIG)
    except (yaml.YAMLError, OmegaConfBaseException, UnicodeDecodeError, ValueError) as error:
        raise UserError(f"{damaged} ({reason(error)[:300]}); {fix}") from None
    if not isinstance(cfg, DictConfig):
        raise UserError(f"{damaged} (not a mapping); {fix}")
    for key in needed:
        if OmegaConf.select(cfg, key, default=None) is None:
            raise UserError(f"{damaged} ({key} is missing); {fix}")
    return cfg


def load_saved_model(run_dir: Path) -> Any:
    """The run's ``model.keras``, loaded for predicting (no loss or optimizer).

    Raises:
        UserError: in one line, when the file is damaged (a truncated zip, a member failing its
            check) or Keras refuses it (a layer it does not know, code it will not run).
    """
    path = Path(run_dir) / MODEL
    fix = "run its training command again, which trains it again"
    if not model_is_whole(path):
        raise UserError(f"{path}: damaged (not a whole .keras file); {fix}")
    from emnist_bench.backend import import_tensorflow

    import_tensorflow()
    from emnist_bench.models import load_model

    try:
        return load_model(path)
    except (*_UNREADABLE, TypeError, AttributeError) as error:
        problem = reason(error)[:300]
        # The file is whole, so the run counts as done and its command would skip it.
        fix = f"to train it again, delete {path.parent} and run its training command"
        raise UserError(f"{path}: Keras cannot load this model ({problem}); {fix}") from None


def damaged_artifacts(out: Path, metrics: dict[str, Any]) -> list[str]:
    """The artifacts of a completed run in ``out`` that are missing or unreadable."""
    damaged = []
    if not model_is_whole(out / MODEL):
        damaged.append(MODEL)
    if read_predictions(out / PREDICTIONS) is None:
        damaged.append(PREDICTIONS)
    history = out / HISTORY
    if metrics.get("epochs_run") and (not history.is_file() or not history.stat().st_size):
        damaged.append(HISTORY)
    return damaged


def completed_metrics(cfg: DictConfig, out: Path) -> dict[str, Any] | None:
    """The metrics of a completed earlier run in ``out`` with the same resolved config, if any.

    A run whose artifacts are missing or damaged (a truncated ``model.keras``) is not
    completed: it runs again. This is what makes re-running a sweep skip finished jobs and
    redo failed or unfinished ones.
    """
    metrics = read_metrics(out)
    if metrics is None or metrics.get("status") != COMPLETED:
        return None
    if not _same_config(out, cfg):
        return None
    damaged = damaged_artifacts(out, metrics)
    if damaged:
        log.warning(
            "%s completed earlier, but %s %s missing or damaged; running it again",
            out,
            ", ".join(damaged),
            "is" if len(damaged) == 1 else "are",
        )
        return None
    remove_backup(out)  # left behind if the run was killed just after completing
    return metrics


def start_run(cfg: DictConfig, out: Path, metrics: dict[str, Any]) -> bool:
    """Marks ``out`` as running (``metrics``, with ``status: running``) and saves the resolved
    config; returns whether the run resumes an interrupted one.

    It resumes when ``backup/`` holds a finished epoch of a run with the same resolved config.
    Otherwise the training files of an earlier attempt (``backup/``, ``history.csv``,
    ``tensorboard/``) are removed, so that nothing of it mixes with the new run.
    """
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resuming = (out / BACKUP).is_dir() and any((out / BACKUP).iterdir())
    resuming = resuming and _same_config(out, cfg)
    if not resuming:
        remove_backup(out)
        shutil.rmtree(out / TENSORBOARD, ignore_errors=True)
        (out / HISTORY).unlink(missing_ok=True)
    write_text(out / CONFIG, OmegaConf.to_yaml(resolved))
    tracked = (read_json(out / METRICS) or {}).get(TRACKED) if resuming else None
    kept = {TRACKED: tracked} if tracked else {}
    write_json(out / METRICS, {**metrics, **kept, "status": RUNNING, "pid": os.getpid()})
    return resuming


def remove_backup(out: Path) -> None:
    """Removes the training backup once the run has finished (completed or diverged)."""
    shutil.rmtree(out / BACKUP, ignore_errors=True)


@contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Holds ``out/.lock`` for the block: one process per run folder.

    The lock is the operating system's (``flock``), so a killed process frees it at once.

    Raises:
        RunBusy: when another process holds it.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    handle = (out / LOCK).open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise RunBusy(
                f"{out}: another process (pid {holder}) is running this run; wait for it to "
                "finish, or write to another folder (hydra.run.dir=DIR)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


def run_folders(folder: Path) -> list[Path]:
    """``folder`` itself when it is a run (it has a metrics.json), else every run under it."""
    if (folder / METRICS).is_file():
        return [folder]
    return find_run_dirs(folder)


def find_run_dirs(root: Path) -> list[Path]:
    """Folders under ``root`` holding a run: a metrics.json, or a started Hydra job."""
    found = {p.parent for p in root.rglob(METRICS)}
    found |= {p.parent for p in root.rglob(HYDRA) if p.is_dir()}
    return sorted(d for d in found if d != root)
