"""The config's schema: a dataclass per group with fixed keys, registered in Hydra's ConfigStore.

Each group's YAML files name their schema first in their defaults list
(``- /schema/trainer@_here_``), so Hydra checks every value's type as it composes:
``trainer.epochs=abc`` or a misspelt key stops before any code runs. ``???`` (``MISSING``)
marks values an option file must give. Ranges and checks across keys stay in
``config.validate``. Groups whose keys differ from option to option (optimizer, lr_schedule,
activation, tuner) have no schema; their option files are the whole contract.
"""

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class DataSchema:
    split: str = MISSING
    root: str = MISSING
    # A count (int) or a fraction in (0, 1) (float): checked by data.split.validation_split.
    val_size: Any = 10_000
    subset: int | None = None
    # A folder, null for the user's cache folder, or false for no cache.
    cache_dir: Any = None
    class_weight: str | None = None
    download: bool = True
    urls: list[str] = field(default_factory=list)
    md5: str | None = None


@dataclass
class EarlyStoppingSchema:
    enabled: bool = True
    monitor: str = "val_accuracy"
    patience: int = 5
    restore_best_weights: bool = True


@dataclass
class DivergenceSchema:
    loss_factor: float | None = 100.0
    chance_epochs: int | None = 3


@dataclass
class TrainerSchema:
    epochs: int = MISSING
    batch_size: int = MISSING
    seed: int = MISSING
    deterministic: bool = False
    early_stopping: EarlyStoppingSchema = field(default_factory=EarlyStoppingSchema)
    divergence: DivergenceSchema = field(default_factory=DivergenceSchema)
    steps_per_execution: int = 1
    jit_compile: bool = False
    precision: str = "auto"
    label_smoothing: float = 0.0
    sample_grid: int = 36
    intra_op_threads: int | None = None
    inter_op_threads: int | None = None
    strategy: str | None = None
    callbacks: list[Any] = field(default_factory=list)


@dataclass
class DropoutSchema:
    enabled: bool = MISSING
    rate: float = MISSING


@dataclass
class BatchNormSchema:
    enabled: bool = MISSING
    momentum: float = 0.99


@dataclass
class RegularizationSchema:
    name: str = MISSING
    l1: float = 0.0
    l2: float = 0.0


@dataclass
class AugmentSchema:
    name: str = MISSING
    enabled: bool = MISSING
    rotation: float = 0.0  # degrees
    shift: float = 0.0  # fraction of the side
    zoom: float = 0.0  # fraction of the side


@dataclass
class MLPSchema:
    family: str = "mlp"
    name: str = MISSING
    hidden_units: list[int] = MISSING
    # Per-layer overrides (one entry per hidden layer); null = the technique groups' values.
    activations: list[str] | None = None
    dropout_rates: list[float] | None = None
    members: int = 1


@dataclass
class CNNSchema:
    family: str = "cnn"
    name: str = MISSING
    conv_filters: list[int] = MISSING
    # One size for every block, or one per block.
    kernel_size: Any = 3
    padding: str = "same"
    pooling: str = "max"
    pool_size: int = 2
    pool_every: int = 1
    pool_after: list[int] | None = None
    dense_units: list[int] = MISSING
    conv_activations: list[str] | None = None
    conv_dropout_rates: list[float] | None = None
    dense_activations: list[str] | None = None
    dense_dropout_rates: list[float] | None = None
    members: int = 1


SCHEMAS = {
    "data": DataSchema,
    "trainer": TrainerSchema,
    "dropout": DropoutSchema,
    "batch_norm": BatchNormSchema,
    "regularization": RegularizationSchema,
    "augment": AugmentSchema,
    "model/mlp": MLPSchema,
    "model/cnn": CNNSchema,
}


@cache
def register() -> None:
    """Stores each schema as ``schema/<name>`` in Hydra's ConfigStore (once per process)."""
    store = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        group, _, option = f"schema/{name}".rpartition("/")
        store.store(group=group, name=option, node=schema)
