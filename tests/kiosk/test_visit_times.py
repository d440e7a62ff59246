"""Bookings as the member reads them: the site's clock, the member's language, the place."""

from __future__ import annotations

from datetime import UTC, datetime

from kiosk.flow import MENU, QR
from kiosk.visit import Visit
from tests.kiosk.ui.fakes import FakeBackend

NARROW = "\u202f"  # CLDR's narrow no-break space before AM/PM


def _signed_in(language: str = "en", *, timezone: str = "America/New_York",
               title_es: str | None = "Vacunas contra la gripe") -> tuple[Visit, FakeBackend]:
    fake = FakeBackend()
    catalog = fake._catalog
    event = catalog.events[0]
    title = {"en": "Flu shot clinic", **({"es": title_es} if title_es else {})}
    fake._catalog = catalog.model_copy(update={
        "site": catalog.site.model_copy(update={"timezone": timezone}),
        "events": [event.model_copy(update={"title": title, "location": "Room B"})]})
    visit = Visit(fake, language=language)
    visit.fire("start")
    visit.fire("accept")
    assert visit.identify("E1001", "03141985") and visit.screen == MENU
    visit.journey.language = language  # as the language button does
    return visit, fake


def test_a_booking_reads_in_the_site_clock_with_weekday_and_place() -> None:
    visit, _ = _signed_in()
    visit.fire("booking")
    visit.choose_event("ev-1")
    slot = visit.slots()[0]
    assert slot.start_at == datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    assert visit.when(slot.start_at) == f"Thu, Dec 3 \u00b7 10:00{NARROW}AM"
    assert visit.book_slot(slot.id) == QR
    visit.load_bookings()
    (booking,) = visit.bookings
    title, when = visit.booking_summary(booking)
    # The server's booking carries UTC (15:00): the member must read 10:00, New York time.
    assert (title, when) == ("Flu shot clinic", f"Thu, Dec 3 \u00b7 10:00{NARROW}AM \u00b7 Room B")


def test_spanish_words_and_the_other_language_when_the_coordinator_gave_none() -> None:
    visit, _ = _signed_in("es", timezone="America/Chicago")
    visit.fire("booking")
    visit.choose_event("ev-1")
    assert visit.event is not None and visit.event_title(visit.event) == "Vacunas contra la gripe"
    assert visit.book_slot(visit.slots()[0].id) == QR
    assert visit.booked is not None
    assert visit.booking_summary(visit.booked) == (
        "Vacunas contra la gripe", f"jue, 3 de dic \u00b7 9:00{NARROW}a.m. \u00b7 Room B")
    no_spanish, _ = _signed_in("es", title_es=None)
    assert no_spanish.event_title(no_spanish.events()[0]) == "Flu shot clinic"


def test_after_a_booking_its_ticket_comes_before_the_advocate_link() -> None:
    visit, _ = _signed_in()
    visit.fire("booking")
    visit.choose_event("ev-1")
    assert visit.book_slot(visit.slots()[0].id) == QR
    assert [c.kind for c in visit.qr_codes()] == ["ticket", "advocate", "vcard"]


def test_the_description_in_the_visit_language_or_the_other_one() -> None:
    from shared.schemas.catalog import CatalogEvent

    visit, fake = _signed_in("es")
    event = fake._catalog.events[0]
    both = event.model_copy(update={"description": {"en": "Bring your card.",
                                                    "es": "Traiga su tarjeta."}})
    only_en = CatalogEvent.model_validate({**event.model_dump(), "description": "Bring it."})
    assert visit.event_description(both) == "Traiga su tarjeta."
    assert visit.event_description(only_en) == "Bring it."  # an older cache's plain text
    assert visit.event_description(event) == ""
