"""One's own handwriting as EMNIST saw its characters: the conversion of Cohen et al. (2017).

EMNIST turned each 128x128 NIST character into a 28x28 image by a Gaussian blur, a crop to the
ink's bounding box, centring in a square frame (aspect ratio kept) with a 2-pixel margin, a
resize to 28x28 and a scaling of the intensities to 0-255. :func:`to_emnist` does the same to a
photo or scan of any size, dark ink on light paper or the reverse, after separating the ink from
the paper; the result is an upright (28, 28) uint8 image, bright ink on black, as the models
take it.
"""

from __future__ import annotations

import io
from pathlib import Path

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
SUFFIXES = (".png", ".jpg", ".jpeg")


def read_image(source: Path | str | bytes) -> np.ndarray:
    """A PNG or JPEG (a path or its bytes) as grayscale float (H, W) in 0-255.

    Transparent pixels are laid on the colour that contrasts with the visible ones, so a
    drawing on a transparent background keeps its strokes. Raises :class:`UserError` when the
    file is missing or not an image.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = "the image" if isinstance(source, bytes) else str(source)
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as opened:
            image = ImageOps.exif_transpose(opened)  # a phone's photo the way it was held
            image.load()
    except FileNotFoundError as error:
        raise UserError(f"{name}: not found") from error
    except UnidentifiedImageError as error:
        raise UserError(f"{name}: not a readable PNG or JPEG image") from error
    except (OSError, ValueError) as error:
        raise UserError(f"{name}: not a readable PNG or JPEG image ({error})") from error
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float64)
        gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114])
        alpha = rgba[..., 3] / 255
        visible = gray[alpha > 0.5]
        under = 255.0 if visible.size == 0 or np.median(visible) < 128 else 0.0
        return gray * alpha + under * (1 - alpha)
    return np.asarray(image.convert("L"), dtype=np.float64)


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


def image_files(sources: list[Path | str]) -> list[Path]:
    """The image files named, folders expanded to their PNG and JPEG files (sorted).

    Raises:
        UserError: when a path is missing or a folder holds no image.
    """
    found: list[Path] = []
    for source in map(Path, sources):
        if source.is_dir():
            inside = sorted(p for p in source.iterdir() if p.suffix.lower() in SUFFIXES)
            if not inside:
                raise UserError(f"{source}: no PNG or JPEG files in this folder")
            found.extend(inside)
        elif source.is_file():
            found.append(source)
        else:
            raise UserError(f"{source}: not found")
    return found


def convert_files(paths: list[Path], keep: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """EMNIST's (N, 28, 28) uint8 version of each file, and the first ``keep`` files' grayscale
    images (for a contact sheet; the rest are not held in memory).

    Raises:
        UserError: naming the file when one is unreadable or blank.
    """
    kept, converted = [], []
    for path in paths:
        gray = read_image(path)
        try:
            converted.append(to_emnist(gray))
        except UserError as error:
            raise UserError(f"{path}: {error}") from error
        if len(kept) < keep:
            kept.append(gray)
    return kept, np.stack(converted) if converted else np.zeros(
        (0, IMAGE_SIDE, IMAGE_SIDE), np.uint8
    )
