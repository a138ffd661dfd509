"""The time-accuracy frontier: proxy test accuracy against training minutes, per oneDNN ISA.

Reads the ``curves.csv`` files that ``benchmarks/time_to_accuracy.py`` writes (one row per
recipe, seed and epoch: training seconds so far and the test accuracy of that epoch's weights)
and draws one panel per ISA: every recipe's curve, the mean over its seeds at each epoch, and
the frontier, the points no other point beats on both time and accuracy. Prints the frontier
as a table. Nothing is trained or scored here: the figures are the curves' own.

Each ``--curve`` is ``ISA:LABEL=PATH``: the panel, the name the legend gives the file's recipes
(the machine, and any overrides its runs had), and the file. Files given one ISA and label pool
their seeds.

    python benchmarks/frontier.py --out benchmarks/results/frontier.png \\
        --curve "native:Xeon=benchmarks/results/xeon/curves.csv" \\
        --curve "AVX2:EPYC=benchmarks/results/epyc-avx2/curves.csv"

A point is one epoch of one to three runs: with 7,050 test images one accuracy carries about
±0.7 points of sampling noise (95%), so two points closer than that are not ranked by the
figure, and a point on the frontier is not shown to beat a point just off it. An epoch in the
middle of a run is not the end of a shorter run: its learning-rate schedule has not yet decayed,
so where the schedule depends on the epoch count the frontier is a lower bound.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BUDGET_MINUTES = (10, 45)
"""The speedrun's and best_cnn's training budgets on 2 cores."""


@dataclass(frozen=True)
class Point:
    """One epoch of a recipe, averaged over the seeds that reached it."""

    curve: str
    epoch: int
    minutes: float
    accuracy: float
    seeds: int


def parse_curve(spec: str) -> tuple[str, str, Path]:
    """``ISA:LABEL=PATH`` as its three parts; a malformed one is a one-line error."""
    head, _, path = spec.rpartition("=")  # a label may hold "=" (an override)
    isa, _, label = head.partition(":")
    if not (path and isa and label):
        raise SystemExit(f"--curve {spec!r}: expected ISA:LABEL=PATH, e.g. AVX2:EPYC=curves.csv")
    if not Path(path).is_file():
        raise SystemExit(f"--curve {spec!r}: no file {path}; run time_to_accuracy.py first")
    return isa.strip(), label.strip(), Path(path)


def read_points(label: str, *paths: Path) -> list[Point]:
    """The files' recipes as points: mean seconds and accuracy over the seeds at each epoch.
    Files under one label pool their seeds (runs of one recipe made on different days); a run
    found twice (in two files, or one file given twice) is refused, so that none counts twice."""
    by_epoch: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
    source: dict[tuple[str, str, int], Path] = {}  # each epoch of each run: its file
    for path in paths:
        with path.open(newline="") as file:
            for row in csv.DictReader(file):
                recipe, seed, epoch = row["recipe"], row["seed"], int(row["epoch"])
                if first := source.get((recipe, seed, epoch)):
                    where = f"both {first} and {path}" if first != path else f"{path} twice"
                    raise SystemExit(
                        f"{label}: {recipe} seed {seed} is in {where}; give each file once, "
                        "under its own label if its runs repeat another's"
                    )
                source[recipe, seed, epoch] = path
                seconds, accuracy = float(row["training_seconds"]), float(row["test_accuracy"])
                by_epoch[recipe, epoch].append((seconds, accuracy))
    return [
        Point(
            curve=f"{label} {recipe}",
            epoch=epoch,
            minutes=statistics.fmean(seconds for seconds, _ in runs) / 60,
            accuracy=statistics.fmean(accuracy for _, accuracy in runs),
            seeds=len(runs),
        )
        for (recipe, epoch), runs in sorted(by_epoch.items())
    ]


def frontier(points: list[Point]) -> list[Point]:
    """The points that no other point matches or beats in both minutes and accuracy, fastest
    first (the upper-left envelope)."""
    best, kept = float("-inf"), []
    for point in sorted(points, key=lambda p: (p.minutes, -p.accuracy)):
        if point.accuracy > best:
            kept.append(point)
            best = point.accuracy
    return kept


def plot(panels: dict[str, list[Point]], path: Path) -> None:
    from emnist_bench.figures import new_figure, save

    fig = new_figure(6 * len(panels), 4.8)
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (isa, points) in zip(axes, panels.items(), strict=True):
        curves = defaultdict(list)
        for point in points:
            curves[point.curve].append(point)
        for name, run in curves.items():
            seeds = max(point.seeds for point in run)
            label = f"{name} ({seeds} seed{'s' * (seeds > 1)})"
            ax.plot([p.minutes for p in run], [100 * p.accuracy for p in run], marker="o",
                    markersize=3, alpha=0.8, label=label)  # fmt: skip
        edge = frontier(points)
        ax.step([p.minutes for p in edge], [100 * p.accuracy for p in edge], where="post",
                color="black", linewidth=1.2, linestyle="--", label="frontier")  # fmt: skip
        for minutes in BUDGET_MINUTES:
            ax.axvline(minutes, color="gray", linewidth=0.8, linestyle=":")
        ax.set_title(f"oneDNN ISA: {isa} (dotted: the 10- and 45-minute budgets)", fontsize=10)
        ax.set_xscale("log")
        ax.set_xlabel("training minutes on 2 CPU cores (log scale)")
        ax.grid(True, alpha=0.3, which="both")
        ax.legend(loc="lower right", fontsize=7)
    axes[0].set_ylabel("proxy test accuracy after the epoch (%, mean over seeds)")
    save(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--curve", action="append", required=True, metavar="ISA:LABEL=PATH")
    parser.add_argument("--out", default="outputs/benchmarks/frontier.png")
    args = parser.parse_args()
    files: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for spec in args.curve:
        isa, label, path = parse_curve(spec)
        files[isa, label].append(path)
    panels: dict[str, list[Point]] = defaultdict(list)
    for (isa, label), paths in files.items():
        panels[isa] += read_points(label, *paths)
    plot(panels, Path(args.out))
    for isa, points in panels.items():
        print(f"\nFrontier, ISA {isa} (minutes, proxy test accuracy, seeds, curve, epoch)")
        for point in frontier(points):
            print(f"  {point.minutes:6.1f}  {100 * point.accuracy:6.2f}%  {point.seeds}"
                  f"  {point.curve}, epoch {point.epoch}")  # fmt: skip
    print(f"\nWrote {args.out}")


if __name__ == "__main__":
    main()
