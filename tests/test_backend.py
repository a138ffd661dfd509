"""Importing TensorFlow through emnist_bench.backend: quiet, except where the user asks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Seven new models each predict once in one process, as the jobs of a sweep or the trials of a
# search do; TensorFlow warns from the sixth.
NEW_MODELS = """
import logging
from emnist_bench.backend import import_tensorflow

import_tensorflow()
import keras
import numpy as np

messages = []
handler = logging.Handler()
handler.emit = lambda record: messages.append(record.getMessage())
logging.getLogger("tensorflow").addHandler(handler)
for _ in range(7):
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(3)])
    model.predict(np.zeros((4, 28, 28), np.uint8), verbose=0)
print(sum("retracing" in message for message in messages))
"""


def _retracing_warnings(log_level: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if log_level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = log_level
    done = subprocess.run(
        [sys.executable, "-c", NEW_MODELS],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


@pytest.mark.parametrize(("log_level", "quiet"), [(None, True), ("1", False)])
def test_new_models_retracing_warns_only_when_the_user_asks_for_tensorflow_logs(log_level, quiet):
    warnings = _retracing_warnings(log_level)
    assert (warnings == 0) if quiet else (warnings > 0)
