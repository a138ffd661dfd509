"""From the composed Hydra config to plain arguments, with the checks a user's values need.

Names, types and keys are the schema's job (``emnist_bench.schema``, checked as Hydra
composes); here are the ranges the schemas declare and the checks across keys. Nothing here
imports TensorFlow: a bad value stops a run before any heavy import.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from emnist_bench import conf_folder
from emnist_bench.errors import ConfigError, reason
from emnist_bench.fields import field_defaults
from emnist_bench.schema import SCHEMAS, schema_for
from emnist_bench.techniques import pooled_blocks

# The groups a search chooses (``tuning.space.hparams_fragment``): all an hparams_file may set.
HPARAMS_GROUPS = ("model", "dropout", "batch_norm", "regularization", "optimizer")
# The penalties each built-in regularization option leaves out: a value set for one of them
# would train a model that the option's name (and every report) misdescribes.
UNUSED_PENALTIES = {"none": ("l1", "l2"), "l1": ("l2",), "l2": ("l1",)}
# Per-layer lists of a model family -> the list whose length they follow.
PER_LAYER_LISTS = {
    "mlp": {"activations": "hidden_units", "dropout_rates": "hidden_units"},
    "cnn": {
        "conv_activations": "conv_filters",
        "conv_dropout_rates": "conv_filters",
        "dense_activations": "dense_units",
        "dense_dropout_rates": "dense_units",
    },
}


def validate(cfg: DictConfig) -> None:
    """Checks what composition cannot: the ranges the schemas declare and the checks across keys.

    Names and types were checked as Hydra composed ``cfg`` (``emnist_bench.schema``).

    Raises:
        ConfigError: naming the key, the value and what is expected.
    """
    check_ranges(cfg)
    _check_keys_fit_names(cfg)
    model = cfg.model
    for key, follows in PER_LAYER_LISTS[model.family].items():
        value, layers = model.get(key), len(model[follows])
        if value is not None and len(value) != layers:
            raise ConfigError(
                f"model.{key} has {len(value)} entries, expected {layers} (one per layer)"
            )
    pool_after = model.get("pool_after")
    blocks = len(model.get("conv_filters") or [])
    if pool_after is not None and not all(1 <= block <= blocks for block in pool_after):
        raise ConfigError(
            f"model.pool_after={list(pool_after)} must number conv blocks 1..{blocks} "
            "(pool after those blocks), or be null to pool every pool_every-th block"
        )
    if model.family == "cnn":
        _check_maps_fit_kernels(model)
    _check_watched_metrics_exist(cfg)
    name = cfg.regularization.name
    for penalty in UNUSED_PENALTIES.get(name, ()):
        if cfg.regularization[penalty] > 0:
            raise ConfigError(
                f"regularization.{penalty}={cfg.regularization[penalty]} has no place in "
                f"regularization={name}: choose regularization={penalty} or l1_l2"
            )
    if (cfg.get("logger") or {}).get("name", "none") != "none":
        from emnist_bench.tracking.store import import_mlflow

        import_mlflow()  # missing: one line naming the extra, before the run starts


def _check_watched_metrics_exist(cfg: DictConfig) -> None:
    """What a schedule or a search watches is logged: without validation images there is no
    ``val_*`` metric, and Keras would only warn while ReduceLROnPlateau never acts (early
    stopping, on by default, is left out on purpose in such a run instead)."""
    if cfg.data.get("val_size") != 0:
        return
    watched = {"tuner.objective": cfg.tuner.objective if cfg.tuner.name != "none" else None}
    if cfg.lr_schedule.name == "reduce_on_plateau":
        watched["lr_schedule.monitor"] = cfg.lr_schedule.monitor
    for key, metric in watched.items():
        if metric is not None and str(metric).startswith("val_"):
            raise ConfigError(
                f"{key}={metric} needs validation images, but data.val_size=0; watch "
                f"{str(metric).removeprefix('val_')} or hold some out (data.val_size=0.1)"
            )


def _check_maps_fit_kernels(model: DictConfig) -> None:
    """Each convolution's kernel fits the map it gets: with ``padding=valid`` a map loses
    ``kernel_size - 1`` pixels a side at each convolution, and pooling (``same``) halves it, so a
    deep enough network would hand Keras an empty map (a traceback as the model is built)."""
    blocks = len(model.conv_filters)
    sizes = model.kernel_size
    if isinstance(sizes, ListConfig) and len(sizes) != blocks:
        raise ConfigError(
            f"model.kernel_size has {len(sizes)} entries, expected {blocks} (one per conv block)"
        )
    sizes = list(sizes) if isinstance(sizes, ListConfig) else [sizes] * blocks
    pooled = model.pooling != "none" and pooled_blocks(blocks, model.pool_every, model.pool_after)
    side = 28 - 2 * model.crop
    for number, kernel in enumerate(sizes, start=1):
        if model.padding == "valid":
            if side < kernel:
                raise ConfigError(
                    f"model: conv block {number} gets a {side}x{side} map, smaller than its "
                    f"{kernel}x{kernel} kernel (padding=valid trims each map by kernel_size - 1, "
                    "pooling halves it); use model.padding=same, fewer blocks or less pooling"
                )
            side -= kernel - 1
        if pooled and number in pooled:
            side = -(-side // model.pool_size)


def _check_keys_fit_names(cfg: DictConfig) -> None:
    """A group's keys are those of the schema its name selects: ``optimizer=sgd
    optimizer.name=adam`` would hand Adam sgd's ``momentum``."""
    for group in ("optimizer", "activation", "lr_schedule", "tuner"):
        node = cfg[group]
        if OmegaConf.get_type(node) is not schema_for(group, node):
            raise ConfigError(
                f"{group}.name={node.name} does not take the keys of this {group} option "
                f"({', '.join(map(str, node))}): choose {group}={node.name} instead"
            )


def check_ranges(node: DictConfig, where: str = "") -> None:
    """Checks every bounded field (``fields.bounded``) of each schema-typed group in ``node``.

    Raises:
        ConfigError: naming the key, the value and the bounds.
    """
    schema = OmegaConf.get_type(node)
    fields = dataclasses.fields(schema) if dataclasses.is_dataclass(schema) else ()
    bounds = {f.name: f.metadata for f in fields if f.metadata}
    for key in node:
        if OmegaConf.is_missing(node, key):
            continue
        if key in bounds:
            _check_field(f"{where}{key}", node[key], bounds[key])
        elif not OmegaConf.is_interpolation(node, key) and isinstance(node[key], DictConfig):
            check_ranges(node[key], f"{where}{key}.")


def _rule(bounds: dict[str, Any]) -> str:
    if {"ge", "lt"} <= bounds.keys():
        return f"in [{bounds['ge']}, {bounds['lt']})"
    signs = {"ge": ">=", "gt": ">", "lt": "<"}
    return " and ".join(f"{sign} {bounds[key]}" for key, sign in signs.items() if key in bounds)


def _out_of_bounds(value: Any, bounds: dict[str, Any]) -> bool:
    return (
        ("ge" in bounds and not value >= bounds["ge"])
        or ("gt" in bounds and not value > bounds["gt"])
        or ("lt" in bounds and not value < bounds["lt"])
    )


def _check_field(where: str, value: Any, bounds: dict[str, Any]) -> None:
    if not isinstance(value, ListConfig):
        if value is not None and _out_of_bounds(value, bounds):
            why = f" ({bounds['why']})" if bounds["why"] else ""
            raise ConfigError(f"{where}={value} must be {_rule(bounds)}{why}")
        return
    if len(value) < bounds.get("min_len", 0):
        why = bounds["why"] or f"at least {bounds['min_len']} are needed"
        raise ConfigError(f"{where} has {len(value)} entries; {why}")
    for item in value:
        if _out_of_bounds(item, bounds):
            raise ConfigError(f"{where} has {item}; each entry must be {_rule(bounds)}")


def option_config(group: str, option: str) -> DictConfig:
    """Option ``option`` of config group ``group`` as Hydra composes it into the group's node:
    its schema, the options it extends, then its own keys; interpolations are left as they are.

    For what needs one option without composing a whole config (``--help``, a search choosing an
    optimizer). It knows the defaults entries option files use: ``/schema/NAME@_here_``,
    another option of the group, ``_self_`` (last unless placed); tests compare every option
    with Hydra's composition.
    """
    node = OmegaConf.load(conf_folder() / group / f"{option}.yaml")
    defaults = list(node.pop("defaults", None) or [])
    if "_self_" not in defaults:
        defaults.append("_self_")
    parts = []
    for entry in defaults:
        if entry == "_self_":
            parts.append(node)
        elif str(entry).startswith("/schema/") and str(entry).endswith("@_here_"):
            name = entry.removeprefix("/schema/").removesuffix("@_here_")
            parts.append(OmegaConf.structured(SCHEMAS[name]))
        elif isinstance(entry, str) and "/" not in entry and "@" not in entry:
            parts.append(option_config(group, entry))
        else:
            raise ValueError(f"conf/{group}/{option}.yaml: defaults entry {entry!r} not supported")
    return OmegaConf.merge(*parts)


def apply_hparams(cfg: DictConfig, fragment: DictConfig) -> DictConfig:
    """``cfg`` with each group in ``fragment`` (a search's ``best_hparams.yaml``) replacing its own.

    Groups are replaced whole, not merged: an sgd run given rmsprop keeps no sgd ``momentum``.
    A group with a schema checks the values it is given against it, as composition would.

    Raises:
        omegaconf.errors.ValidationError: for a name, type or key its schema refuses.
    """
    applied = cfg.copy()
    for group, values in fragment.items():
        schema = schema_for(str(group), values)
        applied[group] = values if schema is None else OmegaConf.merge(schema, values)
    return applied


def with_hparams_file(cfg: DictConfig) -> DictConfig:
    """``cfg`` with the groups of ``hparams_file`` applied, if it names one.

    Raises:
        ConfigError: when the file is unreadable, or sets anything but the groups a search
            chooses (:data:`HPARAMS_GROUPS`): a file from elsewhere must not move the outputs
            (``output_dir``) or swap the data (``data.urls``).
    """
    path = cfg.get("hparams_file")
    if not path:
        return cfg
    try:
        fragment = OmegaConf.load(path)
        if not isinstance(fragment, DictConfig):
            raise ConfigError("it is not a mapping of config groups")
        refused = [str(key) for key in fragment if key not in HPARAMS_GROUPS]
        if refused:
            raise ConfigError(
                f"it sets {', '.join(refused)}, but a hparams file may set only the groups a "
                f"search chooses: {', '.join(HPARAMS_GROUPS)}"
            )
        for group, values in fragment.items():
            if not isinstance(values, DictConfig):
                raise ConfigError(f"{group} is {values!r}, not a group of keys")
        return apply_hparams(cfg, fragment)
    except (OSError, yaml.YAMLError, OmegaConfBaseException, ConfigError) as error:
        message = f"hparams_file={path}: {reason(error)} (give a search's best_hparams.yaml)"
        raise ConfigError(message) from None


def with_overrides(saved: DictConfig, overrides: list[str], usage: str) -> DictConfig:
    """A finished run's resolved config with ``key=value`` overrides (evaluate, export), each
    checked against its group's schema as composing would (name, type, range), and a group
    (``data=digits``) refused: a finished run's groups stay as it ran; only their keys change.

    Raises:
        ConfigError: naming the override and what is wrong with it.
    """
    merged = saved
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{item!r} is not key=value; {usage}")
        try:
            change = OmegaConf.from_dotlist([item])
            [group] = change
            if group not in saved:
                raise ConfigError(f"{group}: the run's config has no such key")
            node = saved[group]
            if isinstance(node, DictConfig) and not isinstance(change[group], DictConfig):
                keys = ", ".join(f"{group}.{key}=..." for key in list(node)[:3])
                raise ConfigError(f"{group} is a group of keys; set one of them ({keys})")
            merged = OmegaConf.merge(merged, change)
            schema = schema_for(str(group), merged[group]) if isinstance(node, DictConfig) else None
            # The keys given, typed as the schema says (their bounds are checked below).
            typed = OmegaConf.merge(OmegaConf.structured(schema), change[group]) if schema else None
        except (OmegaConfBaseException, ConfigError) as error:
            raise ConfigError(f"{item}: {reason(error)}") from None
        if typed is not None:
            check_ranges(typed, f"{group}.")
    return merged


def technique_choices(cfg: DictConfig) -> dict[str, Any]:
    """The technique chosen in each group, as reported in metrics.json and summaries."""
    return {
        "model": str(cfg.model.name),
        "family": str(cfg.model.family),
        "optimizer": str(cfg.optimizer.name),
        "learning_rate": float(cfg.optimizer.learning_rate),
        "activation": str(cfg.activation.name),
        "batch_norm": "on" if cfg.batch_norm.enabled else "off",
        "regularization": str(cfg.regularization.name),
        "dropout": "on" if cfg.dropout.enabled else "off",
        "lr_schedule": str(cfg.lr_schedule.name),
        "augment": str(cfg.augment.name),
        "batch_size": int(cfg.trainer.batch_size),
    }


def model_arguments(cfg: DictConfig, num_classes: int) -> dict[str, Any]:
    """Keyword arguments of :func:`emnist_bench.models.build_mlp` / ``build_cnn``."""
    model = cfg.model
    dropout = float(cfg.dropout.rate) if cfg.dropout.enabled else 0.0
    regularization = cfg.regularization

    def per_layer(key: str, default: Any, count: int) -> list:
        values = model.get(key)
        if values is None:
            return [default] * count
        if key.endswith("dropout_rates") and not cfg.dropout.enabled:
            return [0.0] * count
        return OmegaConf.to_container(values, enum_to_str=True)

    common = {
        "num_classes": num_classes,
        "batch_norm": bool(cfg.batch_norm.enabled),
        "bn_momentum": float(cfg.batch_norm.momentum),
        # As given: each option's file sets the penalties it leaves out to 0 (validate keeps
        # them there), and an option a user adds under conf/regularization works as written.
        "l1": float(regularization.l1),
        "l2": float(regularization.l2),
        "negative_slope": float(cfg.activation.get("negative_slope", 0.2)),
        "crop": int(model.get("crop") or 0),
        "name": str(model.name),
    }
    activation = str(cfg.activation.name)
    if model.family == "mlp":
        count = len(model.hidden_units)
        return common | {
            "hidden_units": list(model.hidden_units),
            "activations": per_layer("activations", activation, count),
            "dropout_rates": per_layer("dropout_rates", dropout, count),
        }
    blocks, dense = len(model.conv_filters), len(model.dense_units)
    kernel = model.kernel_size
    return common | {
        "conv_filters": list(model.conv_filters),
        "kernel_size": list(kernel) if OmegaConf.is_list(kernel) else int(kernel),
        "padding": str(model.padding),
        "pooling": str(model.pooling),
        "pool_size": int(model.pool_size),
        "pool_every": int(model.get("pool_every", 1)),
        "pool_after": None if model.get("pool_after") is None else list(model.pool_after),
        "pool_first": bool(model.get("pool_first", False)),
        "dense_units": list(model.dense_units),
        "conv_activations": per_layer("conv_activations", activation, blocks),
        "conv_dropout_rates": per_layer("conv_dropout_rates", dropout, blocks),
        "dense_activations": per_layer("dense_activations", activation, dense),
        "dense_dropout_rates": per_layer("dense_dropout_rates", dropout, dense),
    }


def optimizer_arguments(cfg: DictConfig) -> tuple[str, dict[str, Any]]:
    """The optimizer's name and its constructor keyword arguments."""
    options = OmegaConf.to_container(cfg.optimizer, resolve=True, enum_to_str=True)
    return options.pop("name"), options


def schedule_options(cfg: DictConfig) -> dict[str, Any]:
    options = OmegaConf.to_container(cfg.lr_schedule, resolve=True, enum_to_str=True)
    return {key: value for key, value in options.items() if key != "name"}


# Keys no run reads to compute: its logger, its folder's path, how a sweep listed its jobs.
NOT_COMPARED = ("logger", "output_dir", "grid", "continue_on_error", "notebook_report")


def same_run(saved: Any, cfg: DictConfig) -> bool:
    """Whether ``saved``, an earlier run's resolved ``config.yaml``, asks for what ``cfg`` does
    (:data:`NOT_COMPARED` aside, a missing key at its default, a null as no key): an upgrade
    re-runs no finished run and restarts no resumable one."""
    now = OmegaConf.to_container(cfg, resolve=True)
    return _comparable(with_defaults(saved)) == _comparable(now)


def _comparable(resolved: Any, skip: tuple[str, ...] = NOT_COMPARED) -> Any:
    if not isinstance(resolved, dict):
        return resolved
    return {k: _comparable(v, ()) for k, v in resolved.items() if k not in skip and v is not None}


def with_defaults(saved: Any) -> Any:
    """An earlier run's resolved config with each key its version lacked at the schema's default
    (a new key's default keeps the old behaviour: ``model.crop: 0``)."""
    if not isinstance(saved, dict):
        return saved
    schemas = {g: schema_for(g, v) for g, v in saved.items() if isinstance(v, dict)}
    return saved | {g: _merged(field_defaults(s), saved[g]) for g, s in schemas.items() if s}


def _merged(defaults: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    merged = defaults | values
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(defaults.get(key), dict):
            merged[key] = _merged(defaults[key], value)
    return merged
