"""Divergence: a non-finite loss, a loss far above its start, or training accuracy still at
chance stops the run early as ``diverged``, with the reason in ``metrics.json``."""

from __future__ import annotations

import json
import math

import pytest

from emnist_bench.errors import ConfigError
from emnist_bench.run import run
from emnist_bench.training.callbacks import divergence
from tests.configs import compose_config, smoke_overrides

START = math.log(47)


def rows(*epochs: tuple[float, float]) -> list[dict[str, float]]:
    """History rows from (loss, training accuracy) pairs."""
    return [
        {"epoch": epoch, "loss": loss, "accuracy": accuracy}
        for epoch, (loss, accuracy) in enumerate(epochs)
    ]


@pytest.mark.parametrize(
    ("history", "reason"),
    [
        (rows((math.nan, 0.02)), "the loss became nan in epoch 1"),
        (rows((3.0, 0.3), (math.inf, 0.02)), "the loss became inf in epoch 2"),
        (
            rows((1.77e22, 0.005)),
            "the loss reached 1.77e+22 in epoch 1, over 100 times its starting value ln(47) = 3.85",
        ),
        (
            rows((3.86, 0.02), (3.86, 0.021), (3.85, 0.03)),
            "the training accuracy is 3.00% after 3 epochs, still at chance (1/47 = 2.13%)",
        ),
        # Learning, if slowly; a high but finite start (L1 on a wide layer); too early to tell.
        (rows((3.8, 0.02), (3.7, 0.03), (3.5, 0.05)), None),
        (rows((60.0, 0.1)), None),
        (rows((3.86, 0.02), (3.86, 0.02)), None),
    ],
)
def test_divergence_rules(history, reason):
    assert divergence(history, 47, loss_factor=100, chance_epochs=3) == reason


def test_divergence_checks_can_be_turned_off():
    assert divergence(rows((1e9, 0.02), (1e9, 0.02), (1e9, 0.02)), 47) is None


def test_adam_at_learning_rate_1e4_ends_diverged_with_its_reason(smoke_data, proxy_cache, tmp_path):
    """Adam at 1e4 reaches losses of 1e22 that stay finite: a finite loss alone must not let
    the run end ``completed``."""
    overrides = smoke_overrides(
        smoke_data,
        proxy_cache,
        "model=mlp",
        "optimizer=adam",
        "optimizer.learning_rate=1e4",
        "trainer.epochs=3",
    )
    metrics = run(compose_config(overrides, output_dir=tmp_path))

    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["status"] == metrics["status"] == "diverged"
    assert written["epochs_run"] < 3  # stopped early
    assert written["reason"].startswith(("the loss reached", "the loss became"))
    assert not (tmp_path / "backup").exists()  # finished: nothing to resume


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.divergence.loss_factor=0.5", "trainer.divergence.loss_factor=0.5 must be > 1"),
        ("trainer.divergence.chance_epochs=0", "trainer.divergence.chance_epochs=0 must be >= 1"),
    ],
)
def test_divergence_thresholds_are_checked(override, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        run(compose_config([override], output_dir=tmp_path))
