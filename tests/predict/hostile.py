"""Hostile inputs written cheaply: decompression bombs (large, highly compressible PNGs with a
little ink) and a header that claims more pixels than it holds."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int, ink: bool = True) -> bytes:
    """A grayscale PNG of ``width`` x ``height`` white pixels (a dark bar in the middle when
    ``ink``), written row by row: megapixels in kilobytes, without holding the image."""
    white = b"\x00" + b"\xff" * width
    inked = bytearray(white)
    inked[1 + width * 2 // 5 : 1 + width * 3 // 5] = b"\x00" * (width * 3 // 5 - width * 2 // 5)
    packer = zlib.compressobj(9)
    stream = []
    for row in range(height):
        has_ink = ink and height // 4 <= row < height * 3 // 4
        stream.append(packer.compress(bytes(inked) if has_ink else white))
    stream.append(packer.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", b"".join(stream))
        + _chunk(b"IEND", b"")
    )


def header_only_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` and whose data is one empty row."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\x00" * 2)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", data)
        + _chunk(b"IEND", b"")
    )


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
