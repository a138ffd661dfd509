"""What test-time tricks add to finished runs: shifted copies of each test image, and the runs
averaged as one ensemble. Nothing is trained; each run's ``model.keras`` is scored on the
proxy test split.

For each run: the plain accuracy, the accuracy of the mean prediction over the image and its
four one-pixel shifts (up, down, left, right; no flips, which change letters), and over the
eight shifts around it. Then the plain predictions of all the runs averaged: how far a network
of this size is from the accuracy of several of itself, an upper bound on what more epochs or
weight averaging can add to one of them.

    python benchmarks/shift_ensemble.py --root ../shared/data/emnist-proxy RUN_DIR [RUN_DIR ...]

With 7,050 test images one accuracy carries about ±0.7 points of sampling noise (95%), but the
same images score every variant, so a difference between two rows of one run is measured on
the same images: it is still not a finding below a few tenths of a point, the spread between
seeds of one recipe.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

SHIFTS_4 = ((1, 0), (-1, 0), (0, 1), (0, -1))
SHIFTS_8 = (*SHIFTS_4, (1, 1), (1, -1), (-1, 1), (-1, -1))


def shifted(images, rows: int, columns: int):
    """``images`` (N, 28, 28) moved by whole pixels, the edge filled with background (0)."""
    import numpy as np

    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    return padded[:, 1 - rows : 29 - rows, 1 - columns : 29 - columns]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO.parent / "shared/data/emnist-proxy"))
    parser.add_argument("runs", nargs="+", type=Path, help="run folders holding model.keras")
    args = parser.parse_args()

    import keras
    import numpy as np
    from speed import compose

    from emnist_bench.data import load_test

    test, _ = load_test(compose([f"data.root={args.root}"]).data)
    images, labels = test.images, test.labels

    def accuracy(probabilities) -> str:
        return f"{100 * np.mean(probabilities.argmax(axis=1) == labels):.2f}%"

    plain_predictions = []
    print(f"{'run':60s} {'plain':>8s} {'+4 shifts':>10s} {'+8 shifts':>10s}")
    for run in args.runs:
        model = keras.saving.load_model(run / "model.keras", compile=False)

        def predict(batch, model=model):
            return model.predict(batch, batch_size=512, verbose=0)

        plain = predict(images)
        around = {shift: predict(shifted(images, *shift)) for shift in SHIFTS_8}
        four = plain + sum(around[shift] for shift in SHIFTS_4)
        eight = four + sum(around[shift] for shift in SHIFTS_8[4:])
        print(f"{str(run):60s} {accuracy(plain):>8s} {accuracy(four):>10s} {accuracy(eight):>10s}")
        plain_predictions.append(plain)
    if len(plain_predictions) > 1:
        print(f"the {len(plain_predictions)} runs averaged: {accuracy(sum(plain_predictions))}")


if __name__ == "__main__":
    main()
