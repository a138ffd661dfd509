"""What test-time tricks add to finished runs: shifted copies of each test image, and the runs
averaged as one ensemble. Nothing is trained; each run's ``model.keras`` is scored on the
proxy test split.

For each run: the plain accuracy, the accuracy of the mean prediction over the image and its
four one-pixel shifts (up, down, left, right; no flips, which change letters), and over the
eight shifts around it. Then the plain predictions of all the runs averaged: how far a network
of this size is from the accuracy of several of itself, an upper bound on what more epochs or
weight averaging can add to one of them.

With ``--prior-strength=-0.5,0.5`` (a list), also each run's plain accuracy with its scores
moved by S times the log of each class's share of the training split (``log p - S * log
prior``) for each S: 0 is the model as trained; a peak away from 0 would say that the logit
adjustment (``data.class_weight=logit_adjusted``, the presets') is too weak (> 0) or too strong
(< 0) for the balanced test split.

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


def prior_shifted(probabilities, prior, strength: float):
    """The classes ``probabilities`` (N, classes) pick once each score is moved by ``strength``
    times the log of the class's training share ``prior``: > 0 favours rare classes more."""
    import numpy as np

    scores = np.log(np.clip(probabilities, 1e-12, None)) - strength * np.log(prior)
    return scores.argmax(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=str(REPO.parent / "shared/data/emnist-proxy"))
    parser.add_argument("runs", nargs="+", type=Path, help="run folders holding model.keras")
    parser.add_argument(
        "--prior-strength",
        type=lambda text: [float(value) for value in text.split(",")],
        default=None,
        metavar="S,S,...",
        help="also score each run with its scores moved by S * log(train share), for each S "
        "(write --prior-strength=-0.5,0.5: a value starting with '-' needs the '=')",
    )
    args = parser.parse_args()

    import keras
    import numpy as np
    from speed import compose

    from emnist_bench.data import load_test

    test, mapping = load_test(compose([f"data.root={args.root}"]).data)
    images, labels = test.images, test.labels
    if args.prior_strength is not None:
        from emnist_bench.data.load import load_part
        from emnist_bench.training.losses import class_prior

        # As the logit-adjusted loss computes it (a run held out its validation images first).
        train = load_part(args.root, "balanced", "train").labels
        prior = class_prior(train, mapping.num_classes)

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
        for strength in args.prior_strength or ():
            moved = np.mean(prior_shifted(plain, prior, strength) == labels)
            print(f"    scores moved by {strength:+.2f} x log(train share): {100 * moved:.2f}%")
        plain_predictions.append(plain)
    if len(plain_predictions) > 1:
        print(f"the {len(plain_predictions)} runs averaged: {accuracy(sum(plain_predictions))}")


if __name__ == "__main__":
    main()
