"""A completed run is never replaced by a run of another config in its folder.

Re-running a command skips a completed run of the same config and resumes an unfinished one;
a command whose config differs (a mistyped value, a smoke command aimed at a real sweep's
folder) would train from the start over a finished result. It is refused instead, in one line
that names what differs, and the folder is left as it is. A change to the search alone
(``tuner.max_trials`` raised) goes on: the search resumes from ``tuner/`` and adds its trials.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from emnist_bench.config import NOT_COMPARED, with_defaults
from emnist_bench.errors import UserError
from emnist_bench.rundir import COMPLETED, CONFIG, damaged_artifacts, read_metrics

SHOWN = 3
"""Differing keys the refusal names."""
_kept: set[Path] = set()
"""The folders this process refused to replace: a sweep's job reports them as kept."""


class RunKept(UserError):
    """The folder holds a completed run of another config, which a new run would replace."""


def refuse_to_replace(cfg: DictConfig, out: Path) -> None:
    """Raises :class:`RunKept` when ``out`` holds a whole completed run whose config differs from
    ``cfg`` in more than the search's keys (call it once the same config was not found done)."""
    metrics = read_metrics(out)
    if metrics is None or metrics.get("status") != COMPLETED:
        return
    try:
        saved = OmegaConf.to_container(OmegaConf.load(out / CONFIG), resolve=True)
    except (OSError, ValueError, OmegaConfBaseException):
        return  # without its config.yaml, nothing tells what the run was: it trains again
    now = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    changed = changed_keys(with_defaults(saved), now)
    # The files are checked last: a same-config run's were just checked by completed_metrics.
    if not changed or all(key.startswith("tuner.") for key, _, _ in changed):
        return
    if damaged_artifacts(out, metrics):
        return
    shown = "; ".join(
        f"{key}: {_value(then)} there, {_value(new)} now" for key, then, new in changed[:SHOWN]
    )
    more = f"; {len(changed) - SHOWN} more" if len(changed) > SHOWN else ""
    _kept.add(out.resolve())
    raise RunKept(
        f"{out} holds a completed run of another config ({shown}{more}); delete the folder to "
        "replace it, or give this run another one (hydra.run.dir, or hydra.sweep.dir for a sweep)"
    )


def _value(value: Any) -> str:
    return "unset" if value is None else str(value)


def was_kept(out: Path) -> bool:
    """Whether this process refused to replace the completed run in ``out``."""
    return Path(out).resolve() in _kept


def changed_keys(then: Any, now: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """The dotted keys whose values differ between two resolved configs, as
    ``(key, then, now)``; a null counts as no key, :data:`~emnist_bench.config.NOT_COMPARED`
    keys are left out (as ``config.same_run`` compares)."""
    if not (isinstance(then, dict) and isinstance(now, dict)):
        return [] if then == now else [(prefix.rstrip("."), then, now)]
    changed = []
    for key in sorted(set(then) | set(now), key=str):
        if not prefix and key in NOT_COMPARED:
            continue
        old, new = then.get(key), now.get(key)
        if old != new:
            changed += changed_keys(old, new, f"{prefix}{key}.")
    return changed
