"""What each change to a preset's network buys in training speed, measured in one process.

Builds the preset as a run would (its config, ``build_model``, ``compile_model``), then the same
network with each change, and times one epoch of each in turn, round after round, on the same
synthetic uint8 images (the arithmetic does not depend on the pixels). Interleaving the variants
spreads a noisy host's slow spells over all of them; the minimum over the rounds is the cost
with the least interference, the median the typical one. Prints both, and each variant's speed
relative to the preset's.

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
}
"""Each variant's overrides on top of the preset."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="speedrun_cnn")
    parser.add_argument("--images", type=int, default=10_240)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("overrides", nargs="*", help="config overrides for every variant")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf
    from speed import compose, machine

    from emnist_bench.training.fit import build_model, compile_model

    models = {}
    for name, extra in VARIANTS.items():
        cfg = compose([f"+experiment={args.preset}", "trainer.precision=float32", *args.overrides,
                       *extra])  # fmt: skip
        model = build_model(cfg, num_classes=47)
        prior = np.full(47, 1 / 47)
        compile_model(model, cfg, prior)
        models[name] = model
    batch = int(cfg.trainer.batch_size)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, 28, 28), dtype=np.uint8)
    labels = tf.one_hot(rng.integers(0, 47, args.images), 47)
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch).prefetch(2)
    for model in models.values():
        model.fit(data, epochs=1, verbose=0)  # builds the graph; not timed
    seconds = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            started = time.perf_counter()
            model.fit(data, epochs=1, verbose=0)
            seconds[name].append(time.perf_counter() - started)
    print(f"{args.preset}, {args.images} images in batches of {batch}, {args.rounds} rounds, "
          f"float32, {machine()['cpu']}")  # fmt: skip
    base_min, base_median = min(seconds["preset"]), statistics.median(seconds["preset"])
    for name, times in seconds.items():
        low, median = min(times), statistics.median(times)
        print(f"  {name:24s} min {low:6.2f} s ({base_min / low:.2f}x)   "
              f"median {median:6.2f} s ({base_median / median:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
