"""Where runs are tracked and how to talk to it: the tracking URI, the experiment, and an MLflow
client whose failures never reach the run (a locked sqlite file is waited for, an unreachable
server is one warning line, then silence)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from emnist_bench.errors import UserError
from emnist_bench.errors import reason as one_line

log = logging.getLogger(__name__)

INSTALL_MLFLOW = (
    "logger=mlflow needs MLflow, which is not installed: pip install 'emnist_bench[track]'"
)
# The default store: a sqlite file beside the runs, in the folder the command was started in.
DEFAULT_DB = Path("outputs") / "mlflow.db"
# Artifacts of a sqlite store go beside its file (MLflow's own default is ./mlruns in the cwd).
ARTIFACTS = "mlartifacts"
# Parallel jobs writing one sqlite file take turns: a locked file is retried for this long.
LOCKED_PATIENCE = 120.0
# An unreachable server must not hold training up for MLflow's default 7 retries (~4 minutes).
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
}

T = TypeVar("T")


def import_mlflow():
    """The ``mlflow`` module, or one line naming the extra that installs it.

    Raises:
        UserError: when MLflow is not installed.
    """
    try:
        import mlflow
    except ImportError:
        raise UserError(INSTALL_MLFLOW) from None
    return mlflow


def tracking_uri(configured: str | None, launched_in: Path | None = None) -> str:
    """``logger.tracking_uri`` when set, else ``$MLFLOW_TRACKING_URI``, else the sqlite file
    ``outputs/mlflow.db`` under ``launched_in`` (default: the current folder), as an absolute
    URI so that every job of a sweep finds the same file wherever it runs."""
    if configured:
        return str(configured)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    db = (Path(launched_in) if launched_in else Path.cwd()) / DEFAULT_DB
    return f"sqlite:///{db.resolve()}"


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` URI; None for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///"))


def is_locked(error: BaseException) -> bool:
    return "database is locked" in str(error)


def reason(error: BaseException) -> str:
    """What went wrong, in a few words: a server that cannot be reached says so, anything else
    is its first line, without the retry details requests adds."""
    text = str(error).strip()
    if any(sign in text for sign in ("Max retries exceeded", "Connection refused")):
        return "cannot connect to the tracking server"
    return one_line(error).split(" (Caused by")[0][:200]


class Unavailable(Exception):
    """The tracking store cannot be reached or refused a call; the run goes on without it."""


class Store:
    """An MLflow client on one tracking URI, each call retried while a sqlite file is locked.

    Any other failure raises :class:`Unavailable` with one line saying what happened; callers
    that must never fail (a training run) catch it once and stop tracking.
    """

    def __init__(self, uri: str):
        import_mlflow()
        for name, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)
        # A sqlite store's schema checks are announced at INFO: not the run's news.
        for name in ("alembic", "mlflow.store.db.utils"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # Each retry against an unreachable server would be a warning line of its own.
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
        from mlflow.tracking import MlflowClient

        self.uri = uri
        db = sqlite_file(uri)
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
        self.client = self.call(MlflowClient, tracking_uri=uri)

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``function(*args, **kwargs)``, retried while the database is locked.

        Raises:
            Unavailable: on any other failure, or a lock that outlasts :data:`LOCKED_PATIENCE`.
        """
        deadline = time.monotonic() + LOCKED_PATIENCE
        pause = 0.05
        while True:
            try:
                return function(*args, **kwargs)
            except Exception as error:
                if is_locked(error) and time.monotonic() < deadline:
                    time.sleep(pause)
                    pause = min(pause * 2, 2.0)
                    continue
                raise Unavailable(f"{self.uri}: {reason(error)}") from error

    def __getattr__(self, name: str) -> Callable[..., Any]:
        """``store.log_batch(...)``: the client's method, called through :meth:`call`."""
        method = getattr(self.client, name)
        return lambda *args, **kwargs: self.call(method, *args, **kwargs)

    def experiment_id(self, name: str) -> str:
        """The id of the experiment ``name``, created when missing (a sqlite store's with its
        artifacts beside the database file)."""
        experiment = self.get_experiment_by_name(name)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                self.restore_experiment(experiment.experiment_id)
            return experiment.experiment_id
        db = sqlite_file(self.uri)
        location = (db.parent / ARTIFACTS).resolve().as_uri() if db is not None else None
        try:
            return self.create_experiment(name, artifact_location=location)
        except Unavailable:
            # Another job of the sweep created it first.
            experiment = self.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id

    def live_run(self, run_id: str | None):
        """The run ``run_id`` when it exists and is not deleted, else None."""
        if not run_id:
            return None
        try:
            run = self.get_run(run_id)
        except Unavailable:
            return None
        return run if run.info.lifecycle_stage != "deleted" else None
