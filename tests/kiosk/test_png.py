"""The screenshots' writer (kiosk.ui.driver.save_gl_rgb): OpenGL's bottom-up rows, upright."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image

from kiosk.ui.driver import save_gl_rgb


def _rows(width: int, height: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [bytes(rng.randrange(256) for _ in range(width * 3)) for _ in range(height)]


def test_bottom_up_rows_as_opengl_reads_them_come_out_upright_and_exact(tmp_path: Path) -> None:
    rows = _rows(64, 40, seed=1)
    path = tmp_path / "shots" / "screen.png"
    save_gl_rgb(path, 64, 40, b"".join(rows))
    with Image.open(path) as image:
        assert (image.format, image.size, image.mode) == ("PNG", (64, 40), "RGB")
        assert image.tobytes() == b"".join(reversed(rows))
        # The first row OpenGL gives (the window's bottom) is the picture's last.
        assert image.getpixel((0, 39)) == tuple(rows[0][:3])
