"""English and Spanish throughout: every dashboard string has a Spanish translation."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import onsite_server

PACKAGE = Path(onsite_server.__file__).parent
CATALOG = PACKAGE / "translations" / "es" / "LC_MESSAGES" / "messages.po"
METHODS = [("dashboard/**.py", "python"), ("advocate/**.py", "python"),
           ("templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}


def test_every_dashboard_string_has_spanish() -> None:
    with CATALOG.open("rb") as fh:
        catalog = read_po(fh, locale="es")
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(PACKAGE), METHODS, keywords=KEYWORDS):
        found.add(message if isinstance(message, str) else message[0])
    assert found, "no strings extracted: the extraction patterns are wrong"
    missing = sorted(found - translated)
    assert not missing, f"run scripts/dashboard-i18n.sh and translate: {missing}"
