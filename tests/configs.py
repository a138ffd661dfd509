"""Composing the real Hydra config in tests, with outputs and caches under tmp folders.

Every test that needs a config gets it here: :func:`compose_config` (the whole config, with or
without Hydra's own ``hydra`` node), :func:`smoke_overrides` (a 1-epoch run on small data) and
:func:`data_config` (the composed ``data`` group, offline, for the data layer's own tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from emnist_bench import config_dir

GROUPS = (
    "model",
    "optimizer",
    "activation",
    "batch_norm",
    "regularization",
    "dropout",
    "lr_schedule",
)
# A 1-epoch CNN with batch norm, L2, dropout, elu, rmsprop, a step decay halving the rate every
# epoch and the logit-adjusted loss: the run the end-to-end tests share (conftest ``cnn_run``).
CNN_RUN = (
    "model=cnn",
    "batch_norm=on",
    "regularization=l2",
    "dropout=on",
    "optimizer=rmsprop",
    "activation=elu",
    "lr_schedule=step_decay",
    "lr_schedule.every=1",
    "data.class_weight=logit_adjusted",
)


def options(group: str) -> list[str]:
    """Every option of a config group, from the YAML files in ``conf/<group>/``."""
    return sorted(path.stem for path in (config_dir() / group).glob("*.yaml"))


def compose_config(
    overrides: Sequence[str] = (),
    output_dir: Path | str | None = "unused",
    *,
    hydra: bool = False,
) -> DictConfig:
    """The config a command line with ``overrides`` would run, its outputs in ``output_dir``.

    Args:
        overrides: command-line overrides, e.g. ``["model=cnn", "+sweep=technique_grid"]``.
        output_dir: where the run would write; ``None`` leaves ``output_dir`` to Hydra's
            ``${hydra:runtime.output_dir}`` (only resolvable with ``hydra=True``).
        hydra: keep the ``hydra`` node (sweep dirs, sweeper params, ``hydra.overrides``), as a
            multirun's master config or one of its jobs sees it.
    """
    overrides = list(overrides)
    if output_dir is not None:
        overrides.append(f"output_dir={output_dir}")
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=hydra)


def smoke_overrides(data_root: Path, cache: Path, *extra: str, subset: int | None = 5) -> list[str]:
    """A 1-epoch run on ``subset`` images per class of the small CSV folder (``smoke_data``):
    with the default 5, 188 training and 47 validation images, within what a default test may
    train (tests/conftest.py). ``subset=None`` keeps every training image, for the slow tests
    that need more than a few steps. It scores the whole test file (470 images)."""
    return [
        *data_overrides(data_root, cache, subset=subset),
        "data.val_size=0.2",
        "trainer.epochs=1",
        "trainer.batch_size=64",
        *extra,
    ]


def data_overrides(data_root: Path, cache: Path, *, subset: int | None = 5) -> list[str]:
    """The data of :func:`smoke_overrides` alone, offline, for presets that set the rest."""
    return [
        f"data.root={data_root}",
        f"data.cache_dir={cache}",
        f"data.subset={'null' if subset is None else subset}",
        "data.download=false",
    ]


@cache
def _offline_data() -> dict[str, Any]:
    cfg = compose_config(["data.download=false", "data.val_size=0"])
    return OmegaConf.to_container(cfg.data, resolve=True)


def data_config(root: Path | str, cache_dir: Path | str, **overrides: Any) -> dict:
    """The composed ``data`` group on ``root``, offline, no validation split unless overridden.

    ``overrides`` are set as given, without Hydra's parsing, so tests can hand the loader
    values the command line could not spell (``val_size=True``, ``val_size="0.1"``).
    """
    return {**_offline_data(), "root": str(root), "cache_dir": str(cache_dir), **overrides}
