"""Contention: 200 members race for 10 seats on a real gunicorn server (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from onsite_server.api import hash_token
from onsite_server.db import Database
from onsite_server.models import Booking, Kiosk, Slot
from onsite_server.services.members import make_member_ref

from ..helpers import auth, gen_event, gen_member, gen_site, new_key

ATTEMPTS = 200
SEATS = 10
THREADS = 50


@pytest.mark.slow
def test_200_concurrent_bookings_for_10_seats(live_server: Any) -> None:
    db = Database()
    db.configure(live_server.env["ONSITE_DATABASE_URL"])
    token = "contention-token-" + new_key()
    with db.transaction() as session:
        site = gen_site(session)
        kiosk = Kiosk(site_id=site.id, token_hash=hash_token(token),
                      paired_at=datetime.now(UTC))
        session.add(kiosk)
        session.flush()
        # The live server's ONSITE_SECRET_KEY, so it accepts these references.
        refs = [make_member_ref("live-test-secret", gen_member(session, site), kiosk)
                for _ in range(ATTEMPTS)]
        slot_id = gen_event(session, site, capacity=SEATS).slots[0].public_id

    chunks = [refs[i::THREADS] for i in range(THREADS)]
    barrier = threading.Barrier(THREADS)

    def attempt(chunk: list[str]) -> list[tuple[int, Any]]:
        out = []
        with requests.Session() as http:
            barrier.wait()
            for ref in chunk:
                resp = http.post(f"{live_server.url}/api/v1/bookings", headers=auth(token),
                                 json={"idempotency_key": new_key(), "member_ref": ref,
                                       "slot_id": slot_id}, timeout=120)
                out.append((resp.status_code, resp.json()))
        return out

    with ThreadPoolExecutor(THREADS) as pool:
        answers = [a for chunk_answers in pool.map(attempt, chunks) for a in chunk_answers]

    assert len(answers) == ATTEMPTS
    assert Counter(status for status, _ in answers) == {201: ATTEMPTS}, \
        [a for a in answers if a[0] != 201][:3]
    assert Counter(body["status"] for _, body in answers) == \
        {"booked": SEATS, "waitlisted": ATTEMPTS - SEATS}
    # Waitlisting is serialised too: each waitlisted member got a distinct place in the queue.
    positions = sorted(body["waitlist_position"] for _, body in answers
                       if body["status"] == "waitlisted")
    assert positions == list(range(1, ATTEMPTS - SEATS + 1))
    with db.transaction(write=False) as session:
        slot = session.scalars(select(Slot).where(Slot.public_id == slot_id)).one()
        assert slot.booked_count == SEATS
        rows = {status: n for status, n in session.execute(
            select(Booking.status, func.count()).where(Booking.slot_id == slot.id)
            .group_by(Booking.status)).all()}
        assert rows == {"booked": SEATS, "waitlisted": ATTEMPTS - SEATS}
    db.dispose()
