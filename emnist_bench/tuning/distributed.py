"""keras-tuner's distributed search: one chief holds the oracle, workers train the trials.

Started as keras-tuner documents it: the same command once with ``KERASTUNER_TUNER_ID=chief``
and once per worker with ``KERASTUNER_TUNER_ID=tuner0``, ``tuner1``, ..., every process with
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` naming the chief, and the same
``hydra.run.dir`` (a shared file system). The chief serves keras-tuner's gRPC oracle and never
trains; it owns the run folder: ``trials.csv`` (rewritten as trials end), ``best_hparams.yaml``
and, after the search, the best configuration re-trained like any run. A worker trains the
trials the chief hands out, writes no run files, and returns when the oracle says the search is
over (exit 0).

keras-tuner's own chief waits for every worker that ever asked for a trial, so one killed
mid-trial would hang it forever, its trial never ending. Here each worker tells the chief it is
alive while it trains (``tuner.distributed.heartbeat``); a worker silent for
``tuner.distributed.worker_timeout`` is taken for dead: its trial goes back to the queue for
the next worker (as keras-tuner does with the running trials of a chief that restarts), a trial
whose worker dies twice is recorded as failed, and the chief stops waiting for it.

Nothing here imports TensorFlow at module level: ``run`` asks :func:`role` before it imports it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

from omegaconf import DictConfig

from emnist_bench.errors import ConfigError, UserError

log = logging.getLogger(__name__)

CHIEF, WORKER = "chief", "worker"
ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


def role() -> str | None:
    """``chief`` or ``worker`` in a distributed search (keras-tuner's variables), else None.

    keras-tuner's rule: the search is distributed when ``KERASTUNER_ORACLE_IP`` is set, and the
    process is the chief when its ``KERASTUNER_TUNER_ID`` contains ``chief``.

    Raises:
        ConfigError: when the oracle's address is set but the port or the tuner id is not.
    """
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return None
    missing = [name for name in ENV if not os.environ.get(name)]
    if missing:
        raise ConfigError(
            f"KERASTUNER_ORACLE_IP is set, so the search is distributed, but {', '.join(missing)} "
            "is not: set KERASTUNER_TUNER_ID (chief, or tuner0, tuner1, ...), "
            "KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT for every process"
        )
    return CHIEF if "chief" in os.environ["KERASTUNER_TUNER_ID"] else WORKER


def chief_address() -> str:
    return f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"


# --- a worker -------------------------------------------------------------------------------


class Heartbeat:
    """While a worker trains a trial, asks the chief for it every ``every`` seconds, which
    tells the chief the worker is alive (keras-tuner's ``GetTrial`` call)."""

    def __init__(self, client: Any, trial_id: str, every: float):
        self.client, self.trial_id, self.every = client, trial_id, float(every)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{trial_id}")
        self._thread.daemon = True
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.client.get_trial(self.trial_id)
            except Exception:  # the chief is gone: the worker's next call says so
                return

    def stop(self) -> None:
        self._stop.set()


def wait_when_idle(oracle: Any, seconds: float = 1.0) -> None:
    """Makes a worker's client pause ``seconds`` after the chief answered "no trial yet"
    (``IDLE``), where keras-tuner's worker would ask again at once, over and over."""
    if role() != WORKER or not hasattr(oracle, "stub"):
        return
    create_trial = oracle.create_trial

    def patient_create_trial(tuner_id):
        trial = create_trial(tuner_id)
        if trial.status == "IDLE":
            time.sleep(seconds)
        return trial

    oracle.create_trial = patient_create_trial


def heartbeat(oracle: Any, trial_id: str, every: float) -> Heartbeat | None:
    """A :class:`Heartbeat` for the trial when ``oracle`` is a worker's client, else None."""
    if role() != WORKER or not hasattr(oracle, "stub"):
        return None
    log.info("Worker %s: trial %s", os.environ["KERASTUNER_TUNER_ID"], trial_id)
    return Heartbeat(oracle, trial_id, every)


# --- the chief ------------------------------------------------------------------------------


class _Contacts:
    """When the chief last heard from each worker, and which worker runs which trial."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}  # tuner id -> monotonic time
        self.runs: dict[str, str] = {}  # trial id -> tuner id
        self.stop_triggered = False
        self.requeued: set[str] = set()  # trials whose worker died once

    def heard(self, tuner_id: str | None = None, trial_id: str | None = None) -> None:
        tuner_id = tuner_id or self.runs.get(trial_id or "")
        if tuner_id:
            self.seen[tuner_id] = time.monotonic()


def _servicer(oracle: Any, contacts: _Contacts) -> Any:
    """keras-tuner's oracle service, noting every contact and ignoring late reports of trials
    that already ended (a worker taken for dead that was only slow: the first report wins)."""
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer
    from keras_tuner.src.engine import trial as trial_module
    from keras_tuner.src.engine.oracle import synchronized

    def waiting_trial(oracle, tuner_id: str):
        # Every trial is handed out, but another worker's may yet come back to the queue (if
        # it dies): keep this worker waiting (IDLE) instead of letting it go (STOPPED).
        others = [t for t in oracle.ongoing_trials if t != tuner_id]
        full = oracle.max_trials and len(oracle.trials) >= oracle.max_trials
        if not full or not others or tuner_id in oracle.ongoing_trials or oracle._retry_queue:
            return None
        oracle.tuner_ids.add(tuner_id)
        return trial_module.Trial(oracle.get_space(), status=trial_module.TrialStatus.IDLE)

    def ended(oracle, trial_id: str) -> bool:
        trial = oracle.trials.get(trial_id)
        return trial is None or trial.status in ("COMPLETED", "FAILED")

    def end(oracle, trial) -> None:
        if ended(oracle, trial.trial_id):
            return
        if trial.trial_id in oracle._retry_queue:  # reported after it was taken back
            oracle._retry_queue.remove(trial.trial_id)
        oracle.end_trial(trial)

    class Servicer(OracleServicer):
        def CreateTrial(self, request, context):
            waiting = synchronized(waiting_trial)(oracle, request.tuner_id)
            if waiting is not None:
                contacts.heard(tuner_id=request.tuner_id)
                return protos.get_service().CreateTrialResponse(trial=waiting.to_proto())
            response = super().CreateTrial(request, context)
            contacts.runs[response.trial.trial_id] = request.tuner_id
            contacts.heard(tuner_id=request.tuner_id)
            contacts.stop_triggered |= self.stop_triggered
            return response

        def UpdateTrial(self, request, context):
            contacts.heard(trial_id=request.trial_id)
            if synchronized(ended)(oracle, request.trial_id):
                trial = oracle.get_trial(request.trial_id)
                return protos.get_service().UpdateTrialResponse(trial=trial.to_proto())
            return super().UpdateTrial(request, context)

        def EndTrial(self, request, context):
            contacts.heard(trial_id=request.trial.trial_id)
            synchronized(end)(oracle, trial_module.Trial.from_proto(request.trial))
            return protos.get_service().EndTrialResponse()

        def GetTrial(self, request, context):
            contacts.heard(trial_id=request.trial_id)
            return super().GetTrial(request, context)

    return Servicer(oracle)


def _take_back_dead(oracle: Any, contacts: _Contacts, timeout: float) -> list[str]:
    """Forgets the workers silent for ``timeout`` seconds; their trials go back to the queue,
    or fail if their worker already died once. Returns the dead workers' ids."""
    from keras_tuner.src.engine import trial as trial_module

    now = time.monotonic()
    dead = [t for t in oracle.tuner_ids if now - contacts.seen.get(t, now) > timeout]
    for tuner_id in dead:
        oracle.tuner_ids.discard(tuner_id)
        trial = oracle.ongoing_trials.pop(tuner_id, None)
        if trial is None:
            continue
        if trial.trial_id in contacts.requeued:
            trial.status = trial_module.TrialStatus.FAILED
            trial.message = f"its workers stopped reporting twice (last: {tuner_id})"
            oracle.end_trial(trial)
        else:
            contacts.requeued.add(trial.trial_id)
            oracle._retry_queue.append(trial.trial_id)  # as Oracle.reload() does
            oracle.save()
        log.warning(
            "Worker %s has not reported for %.0f s: trial %s %s",
            tuner_id,
            timeout,
            trial.trial_id,
            "failed" if trial.status == "FAILED" else "goes back to the queue",
        )
    return dead


def _trials_ended(oracle: Any, on_trial_end: Callable[[], None]) -> None:
    # keras-tuner saves the oracle before it drops an ended trial from the running ones: save
    # again, or a chief started again would run that trial a second time.
    oracle.save()
    on_trial_end()


def _search_state(oracle: Any, contacts: _Contacts) -> str:
    """``running``; ``over`` when no worker is left and nothing is left to run; ``abandoned``
    when every worker has gone (been told to stop, or died) while trials remain."""
    if oracle.ongoing_trials or oracle.tuner_ids or not (contacts.seen or contacts.stop_triggered):
        return "running"  # a worker is at work, or none has come yet
    left = bool(oracle._retry_queue) or (
        not contacts.stop_triggered and bool(oracle.remaining_trials)
    )
    return "abandoned" if left else "over"


def serve(
    oracle: Any,
    settings: DictConfig,
    on_trial_end: Callable[[], None],
    poll: float = 1.0,
) -> None:
    """The chief: serves the oracle to the workers until the search is over.

    Over, as in keras-tuner's own chief, when a worker has been told to stop, no trial runs and
    every worker has been told to stop; workers silent for ``settings.worker_timeout`` seconds
    are not waited for. ``on_trial_end`` runs (under the oracle's lock) whenever trials ended.

    Raises:
        UserError: when the chief cannot listen on its address, or every worker died while
            trials remained (the same commands, started again, resume the search).
    """
    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.engine.oracle import synchronized

    contacts = _Contacts()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    protos.get_service_grpc().add_OracleServicer_to_server(_servicer(oracle, contacts), server)
    try:
        bound = server.add_insecure_port(chief_address())
    except RuntimeError:
        bound = 0
    if not bound:
        raise UserError(
            f"the chief cannot listen on {chief_address()} (KERASTUNER_ORACLE_IP/_PORT): "
            "is the port in use or the address not this machine's?"
        )
    server.start()
    log.info("Chief: serving the search on %s", chief_address())
    timeout = float(settings.worker_timeout)
    ended = -1
    try:
        while True:
            time.sleep(poll)
            synchronized(_take_back_dead)(oracle, contacts, timeout)
            if len(oracle.end_order) != ended:
                ended = len(oracle.end_order)
                synchronized(_trials_ended)(oracle, on_trial_end)
            state = synchronized(_search_state)(oracle, contacts)
            if state == "over":
                return
            if state == "abandoned":
                raise UserError(
                    f"every worker stopped reporting with {len(oracle.end_order)} trials ended "
                    f"of tuner.max_trials={oracle.max_trials}; start the chief and the workers "
                    "again with the same commands to finish the search"
                )
    finally:
        server.stop(grace=2)
