"""One's own handwriting as EMNIST saw its characters: the conversion of Cohen et al. (2017).

EMNIST turned each 128x128 NIST character into a 28x28 image by a Gaussian blur, a crop to the
ink's bounding box, centring in a square frame (aspect ratio kept) with a 2-pixel margin, a
resize to 28x28 and a scaling of the intensities to 0-255. :func:`to_emnist` does the same to a
photo or scan of any size, dark ink on light paper or the reverse, after separating the ink from
the paper; the result is an upright (28, 28) uint8 image, bright ink on black, as the models
take it. Files and uploads are read, with bounded work, by :mod:`emnist_bench.predict.images`.
"""

from __future__ import annotations

import numpy as np

from emnist_bench.errors import UserError

IMAGE_SIDE = 28
MARGIN = 2
"""Pixels of the 28 left on each side of the ink's longer side (the characters span 24)."""
BLUR_SIGMA = 1.0
"""The blur's standard deviation in pixels at NIST's scale, where a character spans 128."""
NIST_SIDE = 128
BOX_THRESHOLD = 0.1
"""Ink weaker than this fraction of the strongest is left out of the bounding box."""
SPECK_FRACTION = 0.02
"""Blobs of ink smaller than this fraction of the largest are specks, not part of the box."""


def otsu_threshold(gray: np.ndarray) -> float:
    """The grey level that best splits ``gray`` into two classes (Otsu, 1979)."""
    counts, edges = np.histogram(gray, bins=256, range=(0, 256))
    levels = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    sum_low = np.cumsum(counts * levels)
    mean_low = sum_low / np.maximum(weight_low, 1)
    mean_high = (sum_low[-1] - sum_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def ink_strength(gray: np.ndarray) -> np.ndarray:
    """How much ink each pixel holds, 0 (paper) upwards, whichever of ink and paper is darker.

    The paper is the larger of the two grey classes Otsu's threshold splits the image into; its
    median is its level, and its own noise (3 robust standard deviations) is taken off, so plain
    paper is exactly 0 as EMNIST's background is.
    """
    threshold = otsu_threshold(gray)
    dark = gray < threshold
    ink_is_dark = dark.sum() <= dark.size / 2
    paper = gray[~dark] if ink_is_dark else gray[dark]
    if paper.size == 0:
        paper = gray.ravel()
    level = float(np.median(paper))
    noise = 1.4826 * float(np.median(np.abs(paper - level)))
    strength = (level - gray) if ink_is_dark else (gray - level)
    return np.clip(strength - 3 * noise, 0, None)


def ink_box(ink: np.ndarray) -> tuple[slice, slice] | None:
    """The bounding box of the ink, specks left out; None when there is no ink."""
    from scipy import ndimage

    strong = ink > BOX_THRESHOLD * ink.max() if ink.max() > 0 else None
    if strong is None or not strong.any():
        return None
    blobs, count = ndimage.label(strong, structure=np.ones((3, 3)))
    sizes = np.bincount(blobs.ravel(), minlength=count + 1)[1:]
    keep = np.flatnonzero(sizes >= SPECK_FRACTION * sizes.max()) + 1
    rows, cols = np.nonzero(np.isin(blobs, keep))
    return slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)


def frame(ink: np.ndarray) -> np.ndarray:
    """``ink`` centred in a square whose margin leaves the longer side 24 of 28 pixels."""
    height, width = ink.shape
    longer = max(height, width)
    side = longer * IMAGE_SIDE / (IMAGE_SIDE - 2 * MARGIN)
    size = int(np.ceil(side))
    square = np.zeros((size, size), dtype=np.float64)
    top, left = (size - height) // 2, (size - width) // 2
    square[top : top + height, left : left + width] = ink
    return square


def to_emnist(gray: np.ndarray) -> np.ndarray:
    """EMNIST's conversion of one grayscale image: upright (28, 28) uint8, ink bright on black.

    Raises:
        UserError: when the image holds no ink (a blank page).
    """
    from PIL import Image
    from scipy import ndimage

    ink = ink_strength(np.asarray(gray, dtype=np.float64))
    box = ink_box(ink)
    if box is None:
        raise UserError("no ink found: the image is blank or one flat colour")
    longer = max(box[0].stop - box[0].start, box[1].stop - box[1].start)
    blurred = ndimage.gaussian_filter(ink, sigma=BLUR_SIGMA * longer / NIST_SIDE)
    box = ink_box(blurred) or box
    square = frame(blurred[box])
    resized = Image.fromarray(square.astype(np.float32)).resize(
        (IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BICUBIC
    )
    pixels = np.clip(np.asarray(resized, dtype=np.float64), 0, None)
    return np.round(pixels * 255 / pixels.max()).astype(np.uint8)
