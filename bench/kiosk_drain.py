"""Backlog drain: 10,000 submissions queued in the kiosk outbox while the server was down.

Starts ``onsite-server serve --workers 2`` over TLS (its self-signed certificate, pinned by
the kiosk as in production) on a temporary SQLite file, pairs a ``KioskService``, stops the
server, queues the items through ``KioskService.submit`` (anonymous one-item PHQ-9 visits,
random answers, item 9 = 0; every tenth visit names a roster member by an id typed offline),
starts the server again and times the sync worker's drain until the outbox is empty. In the
same run it reads the stored submission rows back and times a direct bulk insert of the same
rows into a fresh database of the same kind (one transaction, executemany), and prints ONE
JSON line with both times and their ratio, and the CPU seconds the server's processes and the
kiosk's spent during the drain (where the time goes).

    .venv/bin/python bench/kiosk_drain.py [--items 10000] [--batch 250] [--profile OUT]

``--batch`` defaults to the kiosk's own ``kiosk.sync.DEFAULT_BATCH``, ``--in-flight`` (requests
the kiosk keeps in flight while draining) to ``kiosk.sync.IN_FLIGHT``.

``--profile OUT`` samples the server's processes with py-spy during the drain only (see
``bench/spy.py``) and adds the busiest functions to the JSON line.

``--in-process`` sends the same kind of backlog (as the kiosk would send it, in requests of
``--batch`` items) through Flask's test client in this process, on a SQLite file in RAM where
there is room, and prints the server's CPU per item without HTTP, TLS, the kiosk or other
processes in the way (what a change to the server's own path moves); with ``--profile OUT``
it writes a cProfile of the requests there.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.spy import Spy, summary  # noqa: E402
from kiosk.service import KioskService  # noqa: E402
from kiosk.settings import KioskSettings  # noqa: E402
from kiosk.sync import DEFAULT_BATCH  # noqa: E402
from onsite_server.devserver import cli, free_port, stop_server  # noqa: E402

SECRET = "bench-secret-key"
MEMBERS = 50


def _start(env: dict[str, str], instance: Path, port: int, log: Path
           ) -> subprocess.Popen[bytes]:
    """Start gunicorn over TLS and wait for /healthz (verified against its own certificate)."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "onsite_server.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "2"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    cert = instance / "tls_cert.pem"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if cert.exists() and requests.get(f"https://127.0.0.1:{port}/healthz",
                                              verify=str(cert), timeout=2).ok:
                return proc
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError("server did not start: " + log.read_text(errors="replace")[-2000:])


def _group_cpu_seconds(pgid: int) -> dict[int, float]:
    """User + system CPU seconds of each live process in a process group (gunicorn), by pid."""
    found: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state, ppid, pgrp, ..., utime (12th), stime (13th).
        if int(fields[2]) == pgid:
            found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    return found


def _seed_members(db_url: str) -> None:
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from onsite_server.models import Member, Site

    engine = create_engine(db_url)
    with Session(engine) as session, session.begin():
        site = session.scalars(select(Site).where(Site.slug == "bench")).one()
        for i in range(MEMBERS):
            session.add(Member(employer_id=site.employer_id, member_id=f"M{i}",
                               employee_id=f"E{i}", first_name="Bench", last_name=f"M{i}",
                               birth_date=date(1980, 1, 1 + i % 28)))
    engine.dispose()


def _queue(service: KioskService, items: int, rng: random.Random) -> None:
    """Queue one-item visits; every tenth names a member by an id typed offline."""
    for n in range(items):
        who = None
        if n % 10 == 0:
            i = rng.randrange(MEMBERS)
            who = service.identify(f"E{i}", f"1980-01-{1 + i % 28:02d}")
        answers: dict[str, Any] = {str(q): rng.randint(0, 3) for q in range(1, 9)}
        answers["9"] = 0
        service.submit(who, [{"instrument_id": "phq9", "instrument_version": "1.0.0",
                              "answers": answers}], crisis=False)


def _bulk_insert_baseline(server_db: str, work: Path) -> tuple[float, float, int]:
    """Time inserting the server's stored submission rows into a fresh database, in bulk.

    Returns (wall seconds, CPU seconds of this process, rows). The wall time includes the
    commit's sync, which on a shared disk swings several-fold between runs; the CPU time is
    the steadier figure to set the drain's CPU against.
    """
    from sqlalchemy import Table, create_engine, select

    from onsite_server import create_app
    from onsite_server.db import get_db
    from onsite_server.migrate import upgrade
    from onsite_server.models import Employer, Kiosk, Site, Submission

    table = cast(Table, Submission.__table__)
    source = create_engine(server_db)
    with source.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(table))]
    source.dispose()
    app = create_app({"DATABASE_URL": f"sqlite:///{work / 'bulk.sqlite'}",
                      "INSTANCE_PATH": str(work / "bulk-instance"), "SECRET_KEY": SECRET})
    db = get_db(app)
    upgrade(db)
    with db.transaction() as session:
        employer = Employer(slug="bulk", name="Bulk")
        session.add(employer)
        session.flush()
        site = Site(employer_id=employer.id, slug="bulk", name="Bulk")
        session.add(site)
        session.flush()
        kiosk = Kiosk(site_id=site.id)
        session.add(kiosk)
        session.flush()
        kiosk_id = kiosk.id
    for row in rows:
        row.pop("id")
        # The fresh database has no members or referrals: same columns, no foreign rows.
        row.update(kiosk_id=kiosk_id, member_id=None, referral_id=None)
    # Collected first: the kiosk's garbage from the drain must not be collected inside the
    # timed insert (a full collection there doubled the baseline's CPU, 0.16 -> 0.30 s, in
    # every run whose kiosk had sent 100-item batches and in none with 250).
    gc.collect()
    started, cpu = time.perf_counter(), time.process_time()
    with db.transaction() as session:
        session.connection().execute(table.insert(), rows)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    db.dispose()
    return seconds, cpu, len(rows)


def _wire_items(items: int, rng: random.Random) -> list[dict[str, Any]]:
    """The queued visits as the kiosk sends them: every tenth names a member typed offline."""
    out = []
    for n in range(items):
        who: dict[str, Any] = {"anonymous": True}
        if n % 10 == 0:
            i = rng.randrange(MEMBERS)
            who = {"offline_identity": {"id": f"E{i}", "birth_date": f"1980-01-{1 + i % 28:02d}"}}
        answers: dict[str, Any] = {str(q): rng.randint(0, 3) for q in range(1, 9)}
        answers["9"] = 0
        out.append({"idempotency_key": str(uuid.uuid4()), "session_id": str(uuid.uuid4()),
                    "instrument_id": "phq9", "instrument_version": "1.0.0", "answers": answers,
                    "skipped": [], "taken_at": datetime.now(UTC).isoformat(), **who})
    return out


def _in_process(items: int, batch: int, profile: Path | None) -> dict[str, Any]:
    """Send a backlog through the test client in this process; return the server's CPU."""
    import cProfile

    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(prefix="kiosk-drain-",
                                     dir=shm if shm.is_dir() else None) as tmp:
        work = Path(tmp)
        db_url = f"sqlite:///{work / 'server.sqlite'}"
        env = {**os.environ, "ONSITE_DATABASE_URL": db_url,
               "ONSITE_INSTANCE_PATH": str(work / "instance"), "ONSITE_SECRET_KEY": SECRET,
               "ONSITE_OFFLINE_IDENTIFY_PER_DAY": str(2 * items)}
        cli(env, "init-db")
        cli(env, "create-site", "--employer", "bench", "--slug", "bench", "--name", "Bench")
        _seed_members(db_url)
        code = cli(env, "pairing-code", "--site", "bench").stdout.strip().splitlines()[-1]
        os.environ.update({k: v for k, v in env.items() if k.startswith("ONSITE_")})
        from onsite_server import create_app
        from onsite_server.db import get_db

        app = create_app()
        client = app.test_client()
        token = client.post("/api/v1/pair", json={"pairing_code": code,
                                                  "app_version": "bench"}).get_json()["token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        rng = random.Random(8)
        # One batch first, not counted: imports, compiled statements, the worker's warm-up.
        client.post("/api/v1/submissions", headers=headers,
                    data=json.dumps({"items": _wire_items(batch, rng)}))
        wire = _wire_items(items, rng)
        bodies = [json.dumps({"items": wire[i:i + batch]}).encode()
                  for i in range(0, items, batch)]
        # As a gunicorn worker does after start-up (cli_serve.load_app).
        gc.collect()
        gc.freeze()
        profiler = cProfile.Profile() if profile is not None else None
        cpu = time.process_time()
        if profiler is not None:
            profiler.enable()
        accepted = 0
        for body in bodies:
            answers = client.post("/api/v1/submissions", headers=headers, data=body)
            accepted += sum(a["status"] == "accepted" for a in answers.get_json()["results"])
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(profile))
        cpu = time.process_time() - cpu
        gc.unfreeze()
        get_db(app).dispose()
    return {"bench": "kiosk_drain", "in_process": True, "items": items, "batch": batch,
            "accepted": accepted, "server_cpu_seconds": round(cpu, 3),
            "server_cpu_us_per_item": round(cpu / items * 1e6, 1),
            "load_average": list(os.getloadavg()), "run_id": uuid.uuid4().hex[:8]}


def main() -> None:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    parser.add_argument("--in-flight", type=int, default=None,
                        help="the kiosk's requests in flight (default: kiosk.sync.IN_FLIGHT)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="py-spy the server during the drain; raw stacks to this file")
    parser.add_argument("--in-process", action="store_true",
                        help="the server's path alone, through Flask's test client")
    args = parser.parse_args()
    if args.in_process:
        print(json.dumps(_in_process(args.items, args.batch, args.profile)))
        return
    profile: dict[str, Any] | None = None
    rng = random.Random(8)
    with tempfile.TemporaryDirectory(prefix="kiosk-drain-") as tmp:
        work = Path(tmp)
        instance = work / "instance"
        db_url = f"sqlite:///{work / 'server.sqlite'}"
        env = {**os.environ, "ONSITE_DATABASE_URL": db_url,
               "ONSITE_INSTANCE_PATH": str(instance), "ONSITE_SECRET_KEY": SECRET,
               "ONSITE_OFFLINE_IDENTIFY_PER_DAY": str(args.items)}
        cli(env, "init-db")
        cli(env, "create-site", "--employer", "bench", "--slug", "bench", "--name", "Bench")
        _seed_members(db_url)
        port = free_port()
        log = work / "server.log"
        proc = _start(env, instance, port, log)
        settings = KioskSettings(data_dir=work / "kiosk", key_dir=work / "kiosk-keys")
        service = KioskService(settings, batch_size=args.batch)
        try:
            code = cli(env, "pairing-code", "--site", "bench").stdout.strip().splitlines()[-1]
            service.pair(f"https://127.0.0.1:{port}", code)
            stop_server(proc)  # the server goes down; the kiosk keeps working
            started = time.perf_counter()
            _queue(service, args.items, rng)
            queue_seconds = time.perf_counter() - started
            depth = service.status().outbox_depth
            service.worker.run_once()  # offline: nothing leaves
            assert service.status().outbox_depth == depth
            proc = _start(env, instance, port, log)
            progress: list[tuple[int, int]] = []
            service.worker.notify = lambda s: progress.append(
                (s.sent_since_backlog, s.backlog_at_start))
            spy = Spy(proc.pid, args.profile) if args.profile else None
            server_before = _group_cpu_seconds(proc.pid)
            kiosk_cpu = time.process_time()
            started = time.perf_counter()
            client = service._worker_client
            assert client is not None
            if args.in_flight is not None:
                service.worker.in_flight = args.in_flight
            in_flight = service.worker.in_flight
            service.worker.drain(client)
            drain_seconds = time.perf_counter() - started
            kiosk_cpu = time.process_time() - kiosk_cpu
            server_after = _group_cpu_seconds(proc.pid)
            # Per process: whether the drain kept both workers busy or only one.
            per_process = sorted((round(server_after[pid] - server_before.get(pid, 0.0), 2)
                                  for pid in server_after), reverse=True)
            server_cpu = sum(server_after.values()) - sum(server_before.values())
            if spy is not None:
                spy.stop()
                profile = summary(spy.out, top=20)
            left = service.status().outbox_depth
        finally:
            service.close()
            stop_server(proc)
        from sqlalchemy import create_engine, func, select

        from onsite_server.models import Submission

        engine = create_engine(db_url)
        with engine.connect() as conn:
            stored = conn.scalar(select(func.count()).select_from(Submission))
            matched = conn.scalar(select(func.count()).select_from(Submission)
                                  .where(Submission.member_id.is_not(None)))
        engine.dispose()
        bulk_seconds, bulk_cpu, bulk_rows = _bulk_insert_baseline(db_url, work)
    print(json.dumps({
        "bench": "kiosk_drain", "db": "sqlite", "tls": True,
        "server": "serve --workers 2 (gthread x4)", "items": args.items, "batch": args.batch,
        "kiosk_in_flight": in_flight,
        "queue_seconds": round(queue_seconds, 3),
        "queue_items_per_s": round(args.items / queue_seconds, 1),
        "drain_seconds": round(drain_seconds, 3),
        "drain_items_per_s": round(args.items / drain_seconds, 1),
        "drain_server_cpu_seconds": round(server_cpu, 2),
        "drain_kiosk_cpu_seconds": round(kiosk_cpu, 2),
        "drain_server_cpu_by_process": per_process,
        "bulk_insert_seconds": round(bulk_seconds, 3), "bulk_rows": bulk_rows,
        "ratio": round(drain_seconds / bulk_seconds, 2),
        # CPU against CPU: the server's and the kiosk's during the drain, the bulk insert's.
        "bulk_insert_cpu_seconds": round(bulk_cpu, 3),
        "ratio_cpu": round((server_cpu + kiosk_cpu) / bulk_cpu, 2) if bulk_cpu else None,
        "stored": stored, "matched_offline": matched, "outbox_left": left,
        "progress_first": progress[0] if progress else None,
        "progress_last": progress[-1] if progress else None,
        "progress_updates": len(progress), "load_average": list(os.getloadavg()),
        "run_id": uuid.uuid4().hex[:8],
        **({"profile": profile} if profile is not None else {}),
    }))


if __name__ == "__main__":
    main()
