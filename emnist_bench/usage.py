"""The ``--help`` page of ``python -m emnist_bench``, filled from ``conf/`` and the schemas.

Hydra's own ``--help`` composes the config and then every option of every config group, which
takes seconds here. This page is Hydra's template (``hydra.help.template`` in
``conf/config.yaml``) filled in without Hydra: the groups and their options are the file names
in ``conf/<group>/``, and the config is the defaults list's options put together from their
files and schemas (``config.option_config``). Nothing here imports Hydra or TensorFlow.
"""

from __future__ import annotations

import string

from omegaconf import DictConfig, OmegaConf

from emnist_bench import conf_folder
from emnist_bench.config import option_config
from emnist_bench.techniques import USER_GROUPS, options


def groups_help() -> str:
    """``group: option, option, ...`` for each group a user picks."""
    return "\n".join(f"{group}: {', '.join(options(group))}" for group in USER_GROUPS)


# The template's ${emnist_bench_groups:}, also when Hydra prints it (--help with overrides).
OmegaConf.register_new_resolver("emnist_bench_groups", groups_help, replace=True)


def default_config(primary: DictConfig | None = None) -> DictConfig:
    """The config a run without overrides gets, as Hydra composes it less the ``hydra`` node.

    Args:
        primary: ``conf/config.yaml`` as loaded, when the caller has it.
    """
    if primary is None:
        primary = OmegaConf.load(conf_folder() / "config.yaml")
    own = {k: v for k, v in primary.items_ex(resolve=False) if k not in ("defaults", "hydra")}
    defaults = list(primary.defaults)
    config = OmegaConf.create()
    for entry in defaults if "_self_" in defaults else [*defaults, "_self_"]:
        if entry == "_self_":
            config = OmegaConf.merge(config, own)
            continue
        ((key, option),) = entry.items()
        if option is None:  # an optional group left empty (debug: null)
            continue
        group, _, package = str(key).partition("@")
        OmegaConf.update(config, package or group, option_config(group, option), merge=False)
    return config


def help_text() -> str:
    """The help page, as Hydra's ``--help`` prints it for a command line without overrides."""
    primary = OmegaConf.load(conf_folder() / "config.yaml")
    config = OmegaConf.to_yaml(default_config(primary))
    return string.Template(primary.hydra.help.template).substitute(CONFIG=config)
