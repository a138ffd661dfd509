"""The techniques a run chooses: one config group each, its options read from ``conf/``.

The options of a group are the YAML files in ``conf/<group>/``; nothing in Python lists them
again, so a new option is one new file.
"""

from __future__ import annotations

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
