"""Seeded report data in bulk (Core inserts): report tests, the report page, bench/reports.py."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from onsite_server.models import Booking, Event, Kiosk, Member, Site, Slot, Submission

# Band ids as the instrument definitions in assets/ name them; weights are rough shares, for
# data that looks like a site's and leaves some small cells to suppress.
BANDS: dict[str, list[tuple[str, int]]] = {
    "phq2": [("negative", 85), ("positive", 15)],
    "phq9": [("minimal", 50), ("mild", 25), ("moderate", 14), ("moderately_severe", 7),
             ("severe", 4)],
    "blood_pressure": [("normal", 45), ("elevated", 20), ("stage_1", 25), ("stage_2", 10)],
    "bmi": [("underweight", 2), ("healthy_weight", 33), ("overweight", 35),
            ("obesity_class_1", 18), ("obesity_class_2", 8), ("obesity_class_3", 4)],
    "gad2": [("negative", 88), ("positive", 12)],
}
NOW = datetime.now().astimezone()  # only for created_at columns
# What the server stores for a reading from a cuff or a scale (shared DeviceOrigin, dumped).
CUFF = {"kind": "blood_pressure", "manufacturer": "Acme", "model": "BP-1", "serial": "C1",
        "link_ids": ["systolic", "diastolic"]}
SCALE = {"kind": "weight", "manufacturer": "Acme", "model": "WS-2", "serial": "S1",
         "link_ids": ["weight_kg"]}


@dataclass
class Seeded:
    """What was inserted: ids a test or benchmark needs."""

    site_id: int
    kiosk_ids: list[int]
    member_ids: list[int]
    event_ids: list[int]


def kiosk_for(session: Session, site: Site, label: str = "bench") -> int:
    """A paired-looking kiosk row of the site (no token: nothing will call with it)."""
    kiosk = Kiosk(site_id=site.id, label=label)
    session.add(kiosk)
    session.flush()
    return kiosk.id


def add_members(session: Session, employer_id: int, n: int, prefix: str = "B") -> list[int]:
    """Insert n roster members in one statement; return their ids."""
    tag = uuid.uuid4().hex[:6]
    session.execute(insert(Member), [{
        "public_id": str(uuid.uuid4()), "employer_id": employer_id,
        "member_id": f"M-{prefix}{tag}{i}", "employee_id": f"{prefix}{tag}{i}",
        "first_name": "Sam", "last_name": "Seed", "birth_date": date(1980, 1, 1),
        "language": "en", "created_at": NOW, "updated_at": NOW,
    } for i in range(n)])
    return list(session.scalars(select(Member.id).where(
        Member.employee_id.like(f"{prefix}{tag}%")).order_by(Member.id)))


def submission_row(kiosk_id: int, member_id: int | None, session_id: str | None,
                   instrument_id: str, band: str | None, taken_at: datetime,
                   devices: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One submission row as the table holds it (band None: items skipped, not scored;
    ``devices`` as the server stores them, none: typed)."""
    return {
        "idempotency_key": str(uuid.uuid4()), "request_hash": "0" * 64, "kiosk_id": kiosk_id,
        "member_id": member_id, "session_id": session_id, "instrument_id": instrument_id,
        "instrument_version": "1.0.0", "answers": {}, "skipped": [], "kiosk_result": None,
        "result": None if band is None else {"band": band}, "score_mismatch": False,
        "crisis": False, "taken_at": taken_at, "received_at": taken_at, "clock_suspect": False,
        "response": {}, "referral_id": None, "devices": devices or [],
    }


def add_submissions(session: Session, rows: list[dict[str, Any]], chunk: int = 5000) -> None:
    """Insert submission rows in chunks of executemany."""
    for i in range(0, len(rows), chunk):
        session.execute(insert(Submission), rows[i:i + chunk])


def add_event(session: Session, site_id: int, title: str, start: datetime,
              outcomes: list[tuple[int, str]], title_es: str | None = None) -> int:
    """An event with one slot at ``start`` and a booking per (member id, status)."""
    event = Event(site_id=site_id, title=title, title_es=title_es, kind="biometric_screening")
    session.add(event)
    session.flush()
    slot = Slot(event_id=event.id, start_at=start, end_at=start + timedelta(minutes=15),
                capacity=max(1, len(outcomes)), booked_count=0)
    session.add(slot)
    session.flush()
    if outcomes:
        session.execute(insert(Booking), [{
            "public_id": str(uuid.uuid4()), "member_id": m, "event_id": event.id,
            "slot_id": slot.id, "status": status, "created_at": start, "updated_at": start,
            "checked_in_at": start + timedelta(minutes=5) if status == "checked_in" else None,
        } for m, status in outcomes])
    return event.id


def seed_site(session: Session, site: Site, *, members: int, submissions: int, start: datetime,
              days: int = 28, seed: int = 1, anonymous_share: float = 0.2,
              events: int = 4) -> Seeded:
    """A site's worth of kiosk use and event bookings, random but reproducible."""
    rng = random.Random(seed)
    kiosks = [kiosk_for(session, site, f"k{i}") for i in range(2)]
    member_ids = add_members(session, site.employer_id, members)
    instruments = list(BANDS)
    rows: list[dict[str, Any]] = []
    anon_sessions = [str(uuid.uuid4()) for _ in range(max(1, submissions // 20))]
    for _ in range(submissions):
        instrument = rng.choice(instruments)
        names, weights = zip(*BANDS[instrument], strict=True)
        band = None if rng.random() < 0.02 else rng.choices(names, weights)[0]
        at = start + timedelta(days=rng.randrange(days), hours=rng.randrange(8, 18),
                               minutes=rng.randrange(60))
        if rng.random() < anonymous_share:
            member, session_id = None, rng.choice(anon_sessions)
        else:
            member, session_id = rng.choice(member_ids), str(uuid.uuid4())
        rows.append(submission_row(rng.choice(kiosks), member, session_id, instrument, band, at))
    add_submissions(session, rows)
    event_ids = []
    statuses = ["checked_in"] * 6 + ["no_show"] * 2 + ["booked"]
    for e in range(events):
        people = rng.sample(member_ids, min(len(member_ids), rng.randrange(5, 60)))
        at = start + timedelta(days=rng.randrange(days), hours=rng.randrange(9, 16))
        event_ids.append(add_event(session, site.id, f"Screening day {e + 1}", at,
                                   [(m, rng.choice(statuses)) for m in people],
                                   title_es=f"Día de evaluación {e + 1}"))
    return Seeded(site.id, kiosks, member_ids, event_ids)
