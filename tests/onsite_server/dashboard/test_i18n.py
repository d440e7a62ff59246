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
# The services' refusal messages, which dashboard pages show (services/errors.py's N_).
SERVICE_METHODS = [("services/**.py", "python")]
SERVICE_KEYWORDS = {"N_": None}


def _catalog():  # type: ignore[no-untyped-def]
    with CATALOG.open("rb") as fh:
        return read_po(fh, locale="es")


def _extracted(methods: list[tuple[str, str]], keywords: dict[str, object]) -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(PACKAGE), methods, keywords=keywords):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_dashboard_string_has_spanish() -> None:
    translated = {m.id for m in _catalog() if m.id and m.string and not m.fuzzy}
    found = _extracted(METHODS, KEYWORDS)
    assert found, "no strings extracted: the extraction patterns are wrong"
    missing = sorted(found - translated)
    assert not missing, f"run scripts/dashboard-i18n.sh and translate: {missing}"


def test_every_service_refusal_has_spanish() -> None:
    translated = {m.id for m in _catalog() if m.id and m.string and not m.fuzzy}
    found = _extracted(SERVICE_METHODS, SERVICE_KEYWORDS)
    assert "is required" in found, "no N_ messages extracted: the pattern is wrong"
    missing = sorted(found - translated)
    assert not missing, f"run scripts/dashboard-i18n.sh and translate: {missing}"


def test_no_entry_is_left_untranslated_or_fuzzy() -> None:
    untranslated = sorted(m.id for m in _catalog() if m.id and (not m.string or m.fuzzy))
    assert not untranslated, f"translate these in messages.po: {untranslated}"


def test_translations_keep_their_placeholders() -> None:
    # Babel's python-format check: a Spanish text that drops or renames a %(name)s would
    # raise at render time, on the Spanish page only.
    problems = [(message.id, [str(e) for e in errors]) for message, errors in _catalog().check()]
    assert not problems, problems
