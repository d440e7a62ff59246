"""Dashboard translations (English and Spanish) through Flask-Babel and gettext catalogs.

The catalogs live as ``.po`` files in ``onsite_server/translations`` (the kiosk's own strings
are in ``assets/locale`` and never mix with these). They are compiled into the instance
folder when the app starts, so a clean clone needs no build step and no binary file is
committed; a ``.mo`` is rewritten only when its ``.po`` is newer.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, flash, request, session
from flask_babel import Babel, gettext

from ..instance import ensure_private_dir, write_private
from ..services.errors import Msg, ServiceError

SOURCE = Path(__file__).resolve().parent.parent / "translations"
LANGUAGES = {"en": "English", "es": "Español"}
DEFAULT = "en"

babel = Babel()


def select_locale() -> str:
    """The language chosen with the switch, else the browser's preference, else English."""
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    return request.accept_languages.best_match(list(LANGUAGES)) or DEFAULT


def refusal(message: str) -> str:
    """A service's refusal message in the page's language (msgid and arguments kept apart)."""
    if isinstance(message, Msg):
        # An argument may itself be a message (a booking's status): translate it first.
        params = {key: refusal(value) if isinstance(value, Msg) else value
                  for key, value in message.params.items()}
        return str(gettext(message.msgid, **params))
    return str(gettext(message)) if message else message


def attach_errors(form: Any, exc: ServiceError, *, name_other_fields: bool = False,
                  fields: Mapping[str, str] | None = None, default: str | None = None) -> None:
    """Show a service's refusal, translated, next to the fields it names; a field not on the
    form is flashed instead (prefixed with its name when the message alone would not say
    which setting it means).

    ``fields`` renames the service's fields to the form's, and ``default`` is the form field
    for any other (a form with one input, such as a code or a note, shows every refusal there).
    """
    for err in exc.errors:
        field = getattr(form, (fields or {}).get(err["field"], default or err["field"]), None)
        message = refusal(err["message"])
        if field is not None and hasattr(field, "errors"):
            field.errors = [*field.errors, message]
        else:
            flash(f"{err['field']}: {message}" if name_other_fields else message, "error")


# Each catalog compiled once per process, by (path, mtime, size) of its .po: every app a
# process builds over a fresh instance folder (each test's, each test command's) would
# otherwise parse the .po files again, about 15 ms of CPU, a third of building the app.
_compiled: dict[tuple[str, int, int], bytes] = {}


def _compiled_mo(po_path: Path) -> bytes:
    """The .mo bytes of a .po catalog, compiled on first use of this version of the file."""
    stat = po_path.stat()
    key = (str(po_path), stat.st_mtime_ns, stat.st_size)
    data = _compiled.get(key)
    if data is None:
        with po_path.open("rb") as fh:
            catalog = read_po(fh, locale=po_path.parts[-3])
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        data = _compiled[key] = buffer.getvalue()
    return data


def compile_catalogs(source: Path, target: Path) -> None:
    """Compile each ``<lang>/LC_MESSAGES/*.po`` under source into target when out of date."""
    for po_path in source.glob("*/LC_MESSAGES/*.po"):
        mo_path = target / po_path.relative_to(source).with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        # The instance folder is private (0700 folders, 0600 files), this part of it too.
        for folder in reversed(mo_path.relative_to(target).parents):
            ensure_private_dir(target / folder)
        # Written aside, then renamed: several workers may start at once.
        tmp = mo_path.with_suffix(f".{os.getpid()}.tmp")
        write_private(tmp, _compiled_mo(po_path))
        os.replace(tmp, mo_path)


def init_app(app: Flask) -> None:
    """Compile the catalogs into the instance folder and bind Flask-Babel to the app."""
    target = Path(app.instance_path) / "translations"
    compile_catalogs(SOURCE, target)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(target)
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT)
    babel.init_app(app, locale_selector=select_locale)
    app.add_template_filter(refusal, "refusal")
