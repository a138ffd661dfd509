"""The technique grid's jobs: one-factor-at-a-time variants and the sweep strings Hydra expands.

A *variant* is one config-group choice applied on top of the base configuration, written
``group=option`` (``optimizer=rmsprop``), or ``base`` for none. Importing this module registers
every such choice as an option of the Hydra config group ``variant`` (a ``_global_`` config
whose defaults list says ``override /optimizer: rmsprop``), so a variant composes the real
group YAML exactly as the command line would. ``conf/sweep/technique_grid.yaml`` sweeps
``model`` x ``variant``; the list of variants comes from its ``grid.techniques`` table through
the ``one_factor_at_a_time`` resolver below.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, ListConfig, OmegaConf

from emnist_bench.techniques import BASE, TECHNIQUE_GROUPS, options

VARIANT_GROUP = "variant"


def variant_name(group: str, option: str) -> str:
    return f"{group}={option}"


def register_variants() -> list[str]:
    """Stores ``base`` and one ``group=option`` config per option of each technique group.

    Returns:
        The registered variant names.
    """
    store = ConfigStore.instance()
    store.store(group=VARIANT_GROUP, name=BASE, node={}, package="_global_")
    names = [BASE]
    for group in TECHNIQUE_GROUPS:
        for option in options(group):
            name = variant_name(group, option)
            node = {"defaults": [{f"override /{group}": option}]}
            store.store(group=VARIANT_GROUP, name=name, node=node, package="_global_")
            names.append(name)
    return names


def _quote(value: str) -> str:
    """A Hydra override value: ``=`` must be quoted (``'optimizer=sgd'``)."""
    return value if value.isidentifier() else f"'{value}'"


def one_factor_at_a_time(techniques: DictConfig, choices: DictConfig) -> str:
    """The Hydra sweep string of variants: ``base``, then each value of each group alone.

    Args:
        techniques: group -> the options compared (the base's own option may be listed; it is
            the base run, not a second run).
        choices: the base configuration's choice per group (``hydra.runtime.choices``).

    A group or option without a registered variant is listed anyway: composing that job then
    fails with Hydra's own message, which names the variants there are.
    """
    variants = [BASE]
    for group, listed in techniques.items():
        base = choices.get(group)
        variants += [variant_name(group, str(o)) for o in listed if str(o) != base]
    return ",".join(_quote(v) for v in variants)


def sweep_over(options: ListConfig) -> str:
    """A Hydra sweep string over a list (``[adam, sgd]`` -> ``adam,sgd``)."""
    return ",".join(_quote(str(o)) for o in options)


def _register_resolvers() -> None:
    OmegaConf.register_new_resolver(
        "one_factor_at_a_time", one_factor_at_a_time, replace=True, use_cache=False
    )
    OmegaConf.register_new_resolver("sweep_over", sweep_over, replace=True, use_cache=False)


def register() -> None:
    """Makes the ``variant`` group and the sweep resolvers known to Hydra (idempotent)."""
    register_variants()
    _register_resolvers()


def job_overrides(config: DictConfig) -> list[list[str]]:
    """The override list of every job the basic sweeper will launch, in launch order.

    This is the basic sweeper's own expansion (``hydra.sweeper.params`` first, then the
    command line), so tests and the progress display see exactly the jobs that run.
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = OmegaConf.select(config, "hydra.sweeper.params")
    arguments = [f"{key}={value}" for key, value in (params or {}).items()]
    arguments += list(OmegaConf.select(config, "hydra.overrides.task") or [])
    overrides = OverridesParser.create().parse_overrides(arguments)
    return BasicSweeper.split_arguments(overrides, None)[0]
