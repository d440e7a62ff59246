"""Factories and helpers for onsite-server tests (gen_* create rows; login/pair helpers)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from onsite_server.db import get_db
from onsite_server.models import Advocate, Employer, Event, Member, Site, Slot
from onsite_server.services.pairing import issue_pairing_code

# The run's 300 s limit per test (pyproject.toml) is there to catch a hang. The end-to-end test
# and the outage drill wait through each way central fails in turn, and on a loaded 2-core
# machine they took 244-292 s (docs/BENCHMARKS.md, "Session 12: the long tests"): they get
# twice that, so that a busy machine is not taken for a hang.
LONG_TIMEOUT = pytest.mark.timeout(600)


def gen_site(session: Session, slug: str | None = None, *, employer: Employer | None = None,
             timezone: str = "America/New_York") -> Site:
    """Create a site (and an employer unless given)."""
    slug = slug or f"site-{uuid.uuid4().hex[:8]}"
    if employer is None:
        employer = Employer(slug=f"emp-{slug}", name=f"Employer of {slug}")
        session.add(employer)
        session.flush()
    site = Site(employer_id=employer.id, slug=slug, name=f"Site {slug}", timezone=timezone)
    session.add(site)
    session.flush()
    return site


def gen_advocate(session: Session, name: str = "Pat Advocate") -> Advocate:
    """Create an advocate."""
    adv = Advocate(public_id=f"adv-{uuid.uuid4().hex[:8]}", name=name, phone="+1-555-0100",
                   email="pat@advocates.example", languages=["en"], programs=[])
    session.add(adv)
    session.flush()
    return adv


def gen_member(session: Session, site: Site, employee_id: str | None = None, *,
               birth_date: date = date(1980, 1, 15), first_name: str = "Alex",
               badge_id: str | None = None, advocate: Advocate | None = None) -> Member:
    """Create a roster member of the site's employer."""
    employee_id = employee_id or f"E{uuid.uuid4().hex[:8]}"
    member = Member(employer_id=site.employer_id, member_id=f"M-{employee_id}",
                    employee_id=employee_id, badge_id=badge_id, first_name=first_name,
                    last_name="Tester", birth_date=birth_date,
                    advocate_id=advocate.id if advocate else None)
    session.add(member)
    session.flush()
    return member


def gen_event(session: Session, site: Site, *, slots: int = 1, capacity: int = 10,
              start: datetime | None = None, title: str = "Flu shot clinic") -> Event:
    """Create an event with consecutive 15-minute slots starting tomorrow (UTC)."""
    start = start or datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    event = Event(site_id=site.id, title=title, kind="flu_shot")
    session.add(event)
    session.flush()
    for i in range(slots):
        begin = start + timedelta(minutes=15 * i)
        session.add(Slot(event_id=event.id, start_at=begin, end_at=begin + timedelta(minutes=15),
                         capacity=capacity))
    session.flush()
    return event


def pair_kiosk(app: Flask, client: FlaskClient, site_slug: str) -> dict[str, Any]:
    """Pair a new kiosk for the site; return the pairing answer (token, kiosk_id...)."""
    from sqlalchemy import select

    with get_db(app).transaction() as session:
        site = session.scalars(select(Site).where(Site.slug == site_slug)).one()
        code = issue_pairing_code(session, site)
    resp = client.post("/api/v1/pair", json={"pairing_code": code, "app_version": "test"})
    assert resp.status_code == 201, resp.get_json()
    data: dict[str, Any] = resp.get_json()
    return data


def auth(token: str) -> dict[str, str]:
    """Return the Authorization header for a device token."""
    return {"Authorization": f"Bearer {token}"}


def new_key() -> str:
    """Return a fresh idempotency key."""
    return str(uuid.uuid4())


def identified_member(app: Flask, site: Site, kiosk: dict[str, Any], **kwargs: Any
                      ) -> tuple[str, str]:
    """Create a member of site; return (member public id, member_ref bound to the kiosk)."""
    from sqlalchemy import select

    from onsite_server.models import Kiosk
    from onsite_server.services.members import make_member_ref

    with get_db(app).transaction() as session:
        site_row = session.get(Site, site.id)
        assert site_row is not None
        member = gen_member(session, site_row, **kwargs)
        kiosk_row = session.scalars(select(Kiosk).where(Kiosk.public_id == kiosk["kiosk_id"])).one()
        return member.public_id, make_member_ref(app.config["SECRET_KEY"], member, kiosk_row)


def submission_item(instrument_id: str, answers: dict[str, Any], *, member_ref: str | None = None,
                    session_id: str | None = None, version: str = "1.0.0",
                    **extra: Any) -> dict[str, Any]:
    """Build one /submissions item (anonymous unless member_ref is given)."""
    item: dict[str, Any] = {
        "idempotency_key": new_key(),
        "session_id": session_id or new_key(),
        "instrument_id": instrument_id,
        "instrument_version": version,
        "answers": answers,
        "taken_at": datetime.now(UTC).isoformat(),
    }
    if member_ref is None:
        item["anonymous"] = True
    else:
        item["member_ref"] = member_ref
    item.update(extra)
    return item


def live_kiosk_and_member(live_server: Any, database_url: str, site_slug: str = "live"
                          ) -> tuple[str, str]:
    """Pair a kiosk with a live server and add a member; return (token, member_ref)."""
    token, refs = live_kiosk_and_members(live_server, database_url, 1, site_slug)
    return token, refs[0]


def live_kiosk_and_members(live_server: Any, database_url: str, n: int,
                           site_slug: str = "live") -> tuple[str, list[str]]:
    """Pair a kiosk with a live server and add n members; return (token, member_refs)."""
    import requests
    from sqlalchemy import create_engine, select

    from onsite_server.models import Kiosk
    from onsite_server.services.members import make_member_ref
    from onsite_server.services.pairing import issue_pairing_code
    from onsite_server.services.sites import create_site

    engine = create_engine(database_url)
    try:
        # What `onsite-server create-site` and `pairing-code` do, without starting two CLI
        # processes per test (test_cli.py runs the commands themselves).
        with Session(engine) as session, session.begin():
            site = create_site(session, employer_slug=f"emp-{site_slug}", employer_name=None,
                               slug=site_slug, name=site_slug, timezone="America/New_York")
            code = issue_pairing_code(session, site)
        paired = requests.post(live_server.url + "/api/v1/pair", json={"pairing_code": code},
                               timeout=10)
        assert paired.status_code == 201, paired.text
        with Session(engine) as session, session.begin():
            kiosk = session.scalars(
                select(Kiosk).where(Kiosk.public_id == paired.json()["kiosk_id"])).one()
            refs = [make_member_ref(live_server.env["ONSITE_SECRET_KEY"],
                                    gen_member(session, kiosk.site), kiosk) for _ in range(n)]
    finally:
        engine.dispose()
    return paired.json()["token"], refs


def concurrent_posts(url: str, body: dict[str, Any], token: str, n: int = 12
                     ) -> list[tuple[int, Any]]:
    """POST the same body n times at once (released together); return (status, json) each."""
    import threading

    import requests

    barrier = threading.Barrier(n)
    out: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def send() -> None:
        barrier.wait()
        resp = requests.post(url, json=body, headers=auth(token), timeout=60)
        with lock:
            out.append((resp.status_code, resp.json()))

    threads = [threading.Thread(target=send) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


@contextmanager
def sql_run(app: Flask, *, upper: bool = False) -> Iterator[list[str]]:
    """Collect the SQL the app's engine runs inside the block, each statement on one line.

    ``upper`` upper-cases them (table names included), for tests that match on one case.
    """
    engine = get_db(app).engine
    assert engine is not None
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
        line = " ".join(sql.split())
        seen.append(line.upper() if upper else line)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


@contextmanager
def orm_queries_run() -> Iterator[list[str]]:
    """Collect the start of each statement run through an ORM session inside the block."""
    seen: list[str] = []

    def note(state: Any) -> None:
        seen.append(str(state.statement)[:60])

    event.listen(Session, "do_orm_execute", note)
    try:
        yield seen
    finally:
        event.remove(Session, "do_orm_execute", note)
