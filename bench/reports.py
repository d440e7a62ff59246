"""The employer report over 100,000 submissions from 20,000 members, on SQLite and PostgreSQL.

For each database the script migrates a fresh one, seeds it in bulk (Core executemany): one site,
20,000 members, 100,000 submissions over three months (a fifth anonymous), a handful of a rarely
used instrument so that some cells are small, and events with bookings. The first month's
answers are then aged and purged by retention, so the report reads tallies as well as rows.

Measured, in the same process and on the same data:

- ``baseline_s``: reading the period's submission rows (id, taken_at) and nothing else, the
  floor any report over them pays;
- ``report_s``: ``employer_report`` for the three months: queries, counting distinct people,
  building the tables and deciding suppression (complementary suppression runs the audit's
  linear programs as it goes); median of ``--repeat`` runs;
- ``audit_s``: the full audit afterwards, as the report runs it (a cell already shown
  ``minimum`` wide by known feasible fillings needs no program of its own);
- ``audit_exact_s``: the same audit with every hidden cell's exact range (two linear programs
  per hidden cell);
- ``peak_mib``: the peak of Python allocations during one report (tracemalloc, in a run apart
  from the timed ones, since tracing slows everything down).

PostgreSQL is a throwaway cluster started here like scripts/test.sh does (as the postgres user
when run as root), stopped and removed at exit; when its binaries are missing that database is
skipped with a message. Prints ONE JSON line. No test asserts any of these numbers.

    .venv/bin/python bench/reports.py [--members 20000] [--submissions 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from onsite_server import create_app  # noqa: E402
from onsite_server.db import get_db  # noqa: E402
from onsite_server.migrate import upgrade  # noqa: E402
from onsite_server.models import Submission  # noqa: E402
from onsite_server.services.reports import employer_report  # noqa: E402
from onsite_server.services.retention import purge_expired  # noqa: E402
from onsite_server.services.suppression import audit  # noqa: E402
from tests.onsite_server.helpers import gen_site  # noqa: E402
from tests.onsite_server.report_data import (  # noqa: E402
    add_submissions,
    seed_site,
    submission_row,
)

START = datetime(2026, 3, 1, tzinfo=UTC)
MONTHS = ("2026-03", "2026-05")


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str | None]:
    """Start a PostgreSQL cluster in a temporary folder; yield its URL, or None when absent."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bins or not os.access(f"{bins[-1]}/initdb", os.X_OK):
        print("reports: PostgreSQL server binaries not found; PostgreSQL skipped", file=sys.stderr)
        yield None
        return
    pg_bin = bins[-1]
    folder = tempfile.mkdtemp(prefix="onsite-bench-pg.")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    as_postgres = ["su", "postgres", "-s", "/bin/sh", "-c"] if os.getuid() == 0 else [
        "sh", "-c"]
    if os.getuid() == 0:
        shutil.chown(folder, "postgres")
    data = f"{folder}/data"
    try:
        subprocess.run([*as_postgres, f"{pg_bin}/initdb -D '{data}' -U postgres -A trust "
                        f"-E UTF8 >'{folder}/initdb.log' 2>&1"], check=True)
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -k '{folder}' -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")
        subprocess.run([*as_postgres, f"{pg_bin}/pg_ctl -D '{data}' -l '{folder}/server.log' "
                        f"-w -t 60 -o \"{options}\" start >/dev/null"], check=True)
        subprocess.run([f"{pg_bin}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U",
                        "postgres", "bench"], check=True)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/bench"
    finally:
        subprocess.run([*as_postgres, f"{pg_bin}/pg_ctl -D '{data}' -m immediate stop "
                        ">/dev/null 2>&1"], check=False)
        shutil.rmtree(folder, ignore_errors=True)


def seed(app: Any, members: int, submissions: int) -> dict[str, Any]:
    """Seed the site, age and purge the first month; return what was done and how long."""
    began = time.perf_counter()
    with get_db(app).transaction() as session:
        site = gen_site(session, "bench-site")
        seeded = seed_site(session, site, members=members, submissions=submissions,
                           start=START, days=91, seed=20261201, events=8)
        # A rarely offered instrument: small cells that suppression must hide, with complements.
        rng = random.Random(5)
        bands = ["likely_depression", "poor_wellbeing", "adequate"]
        add_submissions(session, [
            submission_row(seeded.kiosk_ids[0], m, None, "who5", rng.choice(bands),
                           START + timedelta(days=rng.randrange(91), hours=10))
            for m in rng.sample(seeded.member_ids, 25)])
        site_id = site.id
    seeded_s = time.perf_counter() - began
    began = time.perf_counter()
    with get_db(app).transaction() as session:
        session.execute(update(Submission).where(Submission.taken_at < datetime(
            2026, 4, 1, tzinfo=UTC)).values(received_at=datetime(2025, 1, 1, tzinfo=UTC)))
    purged = 0
    while True:
        with get_db(app).transaction() as session:
            n = purge_expired(session, days=90, now=datetime(2026, 4, 2, tzinfo=UTC),
                              limit=5000)
        if not n:
            break
        purged += n
    return {"site_id": site_id, "seed_s": round(seeded_s, 2),
            "purge_s": round(time.perf_counter() - began, 2), "purged": purged}


def one_report(app: Any, site_id: int) -> Any:
    """The employer report for the three months of the site."""
    with get_db(app).transaction(write=False) as session:
        return employer_report(session, first_month=MONTHS[0], last_month=MONTHS[1],
                               site_id=site_id, timezone="America/New_York")


def baseline(app: Any) -> float:
    """Read the period's rows, two columns, nothing else."""
    began = time.perf_counter()
    with get_db(app).transaction(write=False) as session:
        rows = session.execute(select(Submission.id, Submission.taken_at).where(
            Submission.taken_at >= START)).all()
    assert rows
    return time.perf_counter() - began


def measure(url: str, members: int, submissions: int, repeat: int) -> dict[str, Any]:
    """Seed one database and time the report on it."""
    folder = tempfile.mkdtemp(prefix="onsite-bench-reports.")
    try:
        app = create_app({"TESTING": True, "DATABASE_URL": url, "INSTANCE_PATH": folder,
                          "SECRET_KEY": "bench-secret"})
        upgrade(get_db(app))
        done = seed(app, members, submissions)
        one_report(app, done["site_id"])  # warm: imports, instrument definitions, plans
        base = [baseline(app) for _ in range(repeat)]
        times = []
        for _ in range(repeat):
            began = time.perf_counter()
            report = one_report(app, done["site_id"])
            times.append(time.perf_counter() - began)
        began = time.perf_counter()
        ranges = report.audit()
        audit_s = time.perf_counter() - began
        began = time.perf_counter()
        exact = audit(report.publication, report.suppression.hidden, report.minimum,
                      exact=True)
        exact_s = time.perf_counter() - began
        tracemalloc.start()
        one_report(app, done["site_id"])
        _now, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        get_db(app).dispose()
        cells = len(report.publication.values)
        return {
            **{k: v for k, v in done.items() if k != "site_id"},
            "baseline_s": round(statistics.median(base), 3),
            "report_s": round(statistics.median(times), 3),
            "report_runs_s": [round(t, 3) for t in times],
            "report_over_baseline": round(statistics.median(times) / statistics.median(base), 1),
            "audit_s": round(audit_s, 3),
            "audit_exact_s": round(exact_s, 3),
            "peak_mib": round(peak / 2**20, 1),
            "tables": len(report.tables), "cells": cells,
            "primary": len(report.suppression.primary),
            "complementary": len(report.suppression.complementary),
            "audit_passes": all(r.protects(report.minimum) for r in ranges),
            "exact_audit_passes": all(r.protects(report.minimum) for r in exact),
            "narrowest_hidden_range": min((r.width() for r in ranges), default=None),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    """Run on SQLite, then PostgreSQL; print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--submissions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    out: dict[str, Any] = {"bench": "reports", "members": args.members,
                           "submissions": args.submissions + 25, "months": list(MONTHS),
                           "at": datetime.now(UTC).isoformat(timespec="seconds"),
                           "machine": f"{platform.machine()} {os.cpu_count()} cpu, "
                                      f"Python {platform.python_version()}"}
    with tempfile.TemporaryDirectory(prefix="onsite-bench-sqlite.") as folder:
        out["sqlite"] = measure(f"sqlite:///{folder}/bench.sqlite", args.members,
                                args.submissions, args.repeat)
    with throwaway_postgres() as pg_url:
        if pg_url is None:
            out["postgresql"] = {"skipped": "PostgreSQL server binaries not found"}
        else:
            out["postgresql"] = measure(pg_url, args.members, args.submissions, args.repeat)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
