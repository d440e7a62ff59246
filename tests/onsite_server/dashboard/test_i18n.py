"""English and Spanish throughout: every dashboard string has a Spanish translation."""

from __future__ import annotations

import gettext
import shutil
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import onsite_server
from onsite_server.dashboard import i18n

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


def _po_source(tmp_path: Path) -> Path:
    """A copy of the dashboard's catalogs, to edit."""
    source = tmp_path / "source"
    shutil.copytree(i18n.SOURCE, source)
    return source


def _spanish(target: Path) -> gettext.GNUTranslations:
    with (target / "es" / "LC_MESSAGES" / "messages.mo").open("rb") as fh:
        return gettext.GNUTranslations(fh)


def test_catalogs_are_compiled_once_per_process(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Every app the tests build has an instance folder of its own: the .po files are parsed
    # for the first, and the next ones get the same bytes.
    source = _po_source(tmp_path)
    parsed: list[str] = []
    real_read_po = i18n.read_po

    def counting_read_po(fh: Any, **kwargs: Any) -> Any:
        parsed.append(fh.name)
        return real_read_po(fh, **kwargs)

    monkeypatch.setattr(i18n, "read_po", counting_read_po)
    i18n.compile_catalogs(source, tmp_path / "first")
    catalogs = len(parsed)
    assert catalogs >= 1
    i18n.compile_catalogs(source, tmp_path / "second")
    assert len(parsed) == catalogs
    first = (tmp_path / "first" / "es" / "LC_MESSAGES" / "messages.mo").read_bytes()
    assert (tmp_path / "second" / "es" / "LC_MESSAGES" / "messages.mo").read_bytes() == first
    assert _spanish(tmp_path / "second").gettext("Log in") == "Iniciar sesión"


def test_an_edited_catalog_is_compiled_again(tmp_path: Path) -> None:
    source = _po_source(tmp_path)
    i18n.compile_catalogs(source, tmp_path / "before")
    po = source / "es" / "LC_MESSAGES" / "messages.po"
    text = po.read_text(encoding="utf-8")
    assert 'msgstr "Iniciar sesión"' in text
    po.write_text(text.replace('msgstr "Iniciar sesión"', 'msgstr "Entrar"'), encoding="utf-8")
    i18n.compile_catalogs(source, tmp_path / "after")
    assert _spanish(tmp_path / "before").gettext("Log in") == "Iniciar sesión"
    assert _spanish(tmp_path / "after").gettext("Log in") == "Entrar"
