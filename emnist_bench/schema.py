"""The config's schema: a dataclass per group (or per option), registered in Hydra's ConfigStore.

Each option file names its schema first in its defaults list (``- /schema/trainer@_here_``,
``- /schema/optimizer/sgd@_here_``), so Hydra checks every value as it composes: a wrong type
(``trainer.epochs=abc``), a misspelt key (``trainer.epoch=3``) or an unknown name
(``optimizer.name=adamm``, ``activation.name=rellu``) stops with OmegaConf's own message before
any code runs. ``???`` (``MISSING``) marks values an option file must give.

Names are Enums, since OmegaConf 2.3 has no ``Literal``. Where they come from is the trade-off
between "a new option is one new YAML file" and a closed list:

- ``optimizer``, ``activation``, ``regularization`` and ``augment`` names are whatever the option
  files in ``conf/<group>/`` call themselves (their ``name:``), read when this module is imported
  (a few milliseconds): the builders pass them on to Keras, so a new one
  (``conf/optimizer/lion.yaml``) is one file, and a name no file uses is refused even where
  Keras knows it (``optimizer.name=adamax``: add the file).
- ``lr_schedule`` and ``tuner`` names are listed here: each needs code (a schedule function, a
  tuner class), and tests check these lists against that code. Model families, pooling,
  precisions, class weightings and EMNIST splits are fixed sets too.

Keys an option adds to its group's shared keys (sgd's ``momentum``, a schedule's ``drop``) need
a dataclass of their own, here, because their types are what a schema is for; an option with
only the shared keys names its group's ``base`` schema and needs no Python. Shared keys of a
group whose options extend each other (``tuner``) are ``???`` in the schema, so that merging an
option's schema never overwrites a value an extended file gave.

Ranges (``trainer.epochs >= 0``) are field metadata (``fields.bounded``), checked by
``config.check_ranges`` when ``config.validate`` runs, as OmegaConf has no range checks.
"""

from dataclasses import dataclass, field
from functools import cache
from typing import Any

import yaml
from omegaconf import MISSING, DictConfig

from emnist_bench import conf_folder
from emnist_bench.fields import Choice, bounded
from emnist_bench.techniques import MIN_CNN_CONV_BLOCKS, MIN_MLP_HIDDEN_LAYERS


def choices(enum_name: str, names: list[str] | tuple[str, ...]) -> type[Choice]:
    """An Enum of ``names`` (OmegaConf converts a string by member name, so name == value),
    made a member of this module so that a pickled config (joblib's jobs) finds its class."""
    return Choice(enum_name, {name: name for name in names}, module=__name__, qualname=enum_name)


def _named_in(group: str) -> list[str]:
    """The ``name:`` of each option file in ``conf/<group>/`` (files that extend another may
    leave it out)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    names = set()
    for path in (conf_folder() / group).glob("*.yaml"):
        names.add((yaml.load(path.read_text(), Loader=loader) or {}).get("name"))
    return sorted(str(name) for name in names if name is not None)


OptimizerName = choices("OptimizerName", _named_in("optimizer"))
ActivationName = choices("ActivationName", _named_in("activation"))
RegularizationName = choices("RegularizationName", _named_in("regularization"))
AugmentName = choices("AugmentName", _named_in("augment"))
LoggerName = choices("LoggerName", _named_in("logger"))
DebugName = choices("DebugName", ("fast", "overfit", "profile"))
LrScheduleName = choices(
    "LrScheduleName",
    ("constant", "reduce_on_plateau", "step_decay", "exponential", "cosine", "one_cycle"),
)
TunerName = choices("TunerName", ("none", "random", "bayesian", "hyperband"))
ModelFamily = choices("ModelFamily", ("mlp", "cnn"))
Pooling = choices("Pooling", ("max", "average", "none"))
Padding = choices("Padding", ("same", "valid"))
Precision = choices("Precision", ("auto", "float32", "mixed_bfloat16", "mixed_float16"))
# What a run logs each epoch, and so what early stopping and ReduceLROnPlateau can watch.
Monitor = choices("Monitor", ("val_accuracy", "val_loss", "accuracy", "loss"))
ClassWeighting = choices("ClassWeighting", ("balanced", "logit_adjusted"))
EmnistSplit = choices(
    "EmnistSplit", ("balanced", "byclass", "bymerge", "letters", "digits", "mnist")
)


@dataclass
class DataSchema:
    split: EmnistSplit = MISSING
    root: str = MISSING
    # A count (int) or a fraction in (0, 1) (float): checked by data.split.validation_split.
    val_size: Any = 10_000
    subset: int | None = bounded(None, ge=1, why="images per class, or null: every image")
    # A folder, null for the user's cache folder, or false for no cache.
    cache_dir: Any = None
    class_weight: ClassWeighting | None = None
    download: bool = True
    urls: list[str] = field(default_factory=list)
    md5: str | None = None


@dataclass
class EarlyStoppingSchema:
    enabled: bool = True
    monitor: Monitor = Monitor.val_accuracy
    patience: int = bounded(5, ge=0)
    restore_best_weights: bool = True


@dataclass
class DivergenceSchema:
    loss_factor: float | None = bounded(100.0, gt=1, why="or null: off")
    chance_epochs: int | None = bounded(3, ge=1, why="or null: off")


@dataclass
class TrainerSchema:
    epochs: int = bounded(ge=0)
    batch_size: int = bounded(ge=1)
    seed: int = MISSING
    deterministic: bool = False
    early_stopping: EarlyStoppingSchema = field(default_factory=EarlyStoppingSchema)
    divergence: DivergenceSchema = field(default_factory=DivergenceSchema)
    steps_per_execution: int = bounded(1, ge=1)
    jit_compile: bool = False
    precision: Precision = Precision.auto
    label_smoothing: float = bounded(0.0, ge=0, lt=1, why="0: hard labels")
    sample_grid: int = bounded(36, ge=1)
    intra_op_threads: int | None = bounded(None, ge=1, why="or null: TensorFlow's default")
    inter_op_threads: int | None = bounded(None, ge=1, why="or null: TensorFlow's default")
    strategy: str | None = None
    callbacks: list[Any] = field(default_factory=list)


@dataclass
class DropoutSchema:
    enabled: bool = MISSING
    rate: float = bounded(ge=0, lt=1)


@dataclass
class BatchNormSchema:
    enabled: bool = MISSING
    momentum: float = bounded(0.99, ge=0, lt=1)


@dataclass
class RegularizationSchema:
    name: RegularizationName = MISSING
    l1: float = bounded(0.0, ge=0)
    l2: float = bounded(0.0, ge=0)


@dataclass
class AugmentSchema:
    name: AugmentName = MISSING
    enabled: bool = MISSING
    rotation: float = bounded(0.0, ge=0, lt=180, why="degrees either way")
    shift: float = bounded(0.0, ge=0, lt=1, why="a fraction of the side")
    zoom: float = bounded(0.0, ge=0, lt=1, why="a fraction of the side")


@dataclass
class LoggerSchema:
    name: LoggerName = MISSING
    # null: $MLFLOW_TRACKING_URI, else sqlite:///outputs/mlflow.db under the starting folder.
    tracking_uri: str | None = None
    experiment: str = "emnist_bench"
    log_model: bool = False


@dataclass
class DebugSchema:
    name: DebugName = MISSING
    limit_batches: int = bounded(3, ge=1)
    overfit_batches: int | None = bounded(None, ge=1)
    overfit_loss: float = bounded(0.1, gt=0)
    profile_steps: list[int] | None = None


RATE = {"ge": 0, "lt": 1}
MEMBERS = "1: one network, 2 or more: an ensemble of that many"
CROP = {
    "ge": 0,
    "lt": 10,
    "why": "pixels cut from each side of the 28x28 image; 2 loses almost no ink",
}


@dataclass
class MLPSchema:
    family: ModelFamily = ModelFamily.mlp
    name: str = MISSING
    hidden_units: list[int] = bounded(
        ge=1,
        min_len=MIN_MLP_HIDDEN_LAYERS,
        why=f"an MLP needs at least {MIN_MLP_HIDDEN_LAYERS} hidden layers "
        "(e.g. model.hidden_units=[256,128,64])",
    )
    # Per-layer overrides (one entry per hidden layer); null = the technique groups' values.
    activations: list[ActivationName] | None = None
    dropout_rates: list[float] | None = bounded(None, **RATE)
    members: int = bounded(1, ge=1, why=MEMBERS)
    crop: int = bounded(0, **CROP)


@dataclass
class CNNSchema:
    family: ModelFamily = ModelFamily.cnn
    name: str = MISSING
    conv_filters: list[int] = bounded(
        ge=1,
        min_len=MIN_CNN_CONV_BLOCKS,
        why=f"a CNN needs at least {MIN_CNN_CONV_BLOCKS} conv blocks "
        "(e.g. model.conv_filters=[32,64])",
    )
    # One size for every block, or one per block.
    kernel_size: Any = bounded(3, ge=1)
    padding: Padding = Padding.same
    pooling: Pooling = Pooling.max
    pool_size: int = bounded(2, ge=1)
    pool_every: int = bounded(1, ge=1)
    pool_after: list[int] | None = None
    pool_first: bool = False
    dense_units: list[int] = bounded(ge=1)
    conv_activations: list[ActivationName] | None = None
    conv_dropout_rates: list[float] | None = bounded(None, **RATE)
    dense_activations: list[ActivationName] | None = None
    dense_dropout_rates: list[float] | None = bounded(None, **RATE)
    members: int = bounded(1, ge=1, why=MEMBERS)
    crop: int = bounded(0, **CROP)


@dataclass
class OptimizerSchema:
    """Shared by every optimizer; the other keys are its Keras constructor's arguments."""

    name: OptimizerName = MISSING
    learning_rate: float = bounded(gt=0)
    # Keras decays with any optimizer: a preset's decay holds for the one swapped in for its own.
    weight_decay: float | None = bounded(None, ge=0, why="or null: none")


@dataclass
class SGDSchema(OptimizerSchema):
    momentum: float = bounded(ge=0, lt=1)
    nesterov: bool = MISSING


@dataclass
class RhoSchema(OptimizerSchema):
    """RMSprop and Adadelta: ``rho`` weighs the running average of squared gradients."""

    rho: float = bounded(ge=0, lt=1)


@dataclass
class AdamWSchema(OptimizerSchema):
    weight_decay: float = bounded(ge=0)  # a number: Keras's AdamW refuses null


@dataclass
class ActivationSchema:
    name: ActivationName = MISSING


@dataclass
class LeakyReLUSchema(ActivationSchema):
    negative_slope: float = MISSING


@dataclass
class LrScheduleSchema:
    """Shared by every schedule (``constant`` has nothing else)."""

    name: LrScheduleName = MISSING


@dataclass
class StepDecaySchema(LrScheduleSchema):
    drop: float = bounded(gt=0, why="the factor the rate is multiplied by, e.g. 0.5")
    every: int = bounded(ge=1)


@dataclass
class ExponentialSchema(LrScheduleSchema):
    decay_rate: float = bounded(gt=0)


@dataclass
class CosineSchema(LrScheduleSchema):
    warmup_epochs: int = bounded(ge=0)
    min_fraction: float = bounded(ge=0)


@dataclass
class OneCycleSchema(LrScheduleSchema):
    max_factor: float = bounded(gt=0)
    warmup_fraction: float = bounded(ge=0, lt=1, why="the share of the epochs spent rising")
    final_div: float = bounded(gt=0)


@dataclass
class ReduceOnPlateauSchema(LrScheduleSchema):
    monitor: Monitor = MISSING
    factor: float = bounded(gt=0, lt=1)
    patience: int = bounded(ge=0)
    min_lr: float = bounded(ge=0)


@dataclass
class TunerEarlyStoppingSchema:
    enabled: bool = MISSING
    patience: int = MISSING


@dataclass
class TunerDistributedSchema:
    heartbeat: float = MISSING
    worker_timeout: float = MISSING
    chief_timeout: float = MISSING


@dataclass
class TunerSchema:
    """The keys every tuner shares (``conf/tuner/none.yaml`` gives their values); the keys a
    subclass adds are that keras-tuner tuner's own arguments."""

    name: TunerName = MISSING
    max_trials: int = bounded(ge=1)
    epochs: int = bounded(ge=1)
    objective: Monitor = MISSING
    executions_per_trial: int = bounded(ge=1)
    max_retries_per_trial: int = bounded(ge=0)
    max_consecutive_failed_trials: int | None = bounded(ge=1, why="or null: no limit")
    early_stopping: TunerEarlyStoppingSchema = field(default_factory=TunerEarlyStoppingSchema)
    seed: int = MISSING
    overwrite: bool = MISSING
    distributed: TunerDistributedSchema = field(default_factory=TunerDistributedSchema)


@dataclass
class BayesianSchema(TunerSchema):
    num_initial_points: int | None = bounded(ge=1, why="or null: keras-tuner's default")
    alpha: float = bounded(ge=0)
    beta: float = bounded(ge=0)


@dataclass
class HyperbandSchema(TunerSchema):
    max_epochs: int = bounded(ge=1)
    factor: int = bounded(ge=2, why="the models divided and the epochs multiplied each round")
    hyperband_iterations: int | None = bounded(ge=1, why="or null: as many as max_trials allows")


# The ConfigStore path under schema/ -> the dataclass. A group whose keys differ by option has
# one schema per name, keyed by the name it serves (apply_hparams finds it so), and ``base``.
SCHEMAS = {
    "data": DataSchema,
    "trainer": TrainerSchema,
    "dropout": DropoutSchema,
    "batch_norm": BatchNormSchema,
    "regularization": RegularizationSchema,
    "augment": AugmentSchema,
    "logger": LoggerSchema,
    "debug": DebugSchema,
    "model/mlp": MLPSchema,
    "model/cnn": CNNSchema,
    "optimizer/base": OptimizerSchema,
    "optimizer/sgd": SGDSchema,
    "optimizer/rmsprop": RhoSchema,
    "optimizer/adadelta": RhoSchema,
    "optimizer/adamw": AdamWSchema,
    "activation/base": ActivationSchema,
    "activation/leaky_relu": LeakyReLUSchema,
    "lr_schedule/base": LrScheduleSchema,
    "lr_schedule/step_decay": StepDecaySchema,
    "lr_schedule/exponential": ExponentialSchema,
    "lr_schedule/cosine": CosineSchema,
    "lr_schedule/one_cycle": OneCycleSchema,
    "lr_schedule/reduce_on_plateau": ReduceOnPlateauSchema,
    "tuner/base": TunerSchema,
    "tuner/bayesian": BayesianSchema,
    "tuner/hyperband": HyperbandSchema,
}


def schema_for(group: str, values: DictConfig | dict) -> type | None:
    """The schema of ``values`` as group ``group``: the group's own, else the one its ``family``
    (model) or ``name`` selects, else the group's ``base``; None for a group without one."""
    if group in SCHEMAS:
        return SCHEMAS[group]
    key = values.get("family" if group == "model" else "name")
    return SCHEMAS.get(f"{group}/{key}") or SCHEMAS.get(f"{group}/base")


@cache
def register() -> None:
    """Stores each schema as ``schema/<name>`` in Hydra's ConfigStore (once per process)."""
    from hydra.core.config_store import ConfigStore  # here: --help reads the schemas only

    store = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        group, _, option = f"schema/{name}".rpartition("/")
        store.store(group=group, name=option, node=schema)
