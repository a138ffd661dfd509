"""Test images as a scan of handwriting would be: large, dark ink on light paper, wide margins.

Each EMNIST image (upright, bright ink on black) is upscaled, inverted onto off-white paper
with a little noise, and placed at a random spot on a larger page, then written as PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SCALE = 8


def render_scan(image: np.ndarray, rng: np.random.Generator, scale: int = SCALE) -> np.ndarray:
    """One upright 28x28 EMNIST image as a page: (H, W) uint8, dark ink on light paper."""
    from PIL import Image

    big = Image.fromarray(np.asarray(image, dtype=np.uint8)).resize(
        (28 * scale, 28 * scale), Image.Resampling.BILINEAR
    )
    ink = np.asarray(big, dtype=np.float64) / 255
    paper, pen = rng.uniform(215, 250), rng.uniform(10, 60)
    top, bottom, left, right = rng.integers(scale * 4, scale * 25, size=4)
    page = np.full((28 * scale + top + bottom, 28 * scale + left + right), paper)
    page[top : top + 28 * scale, left : left + 28 * scale] = paper - (paper - pen) * ink
    page += rng.normal(0, 2.0, page.shape)
    return np.clip(np.round(page), 0, 255).astype(np.uint8)


def write_scans(images: np.ndarray, folder: Path, seed: int = 0) -> list[Path]:
    """Writes each image as ``folder/NNNN.png`` (see :func:`render_scan`); returns the paths."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, image in enumerate(images):
        path = folder / f"{index:04d}.png"
        Image.fromarray(render_scan(image, rng)).save(path, compress_level=1)
        paths.append(path)
    return paths


def compare_with_evaluate(run_dir: Path, images: np.ndarray, labels: np.ndarray, work: Path):
    """``predict`` on the images rendered as scans against ``evaluate`` on the same images.

    Writes the images as a test split (IDX layout, with the Balanced mapping) and as scans
    under ``work``, runs both, and returns their accuracies, the share of images on which both
    predict the same class, and predict's results.
    """
    from emnist_bench.evaluate.command import evaluate
    from emnist_bench.predict.command import predict_files
    from emnist_bench.predict.saved import classify, open_run
    from tests.emnist_files import write_idx_split, write_mapping

    split = work / "split"
    write_idx_split(split, "balanced", "test", images, labels)
    write_mapping(split, "balanced")
    evaluated = evaluate(run_dir, [f"data.root={split}", "data.cache_dir=false"])
    results, seen = predict_files(
        run_dir, write_scans(images, work / "scans"), sheet=work / "sheet.png"
    )
    run = open_run(run_dir)
    characters = np.array(run.classes)
    predicted = np.array([characters.tolist().index(r["top"][0]["label"]) for r in results])
    direct = classify(run, images).argmax(axis=1)
    return {
        "images": int(labels.size),
        "evaluate_accuracy": evaluated["test_accuracy"],
        "predict_accuracy": float((predicted == labels).mean()),
        "same_class": float((predicted == direct).mean()),
        "results": results,
        "seen": seen,
    }
