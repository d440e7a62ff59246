"""Cost per request as history grows: 10,000, 100,000 and 1,000,000 rows, SQLite and PostgreSQL.

A site runs for years (issue 20). For each database the script migrates a fresh one, then grows
its history in steps, in bulk (Core executemany): at each size there are that many submissions,
audit entries and sent outbox rows, a tenth as many closed referrals and past bookings, and past
events to hold them. All of it lies inside the retention period (80 days back), so nothing is
purged while it is measured: this is what a busy site holds, not what retention leaves of a
quiet one.

At each size it measures, in one process and on the same data, the median and p95 of:

- ``healthz``: ``GET /healthz`` through the app (the same-run baseline);
- ``submission``: ``POST /api/v1/submissions``, one signed-in member's positive PHQ-2, which
  folds into the member's referral;
- ``booking``: ``POST /api/v1/bookings``, a new member's seat in today's event;
- ``checkin``: one of those bookings checked in (``services.checkin.check_in_booking``, what the
  desk's search-and-check-in runs);
- ``advocate_list``: the advocate's referral list (``casework.referrals_for_advocate``);
- ``audit_last_page``: the audit log's last page as the dashboard asks for it;
- ``report_month``: the employer report for one month;
- ``sync_idle``: one sync cycle with nothing to send (its housekeeping included).

API calls go through Flask's test client, so no socket or worker is measured, only the app and
its database. Each figure is also given over the same size's ``healthz``, and ``growth`` is the
largest size's median over the smallest's. PostgreSQL is a throwaway cluster (as
bench/reports.py starts it). Prints ONE JSON line. No test asserts any of these numbers.

    .venv/bin/python bench/history.py [--sizes 10000,100000,1000000] [--repeat 30] [--db both]
        [--ops report_month,...] [--plans]

``--ops`` times only the named operations (``healthz``, the baseline, always): the history is
grown the same, so a run that is about one operation spends its time on that one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, insert, select, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reports import throwaway_postgres  # noqa: E402

from onsite_server import create_app  # noqa: E402
from onsite_server.db import get_db  # noqa: E402
from onsite_server.fhir import Systems  # noqa: E402
from onsite_server.migrate import upgrade  # noqa: E402
from onsite_server.models import (  # noqa: E402
    Advocate,
    AuditLog,
    Booking,
    Event,
    Kiosk,
    Member,
    OutboxMessage,
    Referral,
    Site,
    Slot,
    Submission,
)
from onsite_server.services import audit, casework  # noqa: E402
from onsite_server.services.checkin import check_in_booking  # noqa: E402
from onsite_server.services.members import make_member_ref  # noqa: E402
from onsite_server.services.reports import employer_report  # noqa: E402
from onsite_server.services.scope import Scope  # noqa: E402
from onsite_server.services.signing import KeyStore  # noqa: E402
from onsite_server.services.sync import SyncSettings, run_cycle  # noqa: E402
from tests.onsite_server.helpers import gen_site, pair_kiosk  # noqa: E402
from tests.onsite_server.report_data import BANDS, add_members, submission_row  # noqa: E402

CHUNK = 5_000
OPEN_REFERRALS = 50  # the advocate's current caseload: what the list returns, at every size
POOL = 2_000  # roster members the history is spread over


class NothingToSend:
    """A central that must not be called: the cycle measured has nothing to forward."""

    def transaction(self, bundle: Any) -> Any:
        """Fail: nothing was due."""
        raise AssertionError("an idle cycle sent a bundle")

    def search(self, resource_type: str, params: Any) -> list[dict[str, Any]]:
        """Fail: nothing was due."""
        raise AssertionError("an idle cycle searched central")


class Site_:
    """What the measurements need of the seeded site."""

    def __init__(self, app: Any, client: Any) -> None:
        self.app = app
        self.client = client
        db = get_db(app)
        with db.transaction() as session:
            site = gen_site(session, "history-site")
            self.site_id, self.employer_id, self.tz = site.id, site.employer_id, site.timezone
        paired = pair_kiosk(app, client, "history-site")
        self.token = paired["token"]
        self.headers = {"Authorization": f"Bearer {self.token}"}
        with db.transaction() as session:
            kiosk = session.scalars(select(Kiosk).where(
                Kiosk.public_id == paired["kiosk_id"])).one()
            self.kiosk_id = kiosk.id
            advocate = Advocate(name="Casey Advocate", public_id=f"adv-{uuid.uuid4().hex[:8]}")
            session.add(advocate)
            session.flush()
            self.advocate_id = advocate.id
            self.pool = add_members(session, self.employer_id, POOL, prefix="H")
            session.execute(update(Member).where(Member.id.in_(self.pool))
                            .values(advocate_id=advocate.id))
            now = datetime.now(UTC)
            session.execute(insert(Referral), [{
                "public_id": str(uuid.uuid4()), "member_id": m, "advocate_id": advocate.id,
                "status": "sent", "priority": random.Random(m).choice(
                    ["routine", "soon", "urgent"]), "programs": ["behavioral_health"],
                "proposal": {}, "consent": True, "version": 1, "forward_now": False,
                "created_at": now - timedelta(days=3), "updated_at": now - timedelta(days=3),
            } for m in self.pool[:OPEN_REFERRALS]])
            # Today's event: the booking measured books into it, the check-in checks them in.
            start = now + timedelta(hours=1)
            event = Event(site_id=self.site_id, title="Flu shots", kind="flu_shot")
            session.add(event)
            session.flush()
            slot = Slot(event_id=event.id, start_at=start, end_at=start + timedelta(hours=2),
                        capacity=100_000)
            session.add(slot)
            session.flush()
            self.slot_public_id = slot.public_id
            kiosk_row = session.get(Kiosk, self.kiosk_id)
            assert kiosk_row is not None
            self.refs = [make_member_ref(app.config["SECRET_KEY"], member, kiosk_row)
                         for member in session.scalars(select(Member).where(
                             Member.id.in_(self.pool[OPEN_REFERRALS:])).order_by(Member.id))]
        self.size = 0
        self.cycle_s = 0.0

    def grow(self, target: int, rng: random.Random) -> float:
        """Add history until each growing table holds ``target`` rows; return seconds taken."""
        began = time.perf_counter()
        now = datetime.now(UTC)
        add = target - self.size
        db = get_db(self.app)
        instruments = list(BANDS)
        for first in range(0, add, CHUNK):
            n = min(CHUNK, add - first)
            with db.transaction() as session:
                rows = []
                for _ in range(n):
                    instrument = rng.choice(instruments)
                    names, weights = zip(*BANDS[instrument], strict=True)
                    at = now - timedelta(days=rng.uniform(1, 80))
                    rows.append(submission_row(self.kiosk_id, rng.choice(self.pool),
                                               str(uuid.uuid4()), instrument,
                                               rng.choices(names, weights)[0], at))
                session.execute(insert(Submission), rows)
                session.execute(insert(AuditLog), [{
                    "at": now - timedelta(days=rng.uniform(1, 80)),
                    "actor": rng.choice(["cli", "user:1", f"kiosk:{self.kiosk_id}"]),
                    "action": rng.choice(["submission.accepted", "referral.viewed",
                                          "booking.created", "checkin.recorded"]),
                    "subject": f"member:{uuid.uuid4()}", "detail": {}, "site_id": self.site_id,
                } for _ in range(n)])
                session.execute(insert(OutboxMessage), [{
                    "kind": "referral", "key": f"hist-{uuid.uuid4().hex}", "priority": 2,
                    "payload": {"referral": "history"}, "status": "sent", "attempts": 1,
                    "next_attempt_at": at, "created_at": at, "sent_at": at,
                } for at in (now - timedelta(days=rng.uniform(1, 80)) for _ in range(n))])
                tenth = n // 10
                session.execute(insert(Referral), [{
                    "public_id": str(uuid.uuid4()), "member_id": rng.choice(self.pool),
                    "advocate_id": self.advocate_id, "status": "closed",
                    "priority": "routine", "programs": [], "proposal": {}, "consent": True,
                    "version": 3, "forward_now": False, "created_at": at, "updated_at": at,
                } for at in (now - timedelta(days=rng.uniform(1, 80)) for _ in range(tenth))])
                past = now - timedelta(days=rng.uniform(1, 80))
                event = Event(site_id=self.site_id, title="Past screening",
                              kind="biometric_screening")
                session.add(event)
                session.flush()
                slot = Slot(event_id=event.id, start_at=past, end_at=past + timedelta(hours=4),
                            capacity=tenth, booked_count=0)
                session.add(slot)
                session.flush()
                members = rng.sample(self.pool, min(tenth, len(self.pool)))
                if members:
                    session.execute(insert(Booking), [{
                        "public_id": str(uuid.uuid4()), "member_id": m,
                        "event_id": event.id, "slot_id": slot.id,
                        "status": rng.choice(["checked_in", "no_show", "cancelled"]),
                        "created_at": past, "updated_at": past,
                    } for m in members])
        self.size = target
        return time.perf_counter() - began

    def new_member_refs(self, n: int) -> list[str]:
        """n new roster members with kiosk-bound refs (each may book today's event once)."""
        db = get_db(self.app)
        with db.transaction() as session:
            ids = add_members(session, self.employer_id, n, prefix="N")
            kiosk_row = session.get(Kiosk, self.kiosk_id)
            assert kiosk_row is not None
            return [make_member_ref(self.app.config["SECRET_KEY"], member, kiosk_row)
                    for member in session.scalars(select(Member).where(Member.id.in_(ids)))]


def _ops(s: Site_, spare: int) -> dict[str, Callable[[], None]]:
    """The operations measured, as closures over the site (``spare`` bookings' worth)."""
    app, client, db = s.app, s.client, get_db(s.app)
    rng = random.Random(s.size)
    settings = SyncSettings(systems=Systems.from_config(app.config), site="history-site",
                            keys=KeyStore(Path(app.instance_path) / "keys"),
                            worker_id="bench", retention_days=90)
    month = datetime.now(UTC) - timedelta(days=40)
    scope = Scope(frozenset({s.site_id}))
    refs = s.new_member_refs(spare)
    booked: list[str] = []

    def healthz() -> None:
        assert client.get("/healthz").status_code == 200

    def submission() -> None:
        item = {"idempotency_key": str(uuid.uuid4()), "session_id": str(uuid.uuid4()),
                "instrument_id": "phq2", "instrument_version": "1.0.0",
                "answers": {"1": 2, "2": 2}, "taken_at": datetime.now(UTC).isoformat(),
                "member_ref": rng.choice(s.refs)}
        resp = client.post("/api/v1/submissions", json={"items": [item]}, headers=s.headers)
        assert resp.status_code == 200, resp.get_json()
        assert resp.get_json()["results"][0]["status"] == "accepted", resp.get_json()

    def booking() -> None:
        resp = client.post("/api/v1/bookings", headers=s.headers, json={
            "idempotency_key": str(uuid.uuid4()), "member_ref": refs.pop(),
            "slot_id": s.slot_public_id})
        assert resp.status_code == 201, resp.get_json()
        booked.append(resp.get_json()["booking_id"])

    def checkin() -> None:
        with db.transaction() as session:
            site = session.get(Site, s.site_id)
            assert site is not None
            check_in_booking(session, site, booked.pop(), "user:1")

    def advocate_list() -> None:
        with db.transaction(write=False) as session:
            rows = casework.referrals_for_advocate(session, s.advocate_id, s.employer_id)
            assert len(rows) >= OPEN_REFERRALS

    def audit_last_page() -> None:
        with db.transaction(write=False) as session:
            assert audit.page(session, scope, oldest=True, limit=50).rows

    def report_month() -> None:
        with db.transaction(write=False) as session:
            employer_report(session, first_month=month.strftime("%Y-%m"),
                            last_month=month.strftime("%Y-%m"), site_id=s.site_id,
                            timezone=s.tz)

    def sync_idle() -> None:
        # What the submissions and bookings just queued counts as already sent, so that the
        # cycle has nothing to forward: only its housekeeping is timed (this part is not).
        with db.transaction() as session:
            session.execute(update(OutboxMessage).where(
                OutboxMessage.status.in_(("pending", "sending"))).values(
                    status="sent", sent_at=datetime.now(UTC)))
        began = time.perf_counter()
        report = run_cycle(db.transaction, NothingToSend(), settings)
        assert report.sent == 0
        s.cycle_s = time.perf_counter() - began

    return {"healthz": healthz, "submission": submission, "booking": booking,
            "checkin": checkin, "advocate_list": advocate_list,
            "audit_last_page": audit_last_page, "report_month": report_month,
            "sync_idle": sync_idle}


def measure(s: Site_, repeat: int, only: frozenset[str] | None = None
            ) -> dict[str, dict[str, float]]:
    """Time each operation (or those in ``only``, and healthz) ``repeat`` times."""
    fns = _select(_ops(s, repeat + 2), only)

    # Warm each path once (imports, instrument definitions, statement caches), then measure
    # them interleaved per round so that a slow moment of a shared machine hits all alike.
    # The report and the cycle are slow enough that fewer rounds of them suffice.
    sparse = {"report_month": 5, "sync_idle": 5}
    ops = {name: (fn, sparse.get(name, 1)) for name, fn in fns.items()}
    samples: dict[str, list[float]] = {name: [] for name in ops}
    for round_no in range(repeat + 1):
        for name, (fn, every) in ops.items():
            if round_no and (round_no - 1) % every:
                continue
            began = time.perf_counter()
            fn()
            spent = s.cycle_s if name == "sync_idle" else time.perf_counter() - began
            if round_no:
                samples[name].append(spent * 1000)
    out = {}
    for name, values in samples.items():
        values.sort()
        out[name] = {"p50": round(statistics.median(values), 2),
                     "p95": round(values[min(len(values) - 1, int(0.95 * len(values)))], 2)}
    return out


def _select(fns: dict[str, Callable[[], None]], only: frozenset[str] | None
            ) -> dict[str, Callable[[], None]]:
    """The operations asked for, healthz always; all of them when ``only`` is None."""
    if only is None:
        return fns
    unknown = only - set(fns)
    if unknown:
        raise SystemExit(f"--ops: unknown operations {sorted(unknown)}; known: {sorted(fns)}")
    return {name: fn for name, fn in fns.items() if name == "healthz" or name in only}


BIG = ("submission", "audit_log", "outbox_message", "referral", "booking", "event", "slot")


def explain(s: Site_, ops: dict[str, Callable[[], None]]) -> dict[str, list[str]]:
    """Run each operation once, recording its statements; return the plan lines that read a
    whole big table (SQLite's ``SCAN t``, PostgreSQL's ``Seq Scan on t``), per operation."""
    engine = get_db(s.app).engine
    assert engine is not None
    pg = engine.dialect.name == "postgresql"
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_a: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "WITH")):
            seen.append((statement, parameters))

    out: dict[str, list[str]] = {}
    for name, fn in ops.items():
        seen.clear()
        event.listen(engine, "before_cursor_execute", record)
        try:
            fn()
        finally:
            event.remove(engine, "before_cursor_execute", record)
        found: set[str] = set()
        with engine.connect() as conn:
            for statement, parameters in list(seen):
                prefix = "EXPLAIN " if pg else "EXPLAIN QUERY PLAN "
                try:
                    plan = conn.exec_driver_sql(prefix + statement, parameters).all()
                except Exception as exc:  # noqa: BLE001 - a plan we cannot get is reported
                    found.add(f"(no plan: {type(exc).__name__})")
                    conn.rollback()
                    continue
                for line in (str(row[-1]) for row in plan):
                    # A covering-index scan (SCAN t USING INDEX) reads every entry too, and a
                    # rowid range with only a lower bound can be the whole table.
                    hit = [t for t in BIG if (f"Seq Scan on {t} " in line + " ") or
                           line.strip().startswith(f"SCAN {t}") or
                           (line.strip().startswith(f"SEARCH {t} USING INTEGER PRIMARY KEY")
                            and "rowid>" in line and "rowid<" not in line)]
                    if hit or os.environ.get("HISTORY_ALL_PLANS"):
                        found.add(f"{line.strip()}  <-  {statement.split()[0]} "
                                  f"{_table_hint(statement)}")
        out[name] = sorted(found)
    return out


def _table_hint(statement: str) -> str:
    words = statement.replace("\n", " ").split()
    for i, word in enumerate(words):
        if word.upper() in ("FROM", "UPDATE", "INTO") and i + 1 < len(words):
            return words[i + 1]
    return ""


def run(url: str, sizes: list[int], repeat: int, folder: str,
        plans: bool = False, only: frozenset[str] | None = None) -> dict[str, Any]:
    """Grow one database through the sizes and measure at each."""
    app = create_app({"TESTING": True, "DATABASE_URL": url, "INSTANCE_PATH": folder,
                      "SECRET_KEY": "bench-history-secret", "IDENTIFY_MIN_SECONDS": 0.0})
    upgrade(get_db(app))
    site = Site_(app, app.test_client())
    rng = random.Random(20261206)
    result: dict[str, Any] = {"sizes": {}}
    for size in sizes:
        grow_s = site.grow(size, rng)
        with get_db(app).transaction(write=False) as session:
            counted = session.scalar(select(func.count()).select_from(Submission))
        figures = measure(site, repeat, only)
        if plans and size == sizes[-1]:
            result["plans"] = explain(site, _select(_ops(site, 2), only))
        base = figures["healthz"]["p50"] or 1e-9
        result["sizes"][str(size)] = {
            "grow_s": round(grow_s, 1), "submissions": counted,
            **{name: {**f, "over_healthz": round(f["p50"] / base, 2)}
               for name, f in figures.items()}}
    first, last = (result["sizes"][str(x)] for x in (sizes[0], sizes[-1]))
    result["growth"] = {name: round(last[name]["p50"] / max(first[name]["p50"], 1e-9), 2)
                        for name in first if isinstance(first[name], dict)}
    get_db(app).dispose()
    return result


def main() -> None:
    """Parse arguments, run on the chosen databases, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--plans", action="store_true",
                        help="at the largest size, report the plan lines that scan a big table")
    parser.add_argument("--ops", default="",
                        help="comma-separated operations to time (healthz always); default all")
    args = parser.parse_args()
    only = frozenset(x for x in args.ops.split(",") if x) or None
    sizes = sorted(int(x) for x in args.sizes.split(","))
    out: dict[str, Any] = {"bench": "history", "sizes": sizes, "repeat": args.repeat,
                           "ops": sorted(only) if only else "all",
                           "python": platform.python_version(), "cpus": os.cpu_count(),
                           "date": date.today().isoformat(), "load": os.getloadavg()[0]}
    if args.db in ("sqlite", "both"):
        folder = tempfile.mkdtemp(prefix="onsite-bench-history.")
        try:
            out["sqlite"] = run(f"sqlite:///{folder}/history.sqlite", sizes, args.repeat,
                                folder, args.plans, only)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if args.db in ("postgresql", "both"):
        with throwaway_postgres() as url:
            if url is not None:
                folder = tempfile.mkdtemp(prefix="onsite-bench-history.")
                try:
                    out["postgresql"] = run(url, sizes, args.repeat, folder, args.plans, only)
                finally:
                    shutil.rmtree(folder, ignore_errors=True)
    out["load_after"] = os.getloadavg()[0]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
