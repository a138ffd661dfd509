"""Composing the real Hydra config in tests, with outputs and caches under tmp folders."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

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


def options(group: str) -> list[str]:
    """Every option of a config group, from the YAML files in ``conf/<group>/``."""
    return sorted(path.stem for path in (config_dir() / group).glob("*.yaml"))


def compose_config(overrides: Sequence[str] = (), output_dir: Path | str = "unused") -> DictConfig:
    """The config a command line with ``overrides`` would run, its outputs in ``output_dir``."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("config", overrides=[*overrides, f"output_dir={output_dir}"])


def smoke_overrides(data_root: Path, cache: Path, *extra: str) -> list[str]:
    """A 1-epoch run on the small CSV proxy: what a CI smoke run uses."""
    return [
        f"data.root={data_root}",
        f"data.cache_dir={cache}",
        "data.val_size=0.2",
        "data.download=false",
        "trainer.epochs=1",
        "trainer.batch_size=64",
        *extra,
    ]
