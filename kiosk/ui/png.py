"""A window's pixels as a PNG file, written for speed (the tour's and the UI tests' screenshots).

Kivy's own ``Window.screenshot`` hands the pixels to SDL_image, whose libpng tries every row
filter at zlib level 6: 57-63 ms of CPU for one 1080x1920 screenshot here, about a quarter of
a layout walk's CPU (docs/BENCHMARKS.md, "Session 15"). Rows without a filter at zlib level 1
take about 14 ms and a file about half as large again; any PNG reader reads either.
"""

from __future__ import annotations

import struct
import zlib

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Level 1 took 14 ms where level 6 took 34 ms (both without filters), for a file 1.5 times as
# large: these are pictures to look at, kept for a run, not shipped.
_LEVEL = 1


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def rgb_png(width: int, height: int, pixels: bytes, *, bottom_up: bool = False) -> bytes:
    """Encode 8-bit RGB rows (``bottom_up`` as OpenGL reads them) as a PNG file's bytes."""
    if width <= 0 or height <= 0:
        raise ValueError(f"size: width and height must be positive, got {width}x{height}")
    row = width * 3
    # glReadPixels pads each row to its pack alignment: the stride may exceed a row.
    stride, extra = divmod(len(pixels), height)
    if extra or stride < row:
        raise ValueError(f"pixels: {len(pixels)} bytes cannot hold {height} rows of "
                         f"{width} RGB pixels")
    order = range(height - 1, -1, -1) if bottom_up else range(height)
    # Each row is prefixed by its filter type, 0 (none).
    raw = b"".join(b"\x00" + pixels[y * stride:y * stride + row] for y in order)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, _LEVEL))
            + _chunk(b"IEND", b""))
