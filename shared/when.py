"""Times and places as a member reads them: in the site's clock, in the member's language.

Every time a member sees is the site's wall-clock time (a booking is stored in UTC; a member in
New York who read "15:10" for 10:10 would come five hours late). Words and order come from
CLDR through Babel, never from a hand-written format: "Mon, Dec 7 · 10:10 AM · Room B" in
English, "lun, 7 de dic · 10:10 a.m. · Room B" in Spanish.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton, format_time

__all__ = ["LOCALES", "SEPARATOR", "format_day", "format_when", "format_when_where",
           "site_time"]

# The kiosk's languages as CLDR locales. Sites are in the United States (988 and 911 are the
# crisis lines), so Spanish is US Spanish: a 12-hour clock, as members there read it.
LOCALES: Mapping[str, str] = {"en": "en_US", "es": "es_US"}
SEPARATOR = " \u00b7 "  # a middle dot between day, time and place


def _locale(language: str) -> str:
    try:
        return LOCALES[language]
    except KeyError:
        raise ValueError(f"language: must be one of {', '.join(LOCALES)}, "
                         f"got {language!r}") from None


def site_time(moment: datetime, timezone: str) -> datetime:
    """Return the moment on the site's clock; a naive moment is refused (it has no zone)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("moment: must carry a time zone (UTC or an offset)")
    return moment.astimezone(ZoneInfo(timezone))


def format_day(moment: datetime, timezone: str, language: str) -> str:
    """The weekday and date on the site's clock: "Mon, Dec 7" / "lun, 7 de dic"."""
    return format_skeleton("MMMEd", site_time(moment, timezone), locale=_locale(language))


def format_when(moment: datetime, timezone: str, language: str) -> str:
    """The weekday, date and time on the site's clock: "Mon, Dec 7 · 10:10 AM"."""
    local = site_time(moment, timezone)
    locale = _locale(language)
    return SEPARATOR.join((format_skeleton("MMMEd", local, locale=locale),
                           format_time(local, "short", locale=locale)))


def format_when_where(moment: datetime, timezone: str, language: str,
                      place: str | None) -> str:
    """Day, time and (when there is one) place: "Mon, Dec 7 · 10:10 AM · Room B"."""
    when = format_when(moment, timezone, language)
    return SEPARATOR.join((when, place.strip())) if place and place.strip() else when
