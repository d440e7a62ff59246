"""Times as a member reads them: on the site's clock, in CLDR's words for the language."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.when import format_day, format_when, format_when_where, site_time

# 15:10 UTC on Monday 7 December 2026 is 10:10 in New York (EST, UTC-5).
BOOKED = datetime(2026, 12, 7, 15, 10, tzinfo=UTC)
NARROW = "\u202f"  # CLDR puts a narrow no-break space before AM/PM


def test_a_utc_time_is_shown_on_the_site_clock_with_weekday_date_and_place() -> None:
    shown = format_when_where(BOOKED, "America/New_York", "en", "Room B")
    assert shown == f"Mon, Dec 7 \u00b7 10:10{NARROW}AM \u00b7 Room B"
    assert "15:10" not in shown and "3:10" not in shown


def test_spanish_reads_as_us_spanish() -> None:
    shown = format_when_where(BOOKED, "America/New_York", "es", "Room B")
    assert shown == f"lun, 7 de dic \u00b7 10:10{NARROW}a.m. \u00b7 Room B"


@pytest.mark.parametrize(("zone", "expected"), [
    ("America/Chicago", f"Mon, Dec 7 \u00b7 9:10{NARROW}AM"),
    ("America/Los_Angeles", f"Mon, Dec 7 \u00b7 7:10{NARROW}AM"),
    ("Pacific/Honolulu", f"Mon, Dec 7 \u00b7 5:10{NARROW}AM"),
])
def test_each_site_reads_its_own_clock(zone: str, expected: str) -> None:
    assert format_when(BOOKED, zone, "en") == expected


def test_the_date_follows_the_site_across_midnight() -> None:
    late = datetime(2026, 12, 8, 2, 30, tzinfo=UTC)  # 21:30 on the 7th in New York
    assert format_day(late, "America/New_York", "en") == "Mon, Dec 7"
    assert format_day(late, "UTC", "en") == "Tue, Dec 8"


def test_no_place_no_trailing_separator() -> None:
    assert format_when_where(BOOKED, "America/New_York", "en", "  ") == \
        format_when(BOOKED, "America/New_York", "en")


def test_a_naive_time_and_an_unknown_language_are_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="moment"):
        site_time(datetime(2026, 12, 7, 15, 10), "America/New_York")
    with pytest.raises(ValueError, match="language"):
        format_when(BOOKED, "America/New_York", "fr")
