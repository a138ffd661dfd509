"""From the composed Hydra config to plain arguments, with the checks a user's values need.

Types are the schema's job (``emnist_bench.schema``, checked as Hydra composes); here are the
ranges, the choices read from ``conf/`` and the checks across keys. Nothing here imports
TensorFlow: a bad value stops a run before any heavy import.
"""

from __future__ import annotations

from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from emnist_bench.errors import ConfigError
from emnist_bench.techniques import MIN_CNN_CONV_BLOCKS, MIN_MLP_HIDDEN_LAYERS, options

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
# The groups a search chooses (``tuning.space.hparams_fragment``): all an hparams_file may set.
HPARAMS_GROUPS = ("model", "dropout", "batch_norm", "regularization", "optimizer")
CLASS_WEIGHTINGS = (None, "balanced", "logit_adjusted")
# The penalties each built-in regularization option leaves out: a value set for one of them
# would train a model that the option's name (and every report) misdescribes.
UNUSED_PENALTIES = {"none": ("l1", "l2"), "l1": ("l2",), "l2": ("l1",)}


def _check_rate(value: float, where: str) -> None:
    if not 0 <= value < 1:
        raise ConfigError(f"{where}={value} must be a dropout rate in [0, 1)")


def _check_list(cfg: DictConfig, key: str, length: int) -> None:
    value = cfg.get(key)
    if value is not None and len(value) != length:
        raise ConfigError(
            f"model.{key} has {len(value)} entries, expected {length} (one per layer)"
        )


def _check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key}={value} must be one of {', '.join(map(str, choices))}")


def validate(cfg: DictConfig) -> None:
    """Checks the values a user may get wrong.

    Raises:
        ConfigError: naming the key, the value and what is expected.
    """
    trainer, model = cfg.trainer, cfg.model
    for key, minimum in (("epochs", 0), ("batch_size", 1)):
        if trainer[key] < minimum:
            raise ConfigError(f"trainer.{key}={trainer[key]} must be a whole number >= {minimum}")
    divergence = trainer.get("divergence") or {}
    if divergence.get("loss_factor") is not None and not divergence.loss_factor > 1:
        raise ConfigError(
            f"trainer.divergence.loss_factor={divergence.loss_factor} must be > 1 (or null: off)"
        )
    if divergence.get("chance_epochs") is not None and divergence.chance_epochs < 1:
        raise ConfigError(
            f"trainer.divergence.chance_epochs={divergence.chance_epochs} must be >= 1 (or null)"
        )
    if model.family == "mlp":
        layers = len(model.hidden_units)
        if layers < MIN_MLP_HIDDEN_LAYERS:
            raise ConfigError(
                f"model.hidden_units has {layers} hidden layers; an MLP needs at least "
                f"{MIN_MLP_HIDDEN_LAYERS} (e.g. model.hidden_units=[256,128,64])"
            )
        for key in ("activations", "dropout_rates"):
            _check_list(model, key, layers)
    elif model.family == "cnn":
        blocks = len(model.conv_filters)
        if blocks < MIN_CNN_CONV_BLOCKS:
            raise ConfigError(
                f"model.conv_filters has {blocks} conv layers; a CNN needs at least "
                f"{MIN_CNN_CONV_BLOCKS} (e.g. model.conv_filters=[32,64])"
            )
        for key in ("conv_activations", "conv_dropout_rates"):
            _check_list(model, key, blocks)
        for key in ("dense_activations", "dense_dropout_rates"):
            _check_list(model, key, len(model.dense_units))
        _check_choice("model.pooling", model.pooling, ("max", "average", "none"))
        if model.pool_every < 1:
            raise ConfigError(f"model.pool_every={model.pool_every} must be a whole number >= 1")
        pool_after = model.get("pool_after")
        if pool_after is not None and not all(1 <= block <= blocks for block in pool_after):
            raise ConfigError(
                f"model.pool_after={list(pool_after)} must number conv blocks 1..{blocks} "
                "(pool after those blocks), or be null to pool every pool_every-th block"
            )
    else:
        raise ConfigError(f"model.family={model.family} must be mlp or cnn")
    if model.get("members", 1) < 1:
        raise ConfigError(
            f"model.members={model.members} must be a whole number >= 1 (1: one network, "
            "2 or more: an ensemble of that many)"
        )
    if any(units < 1 for units in _all_units(model)):
        raise ConfigError("model layer sizes must be positive whole numbers")
    _check_rate(cfg.dropout.rate, "dropout.rate")
    for key in ("dropout_rates", "conv_dropout_rates", "dense_dropout_rates"):
        for rate in model.get(key) or []:
            _check_rate(rate, f"model.{key}")
    activations = tuple(options("activation"))
    for name in [cfg.activation.name, *_per_layer_activations(model)]:
        if name not in activations:
            raise ConfigError(
                f"activation {name!r} is unknown; choose one of {', '.join(activations)}"
            )
    _check_choice("optimizer.name", cfg.optimizer.name, tuple(options("optimizer")))
    if not cfg.optimizer.learning_rate > 0:
        raise ConfigError(f"optimizer.learning_rate={cfg.optimizer.learning_rate} must be > 0")
    _check_choice("regularization.name", cfg.regularization.name, tuple(options("regularization")))
    if cfg.regularization.l1 < 0 or cfg.regularization.l2 < 0:
        raise ConfigError("regularization.l1 and regularization.l2 must be >= 0")
    name = cfg.regularization.name
    for penalty in UNUSED_PENALTIES.get(name, ()):
        if cfg.regularization[penalty] > 0:
            raise ConfigError(
                f"regularization.{penalty}={cfg.regularization[penalty]} has no place in "
                f"regularization={name}: choose regularization={penalty} or l1_l2"
            )
    _check_choice("lr_schedule.name", cfg.lr_schedule.name, tuple(options("lr_schedule")))
    _check_choice("trainer.precision", cfg.trainer.get("precision") or "float32", PRECISIONS)
    if (cfg.get("logger") or {}).get("name", "none") != "none":
        from emnist_bench.tracking.store import import_mlflow

        import_mlflow()  # missing: one line naming the extra, before the run starts
    if cfg.data.get("class_weight") not in CLASS_WEIGHTINGS:
        raise ConfigError(
            f"data.class_weight={cfg.data.class_weight} must be null, balanced or logit_adjusted"
        )


def _all_units(model: DictConfig) -> list[int]:
    if model.family == "mlp":
        return list(model.hidden_units)
    return [*model.conv_filters, *model.dense_units]


def _per_layer_activations(model: DictConfig) -> list[str]:
    keys = ("activations", "conv_activations", "dense_activations")
    return [name for key in keys for name in (model.get(key) or [])]


def apply_hparams(cfg: DictConfig, fragment: DictConfig) -> DictConfig:
    """``cfg`` with each group in ``fragment`` (a search's ``best_hparams.yaml``) replacing its own.

    Groups are replaced whole, not merged: an sgd run given rmsprop keeps no sgd ``momentum``.
    A group with a schema checks the values it is given.
    """
    applied = cfg.copy()
    for group, values in fragment.items():
        applied[group] = values
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
        problem = str(error).splitlines()[0] if str(error).strip() else type(error).__name__
        message = f"hparams_file={path}: {problem} (give a search's best_hparams.yaml)"
        raise ConfigError(message) from None


def technique_choices(cfg: DictConfig) -> dict[str, Any]:
    """The technique chosen in each group, as reported in metrics.json and summaries."""
    return {
        "model": cfg.model.name,
        "family": cfg.model.family,
        "optimizer": cfg.optimizer.name,
        "learning_rate": float(cfg.optimizer.learning_rate),
        "activation": cfg.activation.name,
        "batch_norm": "on" if cfg.batch_norm.enabled else "off",
        "regularization": cfg.regularization.name,
        "dropout": "on" if cfg.dropout.enabled else "off",
        "lr_schedule": cfg.lr_schedule.name,
        "augment": cfg.augment.name,
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
        return list(values)

    common = {
        "num_classes": num_classes,
        "batch_norm": bool(cfg.batch_norm.enabled),
        "bn_momentum": float(cfg.batch_norm.momentum),
        # As given: each option's file sets the penalties it leaves out to 0 (validate keeps
        # them there), and an option a user adds under conf/regularization works as written.
        "l1": float(regularization.l1),
        "l2": float(regularization.l2),
        "negative_slope": float(cfg.activation.get("negative_slope", 0.2)),
        "name": model.name,
    }
    activation = cfg.activation.name
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
        "padding": model.padding,
        "pooling": model.pooling,
        "pool_size": int(model.pool_size),
        "pool_every": int(model.get("pool_every", 1)),
        "pool_after": None if model.get("pool_after") is None else list(model.pool_after),
        "dense_units": list(model.dense_units),
        "conv_activations": per_layer("conv_activations", activation, blocks),
        "conv_dropout_rates": per_layer("conv_dropout_rates", dropout, blocks),
        "dense_activations": per_layer("dense_activations", activation, dense),
        "dense_dropout_rates": per_layer("dense_dropout_rates", dropout, dense),
    }


def optimizer_arguments(cfg: DictConfig) -> tuple[str, dict[str, Any]]:
    """The optimizer's name and its constructor keyword arguments."""
    options = OmegaConf.to_container(cfg.optimizer, resolve=True)
    return options.pop("name"), options


def schedule_options(cfg: DictConfig) -> dict[str, Any]:
    options = OmegaConf.to_container(cfg.lr_schedule, resolve=True)
    options.pop("name")
    return options
