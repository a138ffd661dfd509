"""What each change to a preset's network or its training loop buys in speed, in one process.

Builds the preset as a run would (its config, ``build_model``, ``compile_model``), then the same
network with each change (a layer, XLA, calls into TensorFlow per step, a doubled batch), and
times one epoch of each in turn, round after round, on the same synthetic uint8 images (the
arithmetic does not depend on the pixels), through the runs' own input pipeline; and the
pipeline alone, read to its end without a model, for what feeding the steps costs. Thread
counts are not among the variants: TensorFlow fixes them once per process, so give each
process its own (``trainer.intra_op_threads=1 trainer.inter_op_threads=2``, applied to all).
Interleaving the variants spreads a noisy host's slow spells over all of them; the minimum over
the rounds is the cost with the least interference, the median the typical one. Prints both,
and each variant's speed relative to the preset's.

    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/layer_cost.py --preset speedrun_cnn
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore", message=".*shuffle=True.*")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

VARIANTS = {
    "preset": [],
    "model.pool_first=true": ["model.pool_first=true"],
    "batch_norm=off": ["batch_norm=off"],
    "dropout=off": ["dropout=off"],
    "model.crop=2": ["model.crop=2"],
    "trainer.jit_compile=true": ["trainer.jit_compile=true"],
    "trainer.steps_per_execution=1": ["trainer.steps_per_execution=1"],
    "trainer.steps_per_execution=64": ["trainer.steps_per_execution=64"],
}
"""Each variant's overrides on top of the preset; a doubled batch is added to them."""
PIPELINE = "input pipeline alone"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="speedrun_cnn")
    parser.add_argument("--images", type=int, default=10_240)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", help="comma-separated variants to time beside the preset")
    parser.add_argument("overrides", nargs="*", help="config overrides for every variant")
    args = parser.parse_args()

    import numpy as np
    from speed import compose, machine

    from emnist_bench.training.fit import build_model, compile_model
    from emnist_bench.training.inputs import make_dataset
    from emnist_bench.training.runtime import configure_runtime

    def config(extra):
        return compose([f"+experiment={args.preset}", "trainer.precision=float32",
                        *args.overrides, *extra])  # fmt: skip

    preset = config([])
    configure_runtime(preset.trainer)  # threads, seeds, float32, before TensorFlow's first op
    batch = int(preset.trainer.batch_size)
    doubled = f"trainer.batch_size={2 * batch}"
    variants = {**VARIANTS, doubled: [doubled]}
    if args.only:
        wanted = [name.strip() for name in args.only.split(",")]
        unknown = sorted(set(wanted) - set(variants))
        if unknown:
            parser.error(f"unknown variants {unknown}; choose from {sorted(variants)}")
        variants = {name: variants[name] for name in ["preset", *wanted]}
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 47, args.images)
    models, data = {}, {}
    for name, extra in variants.items():
        cfg = config(extra)
        model = build_model(cfg, num_classes=47)
        compile_model(model, cfg, np.full(47, 1 / 47))
        size = int(cfg.trainer.batch_size)
        if size not in data:
            data[size] = make_dataset(images, labels, batch_size=size, shuffle=True, seed=0,
                                      num_classes=47)  # fmt: skip
        models[name] = (model, data[size])
    for model, batches in models.values():
        model.fit(batches, epochs=1, verbose=0)  # builds the graph; not timed
    seconds = {name: [] for name in [*models, PIPELINE]}
    for _ in range(args.rounds):
        for name, (model, batches) in models.items():
            started = time.perf_counter()
            model.fit(batches, epochs=1, verbose=0)
            seconds[name].append(time.perf_counter() - started)
        started = time.perf_counter()
        for _ in data[batch]:
            pass
        seconds[PIPELINE].append(time.perf_counter() - started)
    print(f"{args.preset}, {args.images} images in batches of {batch}, {args.rounds} rounds, "
          f"float32, {machine()['cpu']}")  # fmt: skip
    base_min, base_median = min(seconds["preset"]), statistics.median(seconds["preset"])
    for name, times in seconds.items():
        low, median = min(times), statistics.median(times)
        if name == PIPELINE:  # a share of the preset's epoch, not a speed-up
            print(f"  {name:30s} min {low:6.2f} s ({low / base_min:.1%} of the preset's)   "
                  f"median {median:6.2f} s ({median / base_median:.1%})")  # fmt: skip
        else:
            print(f"  {name:30s} min {low:6.2f} s ({base_min / low:.2f}x)   "
                  f"median {median:6.2f} s ({base_median / median:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
