"""Booking contention: how long a real server takes to settle 500 concurrent attempts for 20 seats.

Starts `onsite-server serve --no-tls --workers 2` (gunicorn) on a temporary SQLite file, or on
PostgreSQL with --database-url (a fresh database is created on that cluster and dropped after),
creates the members and one slot directly in the database, then fires every attempt at once
from several client processes. For scale it times, in the same run and with the same client,
the same number of concurrent GET /healthz. Prints one JSON line.

With --in-process it measures the server side alone instead: the same bookings one after
another through Flask's test client in this process, with the server CPU (thread time) and
the SQL statements and transactions of a booked and of a waitlisted request, against
GET /healthz; --cprofile FILE also writes a cProfile of the waitlisted requests.

    .venv/bin/python bench/booking_contention.py
    .venv/bin/python bench/booking_contention.py --database-url postgresql+psycopg://...
    .venv/bin/python bench/booking_contention.py --in-process [--cprofile /tmp/booking.prof]
    .venv/bin/python bench/booking_contention.py --profile /tmp/booking.raw   # py-spy, bench/spy.py
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from bench.spy import Spy, server_pid
from bench.spy import summary as spy_summary
from onsite_server import devserver
from onsite_server.api import hash_token
from onsite_server.db import Database, is_sqlite
from onsite_server.models import Booking, Employer, Event, Kiosk, Member, Site, Slot
from onsite_server.services.members import make_member_ref

Request = tuple[str, str, dict[str, Any] | None, dict[str, str]]


def _fresh_pg_database(url: str) -> tuple[str, str]:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False), name


def _drop_pg_database(url: str, name: str) -> None:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _seed(db_url: str, secret: str, attempts: int, seats: int) -> tuple[str, str, list[str]]:
    """Create a site, a kiosk, the members and one slot; return token, slot id and refs."""
    db = Database()
    db.configure(db_url)
    token = secrets.token_urlsafe(32)
    tag = uuid.uuid4().hex[:8]
    with db.transaction() as session:
        employer = Employer(slug=f"bench-{tag}", name="Bench employer")
        session.add(employer)
        session.flush()
        site = Site(employer_id=employer.id, slug=f"bench-{tag}", name="Bench site")
        session.add(site)
        session.flush()
        kiosk = Kiosk(site_id=site.id, token_hash=hash_token(token), paired_at=datetime.now(UTC))
        event = Event(site_id=site.id, title="Flu shot clinic", kind="flu_shot")
        session.add_all([kiosk, event])
        session.flush()
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
        slot = Slot(event_id=event.id, start_at=start, end_at=start + timedelta(minutes=15),
                    capacity=seats)
        members = [
            Member(employer_id=employer.id, member_id=f"M{tag}{i}", employee_id=f"E{tag}{i}",
                   first_name="Bench", last_name=f"Member {i}", birth_date=date(1980, 1, 1))
            for i in range(attempts)
        ]
        session.add(slot)
        session.add_all(members)
        session.flush()
        refs = [make_member_ref(secret, m, kiosk) for m in members]
        slot_id = slot.public_id
    db.dispose()
    return token, slot_id, refs


def _tally(db_url: str, slot_public_id: str) -> tuple[int, dict[str, int]]:
    db = Database()
    db.configure(db_url)
    with db.transaction(write=False) as session:
        slot = session.scalars(select(Slot).where(Slot.public_id == slot_public_id)).one()
        rows = session.execute(
            select(Booking.status, func.count()).where(Booking.slot_id == slot.id)
            .group_by(Booking.status)
        ).all()
        booked_count = slot.booked_count
    db.dispose()
    return booked_count, {status: int(n) for status, n in rows}


def _client_process(requests_: list[Request], threads: int, ready: Any, go: Any,
                    out: Any) -> None:
    """Send requests_ from `threads` threads once `go` is set; report statuses and end time."""
    results: list[tuple[int, str | None]] = []
    lock = threading.Lock()
    shares = [requests_[i::threads] for i in range(threads)]

    def run(share: list[Request]) -> None:
        with requests.Session() as http:
            go.wait()
            for method, url, body, headers in share:
                try:
                    resp = http.request(method, url, json=body, headers=headers, timeout=300)
                    outcome = resp.json().get("status") if resp.status_code == 201 else None
                    item = (resp.status_code, outcome)
                except requests.RequestException:
                    item = (0, None)
                with lock:
                    results.append(item)

    workers = [threading.Thread(target=run, args=(s,)) for s in shares if s]
    for w in workers:
        w.start()
    ready.wait()
    for w in workers:
        w.join()
    out.put((results, time.monotonic()))


def _fire(reqs: list[Request], processes: int, threads: int) -> tuple[float, Counter[Any]]:
    """Send all requests at once from several processes; return seconds and outcome counts."""
    ctx = mp.get_context("fork")
    ready = ctx.Barrier(processes + 1)
    go = ctx.Event()
    out = ctx.Queue()
    per_proc = max(1, threads // processes)
    procs = [
        ctx.Process(target=_client_process, args=(reqs[i::processes], per_proc, ready, go, out))
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    ready.wait()
    time.sleep(0.3)  # let every client thread reach go.wait()
    started = time.monotonic()
    go.set()
    outcomes: Counter[Any] = Counter()
    finished = started
    for _ in procs:
        results, ended = out.get(timeout=600)
        finished = max(finished, ended)
        outcomes.update(results)
    for p in procs:
        p.join()
    return finished - started, outcomes


def main() -> None:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"),
                        help="PostgreSQL cluster URL (a fresh database is made on it); "
                             "default: a temporary SQLite file")
    parser.add_argument("--attempts", type=int, default=500)
    parser.add_argument("--seats", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--client-processes", type=int, default=5)
    parser.add_argument("--client-threads", type=int, default=500,
                        help="threads over all client processes (default: one per attempt)")
    parser.add_argument("--in-process", action="store_true",
                        help="server side only: sequential bookings through the test client")
    parser.add_argument("--cprofile", help="with --in-process: write a cProfile here")
    parser.add_argument("--profile", type=Path, default=None,
                        help="py-spy the server (GIL holders) while the bookings run; raw "
                             "stacks to this file, the busiest functions in the JSON line")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-booking-"))
    pg_name = None
    if args.database_url and not is_sqlite(args.database_url):
        db_url, pg_name = _fresh_pg_database(args.database_url)
    else:
        db_url = args.database_url or f"sqlite:///{tmp / 'bench.sqlite'}"
    secret = secrets.token_urlsafe(32)
    env = {**os.environ, "ONSITE_DATABASE_URL": db_url, "ONSITE_INSTANCE_PATH": str(tmp / "i"),
           "ONSITE_SECRET_KEY": secret}
    try:
        devserver.cli(env, "init-db")
        token, slot_id, refs = _seed(db_url, secret, args.attempts, args.seats)
        if args.in_process:
            print(json.dumps(_in_process(args, env, token, slot_id, refs, db_url)))
            shutil.rmtree(tmp, ignore_errors=True)
            return
        with devserver.running_server(env, tmp / "server.log", workers=args.workers) as base:
            figures = _measure(args, base, token, slot_id, refs, db_url)
        print(json.dumps(figures))
        shutil.rmtree(tmp, ignore_errors=True)  # kept only when the run failed, for its log
    finally:
        if pg_name and args.database_url:
            _drop_pg_database(args.database_url, pg_name)


def _measure(args: argparse.Namespace, base: str, token: str, slot_id: str, refs: list[str],
             db_url: str) -> dict[str, Any]:
    """Fire the baseline and the bookings at a running server; return the figures."""
    headers = {"Authorization": f"Bearer {token}"}
    health: list[Request] = [("GET", base + "/healthz", None, {})] * args.attempts
    bookings: list[Request] = [
        ("POST", base + "/api/v1/bookings",
         {"idempotency_key": str(uuid.uuid4()), "member_ref": ref, "slot_id": slot_id},
         headers)
        for ref in refs
    ]
    _fire(health[:50], args.client_processes, 50)  # warm-up: workers, pools, imports
    # The booking route's own one-time imports (the central client, ~0.1 s a worker) would
    # otherwise land in the measured run: warm it with bookings of a slot that does not exist
    # (404, a refusal: nothing is stored, and the slot measured is untouched).
    _fire([("POST", base + "/api/v1/bookings",
            {"idempotency_key": str(uuid.uuid4()), "member_ref": refs[0],
             "slot_id": str(uuid.uuid4())}, headers) for _ in range(50)],
          args.client_processes, 50)
    port = int(base.rsplit(":", 1)[1].split("/", 1)[0])
    cpu0 = _server_cpu_seconds(port)
    baseline, health_outcomes = _fire(health, args.client_processes, args.client_threads)
    cpu1 = _server_cpu_seconds(port)
    spy = Spy(server_pid(port), args.profile, gil=True) if args.profile else None
    seconds, outcomes = _fire(bookings, args.client_processes, args.client_threads)
    cpu2 = _server_cpu_seconds(port)
    profile = None
    if spy is not None:
        spy.stop()
        profile = spy_summary(spy.out, top=30, match="onsite_server/")
    booked_count, statuses = _tally(db_url, slot_id)
    answered = Counter({o: n for (code, o), n in outcomes.items() if code == 201})
    figures = {
        "bench": "booking_contention",
        "db": "sqlite" if is_sqlite(db_url) else "postgresql",
        "attempts": args.attempts,
        "seats": args.seats,
        "booked": statuses.get("booked", 0),
        "waitlisted": statuses.get("waitlisted", 0),
        "seconds": round(seconds, 3),
        "baseline_healthz_seconds_for_500": round(baseline, 3),
        "ratio": round(seconds / baseline, 2),
        "slot_booked_count": booked_count,
        "answers_agree": answered == Counter({"booked": statuses.get("booked", 0),
                                              "waitlisted": statuses.get("waitlisted", 0)}),
        "non_2xx": sum(n for (code, _o), n in outcomes.items() if code != 201),
        "healthz_non_200": sum(n for (code, _o), n in health_outcomes.items() if code != 200),
        "server_workers": args.workers,
        "client_processes": args.client_processes,
        "client_threads": args.client_threads,
        # Server CPU (utime+stime of every process serving the port), steadier than seconds
        # on a shared machine.
        "server_cpu_ms_per_booking": round((cpu2 - cpu1) / args.attempts * 1000, 3),
        "server_cpu_ms_per_healthz": round((cpu1 - cpu0) / args.attempts * 1000, 3),
        "cpu_ratio": round((cpu2 - cpu1) / max(cpu1 - cpu0, 1e-9), 2),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        **({"profile": profile} if profile is not None else {}),
    }
    return figures


def _server_cpu_seconds(port: int) -> float:
    """User + system CPU seconds of every process serving port (gunicorn and its workers)."""
    total = 0
    needle = str(port).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if b"serve" in cmd and needle in cmd:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _in_process(args: argparse.Namespace, env: dict[str, str], token: str, slot_id: str,
                refs: list[str], db_url: str) -> dict[str, Any]:
    """Book every attempt in turn through the test client; return CPU and SQL per request."""
    import cProfile

    from bench.inprocess import noted_app
    from onsite_server.db import get_db

    app, client, statements = noted_app(env)
    for _ in range(50):  # warm-up: imports, statement caches, the pool
        client.get("/healthz")
    started = time.thread_time()
    for _ in range(300):
        client.get("/healthz")
    healthz_ms = (time.thread_time() - started) / 300 * 1000
    headers = {"Authorization": f"Bearer {token}"}
    profile = cProfile.Profile()
    cpu: dict[str, list[float]] = {"booked": [], "waitlisted": []}
    shape: dict[str, dict[str, int]] = {}
    for i, ref in enumerate(refs):
        statements.clear()
        if args.cprofile and i == args.seats + 10:
            profile.enable()
        started = time.thread_time()
        resp = client.post("/api/v1/bookings", headers=headers, json={
            "idempotency_key": str(uuid.uuid4()), "member_ref": ref, "slot_id": slot_id})
        spent = time.thread_time() - started
        status = resp.get_json()["status"]
        cpu[status].append(spent * 1000)
        shape.setdefault(status, {
            "statements": sum(s not in ("BEGIN", "COMMIT") for s in statements),
            "transactions": statements.count("BEGIN"),
            "savepoints": statements.count("SAVEPOINT"), "sequence": " ".join(statements)})
    profile.disable()
    if args.cprofile:
        profile.dump_stats(args.cprofile)
    get_db(app).dispose()
    booked_count, statuses = _tally(db_url, slot_id)

    def median(values: list[float]) -> float:
        return round(sorted(values)[len(values) // 2], 2) if values else 0.0

    return {
        "bench": "booking_contention_in_process",
        "db": "sqlite" if is_sqlite(db_url) else "postgresql",
        "attempts": args.attempts, "seats": args.seats,
        "booked": statuses.get("booked", 0), "waitlisted": statuses.get("waitlisted", 0),
        "slot_booked_count": booked_count,
        "healthz_cpu_ms": round(healthz_ms, 3),
        "booked_cpu_ms_median": median(cpu["booked"]),
        "waitlisted_cpu_ms_median": median(cpu["waitlisted"]),
        "waitlisted_ratio": round(median(cpu["waitlisted"]) / healthz_ms, 1),
        "booked_shape": shape.get("booked"), "waitlisted_shape": shape.get("waitlisted"),
        "profiled": bool(args.cprofile),
    }


if __name__ == "__main__":
    main()
