"""The techniques a run chooses: one config group each, its options read from ``conf/``.

The options of a group are the YAML files in ``conf/<group>/``; nothing in Python lists them
again, so a new option is one new file.
"""

from __future__ import annotations

from collections.abc import Sequence

from emnist_bench import conf_folder

# The config groups a comparison is about, in the order tables and plots show them. A sweep
# variant changes one of them; each is a key of metrics.json (config.technique_choices).
TECHNIQUE_GROUPS = (
    "lr_schedule", "activation", "optimizer", "batch_norm", "regularization", "dropout",
)  # fmt: skip
# The groups a user picks on the command line, as ``--help`` lists them.
# The groups a user picks on the command line; the last two are added with a ``+``.
USER_GROUPS = (
    "model", *TECHNIQUE_GROUPS, "augment", "data", "tuner", "logger", "debug", "experiment",
    "sweep",
)  # fmt: skip
# The variant (and summary row) that changes no technique: a model's reference run.
BASE = "base"
# The assignment's minimum architectures.
MIN_MLP_HIDDEN_LAYERS = 3
MIN_CNN_CONV_BLOCKS = 2


def options(group: str) -> list[str]:
    """Every option of a config group: the names of the YAML files in ``conf/<group>/``."""
    return sorted(path.stem for path in (conf_folder() / group).glob("*.yaml"))


def pooled_blocks(blocks: int, pool_every: int, pool_after: Sequence[int] | None) -> set[int]:
    """The CNN conv blocks (numbered from 1) that a pooling layer follows: those of
    ``model.pool_after``, else every ``pool_every``-th (the model builds it, the config check
    follows the map sizes through it)."""
    if pool_after is None:
        pool_after = range(pool_every, blocks + 1, pool_every)
    pool_after = set(pool_after)
    if not pool_after <= set(range(1, blocks + 1)):
        raise ValueError(f"pool_after must number blocks 1..{blocks}, got {sorted(pool_after)}")
    return pool_after
