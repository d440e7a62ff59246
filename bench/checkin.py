"""Check-in latency: a scanned ticket posted, verified and recorded, against a live server.

Starts ``onsite-server serve --no-tls --workers 2`` (gunicorn gthread) on a temporary SQLite
file, or on PostgreSQL with --database-url (a fresh database on that cluster, dropped after).
Seeds one site, ``--scans`` members each with a booked seat in today's event, and mints each
one's ticket with the server's own ticket key (the instance's key folder), as a kiosk booking
would. A coordinator logs in through the log-in form; then each ticket URL is posted to
``/dashboard/checkin/scan`` the way the page's script posts it (JSON answer, CSRF header),
and every answer must say "checked in". Each scan is paired with a ``GET /healthz`` in the same
run, on the same connection, alternating, so the two are measured under the same conditions.
With ``--desks N`` the scans come from N desks at once (threads, each its own log-in).

Prints ONE JSON line: p50/p95/p99/max of both, and the ratio of the p50s. The aim (issue 9)
is a scan p95 under 100 ms. Loopback only; no test asserts these numbers.

    .venv/bin/python bench/checkin.py [--scans 500] [--desks 1] [--profile OUT]
    .venv/bin/python bench/checkin.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres

``--profile OUT`` samples the server with py-spy while the desks scan (``bench/spy.py``, GIL
holders only: CPU, not waits) and adds the busiest functions to the JSON line.

``--server-times`` splits each live figure into the server's part and the rest: the server
logs in JSON (``ONSITE_LOG_FORMAT=json``), whose access log carries each request's duration
inside gunicorn, and the workers' CPU is read from ``/proc`` around the run; a loop of
``/healthz`` alone after the scans gives the baseline's CPU, so the scan's is the pairs' less
it. What a scan waits for beyond its CPU (the disk's sync, other processes) is its server
time less its CPU.

``--in-process`` measures the server side alone: the same scans one after another through
Flask's test client in this process (same database file, keys and settings), with the server's
CPU (thread time) and wall time per scan and per ``GET /healthz``, and the SQL statements and
transactions of one scan; ``--cprofile FILE`` adds a cProfile of the scans.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bench.spy import Spy, server_pid
from bench.spy import summary as spy_summary
from onsite_server import devserver
from onsite_server.db import is_sqlite
from onsite_server.models import Booking, Employer, Event, Member, Site, Slot, User
from onsite_server.services.signing import KeyStore
from onsite_server.services.tickets import TicketIssuer
from onsite_server.services.users import hash_password

SECRET = "bench-checkin-secret"
PASSWORD = "bench-coordinator-pw"
CENTRAL_WEB = "https://central.example"
# Zones to pick from so that "now" is mid-day at the site: a ticket is for today's local date.
ZONES = ("UTC", "Europe/Berlin", "Asia/Kolkata", "Asia/Tokyo", "Pacific/Auckland",
         "America/New_York", "America/Los_Angeles", "Pacific/Honolulu")


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


def _midday_zone(now: datetime) -> str:
    return min(ZONES, key=lambda z: abs(now.astimezone(ZoneInfo(z)).hour - 12))


def seed(database_url: str, keys: KeyStore, scans: int, desks: int) -> list[str]:
    """Create the site, members, one slot today with a seat each, and coordinators; return
    the ticket URLs (what a scanner reads from the QR code)."""
    now = datetime.now(UTC).replace(microsecond=0)
    zone = _midday_zone(now)
    engine = create_engine(database_url)
    issuer = TicketIssuer(keys=keys, web_url=CENTRAL_WEB, grace=timedelta(days=1))
    try:
        with Session(engine) as session, session.begin():
            employer = Employer(slug="bench", name="Bench Corp")
            session.add(employer)
            session.flush()
            site = Site(employer_id=employer.id, slug="bench-site", name="Bench", timezone=zone)
            session.add(site)
            session.flush()
            event = Event(site_id=site.id, title="Flu shot clinic", kind="flu_shot")
            session.add(event)
            session.flush()
            slot = Slot(event_id=event.id, start_at=now + timedelta(minutes=1),
                        end_at=now + timedelta(minutes=61), capacity=scans, booked_count=scans)
            session.add(slot)
            members = [Member(employer_id=employer.id, member_id=f"M-{i}", employee_id=f"E{i}",
                              first_name=f"Member{i}", last_name="Bench",
                              birth_date=date(1980, 1, 1)) for i in range(scans)]
            session.add_all(members)
            session.flush()
            bookings = [Booking(member_id=m.id, event_id=event.id, slot_id=slot.id,
                                status="booked") for m in members]
            session.add_all(bookings)
            for desk in range(desks):
                session.add(User(email=f"desk{desk}@bench.example", name=f"Desk {desk}",
                                 role="coordinator", password_hash=hash_password(PASSWORD),
                                 site_id=site.id))
            session.flush()
            urls = []
            for booking in bookings:
                _, url = issuer.ticket(booking.public_id, slot.public_id, "booked", slot.end_at)
                assert url is not None
                urls.append(url)
        return urls
    finally:
        engine.dispose()


def _csrf(html: str, pattern: str) -> str:
    found = re.search(pattern, html)
    if not found:
        raise RuntimeError("no CSRF token on the page")
    return found.group(1)


def log_in(base: str, email: str) -> tuple[requests.Session, str]:
    """Log a coordinator in through the form; return the session and the page's CSRF token."""
    http = requests.Session()
    page = http.get(base + "/login", timeout=10)
    token = _csrf(page.text, r'name="csrf_token"[^>]*value="([^"]+)"')
    answer = http.post(base + "/login", data={"email": email, "password": PASSWORD,
                                              "csrf_token": token},
                       allow_redirects=False, timeout=10)
    if answer.status_code != 302:
        raise RuntimeError(f"log-in failed: {answer.status_code}")
    desk = http.get(base + "/dashboard/checkin", timeout=10)
    desk.raise_for_status()
    return http, _csrf(desk.text, r'<meta name="csrf-token" content="([^"]+)"')


class BareCommit:
    """A durable write and nothing else, on the disk the server's database is on.

    ``BEGIN IMMEDIATE``, one small INSERT, ``COMMIT`` on a scratch SQLite file beside the
    server's, with the server's settings (WAL, ``synchronous=FULL``): what the disk's sync
    costs at that moment, with no Python server in the way. A scan must wait for one such
    sync before its answer; ``/healthz`` never does.
    """

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
        self.lock = threading.Lock()

    def once(self) -> float:
        """Run one durable write; return its milliseconds."""
        with self.lock:
            started = time.perf_counter()
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("INSERT INTO t (v) VALUES (?)", ("x" * 200,))
            self.conn.execute("COMMIT")
            return (time.perf_counter() - started) * 1000


def run_desk(base: str, desk: tuple[requests.Session, str], urls: list[str],
             scan_ms: list[float], health_ms: list[float], failures: list[str],
             lock: threading.Lock, bare: BareCommit | None = None,
             commit_ms: list[float] | None = None) -> None:
    """Scan every ticket in urls, each followed by a /healthz (and a bare commit), timing each.

    ``desk``: a logged-in desk (``log_in``), logged in before the run so that the log-in's
    password hash is not in the server's CPU over the scans.
    """
    http, token = desk
    headers = {"Accept": "application/json", "X-CSRFToken": token}
    mine_scan: list[float] = []
    mine_health: list[float] = []
    mine_commit: list[float] = []
    for url in urls:
        started = time.perf_counter()
        answer = http.post(base + "/dashboard/checkin/scan", data={"ticket": url},
                           headers=headers, timeout=30)
        mine_scan.append((time.perf_counter() - started) * 1000)
        body = answer.json() if answer.headers.get("content-type", "").startswith(
            "application/json") else {}
        if answer.status_code != 200 or not body.get("ok") or \
                body.get("result", {}).get("status") != "checked_in":
            with lock:
                failures.append(f"{answer.status_code} {str(body)[:200]}")
        started = time.perf_counter()
        health = http.get(base + "/healthz", timeout=30)
        mine_health.append((time.perf_counter() - started) * 1000)
        if health.status_code != 200:
            with lock:
                failures.append(f"healthz {health.status_code}")
        if bare is not None:
            mine_commit.append(bare.once())
    with lock:
        scan_ms.extend(mine_scan)
        health_ms.extend(mine_health)
        if commit_ms is not None:
            commit_ms.extend(mine_commit)


def _tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (the gunicorn arbiter and workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    total = 0.0
    for one in (pid, *map(int, children)):
        fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def server_durations(log: Path, start: int) -> dict[str, list[float]]:
    """Each scan's and /healthz's time inside gunicorn, from the JSON access log after start."""
    found: dict[str, list[float]] = {"scan": [], "healthz": []}
    with log.open(errors="replace") as lines:
        lines.seek(start)
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if not isinstance(entry, dict) or entry.get("logger") != "access":
                continue
            kind = {"/dashboard/checkin/scan": "scan", "/healthz": "healthz"}.get(
                entry.get("path", ""))
            if kind is not None:
                found[kind].append(float(entry["duration_ms"]))
    return found


def server_times(base: str, pid: int, log: Path, start: int, pairs_cpu: float,
                 scans: int) -> dict[str, Any]:
    """The server's part of the run: time inside gunicorn and CPU, per scan and per /healthz.

    ``pairs_cpu``: the workers' CPU over the scans and their /healthz. The same number of
    /healthz are then sent alone, to take their CPU out of it.
    """
    http = requests.Session()
    http.get(base + "/healthz", timeout=10)
    before = _tree_cpu_seconds(pid)
    for _ in range(scans):
        http.get(base + "/healthz", timeout=30)
    healthz_cpu = _tree_cpu_seconds(pid) - before
    time.sleep(0.5)  # the workers write their last access-log lines
    inside = server_durations(log, start)
    return {"scan_inside_server_p50_ms": round(statistics.median(inside["scan"]), 2),
            "healthz_inside_server_p50_ms": round(statistics.median(
                inside["healthz"][:len(inside["scan"])]), 2),
            "scan_server_cpu_ms": round((pairs_cpu - healthz_cpu) / scans * 1000, 3),
            "healthz_server_cpu_ms": round(healthz_cpu / scans * 1000, 3)}


def _figures(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50_ms": round(statistics.median(ordered), 2), "p95_ms": round(cuts[94], 2),
            "p99_ms": round(cuts[98], 2), "max_ms": round(ordered[-1], 2)}


def main() -> None:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=500)
    parser.add_argument("--desks", type=int, default=1)
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL cluster URL; a fresh database is made and dropped")
    parser.add_argument("--profile", type=Path, default=None,
                        help="py-spy the server while the desks scan; raw stacks to this file")
    parser.add_argument("--server-times", action="store_true",
                        help="also the server's part: time inside gunicorn and CPU per request")
    parser.add_argument("--in-process", action="store_true",
                        help="server side only: sequential scans through the test client")
    parser.add_argument("--cprofile", help="with --in-process: write a cProfile here")
    parser.add_argument("--phases", action="store_true",
                        help="with --in-process: the server's CPU per phase of a scan")
    args = parser.parse_args()
    profile = None
    folder = Path(tempfile.mkdtemp(prefix="bench-checkin-"))
    pg_name = None
    try:
        if args.database_url:
            database_url, pg_name = _fresh_pg_database(args.database_url)
        else:
            database_url = f"sqlite:///{folder / 'onsite.sqlite'}"
        instance = folder / "instance"
        env = {**os.environ, "ONSITE_DATABASE_URL": database_url,
               "ONSITE_INSTANCE_PATH": str(instance), "ONSITE_SECRET_KEY": SECRET,
               "ONSITE_SITE_SLUG": "bench-site", "ONSITE_CENTRAL_WEB_URL": CENTRAL_WEB,
               # Plain HTTP on loopback: the client must send the session cookie back.
               "ONSITE_SESSION_COOKIE_SECURE": "false",
               **({"ONSITE_LOG_FORMAT": "json"} if args.server_times else {})}
        if args.in_process:
            devserver.cli(env, "init-db")
            urls = seed(database_url, KeyStore(instance / "keys"), args.scans, 1)
            print(json.dumps(_in_process(args, env, urls, database_url), sort_keys=True))
            return
        split = None
        with devserver.running_server(env, folder / "server.log") as base:
            urls = seed(database_url, KeyStore(instance / "keys"), args.scans, args.desks)
            scan_ms: list[float] = []
            health_ms: list[float] = []
            commit_ms: list[float] = []
            failures: list[str] = []
            lock = threading.Lock()
            # SQLite only: the disk's sync, measured in the same minutes (PostgreSQL's own
            # commit is on its cluster's disk and settings).
            bare = BareCommit(folder / "bare-commit.sqlite") if is_sqlite(database_url) \
                else None
            desks = [log_in(base, f"desk{d}@bench.example") for d in range(args.desks)]
            threads = [threading.Thread(target=run_desk, args=(
                base, desks[d], urls[d::args.desks], scan_ms, health_ms, failures, lock, bare,
                commit_ms)) for d in range(args.desks)]
            spy = None
            arbiter = server_pid(int(base.rsplit(":", 1)[1].split("/")[0]))
            if args.profile:
                spy = Spy(arbiter, args.profile, gil=True)
            log_start = (folder / "server.log").stat().st_size
            cpu_start = _tree_cpu_seconds(arbiter) if args.server_times else 0.0
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
            if args.server_times:
                split = server_times(base, arbiter, folder / "server.log", log_start,
                                     _tree_cpu_seconds(arbiter) - cpu_start, len(urls))
            if spy is not None:
                spy.stop()
                profile = spy_summary(spy.out, top=40, match="onsite_server/")
            engine = create_engine(database_url)
            with engine.connect() as conn:
                checked = conn.scalar(select(func.count()).select_from(Booking).where(
                    Booking.status == "checked_in"))
            engine.dispose()
        scan, health = _figures(scan_ms), _figures(health_ms)
        commit = _figures(commit_ms) if commit_ms else None
        print(json.dumps({
            "benchmark": "checkin", "database": "sqlite" if is_sqlite(database_url)
            else "postgresql", "scans": len(scan_ms), "desks": args.desks,
            "checked_in_in_db": checked, "failures": len(failures),
            "first_failures": failures[:3], "scan": scan, "healthz": health,
            "scan_over_healthz_p50": round(scan["p50_ms"] / health["p50_ms"], 2),
            # The disk's part: a bare durable write in the same minutes (SQLite runs).
            **({"bare_commit": commit,
                "bare_commit_over_healthz_p50": round(commit["p50_ms"] / health["p50_ms"], 2)}
               if commit is not None else {}),
            "aim_p95_under_100ms": scan["p95_ms"] < 100,
            "elapsed_s": round(elapsed, 2), "server": "gunicorn gthread, 2 workers x 4 threads",
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            **({"server_times": split} if split is not None else {}),
            **({"profile": profile} if profile is not None else {}),
            "at": datetime.now(UTC).isoformat(timespec="seconds")}, sort_keys=True))
    finally:
        if pg_name and args.database_url:
            _drop_pg_database(args.database_url, pg_name)
        shutil.rmtree(folder, ignore_errors=True)


def _phases(app: Any) -> Any:
    """Time a scan's phases: the app's hooks and views, and what the scan's view calls."""
    from bench.inprocess import Phases
    from onsite_server.dashboard import checkin as desk
    from onsite_server.db import group_commit
    from onsite_server.services import checkin as service

    phases = Phases(app)
    for name in ("read_ticket", "check_in_found", "verify"):
        phases.wrap(service, name, f"scan: {name}")
    for name in ("_ring", "describe", "_answer", "get_session"):
        phases.wrap(desk, name, f"scan: {name}")
    # The write's turn (the connection, BEGIN IMMEDIATE) and its COMMIT with the sync.
    phases.wrap(group_commit.GroupCommit, "_open", "write: open (BEGIN IMMEDIATE)")
    phases.wrap(group_commit.GroupCommit, "_close", "write: COMMIT (and its sync)")
    return phases


def _in_process(args: argparse.Namespace, env: dict[str, str], urls: list[str],
                database_url: str) -> dict[str, Any]:
    """Scan every ticket in turn through the test client; return CPU, wall and SQL per request."""
    import cProfile

    from bench.inprocess import noted_app
    from onsite_server.db import get_db

    app, client, statements = noted_app(env)
    phases = _phases(app) if args.phases else None
    page = client.get("/login")
    token = _csrf(page.get_data(as_text=True), r'name="csrf_token"[^>]*value="([^"]+)"')
    answer = client.post("/login", data={"email": "desk0@bench.example", "password": PASSWORD,
                                         "csrf_token": token})
    if answer.status_code != 302:
        raise RuntimeError(f"log-in failed: {answer.status_code}")
    desk = client.get("/dashboard/checkin")
    headers = {"Accept": "application/json",
               "X-CSRFToken": _csrf(desk.get_data(as_text=True),
                                    r'<meta name="csrf-token" content="([^"]+)"')}
    for _ in range(50):  # warm-up: imports, statement caches, the pool
        client.get("/healthz")
    profile = cProfile.Profile()
    cpu: dict[str, list[float]] = {"scan": [], "healthz": []}
    wall: dict[str, list[float]] = {"scan": [], "healthz": []}
    failures = 0
    shape: dict[str, Any] = {}
    spent: dict[str, dict[str, list[float]]] = {"scan": {}, "healthz": {}}
    for i, url in enumerate(urls):
        statements.clear()
        if args.cprofile and i == 10:
            profile.enable()
        started, started_wall = time.thread_time(), time.perf_counter()
        resp = client.post("/dashboard/checkin/scan", data={"ticket": url}, headers=headers)
        cpu["scan"].append((time.thread_time() - started) * 1000)
        wall["scan"].append((time.perf_counter() - started_wall) * 1000)
        if phases is not None:
            for name, seconds in phases.take().items():
                spent["scan"].setdefault(name, []).append(seconds * 1000)
        if resp.status_code != 200 or resp.get_json()["result"]["status"] != "checked_in":
            failures += 1
        if not shape:
            shape = {"statements": sum(s not in ("BEGIN", "COMMIT") for s in statements),
                     "transactions": statements.count("BEGIN"),
                     "sequence": " ".join(statements)}
        started, started_wall = time.thread_time(), time.perf_counter()
        client.get("/healthz")
        cpu["healthz"].append((time.thread_time() - started) * 1000)
        wall["healthz"].append((time.perf_counter() - started_wall) * 1000)
        if phases is not None:
            for name, seconds in phases.take().items():
                spent["healthz"].setdefault(name, []).append(seconds * 1000)
    profile.disable()
    if args.cprofile:
        profile.dump_stats(args.cprofile)
    get_db(app).dispose()
    check = create_engine(database_url)
    with check.connect() as conn:
        checked = conn.scalar(select(func.count()).select_from(Booking).where(
            Booking.status == "checked_in"))
    check.dispose()

    def median(values: list[float]) -> float:
        return round(statistics.median(values), 3)

    return {
        "benchmark": "checkin_in_process",
        "database": "sqlite" if is_sqlite(database_url) else "postgresql",
        "scans": len(urls), "failures": failures, "checked_in_in_db": checked,
        "scan_cpu_ms_median": median(cpu["scan"]), "healthz_cpu_ms_median": median(cpu["healthz"]),
        "scan_wall_ms_median": median(wall["scan"]),
        "healthz_wall_ms_median": median(wall["healthz"]),
        "cpu_ratio": round(statistics.median(cpu["scan"]) / statistics.median(cpu["healthz"]), 2),
        "scan_shape": shape, "profiled": bool(args.cprofile),
        **({"phases_cpu_ms_median": {kind: dict(sorted(
            ((name, median(values)) for name, values in by_name.items()
             if len(values) * 2 > len(urls)), key=lambda item: -item[1]))
            for kind, by_name in spent.items()}} if phases is not None else {}),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "at": datetime.now(UTC).isoformat(timespec="seconds")}


if __name__ == "__main__":
    main()
