"""The contact sheet of a prediction: each input, what the model saw, and its top characters."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from emnist_bench.figures import new_figure, save

COLUMNS = 4
"""Inputs per row; each takes two panels (the input, then the 28x28 the model saw)."""
MAX_ITEMS = 48
"""At most this many inputs on one sheet (the first ones); the title says how many were left."""
THUMBNAIL = 160
"""The input's longer side on the sheet, in pixels (large photos are shrunk first)."""


def thumbnail(gray: np.ndarray) -> np.ndarray:
    """``gray`` shrunk so that its longer side is at most :data:`THUMBNAIL` pixels."""
    from PIL import Image

    image = Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8))
    image.thumbnail((THUMBNAIL, THUMBNAIL), Image.Resampling.LANCZOS)
    return np.asarray(image)


def contact_sheet_figure(
    names: Sequence[str],
    originals: Sequence[np.ndarray],
    seen: np.ndarray,
    tops: Sequence[Sequence[dict]],
    max_items: int = MAX_ITEMS,
) -> Figure:
    """A grid: per input, its image titled with its name, then the 28x28 image the model was
    given, titled with the likeliest character and its probability, the next ones beneath.

    Args:
        names: The inputs' names (file names).
        originals: The inputs as grayscale arrays, any size (thumbnails keep a sheet small).
        seen: The converted images, (N, 28, 28) uint8.
        tops: Per input, the top characters as ``{"label", "probability"}`` dicts.
        max_items: Show at most this many (the first).
    """
    shown = min(len(names), max_items)
    if shown == 0:
        raise ValueError("there are no images to show")
    columns = min(COLUMNS, shown)
    rows = math.ceil(shown / columns)
    fig = new_figure(2.6 * columns, 1.65 * rows + 0.4)
    axes = fig.subplots(rows, 2 * columns, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for index in range(shown):
        row, column = divmod(index, columns)
        given, model_view = axes[row, 2 * column], axes[row, 2 * column + 1]
        given.imshow(thumbnail(originals[index]), cmap="gray", vmin=0, vmax=255)
        given.set_title(_short(names[index]), fontsize=7, parse_math=False)  # names are text
        model_view.imshow(seen[index], cmap="gray", vmin=0, vmax=255)
        best, *others = tops[index]
        model_view.set_title(f"{best['label']}  {best['probability']:.0%}", fontsize=10,
                             parse_math=False)  # fmt: skip
        rest = "  ".join(f"{item['label']} {item['probability']:.0%}" for item in others)
        model_view.text(0.5, -0.08, rest, transform=model_view.transAxes, ha="center", va="top",
                        fontsize=7, parse_math=False)  # fmt: skip
    left_out = len(names) - shown
    title = "input  |  what the model saw: top characters"
    if left_out:
        title += f"  (the first {shown} of {len(names)} images)"
    fig.suptitle(title, fontsize=9)
    return fig


def write_contact_sheet(path: Path, *arguments, **keywords) -> Path:
    """Draws :func:`contact_sheet_figure` and saves it as PNG at ``path``."""
    return save(contact_sheet_figure(*arguments, **keywords), path)


def _short(name: str, width: int = 22) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]
