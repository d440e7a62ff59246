"""QR codes for the kiosk (PNG) and web pages (SVG), and the vCard a contact QR carries.

Error correction M (15% of the code may be damaged) is the usual choice for codes shown on a
screen and scanned by a phone; a quiet zone of four modules is what the standard asks for.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import qrcode

__all__ = ["qr_png", "qr_svg", "vcard"]

_QUIET_ZONE = 4


def _code(text: str) -> qrcode.QRCode:
    # Imported here: qrcode brings Pillow, about 75 ms of every server process's start-up
    # (each CLI command, gunicorn worker and sync worker builds the app), and only a page or
    # a screen that shows a code needs it.
    import qrcode
    import qrcode.constants

    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=_QUIET_ZONE,
                         box_size=10)
    code.add_data(text.encode("utf-8"))
    code.make(fit=True)
    return code


def qr_png(text: str, *, size_px: int = 450) -> bytes:
    """Render text as a black-on-white QR code PNG about ``size_px`` wide."""
    code = _code(text)
    modules = code.modules_count + 2 * _QUIET_ZONE
    code.box_size = max(2, size_px // modules)
    image = code.make_image(fill_color="black", back_color="white")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def qr_svg(text: str) -> str:
    """Render text as a standalone SVG QR code (scales to its container on a web page)."""
    import qrcode.image.svg

    code = _code(text)
    image = code.make_image(image_factory=qrcode.image.svg.SvgPathFillImage)
    svg: str = image.to_string(encoding="unicode")
    return svg


def _escape(value: str) -> str:
    """Escape a vCard text value (RFC 6350 §3.4): backslash, comma, semicolon, newline."""
    return (value.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;")
            .replace("\r\n", "\\n").replace("\n", "\\n"))


def vcard(name: str, *, phone: str | None = None, email: str | None = None,
          title: str | None = None, organization: str | None = None) -> str:
    """Return a vCard 3.0 with public contact details only (phones read 3.0 most widely)."""
    given, _, family = name.strip().rpartition(" ")
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"FN:{_escape(name)}",
             f"N:{_escape(family)};{_escape(given)};;;"]
    if organization:
        lines.append(f"ORG:{_escape(organization)}")
    if title:
        lines.append(f"TITLE:{_escape(title)}")
    if phone:
        lines.append(f"TEL;TYPE=WORK,VOICE:{_escape(phone)}")
    if email:
        lines.append(f"EMAIL;TYPE=INTERNET:{_escape(email)}")
    lines.append("END:VCARD")
    return "\r\n".join(lines) + "\r\n"
