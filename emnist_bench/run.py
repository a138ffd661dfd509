"""One run: seed, data, model, optional search, fit, evaluate, files. Tests call :func:`run`.

A run folder says ``completed`` only when every artifact is written whole; a killed or
interrupted run resumes from its last finished epoch when the same command is run again.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from emnist_bench import config as config_lib
from emnist_bench import debug as debug_lib
from emnist_bench.data import load_dataset, resolve_cache_dir
from emnist_bench.errors import UserError, environment_fault
from emnist_bench.kept import RunKept, refuse_to_replace
from emnist_bench.rundir import (
    CONFIG,
    INTERRUPTED,
    METRICS,
    TRACKED,
    RunBusy,
    completed_metrics,
    output_dir,
    read_json,
    remove_backup,
    run_lock,
    start_run,
    write_json,
)
from emnist_bench.tracking.live import RunTracker
from emnist_bench.tuning.distributed import role as search_role

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Trains and evaluates the configured model; writes every artifact under ``output_dir``.

    One process at a time per folder: a second one is refused (in a multirun, it skips the job).

    Returns:
        The metrics written to ``metrics.json``.

    Raises:
        UserError: for bad config values or data files (with ``continue_on_error``: recorded in
            ``metrics.json`` and returned), a folder another process is running, or one holding
            a completed run of another config (with ``continue_on_error``, or in a multirun's
            job: skipped, the folder left as it is).
        KeyboardInterrupt: on Ctrl-C or SIGTERM, after marking the folder ``interrupted``.
    """
    cfg = config_lib.with_hparams_file(cfg)
    out = output_dir(cfg)
    if cfg.tuner.name != "none" and search_role() == "worker":
        # A worker of keras-tuner's distributed search: the chief owns the folder.
        from emnist_bench.tuning.worker import run_worker

        return run_worker(cfg, out)
    try:
        with run_lock(out):
            return _run_once(cfg, out)
    except (RunBusy, RunKept) as left:
        if not (cfg.get("continue_on_error") or _in_multirun()):
            raise
        log.warning("Skipped: %s", left)
        return {"status": "busy" if isinstance(left, RunBusy) else "kept", "error": str(left)}


def _in_multirun() -> bool:
    """Whether this run is a job of a Hydra multirun (``-m``)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:  # not under Hydra
        return False


def _run_once(cfg: DictConfig, out: Path) -> dict[str, Any]:
    finished = completed_metrics(cfg, out)
    if finished is not None:
        log.info("%s already completed with this config; skipping (delete it to re-run)", out)
        RunTracker.log_finished(cfg, out)  # a logger added since: it gets the run, once
        return finished
    refuse_to_replace(cfg, out)
    previous = read_json(out / METRICS) or {}
    try:
        config_lib.validate(cfg)
        resuming = start_run(cfg, out, config_lib.technique_choices(cfg))
        tracker = RunTracker.start(cfg, out, previous, resuming)
    except Exception as error:
        return _failed(cfg, out, error, record=bool(cfg.get("continue_on_error")))
    try:
        return _run(cfg, out, resuming, tracker)
    except KeyboardInterrupt:
        metrics = read_json(out / METRICS) or {}
        write_json(out / METRICS, {**metrics, "status": INTERRUPTED})
        log.warning("Interrupted; the same command resumes %s from its last finished epoch", out)
        raise
    except Exception as error:
        return _failed(cfg, out, error, record=True)
    finally:
        tracker.end()  # after metrics.json says how the run ended


def _failed(cfg: DictConfig, out: Path, error: Exception, record: bool) -> dict[str, Any]:
    """Records a failed run in ``metrics.json`` (when ``record``); returns its metrics when the
    run goes on to the next (``continue_on_error``), else raises ``error`` again."""
    message = str(error) if isinstance(error, UserError) else traceback.format_exc()
    tracked = (read_json(out / METRICS) or {}).get(TRACKED)
    metrics = {"status": "failed", "error": message, **config_lib.technique_choices(cfg)}
    if tracked:
        metrics[TRACKED] = tracked
    if record:
        try:
            write_json(out / METRICS, metrics)
        except OSError:  # a full or read-only disk: the error raised below says so
            if cfg.get("continue_on_error") and environment_fault(error) is None:
                raise
    # A full disk or a missing TensorFlow would fail every later job of a sweep too: stop.
    if not cfg.get("continue_on_error") or environment_fault(error) is not None:
        raise error
    log.error("Run failed: %s", message)
    return metrics


def _log_start(cfg: DictConfig, out: Path, resuming: bool) -> None:
    """Records in the log what was asked (the command's overrides) and where it goes."""
    try:
        from hydra.core.hydra_config import HydraConfig

        overrides = " ".join(HydraConfig.get().overrides.task) or "(none)"
    except ValueError:  # not under Hydra (tests call run() directly)
        overrides = None
    if overrides is not None:
        log.info("Overrides: %s", overrides)
    choices = config_lib.technique_choices(cfg)
    log.info(
        "%s run in %s: %s (resolved config: %s)",
        "Resuming the" if resuming else "Starting a",
        out,
        ", ".join(f"{key}={value}" for key, value in choices.items()),
        out / CONFIG,
    )


def _run(cfg: DictConfig, out: Path, resuming: bool, tracker: RunTracker) -> dict[str, Any]:
    _log_start(cfg, out, resuming)
    # Data first: a broken file is reported before TensorFlow is even imported.
    data = load_dataset(cfg.data, seed=int(cfg.trainer.seed))
    debug = cfg.get("debug")
    data = debug_lib.limited(data, debug, int(cfg.trainer.batch_size), int(cfg.trainer.seed))

    from emnist_bench.backend import import_tensorflow

    import_tensorflow()

    from emnist_bench.evaluate.artifacts import write_run_files
    from emnist_bench.training.fit import build_model, compile_model, fit_model, savable_model
    from emnist_bench.training.losses import class_prior
    from emnist_bench.training.precision import choose_precision, speedrun_hint
    from emnist_bench.training.runtime import (
        check_validation_splits,
        configure_runtime,
        distribution_scope,
        replica_count,
    )

    configure_runtime(cfg.trainer)
    # Before any search or epoch: Keras's evaluation under MirroredStrategy fails on a batch
    # the devices cannot share, only after the first epoch.
    replicas = replica_count(cfg.trainer.get("strategy"))
    check_validation_splits(len(data.y_val), int(cfg.trainer.batch_size), replicas)
    import keras

    policy = choose_precision(cfg, data.num_classes, len(data.y_train), resolve_cache_dir(cfg.data))
    keras.mixed_precision.set_global_policy(policy)
    if hint := speedrun_hint(str(cfg.model.name), policy):
        log.warning(hint)
    if cfg.tuner.name != "none":
        from emnist_bench.tuning.search import search

        cfg = search(cfg, data, out)
    with distribution_scope(cfg.trainer.get("strategy")):  # trainer.strategy: mirrored
        model = build_model(cfg, data.num_classes)
        compile_model(model, cfg, class_prior(data.y_train, data.num_classes))
    fit = fit_model(model, cfg, data, out, on_epoch=tracker.log_epoch if tracker.active else None)
    model = savable_model(model)  # the file, and the scores, need no emnist_bench to load
    verdict = debug_lib.overfit_verdict(debug, fit["history"], len(data.y_train))
    metrics = write_run_files(model, cfg, data, out, fit, {**tracker.record(), **verdict})
    remove_backup(out)  # finished: the next run of this command starts afresh or skips
    return metrics
