"""Draw the kiosk's two device pictures (assets/kiosk/images/device_*.png) with Pillow.

Plain line drawings, made here rather than taken from elsewhere, so they carry no licence of
their own: an upper arm with the cuff just above the elbow, its tube to the monitor and the
monitor's start button circled; a floor scale with two bare feet on it. Run again after a
change: ``python scripts/draw_device_pictures.py``.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "assets" / "kiosk" / "images"
W, H = 720, 420
INK = (20, 30, 50, 255)
SKIN = (236, 200, 170, 255)
CUFF = (5, 84, 153, 255)
SCREEN = (210, 230, 210, 255)
START = (170, 30, 30, 255)


def cuff() -> Image.Image:
    """An upper arm resting on a table, the cuff on it, the monitor with its start button."""
    image = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 330, 700, 350), fill=(190, 190, 200, 255), outline=INK, width=3)
    draw.rounded_rectangle((30, 250, 430, 330), radius=40, fill=SKIN, outline=INK, width=4)
    draw.rounded_rectangle((170, 238, 330, 342), radius=18, fill=CUFF, outline=INK, width=4)
    draw.line((250, 238, 300, 160, 470, 160, 500, 200), fill=INK, width=6, joint="curve")
    draw.rounded_rectangle((480, 170, 690, 330), radius=20, fill=(245, 245, 250, 255),
                           outline=INK, width=4)
    draw.rectangle((505, 190, 665, 250), fill=SCREEN, outline=INK, width=3)
    draw.ellipse((555, 262, 615, 322), fill=START, outline=INK, width=4)
    draw.ellipse((535, 242, 635, 342), outline=START, width=6)  # "press here"
    return image


def scale() -> Image.Image:
    """A floor scale seen from above, two bare feet on it."""
    image = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((180, 20, 540, 400), radius=50, fill=(245, 245, 250, 255),
                           outline=INK, width=5)
    draw.rectangle((300, 45, 420, 95), fill=SCREEN, outline=INK, width=3)
    for x in (250, 390):
        draw.ellipse((x, 150, x + 80, 360), fill=SKIN, outline=INK, width=4)
        for toe in range(5):
            draw.ellipse((x + 4 + toe * 15, 120 + abs(2 - toe) * 6, x + 20 + toe * 15,
                          140 + abs(2 - toe) * 6), fill=SKIN, outline=INK, width=2)
    return image


def main() -> None:
    """Write both pictures."""
    OUT.mkdir(parents=True, exist_ok=True)
    cuff().save(OUT / "device_cuff.png", optimize=True)
    scale().save(OUT / "device_scale.png", optimize=True)


if __name__ == "__main__":
    main()
