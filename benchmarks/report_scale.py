"""Report at scale: `python -m emnist_bench.report` over thousands of synthetic run folders.

The full factorial technique grid is 2 x 4,032 runs. This writes ``--runs`` synthetic run folders
shaped like a real sweep's (metrics.json with provenance, config.yaml, history.csv and a
predictions.npz of 7,050 test labels), laid out as ``technique_grid_full`` lays them out: every
combination of the technique table for the MLP and the CNN, then more seeds. Accuracies follow
an additive model (a main effect per option plus noise), so the report has real effects to find.
Then it times the report in a fresh process and reads that process's peak resident memory.

    .venv/bin/python benchmarks/report_scale.py --runs 10000   # figures: benchmarks/RESULTS.md

Nothing is asserted; the goal is within 60 s and 2 GiB on 2 cores.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emnist_bench.rundir import write_predictions  # noqa: E402
from emnist_bench.techniques import TECHNIQUE_GROUPS, options  # noqa: E402

TEST_IMAGES = 7050
CLASSES = 47
BASE = {"lr_schedule": "constant", "activation": "relu", "optimizer": "adam",
        "batch_norm": "off", "regularization": "none", "dropout": "on"}  # fmt: skip


def combinations() -> list[dict[str, str]]:
    """Every combination of every group's options, the base first."""
    lists = [[BASE[g], *(o for o in options(g) if o != BASE[g])] for g in TECHNIQUE_GROUPS]
    return [dict(zip(TECHNIQUE_GROUPS, combo, strict=True)) for combo in itertools.product(*lists)]


def write_runs(folder: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(CLASSES), TEST_IMAGES // CLASSES + 1)[:TEST_IMAGES]
    effect = {(g, o): rng.normal(0, 0.02) for g in TECHNIQUE_GROUPS for o in options(g)}
    combos = combinations()
    written = 0
    for seed in itertools.count(1):
        for combo in combos:
            for model, base_accuracy in (("mlp", 0.80), ("cnn", 0.86)):
                if written == count:
                    return
                accuracy = base_accuracy + sum(effect[g, combo[g]] for g in TECHNIQUE_GROUPS)
                accuracy = float(np.clip(accuracy + rng.normal(0, 0.005), 0.03, 0.99))
                name = ",".join(f"{g}={combo[g]}" for g in TECHNIQUE_GROUPS)
                out = folder / model / name / f"seed={seed}"
                out.mkdir(parents=True)
                right = rng.random(TEST_IMAGES) < accuracy
                predicted = np.where(right, truth, (truth + 1) % CLASSES)
                write_predictions(out / "predictions.npz", truth, predicted)
                score = float(right.mean())
                (out / "history.csv").write_text(
                    "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds\n"
                    + "".join(f"{e},1.0,{score - 0.02 * (2 - e):.4f},1.1,"
                              f"{score - 0.02 * (2 - e):.4f},0.001,1.0\n" for e in range(3))
                )  # fmt: skip
                (out / "config.yaml").write_text(
                    "data: {root: /data/emnist-proxy, split: balanced, subset: null}\n"
                    f"trainer: {{epochs: 3, seed: {seed}}}\n"
                )
                metrics = {
                    "status": "completed", "model": model, "family": model, **combo,
                    "test_accuracy": score, "test_loss": 1.0, "macro_f1": score - 0.01,
                    "val_accuracy": score, "test_samples": TEST_IMAGES, "train_samples": 97934,
                    "val_samples": 10000, "epochs_run": 3, "train_seconds": 60.0,
                    "params": 100000,
                    "provenance": {"data": {"test_fingerprint": "synthetic"}, "git_commit": "x"},
                }  # fmt: skip
                (out / "metrics.json").write_text(json.dumps(metrics))
                written += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="write the runs here and keep them")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="report-scale-"))
    started = time.perf_counter()
    write_runs(folder, args.runs)
    print(f"wrote {args.runs:,} run folders in {time.perf_counter() - started:.1f} s: {folder}")
    command = [sys.executable, "-m", "emnist_bench.report", str(folder)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if result.returncode:
        print(result.stderr[-3000:])
        sys.exit(result.returncode)
    print(f"report over {args.runs:,} runs: {seconds:.1f} s, peak resident memory "
          f"{peak_mib:,.0f} MiB (before: {before / 1024:,.0f} MiB)")  # fmt: skip
    sizes = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}
    print("files:", ", ".join(f"{n} {s / 1e6:.1f} MB" for n, s in sorted(sizes.items())))
    if not args.keep:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
