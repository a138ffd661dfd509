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

    Raises:
        ValueError: for an option the group does not have (``optimizer: [sgdd]``), naming the
            ones it has, before any job starts.
    """
    variants = [BASE]
    for group, listed in techniques.items():
        known = options(group)
        unknown = [str(o) for o in listed if str(o) not in known]
        if unknown:
            raise ValueError(
                f"grid.techniques.{group} lists {unknown[0]!r}, not an option of {group}; "
                f"choose from {', '.join(known)}"
            )
        base = choices.get(group)
        variants += [variant_name(group, str(o)) for o in listed if str(o) != base]
    return ",".join(_quote(v) for v in variants)


def sweep_over(options: ListConfig) -> str:
    """A Hydra sweep string over a list (``[adam, sgd]`` -> ``adam,sgd``)."""
    return ",".join(_quote(str(o)) for o in options)


def seeds_sweep(seeds: ListConfig | None, seed: int) -> str:
    """The sweep string of ``trainer.seed``: every seed of ``grid.seeds``, else the one seed."""
    if seeds is None or not len(seeds):
        return str(seed)
    return ",".join(str(int(s)) for s in seeds)


def swept_keys(jobs: list[list[str]]) -> set[str]:
    """The keys whose value differs between jobs (``+experiment=x`` counts as ``experiment``;
    a key some jobs set and others do not differs too)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    settings = [
        {override.key_or_group: str(override.value()) for override in parser.parse_overrides(job)}
        for job in jobs
    ]
    keys = {key for setting in settings for key in setting}
    return {key for key in keys if len({setting.get(key) for setting in settings}) > 1}


def unnamed_in_folder(config: DictConfig, keys: set[str]) -> list[str]:
    """The ``keys`` that ``hydra.sweep.subdir`` does not name, so two jobs differing only in
    them would share a folder. A key is named by ``${key}`` / ``${key.field}``, by
    ``hydra.runtime.choices.key`` (a group), or by ``hydra.job.override_dirname`` (unless
    excluded there)."""
    template = str(OmegaConf.to_container(config.hydra.sweep, resolve=False)["subdir"])
    excluded = set(OmegaConf.select(config, "hydra.job.config.override_dirname.exclude_keys") or [])
    unnamed = []
    for key in sorted(keys):
        named = (
            ("hydra.job.override_dirname" in template and key not in excluded)
            or f"hydra.runtime.choices.{key}" in template
            or f"${{{key}}}" in template
            or f"${{{key}." in template
        )
        if not named:
            unnamed.append(key)
    return unnamed


def _register_resolvers() -> None:
    OmegaConf.register_new_resolver(
        "one_factor_at_a_time", one_factor_at_a_time, replace=True, use_cache=False
    )
    OmegaConf.register_new_resolver("sweep_over", sweep_over, replace=True, use_cache=False)
    OmegaConf.register_new_resolver("seeds_sweep", seeds_sweep, replace=True, use_cache=False)


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
