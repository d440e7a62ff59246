"""shared.qr: codes decode back to their exact text (zxing-cpp), PNG and SVG alike."""

from __future__ import annotations

import io
from datetime import timedelta

import PIL.Image
import zxingcpp

from shared.qr import qr_png, qr_svg, vcard
from shared.tokens import KeyRing, Purpose, SigningKey, mint, verify


def _decode_png(data: bytes) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(PIL.Image.open(io.BytesIO(data)),
                                                   formats=zxingcpp.BarcodeFormat.QRCode)]


def _decode_svg(svg: str) -> list[str]:
    import cairosvg  # here, not at the top: it takes half a second of every collection

    png = cairosvg.svg2png(bytestring=svg.encode(), output_width=600, background_color="white")
    return _decode_png(png)


def test_a_token_url_survives_png_and_svg() -> None:
    key = SigningKey.generate(Purpose.ADVOCATE_LINK)
    ring = KeyRing()
    ring.add(key.public, key.purpose)
    token = mint(key, {"subject": "5d1c2e7a-0b4f-4c3e-8a9d-1f2e3d4c5b6a", "advocate": "adv-1"},
                 lifetime=timedelta(days=365))
    url = f"http://127.0.0.1:8701/connect/{token}"
    for decoded in (_decode_png(qr_png(url)), _decode_svg(qr_svg(url))):
        assert decoded == [url]
        verify(decoded[0].rsplit("/", 1)[1], ring, purpose=Purpose.ADVOCATE_LINK)


def test_png_is_about_the_size_asked() -> None:
    image = PIL.Image.open(io.BytesIO(qr_png("hello", size_px=450)))
    assert 300 <= image.width <= 450 and image.width == image.height


def test_vcard_round_trips_through_a_code() -> None:
    card = vcard("Pat Advocate", phone="+1 555 010 0100", email="pat@advocates.example",
                 organization="Onsite Wellness; Advocates")
    assert _decode_png(qr_png(card)) == [card]
    assert "N:Advocate;Pat;;;" in card and "ORG:Onsite Wellness\\; Advocates" in card
    assert card.startswith("BEGIN:VCARD\r\nVERSION:3.0\r\n") and card.endswith("END:VCARD\r\n")
