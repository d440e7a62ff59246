"""Find the kiosk's interface text and keep the gettext catalogs in step with it.

The msgids are the English strings the code and the kv files mark: ``tr._("...")`` (kv and
the screens) and ``N_("...")`` (plain-Python text translated later, by a screen). Run
``python -m kiosk.messages`` after changing text: it adds new msgids to every catalog (empty
in ``es``, to be translated) and drops ones no longer used; tests fail while a catalog is out
of step or a Spanish entry is missing.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from shared.i18n import LANGUAGES, catalog_path

ROOT = Path(__file__).resolve().parent
_KV_CALL = re.compile(r'tr\._\(\s*"((?:[^"\\]|\\.)*)"\s*\)')


def _from_python(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        marked = (isinstance(func, ast.Name) and func.id == "N_") or (
            isinstance(func, ast.Attribute) and func.attr == "_" and
            isinstance(func.value, ast.Name) and func.value.id == "tr")
        first = node.args[0]
        if marked and isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.add(first.value)
    return found


def _from_kv(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return {ast.literal_eval(f'"{m}"') for m in _KV_CALL.findall(text)}


def msgids(root: Path = ROOT) -> set[str]:
    """Every msgid the kiosk's sources mark for translation."""
    found: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        found |= _from_python(path)
    for path in sorted(root.rglob("*.kv")):
        found |= _from_kv(path)
    found.discard("")
    return found


def read_catalog(language: str) -> Catalog:
    """Read a language's kiosk catalog (an empty one when it does not exist yet)."""
    path = catalog_path(language)
    if not path.exists():
        return Catalog(locale=language, domain="kiosk")
    with path.open("rb") as source:
        return read_po(source, locale=language, domain="kiosk")


def update(root: Path = ROOT) -> dict[str, list[str]]:
    """Bring every catalog in step with the sources; return what is untranslated per language."""
    wanted = msgids(root)
    missing: dict[str, list[str]] = {}
    for language in LANGUAGES:
        old = read_catalog(language)
        # The dates are kept from the previous catalog so that an update with no new text
        # writes the same file.
        new = Catalog(locale=language, domain="kiosk", project="Onsite Wellness kiosk",
                      version="1", creation_date=old.creation_date,
                      revision_date=old.revision_date, fuzzy=False,
                      header_comment=f"# Onsite Wellness kiosk: {language} interface text.\n"
                                     "# msgids are the English text; see kiosk/messages.py.")
        for msgid in sorted(wanted):
            previous = old.get(msgid)
            text = previous.string if previous is not None and previous.string else ""
            if language == "en" and not text:
                text = msgid
            new.add(msgid, text)
            if not text:
                missing.setdefault(language, []).append(msgid)
        path = catalog_path(language)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            write_po(out, new, width=100, omit_header=False, sort_output=True,
                     include_lineno=False)
    return missing


def main() -> None:
    """Console entry: update the catalogs and list what still needs translating."""
    missing = update()
    for language, ids in missing.items():
        print(f"{language}: {len(ids)} untranslated", file=sys.stderr)
        for msgid in ids:
            print(f"  {msgid}", file=sys.stderr)
    sys.exit(1 if missing else 0)


if __name__ == "__main__":
    main()
