"""Languages and text: the one home for what language a member sees and where its words live.

Interface text is gettext: ``assets/locale/<lang>/LC_MESSAGES/<domain>.po``, English msgids.
The ``.po`` sources are the only copies in the repository; they are compiled in memory on first
use (Babel's reader and ``.mo`` writer), so a clean clone needs no build step and a stale
``.mo`` can never disagree with its source. Text that is data (instrument questions, crisis
guidance) comes as ``{"en": ..., "es": ...}`` maps, read with ``pick``.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from shared.paths import assets_dir

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "NATIVE_NAMES", "N_", "catalog_path",
           "bilingual_text", "check_language", "pick", "translations"]

LANGUAGES: tuple[str, ...] = ("en", "es")
DEFAULT_LANGUAGE = "en"
# What each language calls itself: a language button reads in the language it switches to.
NATIVE_NAMES: Mapping[str, str] = {"en": "English", "es": "Español"}


def N_(text: str) -> str:  # noqa: N802 - gettext's name for "mark, translate later"
    """Mark English text for the catalogs without translating it here (a screen will)."""
    return text


def check_language(language: str) -> str:
    """Return the language when the kiosk speaks it, or raise ValueError naming the field."""
    if language not in LANGUAGES:
        raise ValueError(f"language: must be one of {', '.join(LANGUAGES)}, got {language!r}")
    return language


def catalog_path(language: str, domain: str = "kiosk", root: Path | None = None) -> Path:
    """Return where a language's ``.po`` source lives."""
    base = root if root is not None else assets_dir() / "locale"
    return base / check_language(language) / "LC_MESSAGES" / f"{domain}.po"


@lru_cache(maxsize=8)
def translations(language: str, domain: str = "kiosk") -> gettext.GNUTranslations:
    """Return the compiled catalog for a language (compiled once per process from its .po)."""
    path = catalog_path(language, domain)
    with path.open("rb") as source:
        catalog = read_po(source, locale=language, domain=domain)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def pick(text: Mapping[str, str] | str | None, language: str) -> str:
    """Return the language's entry of an ``{"en": ..., "es": ...}`` map, falling back to English."""
    if text is None:
        return ""
    if isinstance(text, str):
        return text
    return text.get(language) or text.get(DEFAULT_LANGUAGE) or next(iter(text.values()), "")


def bilingual_text(value: object, what: str) -> Mapping[str, str]:
    """Return an immutable {en, es} text mapping, or raise ValueError."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be an object with 'en' and 'es' text")
    out: dict[str, str] = {}
    for lang, text in value.items():
        if not isinstance(lang, str) or not isinstance(text, str) or not text.strip():
            raise ValueError(f"{what} must map language codes to non-empty text")
        out[lang] = text
    missing = [lang for lang in LANGUAGES if lang not in out]
    if missing:
        raise ValueError(f"{what} lacks text in {', '.join(missing)}")
    return MappingProxyType(out)
