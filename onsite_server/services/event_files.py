"""An event's files: the roster as CSV (names, times, status) and the slots as iCalendar."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import AuditLog, Booking, Event, Member, Slot, utcnow
from .spreadsheet import safe_cell

ROSTER_COLUMNS = ("date", "start", "end", "last_name", "first_name", "status")


def roster_csv(session: Session, event: Event, zone: ZoneInfo, actor: str | None = None) -> str:
    """Return the event's roster as CSV: names, times and booking status, never health data.

    With an actor, the export is written to the audit log (who took the names away).
    """
    if actor:
        session.add(AuditLog(actor=actor, action="event.roster_exported",
                             subject=f"event:{event.public_id}", detail={}))
    rows = session.execute(
        select(Booking, Member, Slot).join(Member, Booking.member_id == Member.id)
        .join(Slot, Booking.slot_id == Slot.id)
        .where(Booking.event_id == event.id, Booking.status != "cancelled")
        .order_by(Slot.start_at, Member.last_name, Member.first_name, Booking.id)
    ).all()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(ROSTER_COLUMNS)
    for booking, member, slot in rows:
        start, end = slot.start_at.astimezone(zone), slot.end_at.astimezone(zone)
        writer.writerow([f"{start:%Y-%m-%d}", f"{start:%H:%M}", f"{end:%H:%M}",
                         safe_cell(member.last_name), safe_cell(member.first_name),
                         booking.status])
    return out.getvalue()


def _ics_text(value: str) -> str:
    """Escape an iCalendar TEXT value (RFC 5545 section 3.3.11)."""
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n"))


def _fold(line: str) -> str:
    """Fold a content line at 75 octets (RFC 5545 section 3.1), never inside a character."""
    parts: list[str] = []
    current = ""
    for char in line:
        limit = 75 if not parts else 74  # a continuation line starts with one space
        if len((current + char).encode("utf-8")) > limit:
            parts.append(current)
            current = char
        else:
            current += char
    parts.append(current)
    return "\r\n ".join(parts)


def _ics_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar_ics(event: Event, host: str = "onsite-wellness", lang: str = "en",
                 now: datetime | None = None) -> str:
    """Return the event's slots as an iCalendar file: one VEVENT per slot, times in UTC."""
    stamp = _ics_utc(now or utcnow())
    title = (event.title_es or event.title) if lang == "es" else event.title
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Onsite Wellness//Onsite server//EN",
             "CALSCALE:GREGORIAN", "METHOD:PUBLISH", f"X-WR-CALNAME:{_ics_text(title)}"]
    for slot in event.slots:
        cancelled = slot.cancelled or event.cancelled
        lines += ["BEGIN:VEVENT", f"UID:{slot.public_id}@{host}", f"DTSTAMP:{stamp}",
                  f"DTSTART:{_ics_utc(slot.start_at)}", f"DTEND:{_ics_utc(slot.end_at)}",
                  f"SUMMARY:{_ics_text(title)}",
                  f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}"]
        if event.location:
            lines.append(f"LOCATION:{_ics_text(event.location)}")
        if event.description:
            lines.append(f"DESCRIPTION:{_ics_text(event.description)}")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "".join(_fold(line) + "\r\n" for line in lines)
