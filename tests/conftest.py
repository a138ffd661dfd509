"""Shared fixtures.

Data fixtures come first; the helpers that write synthetic EMNIST folders live in
``tests/emnist_files.py`` so any test module can import them.

The real EMNIST folders are looked for in ``../shared/data`` beside the repository, or in
``$EMNIST_BENCH_SHARED_DATA`` when set (point it at a missing folder to run the suite as a
clean clone would: every layer still runs, on synthetic files; only the checks of facts of the
real files skip).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# --- property tests ---------------------------------------------------------------------------

# The property tests (Hypothesis) draw the same examples on every run by default, so a CI run
# fails only on what the change broke, never on a draw's luck; a test's own @settings changes
# the number of examples, not this. To search afresh, as a fuzzing session would:
#   EMNIST_BENCH_HYPOTHESIS=explore make test PYTEST_ARGS="tests/data/test_fuzz.py"
# and pin what it finds with @example, so every later run checks that case.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("EMNIST_BENCH_HYPOTHESIS", "repeatable"))

# --- data ------------------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(
    os.environ.get("EMNIST_BENCH_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data"
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real EMNIST folders (``../shared/data`` beside the repository); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real EMNIST data not found at {SHARED_DATA} (see ../shared/data/README.md)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def idx_proxy(shared_data: Path) -> Path:
    """The real EMNIST proxy in the NIST IDX gzip layout (107,934 train / 7,050 test)."""
    root = shared_data / "emnist-proxy"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    return root


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory) -> Path:
    """A Balanced folder in the Kaggle CSV layout, 2,350 train / 470 test (50 / 10 per class).

    The real CSV proxy (``../shared/data/emnist-proxy-csv``) when it is there, so CI smoke-runs
    the real images; otherwise synthetic files with the same counts, written here, on which a
    model learns well above chance (see ``tests.emnist_files.write_learnable_split``).
    """
    real = SHARED_DATA / "emnist-proxy-csv"
    if real.is_dir():
        return real
    from tests.emnist_files import write_learnable_split

    root = tmp_path_factory.mktemp("emnist-synthetic-csv")
    write_learnable_split(root, train_per_class=50, test_per_class=10, layout="csv")
    return root


@pytest.fixture(scope="session")
def proxy_cache(tmp_path_factory) -> Path:
    """A cache folder shared by the data-reading tests, so each file is parsed once."""
    return tmp_path_factory.mktemp("emnist-cache")


@pytest.fixture
def tiny_idx(tmp_path: Path):
    """A tiny IDX Balanced folder (2 random images per class): (root, train images, labels)."""
    from tests.emnist_files import write_tiny_split

    root = tmp_path / "emnist"
    images, labels = write_tiny_split(root, per_class=2, layout="idx")
    return root, images, labels


# --- a trained run ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cnn_run(smoke_data, proxy_cache, tmp_path_factory):
    """A 1-epoch CNN run on the smoke data (``tests.configs.CNN_RUN``): (its folder, metrics).

    Batch norm, L2, dropout, a halving step-decay schedule and the logit-adjusted loss (saved
    as a Keras loss, so that plain Keras loads the model). Shared by the run, evaluate,
    predict, export and serve tests, which read the folder and write only their own files
    (``eval_*.json``) or into copies and folders of their own.
    """
    from emnist_bench.run import run
    from tests.configs import CNN_RUN, compose_config, smoke_overrides

    out = tmp_path_factory.mktemp("cnn_run")
    metrics = run(compose_config(smoke_overrides(smoke_data, proxy_cache, *CNN_RUN), out))
    return out, metrics


# --- the default suite trains small ----------------------------------------------------------

# What a default (not slow) test may train: real training beyond seconds is marked slow.
MAX_DEFAULT_TRAIN_IMAGES = 200
MAX_DEFAULT_EPOCHS = 1


def _oversized_runs(basetemp: Path) -> list[str]:
    """Every run folder under ``basetemp`` that trained on more than the default suite allows,
    read from the files the run wrote (so runs in subprocesses count too). A folder without
    ``model.keras`` was written by a test, not trained (the report tests' made-up runs)."""
    import json

    import yaml

    found = []
    for metrics_file in sorted(basetemp.rglob("metrics.json")):
        if not metrics_file.with_name("model.keras").exists():
            continue
        try:
            metrics = json.loads(metrics_file.read_text())
            cfg = yaml.safe_load(metrics_file.with_name("config.yaml").read_text())
        except (OSError, ValueError, yaml.YAMLError):  # a test damaged or removed it on purpose
            cfg = None
        if not isinstance(metrics, dict) or "train_samples" not in metrics:
            continue
        epochs = [metrics.get("epochs_run") or 0]  # what trained: a diverged run stops early
        if isinstance(cfg, dict):
            tuner = cfg.get("tuner") or {}
            if tuner.get("name", "none") != "none":
                epochs.append(tuner.get("epochs") or 0)
        images = metrics["train_samples"]
        if images > MAX_DEFAULT_TRAIN_IMAGES or max(epochs) > MAX_DEFAULT_EPOCHS:
            where = metrics_file.parent.relative_to(basetemp)
            found.append(f"{where}: {images} training images, {max(epochs)} epochs")
    return found


@pytest.fixture(scope="session", autouse=True)
def default_suite_trains_small(request, tmp_path_factory):
    """Fails the session when a default test trained on more than 200 images or for more than
    one epoch: such a test belongs in the slow suite (``@pytest.mark.slow``)."""
    yield
    if any(item.get_closest_marker("slow") for item in request.session.items):
        return
    oversized = _oversized_runs(tmp_path_factory.getbasetemp())
    if oversized:
        pytest.fail(
            f"default tests train on at most {MAX_DEFAULT_TRAIN_IMAGES} images and "
            f"{MAX_DEFAULT_EPOCHS} epoch; mark these slow or make them smaller: "
            + "; ".join(oversized),
            pytrace=False,
        )
