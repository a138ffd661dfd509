"""``predict`` on a test split rendered as scans of handwriting, against ``evaluate``.

Each test image is rendered as a page a scanner might give (8x larger, dark ink on off-white
paper with a little noise, a wide random margin: ``tests/predict/scans.py``), written as PNG and
fed to ``python -m emnist_bench.predict``; ``evaluate`` runs on the same images. Prints both
accuracies and the share of images on which both give the same class.

    .venv/bin/python benchmarks/predict_scans.py RUN_DIR --root ../shared/data/emnist-proxy
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from emnist_bench.data.load import load_part  # noqa: E402
from tests.predict.scans import compare_with_evaluate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--root", type=Path, required=True, help="folder with the test split")
    parser.add_argument("--every", type=int, default=1, help="use every N-th test image")
    options = parser.parse_args()
    test = load_part(options.root, "balanced", "test", cache_dir=None)
    images, labels = test.images[:: options.every], test.labels[:: options.every]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="emnist-scans-") as work:
        result = compare_with_evaluate(options.run_dir, images, labels, Path(work))
    result = {key: value for key, value in result.items() if key not in ("results", "seen")}
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["difference_points"] = 100 * (result["predict_accuracy"] - result["evaluate_accuracy"])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
