"""Image files and uploads read with bounded work, whatever their size or kind.

Only the header is read before the size is checked against a pixel budget; a JPEG is decoded
at a reduced scale, and every image is shrunk to a working size (longest side
:data:`WORKING_SIDE`) before the conversion's blur and threshold, so time and memory per image
are bounded. Only PNG and JPEG are read, recognised by their content, never by their name, and
only from regular files (a FIFO named ``x.png`` is refused, not waited on). ``predict`` and
``serve`` both read through :func:`read_image`.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import warnings
from pathlib import Path

import numpy as np

from emnist_bench.errors import UserError, reason

MAX_PIXELS = 40_000_000
"""The largest image read by default, in pixels (``--max-pixels``)."""
WORKING_SIDE = 1024
"""Images are shrunk so that their longer side is at most this, before the conversion."""
SUFFIXES = (".png", ".jpg", ".jpeg")
SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}
OTHER_KINDS = {b"GIF8": "GIF", b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"BM": "BMP",
               b"RIFF": "RIFF (WebP?)", b"%PDF": "PDF"}  # fmt: skip


class ImageTooLarge(UserError):
    """An image above the pixel budget (``serve`` answers 413)."""


def text_name(path: Path | str) -> str:
    """``path`` as UTF-8 text: bytes of a name that are not UTF-8 become U+FFFD."""
    return os.fsencode(path).decode("utf-8", "replace")


def printable(text: str) -> str:
    """``text`` with control characters (a terminal's escape codes) replaced by U+FFFD."""
    return "".join(c if c.isprintable() else "\ufffd" for c in text)


def too_large(pixels: float, max_pixels: int) -> str:
    return (
        f"{pixels / 1e6:.1f} megapixels, above the limit of {max_pixels / 1e6:g} megapixels; "
        "pass --max-pixels N to raise it"
    )


def read_image(source: Path | str | bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A PNG or JPEG (a path or its bytes) as grayscale float (H, W) in 0-255, its longer side
    at most :data:`WORKING_SIDE`.

    Transparent pixels are laid on the colour that contrasts with the visible ones, so a
    drawing on a transparent background keeps its strokes.

    Raises:
        ImageTooLarge: when the image has more than ``max_pixels`` pixels (read from its header).
        UserError: when the file is missing, not a regular file, or not a readable PNG or JPEG.
    """
    name = "the image" if isinstance(source, bytes) else text_name(source)
    data = io.BytesIO(source) if isinstance(source, bytes) else _open_regular(source, name)
    with data:
        image = _decode(data, name, max_pixels)
    if image.mode == "RGBA":
        rgba = np.asarray(image, dtype=np.float64)
        gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114])
        alpha = rgba[..., 3] / 255
        visible = gray[alpha > 0.5]
        under = 255.0 if visible.size == 0 or np.median(visible) < 128 else 0.0
        return gray * alpha + under * (1 - alpha)
    return np.asarray(image, dtype=np.float64)


def _open_regular(path: Path | str, name: str):
    """The file opened for reading, refused unless it is a regular file; never blocks."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError as error:
        raise UserError(f"{name}: not found") from error
    except PermissionError as error:
        raise UserError(f"{name}: permission denied") from error
    except OSError as error:
        raise UserError(f"{name}: cannot be read ({error.strerror})") from error
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO, socket or device"
        raise UserError(f"{name}: not a regular file ({kind}); give a PNG or JPEG file")
    return os.fdopen(descriptor, "rb")


def _decode(data, name: str, max_pixels: int):
    """The image in ``data``, mode ``L`` or ``RGBA``, upright and at most the working size."""
    from PIL import Image, ImageOps

    head = data.read(8)
    data.seek(0)
    if not any(head.startswith(signature) for signature in SIGNATURES):
        kind = next((k for sig, k in OTHER_KINDS.items() if head.startswith(sig)), None)
        raise UserError(f"{name}: not a PNG or JPEG image" + (f" (it is {kind})" if kind else ""))
    # Pillow's own bomb warning: the budget below is the limit that applies (set for the
    # process: catch_warnings is not thread-safe, and serve reads in threads).
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    try:
        with Image.open(data, formats=list(SIGNATURES.values())) as opened:
            width, height = opened.size
            if width * height > max_pixels:
                raise ImageTooLarge(
                    f"{name}: {width} x {height} = {too_large(width * height, max_pixels)}"
                )
            opened.draft("L", (WORKING_SIDE, WORKING_SIDE))  # JPEG: decode at 1/2..1/8
            transparent = opened.mode in ("RGBA", "LA", "PA") or "transparency" in opened.info
            mode = "RGBA" if transparent else "L"
            image = opened if opened.mode == mode else opened.convert(mode)  # no full copy
            image.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BICUBIC)
            return ImageOps.exif_transpose(image)  # a phone's photo the way it was held
    except Image.DecompressionBombError as error:
        raise ImageTooLarge(
            f"{name}: {too_large(2 * Image.MAX_IMAGE_PIXELS, max_pixels)}"
        ) from error
    except UserError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError,
            KeyError, TypeError, ZeroDivisionError) as error:  # fmt: skip
        raise UserError(f"{name}: not a readable PNG or JPEG image ({reason(error)})") from error


def image_files(sources: list[Path | str]) -> list[Path]:
    """The paths named, folders expanded to the PNG and JPEG files in them (sorted by name).

    A path that is missing, or a folder with no image, stays in the list: reading it says why.
    """
    found: list[Path] = []
    for source in map(Path, sources):
        inside = []
        if source.is_dir():
            inside = sorted(
                p for p in source.iterdir() if p.suffix.lower() in SUFFIXES and not p.is_dir()
            )
        found.extend(inside or [source])
    return found
