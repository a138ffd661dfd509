"""A worker of keras-tuner's distributed search (``distributed``): its whole run."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from emnist_bench.data import load_dataset
from emnist_bench.errors import UserError
from emnist_bench.rundir import completed_metrics
from emnist_bench.tuning.distributed import chief_address

log = logging.getLogger(__name__)


def run_worker(cfg: DictConfig, out: Path) -> dict[str, Any]:
    """A worker's whole run: the data, then the trials the chief hands out, until it says stop.

    It writes no run files (the chief owns ``out``): a worker started again after the search
    completed finds the chief's completed run there and returns at once.

    Raises:
        UserError: when no chief answers within ``tuner.distributed.chief_timeout`` seconds.
    """
    tuner_id = os.environ["KERASTUNER_TUNER_ID"]
    if completed_metrics(cfg, out) is not None:
        log.info("The search in %s is complete; worker %s has nothing to do", out, tuner_id)
        return {"status": "completed", "worker": tuner_id}
    data = load_dataset(cfg.data, seed=int(cfg.trainer.seed))

    import grpc
    from keras_tuner.src.distribute import oracle_client

    from emnist_bench.training.runtime import configure_runtime
    from emnist_bench.tuning.search import search

    configure_runtime(cfg.trainer)
    # keras-tuner's client waits an hour for the chief; a chief that went away ends sooner.
    oracle_client.TIMEOUT = float(cfg.tuner.distributed.chief_timeout)
    log.info("Worker %s: asking the chief at %s for trials", tuner_id, chief_address())
    try:
        search(cfg, data, out)
    except grpc.RpcError as error:
        raise UserError(
            f"worker {tuner_id}: the chief at {chief_address()} did not answer "
            f"({error.code().name}) within tuner.distributed.chief_timeout="
            f"{cfg.tuner.distributed.chief_timeout} s; start it (KERASTUNER_TUNER_ID=chief) "
            "with the same command"
        ) from None
    log.info("Worker %s: the search is over", tuner_id)
    return {"status": "completed", "worker": tuner_id}
