"""The search space, read from ``conf/search_space``, and what a trial's values stand for.

A trial's hyperparameter values stand for a config fragment (:func:`hparams_fragment`): whole
groups (``model``, ``optimizer``, ...) that replace the run's own, as ``hparams_file`` does in
a plain run (``config.apply_hparams``). Nothing here imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from emnist_bench.config import option_config
from emnist_bench.errors import ConfigError
from emnist_bench.techniques import options as group_options

if TYPE_CHECKING:
    import keras_tuner as kt

# Per-layer entries of each family's search space: entry -> (its layer-count entry, model key).
# Each is one hyperparameter per layer, named entry_1, entry_2, ...
PER_LAYER = {
    "mlp": {
        "units": ("layers", "hidden_units"),
        "activation": ("layers", "activations"),
        "dropout": ("layers", "dropout_rates"),
    },
    "cnn": {
        "filters": ("conv_blocks", "conv_filters"),
        "kernel_size": ("conv_blocks", "kernel_size"),
        "conv_activation": ("conv_blocks", "conv_activations"),
        "conv_dropout": ("conv_blocks", "conv_dropout_rates"),
        "dense_units": ("dense_layers", "dense_units"),
        "dense_activation": ("dense_layers", "dense_activations"),
        "dense_dropout": ("dense_layers", "dense_dropout_rates"),
    },
}
# The model key whose length a layer-count entry gives (its length in the run's config when
# the entry is not searched).
LAYER_COUNTS = {
    "layers": "hidden_units",
    "conv_blocks": "conv_filters",
    "dense_layers": "dense_units",
}
# Entries that choose an option of a config group (conf/<group>/<value>.yaml).
GROUP_CHOICES = ("optimizer", "regularization")
SHARED_ENTRIES = (
    "batch_norm",
    "regularization",
    "regularization_strength",
    "optimizer",
    "learning_rate",
)


def _sampling(entry: DictConfig) -> str:
    return "log" if entry.get("log") else "linear"


# Search-space entry types -> keras-tuner hyperparameters.
HYPERPARAMETERS = {
    "int": lambda hp, name, e, **when: hp.Int(
        name, e.min, e.max, step=e.get("step"), sampling=_sampling(e), **when
    ),
    "float": lambda hp, name, e, **when: hp.Float(
        name, e.min, e.max, step=e.get("step"), sampling=_sampling(e), **when
    ),
    "choice": lambda hp, name, e, **when: hp.Choice(name, list(e["values"]), **when),
    "bool": lambda hp, name, e, **when: hp.Boolean(name, **when),
    "fixed": lambda hp, name, e, **when: hp.Fixed(name, e.value, **when),
}


def _declare(hp: kt.HyperParameters, where: str, name: str, entry: DictConfig, **when) -> None:
    try:
        HYPERPARAMETERS[entry.type](hp, name, entry, **when)
    except (KeyError, ValueError, TypeError, OmegaConfBaseException) as error:
        kinds = ", ".join(HYPERPARAMETERS)
        raise ConfigError(
            f"{where}={OmegaConf.to_container(entry)}: {error!s} (an entry is "
            f"{{type: {kinds}}} with min and max (step, log), values or value)"
        ) from None


def _options(entry: DictConfig) -> list:
    """The values a choice or fixed entry allows."""
    return [entry.value] if entry.type == "fixed" else list(entry.get("values") or [])


def _count_range(cfg: DictConfig, count: str) -> tuple[int, int]:
    """The fewest and the most layers a layer-count entry allows."""
    entry = cfg.search_space[cfg.model.family].get(count)
    if entry is None:
        layers = len(cfg.model[LAYER_COUNTS[count]])
        return layers, layers
    values = [entry.min, entry.max] if entry.type == "int" else _options(entry)
    return int(min(values)), int(max(values))


def declare_space(hp: kt.HyperParameters, cfg: DictConfig) -> None:
    """Registers every hyperparameter of the model family's search space in ``hp``.

    The hyperparameters of layers beyond the fewest allowed are active only when their
    layer-count hyperparameter includes them, and the regularization strength only when a
    regularization other than none is chosen.

    Raises:
        ConfigError: for an unknown entry, an option no config group has, or an entry
            keras-tuner refuses.
    """
    family = cfg.model.family
    space, per_layer = cfg.search_space[family], PER_LAYER[family]
    counts = sorted({count for count, _ in per_layer.values()})
    unknown = set(space) - set(counts) - set(per_layer) - set(SHARED_ENTRIES)
    if unknown:
        known = ", ".join([*counts, *per_layer, *SHARED_ENTRIES])
        raise ConfigError(
            f"search_space.{family} has unknown entries {sorted(unknown)}; known: {known}"
        )
    for group in GROUP_CHOICES:
        entry = space.get(group)
        options = [] if entry is None else _options(entry)
        missing = [o for o in options if o not in group_options(group)]
        if missing:
            raise ConfigError(
                f"search_space.{family}.{group} names {missing}, which conf/{group}/ has no "
                "option for"
            )
    # Layer counts first: the per-layer entries depend on them.
    for name in [*counts, *SHARED_ENTRIES]:
        entry, when = space.get(name), {}
        if name == "regularization_strength" and space.get("regularization") is not None:
            chosen = [v for v in _options(space.regularization) if v != "none"]
            if not chosen:
                continue
            when = {"parent_name": "regularization", "parent_values": chosen}
        if entry is not None:
            _declare(hp, f"search_space.{family}.{name}", name, entry, **when)
    for name, (count, _) in per_layer.items():
        if space.get(name) is None:
            continue
        fewest, most = _count_range(cfg, count)
        for layer in range(1, most + 1):
            when = {}
            if layer > fewest:
                when = {"parent_name": count, "parent_values": list(range(layer, most + 1))}
            _declare(hp, f"search_space.{family}.{name}", f"{name}_{layer}", space[name], **when)


def plain(value: Any) -> Any:
    """A hyperparameter value as a YAML-friendly Python value; floats to 6 significant digits
    (so that a dropout of 0.30000000000000004 reads 0.3)."""
    value = value.item() if hasattr(value, "item") else value
    return float(f"{value:.6g}") if isinstance(value, float) else value


def _chosen_group(cfg: DictConfig, group: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The option a ``group`` entry chose, as its ``conf/`` file has it (``sgd`` comes with its
    momentum), or the run's own group when the entry is not searched."""
    if group in values:
        return OmegaConf.to_container(option_config(group, values[group]), enum_to_str=True)
    return OmegaConf.to_container(cfg[group], resolve=True, enum_to_str=True)


def hparams_fragment(cfg: DictConfig, values: Mapping[str, Any]) -> DictConfig:
    """The config groups that a trial's hyperparameter ``values`` stand for.

    Each group is complete, as it replaces the run's own (``config.apply_hparams``): ``model``
    always; ``dropout``, ``batch_norm``, ``regularization`` and ``optimizer`` when their
    entries are searched.
    """
    family = cfg.model.family
    space = cfg.search_space[family]
    values = {name: plain(value) for name, value in values.items()}
    model = OmegaConf.to_container(cfg.model, resolve=True, enum_to_str=True)
    fragment: dict[str, Any] = {"model": model}
    for name, (count, key) in PER_LAYER[family].items():
        if space.get(name) is not None:
            layers = values.get(count, len(cfg.model[LAYER_COUNTS[count]]))
            model[key] = [values[f"{name}_{layer}"] for layer in range(1, layers + 1)]
    if any(space.get(name) is not None for name in PER_LAYER[family] if name.endswith("dropout")):
        # Per-layer rates apply only with the dropout group on.
        fragment["dropout"] = {**OmegaConf.to_container(cfg.dropout), "enabled": True}
    if "batch_norm" in values:
        enabled = bool(values["batch_norm"])
        fragment["batch_norm"] = {**OmegaConf.to_container(cfg.batch_norm), "enabled": enabled}
    if {"regularization", "regularization_strength"} & values.keys():
        group = _chosen_group(cfg, "regularization", values)
        for weight in ("l1", "l2"):
            if "regularization_strength" in values and group["name"] in (weight, "l1_l2"):
                group[weight] = values["regularization_strength"]
        fragment["regularization"] = group
    if {"optimizer", "learning_rate"} & values.keys():
        group = _chosen_group(cfg, "optimizer", values)
        group["learning_rate"] = values.get("learning_rate", group["learning_rate"])
        fragment["optimizer"] = group
    return OmegaConf.create(fragment)
