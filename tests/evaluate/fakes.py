"""Fake predictions and images for the evaluate layer's figure tests, and a PNG check."""

from __future__ import annotations

import numpy as np
from PIL import Image

CLASSES = list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghnqrt")
N_CLASSES = len(CLASSES)


def fake_predictions(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """True labels covering every class, and predictions right about 80% of the time."""
    rng = np.random.default_rng(seed)
    y_true = np.arange(n) % N_CLASSES
    y_pred = np.where(rng.random(n) < 0.8, y_true, rng.integers(0, N_CLASSES, n))
    return y_true, y_pred


def fake_images(n: int, seed: int = 0) -> np.ndarray:
    """Distinct, asymmetric uint8 images, so flips and mix-ups would show."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[:, :4, :] = 255  # a bright band at the top: upright means it stays there
    return images


def check_png(path, min_side: int = 300) -> None:
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert min_side <= width <= 4000 and min_side <= height <= 4000
