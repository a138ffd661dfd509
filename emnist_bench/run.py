"""One run: seed, data, model, optional search, fit, evaluate, files. Tests call :func:`run`."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from emnist_bench import config as config_lib
from emnist_bench.data import load_dataset
from emnist_bench.errors import UserError
from emnist_bench.rundir import completed_metrics, output_dir, write_json

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Trains and evaluates the configured model; writes every artifact under ``output_dir``.

    Returns:
        The metrics written to ``metrics.json``.

    Raises:
        UserError: for bad config values or data files (unless ``continue_on_error`` is set,
            in which case the failure is recorded in ``metrics.json`` and returned).
    """
    cfg = config_lib.with_hparams_file(cfg)
    out = output_dir(cfg)
    finished = completed_metrics(cfg, out)
    if finished is not None:
        log.info("%s already completed with this config; skipping (delete it to re-run)", out)
        return finished
    try:
        config_lib.validate(cfg)
        return _run(cfg, out)
    except Exception as error:
        if not cfg.get("continue_on_error"):
            raise
        message = str(error) if isinstance(error, UserError) else traceback.format_exc()
        log.error("Run failed: %s", message)
        metrics = {"status": "failed", "error": message, **config_lib.technique_choices(cfg)}
        write_json(out / "metrics.json", metrics)
        return metrics


def _run(cfg: DictConfig, out: Path) -> dict[str, Any]:
    OmegaConf.save(cfg, out / "config.yaml", resolve=True)
    # Data first: a broken file is reported before TensorFlow is even imported.
    data = load_dataset(cfg.data, seed=int(cfg.trainer.seed))

    from emnist_bench.evaluate.artifacts import write_run_files
    from emnist_bench.training.fit import build_model, compile_model, fit_model
    from emnist_bench.training.losses import class_prior
    from emnist_bench.training.runtime import configure_runtime

    configure_runtime(cfg.trainer)
    if cfg.tuner.name != "none":
        from emnist_bench.tuning.search import search

        cfg = search(cfg, data, out)
    model = build_model(cfg, data.num_classes)
    compile_model(model, cfg, class_prior(data.y_train, data.num_classes))
    fit = fit_model(model, cfg, data, out)
    return write_run_files(model, cfg, data, out, fit)
