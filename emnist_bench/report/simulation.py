"""Simulated sweeps with a known truth, to check the report's error rate and coverage.

Real sweeps score every seed on the same test images, and a configuration's preferences for
particular images persist over its seeds. The generator keeps that structure: image ``i`` has a
difficulty ``z[i]``; configuration ``c`` has its own preference ``g[c, i]`` for each image and a
shift ``b[c]`` (its true effect); run ``(c, s)`` has a whole-run luck ``r[c, s]``; the run gets
the image right with probability ``sigmoid(z[i] + g[c, i] + b[c] + r[c, s])``.

With the defaults, at about 87% accuracy, two seeds of one configuration disagree on about 7%
of the images and a configuration and another one on about 14%, as in the proxy's technique
grid. ``tests/report/test_error_rate.py`` and ``benchmarks/statistics_error_rate.py`` use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class World:
    """The population the test images and runs are drawn from.

    Attributes:
        difficulty_mean, difficulty_sd: of the images' logits ``z``.
        preference_sd: of a configuration's own preference for each image ``g``.
        run_sd: of a whole run's luck ``r`` (logit scale).
    """

    difficulty_mean: float = 7.0
    difficulty_sd: float = 5.0
    preference_sd: float = 3.25
    run_sd: float = 0.1

    def accuracy(self, shift: float, draws: int = 400_000) -> float:
        """The expected accuracy of a configuration shifted by ``shift`` (logits), over the
        population of images, preferences and runs (a fixed Monte Carlo sample)."""
        rng = np.random.default_rng(12345)
        logits = (
            rng.normal(self.difficulty_mean, self.difficulty_sd, draws)
            + rng.normal(0, self.preference_sd, draws)
            + rng.normal(0, self.run_sd, draws)
        )
        return float(np.mean(1 / (1 + np.exp(-(logits + shift)))))

    def shift_for(self, difference: float) -> float:
        """The logit shift whose expected accuracy is ``difference`` above an unshifted one."""
        target, low, high = self.accuracy(0.0) + difference, -5.0, 5.0
        for _ in range(50):  # bisection: accuracy grows with the shift
            middle = (low + high) / 2
            low, high = (middle, high) if self.accuracy(middle) < target else (low, middle)
        return (low + high) / 2


def simulate_runs(
    rng: np.random.Generator,
    world: World,
    shifts: list[float],
    images: int,
    seeds: int,
) -> list[list[np.ndarray]]:
    """Per configuration (one per shift), per seed, the boolean array of images it got right;
    every configuration and seed is scored on the same ``images`` test images."""
    difficulty = rng.normal(world.difficulty_mean, world.difficulty_sd, images)
    runs = []
    for shift in shifts:
        preference = rng.normal(0, world.preference_sd, images)
        configuration = []
        for _ in range(seeds):
            logits = difficulty + preference + shift + rng.normal(0, world.run_sd)
            configuration.append(rng.random(images) < 1 / (1 + np.exp(-logits)))
        runs.append(configuration)
    return runs
