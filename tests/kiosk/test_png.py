"""The screenshots' PNG writer (kiosk/ui/png.py), read back by Pillow (libpng, not ours)."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from kiosk.ui.png import rgb_png


def _pixels(width: int, height: int, stride: int, seed: int) -> tuple[bytes, list[bytes]]:
    """Random rows padded to ``stride``, and each row's RGB bytes without the padding."""
    rng = random.Random(seed)
    rows = [bytes(rng.randrange(256) for _ in range(width * 3)) for _ in range(height)]
    padded = b"".join(row + b"\xee" * (stride - width * 3) for row in rows)
    return padded, rows


@pytest.mark.parametrize(("width", "height", "stride"), [(1, 1, 3), (5, 3, 16), (64, 40, 192)])
def test_rows_read_back_exactly_top_down(width: int, height: int, stride: int) -> None:
    pixels, rows = _pixels(width, height, stride, seed=width)
    image = Image.open(io.BytesIO(rgb_png(width, height, pixels)))
    assert (image.size, image.mode) == ((width, height), "RGB")
    assert image.tobytes() == b"".join(rows)


def test_bottom_up_rows_as_opengl_reads_them_come_out_upright() -> None:
    pixels, rows = _pixels(7, 4, 24, seed=1)
    image = Image.open(io.BytesIO(rgb_png(7, 4, pixels, bottom_up=True)))
    assert image.tobytes() == b"".join(reversed(rows))
    # The first row given (the window's bottom in OpenGL) is the picture's last.
    assert image.getpixel((0, 3)) == tuple(rows[0][:3])


def test_a_wrong_size_is_refused_naming_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="pixels: 10 bytes cannot hold 2 rows of 2 RGB"):
        rgb_png(2, 2, b"\x00" * 10)
    with pytest.raises(ValueError, match="size: width and height must be positive, got 0x3"):
        rgb_png(0, 3, b"")
