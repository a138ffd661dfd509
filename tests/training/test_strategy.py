"""``trainer.strategy: mirrored`` (tf.distribute): one run spread over the local devices.

Without GPUs, the test gives TensorFlow two logical CPU devices; that must happen before
TensorFlow initialises, so the run happens in a fresh process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from emnist_bench.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]

TWO_DEVICES = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    made = []

    class Recorded(tf.distribute.MirroredStrategy):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    tf.distribute.MirroredStrategy = Recorded

    from emnist_bench.run import run
    from tests.configs import compose_config, smoke_overrides

    data, cache, out = map(Path, sys.argv[1:4])
    extra = ("model=cnn", "trainer.strategy=mirrored", "trainer.sample_grid=4")
    # Every training image: with 5 per class, the 47 validation images split 24/23 over the two
    # devices, and Keras's evaluate under MirroredStrategy fails on a batch that splits unevenly.
    metrics = run(compose_config(smoke_overrides(data, cache, *extra, subset=None), out))
    print(json.dumps({
        "devices": [list(strategy.extended.worker_devices) for strategy in made],
        "status": metrics["status"],
        "test_accuracy": metrics["test_accuracy"],
    }))
    """
)


@pytest.mark.slow
def test_mirrored_spreads_one_run_over_two_devices(smoke_data, proxy_cache, tmp_path):
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-c", TWO_DEVICES, str(smoke_data), str(proxy_cache), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        env={**os.environ, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # One strategy, over both devices: each batch is split in two, the gradients averaged.
    assert [[device.rsplit("/", 1)[-1] for device in devices] for devices in result["devices"]] == [
        ["device:CPU:0", "device:CPU:1"]
    ]
    assert result["status"] == "completed" and result["test_accuracy"] > 1 / 47
    assert json.loads((out / "metrics.json").read_text())["status"] == "completed"
    assert (out / "model.keras").is_file()


def test_an_unknown_strategy_is_one_config_error():
    from emnist_bench.training.runtime import distribution_scope

    with pytest.raises(ConfigError, match="trainer.strategy=parameter_server must be null or"):
        distribution_scope("parameter_server")
    with distribution_scope(None):
        pass  # one device: nothing to set up


@pytest.mark.parametrize(
    ("images", "batch_size", "replicas", "fits"),
    [
        (47, 64, 2, False),
        (46, 64, 2, True),
        (47, 64, 1, True),
        (0, 64, 2, True),
        (130, 64, 4, False),
    ],
)
def test_a_validation_batch_the_devices_cannot_share_is_refused_before_training(
    images, batch_size, replicas, fits
):
    """Keras's evaluation under MirroredStrategy fails on a batch that does not split evenly
    (tests/training/test_strategy.py's run hit it with 47 validation images on 2 devices), so
    the run refuses it before the first epoch, naming a validation size that works."""
    from emnist_bench.training.runtime import check_validation_splits

    if fits:
        check_validation_splits(images, batch_size, replicas)
        return
    last = images % batch_size
    with pytest.raises(ConfigError, match=f"last validation batch holds {last} images") as error:
        check_validation_splits(images, batch_size, replicas)
    working = int(str(error.value).split("data.val_size=")[1].split()[0])
    assert (working % batch_size) % replicas == 0 and images < working < images + replicas


def test_a_validation_batch_size_the_devices_cannot_share_is_refused():
    """Full batches count too: 128 validation images in batches of 63 leave a last batch of 2,
    which splits evenly, but each batch of 63 does not."""
    from emnist_bench.training.runtime import check_validation_splits

    with pytest.raises(ConfigError, match="trainer.batch_size=63 cannot be shared evenly by 2"):
        check_validation_splits(128, 63, 2)
    check_validation_splits(10, 63, 2)  # one batch of 10: no batch of 63 is ever evaluated


def test_a_search_under_mirrored_is_refused_before_it_starts(
    smoke_data, proxy_cache, tmp_path, monkeypatch
):
    """The check runs before the keras-tuner search as well, so a run the devices cannot
    train is refused at once, not after the whole search."""
    from emnist_bench.run import run
    from emnist_bench.training import runtime
    from emnist_bench.tuning import search
    from tests.configs import compose_config, smoke_overrides

    monkeypatch.setattr(runtime, "replica_count", lambda strategy: 2)

    def searched(*args, **kwargs):
        raise AssertionError("the search started")

    monkeypatch.setattr(search, "search", searched)
    extra = ("model=cnn", "tuner=random", "trainer.strategy=mirrored")
    cfg = compose_config(smoke_overrides(smoke_data, proxy_cache, *extra), tmp_path / "run")
    with pytest.raises(ConfigError, match="last validation batch holds 47 images"):
        run(cfg)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["status"] == "failed"
