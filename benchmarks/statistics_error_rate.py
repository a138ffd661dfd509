"""How often the report's verdicts are wrong, on simulated technique grids with a known truth.

Each grid is a base, ``--nulls`` variants with no true effect and ``--effects`` variants whose
true effect is ``--effect`` (accuracy, e.g. 0.018), ``--seeds`` seeds each, every seed scored
on the same ``--images`` test images, with the structure real runs have (a configuration's
preferences for images persist over its seeds: ``emnist_bench.report.simulation``). Within each
grid, p-values are adjusted with Holm's method as the report does. Two methods are compared:

* ``pooled McNemar``: McNemar's exact test on the discordant images summed over seeds (each
  image counted once per seed), as the report did before 0.4.0;
* ``images x seeds``: the report's method (``emnist_bench.report.statistics``): a t-test on the
  crossed image x seed decomposition, with the two-level bootstrap interval.

Prints, per method: the share of grids where a null variant was called better or worse (the
family-wise error rate Holm promises to keep at or below 5%), null verdicts in all, true effects
found, and the 95% intervals' coverage of the true difference.

    python benchmarks/statistics_error_rate.py --grids 200
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from emnist_bench.report import statistics
from emnist_bench.report.simulation import World, simulate_runs


def pooled_mcnemar(option: list[np.ndarray], base: list[np.ndarray]) -> float:
    better = sum(int(np.sum(o & ~b)) for o, b in zip(option, base, strict=True))
    worse = sum(int(np.sum(~o & b)) for o, b in zip(option, base, strict=True))
    return stats.binomtest(better, better + worse, 0.5).pvalue if better + worse else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grids", type=int, default=200)
    parser.add_argument("--nulls", type=int, default=11)
    parser.add_argument("--effects", type=int, default=2)
    parser.add_argument("--effect", type=float, default=0.018)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--images", type=int, default=7050)
    parser.add_argument("--bootstrap", type=int, default=1000)
    arguments = parser.parse_args()

    started = time.time()
    world = World()
    shift = world.shift_for(arguments.effect)
    truth = world.accuracy(shift) - world.accuracy(0.0)
    rng = np.random.default_rng(2026)
    shifts = [0.0] + [0.0] * arguments.nulls + [shift] * arguments.effects
    truths = [0.0] * arguments.nulls + [truth] * arguments.effects
    counts = {
        method: {"grids_with_false": 0, "false": 0, "found": 0, "covered": 0}
        for method in ("pooled McNemar", "images x seeds")
    }
    for grid in range(arguments.grids):
        base, *variants = simulate_runs(rng, world, shifts, arguments.images, arguments.seeds)
        old = statistics.holm([pooled_mcnemar(v, base) for v in variants])
        results = [
            statistics.paired_difference(v, base, seed=grid, samples=arguments.bootstrap)
            for v in variants
        ]
        new = statistics.holm([r.p_value for r in results])
        for method, adjusted in (("pooled McNemar", old), ("images x seeds", new)):
            tally = counts[method]
            called = [p < statistics.ALPHA for p in adjusted]
            if method == "images x seeds":  # the report also asks the interval to exclude 0
                called = [
                    c and (r.low > 0 or r.high < 0) for c, r in zip(called, results, strict=True)
                ]
            false = sum(called[: arguments.nulls])
            tally["false"] += false
            tally["grids_with_false"] += false > 0
            tally["found"] += sum(called[arguments.nulls :])
        counts["images x seeds"]["covered"] += sum(
            r.low <= t <= r.high for r, t in zip(results, truths, strict=True)
        )
    nulls = arguments.grids * arguments.nulls
    effects = arguments.grids * arguments.effects
    print(
        f"{arguments.grids} grids x ({arguments.nulls} null + {arguments.effects} true "
        f"{truth * 100:.2f}-point variants), {arguments.seeds} seeds, {arguments.images} images, "
        f"Holm within each grid ({time.time() - started:.0f} s)"
    )
    print("| method | grids with a false verdict | null verdicts | true effects found | "
          "95% interval coverage |")  # fmt: skip
    print("|---|---|---|---|---|")
    for method, tally in counts.items():
        coverage = (
            f"{tally['covered'] / (nulls + effects):.1%}" if method == "images x seeds" else "-"
        )
        print(
            f"| {method} | {tally['grids_with_false'] / arguments.grids:.1%} | "
            f"{tally['false']} of {nulls} | {tally['found']} of {effects} | {coverage} |"
        )


if __name__ == "__main__":
    main()
