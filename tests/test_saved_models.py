"""Every kind of run saves a ``model.keras`` that plain Keras loads, compiled, in a process
that never imports emnist_bench, and that predicts there what the run scored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from emnist_bench.rundir import CONFIG, MODEL, PREDICTIONS, read_predictions
from tests.configs import compose_config, smoke_overrides

CONV = ("model=cnn", "model.conv_filters=[4,8]", "model.dense_units=[16]")
MLP = ("model=mlp", "model.hidden_units=[16,12,8]")
# Each kind of model a run can save, with the techniques that reach the file (the loss, the
# optimizer's state) or could (the learning-rate schedules, which stay in callbacks).
RUNS = {
    "mlp_logit_adjusted_smoothed": (
        *MLP,
        "data.class_weight=logit_adjusted",
        "trainer.label_smoothing=0.1",
        "lr_schedule=cosine",
        "dropout=on",
        "model.crop=2",
    ),
    "cnn": (*CONV, "lr_schedule=one_cycle", "regularization=l2", "model.crop=2"),
    "cnn_batch_norm": (*CONV, "batch_norm=on", "lr_schedule=step_decay", "optimizer=rmsprop"),
    "cnn_ensemble": (
        *CONV,
        "batch_norm=on",
        "model.members=3",  # augmentation shared by three members made a file Keras refused
        "augment=light",
        "lr_schedule=reduce_on_plateau",
        "data.class_weight=logit_adjusted",
    ),
}
BATCH = 64  # smoke_overrides' batch: the run predicted its test split in batches of this size

# Imports Keras alone: a class of emnist_bench left in a file fails to load here.
PLAIN_KERAS = textwrap.dedent(
    """
    import json, sys

    import keras
    import numpy as np

    images = np.load(sys.argv[1])
    found = {}
    for path in sys.argv[2:]:
        model = keras.saving.load_model(path)
        found[path] = {
            "predicted": model.predict(images, batch_size=int(BATCH), verbose=0)
            .argmax(axis=1)
            .tolist(),
            "loss": type(model.loss).__name__,
            "optimizer_steps": int(model.optimizer.iterations),
        }
    found["emnist_bench_imported"] = any(name.startswith("emnist_bench") for name in sys.modules)
    print(json.dumps(found))
    """
).replace("BATCH", str(BATCH))

# Trains a run of each kind and loads them in a fresh Python (make test-all); the default
# suite checks the same Keras-only saved form in tests/test_models.py.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory) -> dict[str, Path]:
    """One tiny run (188 random images, 1 epoch) of each kind in ``RUNS``: kind -> folder."""
    from emnist_bench.run import run
    from tests.emnist_files import write_tiny_split

    root = tmp_path_factory.mktemp("tiny-emnist")
    write_tiny_split(root, per_class=4, layout="idx")
    cache = tmp_path_factory.mktemp("tiny-cache")
    folders = {}
    for kind, overrides in RUNS.items():
        folders[kind] = tmp_path_factory.mktemp(kind)
        tiny = smoke_overrides(root, cache, "data.val_size=47", *overrides)  # one per class
        metrics = run(compose_config(tiny, folders[kind]))
        assert metrics["status"] == "completed", metrics
    return folders


@pytest.fixture(scope="module")
def loaded_in_plain_keras(tiny_runs, tmp_path_factory) -> dict:
    """What a process that imports only Keras makes of every run's model file."""
    from omegaconf import OmegaConf

    from emnist_bench.data import load_dataset

    saved = OmegaConf.load(next(iter(tiny_runs.values())) / CONFIG)  # data: the same in all
    data = load_dataset(saved.data, seed=int(saved.trainer.seed))
    work = tmp_path_factory.mktemp("plain-keras")
    np.save(work / "images.npy", data.x_test)
    paths = [str(folder / MODEL) for folder in tiny_runs.values()]
    done = subprocess.run(
        [sys.executable, "-c", PLAIN_KERAS, str(work / "images.npy"), *paths],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=work,  # not the repository: nothing of it is importable by accident
        env={**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return {"found": found, "true": data.y_test}


def test_plain_keras_never_imported_emnist_bench(loaded_in_plain_keras):
    assert loaded_in_plain_keras["found"]["emnist_bench_imported"] is False


@pytest.mark.parametrize("kind", RUNS)
def test_plain_keras_predicts_what_the_run_scored(tiny_runs, loaded_in_plain_keras, kind):
    true, predicted = read_predictions(tiny_runs[kind] / PREDICTIONS)
    np.testing.assert_array_equal(true, loaded_in_plain_keras["true"])  # the same images
    loaded = loaded_in_plain_keras["found"][str(tiny_runs[kind] / MODEL)]
    np.testing.assert_array_equal(np.asarray(loaded["predicted"]), predicted)
    assert loaded["optimizer_steps"] > 0  # the trained optimizer's state came along


def test_the_run_s_own_loader_reads_the_file(tiny_runs):
    from emnist_bench.models import load_model

    model = load_model(tiny_runs["cnn_ensemble"] / MODEL)
    members = [layer for layer in model.layers if hasattr(layer, "layers")]
    assert len(members) == 3 and model.output_shape == (None, 47)
