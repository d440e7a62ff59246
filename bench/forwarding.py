"""Forwarding rate: queued outbox items sent to central, vs FHIR validation alone.

Seeds a temporary SQLite onsite server through its own kiosk API (one identified PHQ-9 check-up
per member, who consents to be contacted, so each queued item is one member's referral with
its answers, score and Task), starts a central on loopback, and in the same run measures:

(a) ``build``: every queued row turned into its transaction Bundle from the database, without
    validation;
(b) ``validate``: ``fhir.validate`` (the R4B models plus our code checks) on each of those
    Bundles, alone;
(c) ``forward``: ``run_cycle`` with the real HTTP client sending every row to central
    (build, validate, POST, record the outcome), one worker;
(d) ``update``: one more check-up per member, then ``run_cycle`` again: each referral is now
    an update of what central holds (read back, merged, written with If-Match).

Two centrals, each with its own seeded database and its own (a) and (b): ``sink``
(``bench/central_sink.py``, which answers at once and validates nothing: our own cost, the
figure the aim is about) and ``emulator`` (``central-emulator``, which validates every
resource again, as a strict FHIR server would). ``--profile FILE`` writes a cProfile of the
sink's forward phase (c).

Prints ONE JSON line: items per second of each phase, forward time / validation time (wall
clock, and this process's CPU time) and forward time / (build + validation) time, for the sink at
the top level and for the emulator under ``"emulator"``.

    .venv/bin/python bench/forwarding.py [--items 1000] [--central sink|emulator|both]
                                         [--workers 2] [--prepare process|thread]

``--prepare process`` (the default) prepares rows ahead in child processes, as ``onsite-server
sync`` does (``onsite_server/sync_preparer.py``; ``--preparers N`` children, 1 by default),
started and warmed before phase (c); their CPU time is added to the worker's. ``--prepare
thread`` prepares them on a thread of the worker. ``--spy FILE`` samples the worker, its
children and central with py-spy during phase (c) (GIL holders; a summary by process in the
JSON line).

``--workers N`` runs phases (c) and (d) in N worker processes at once, as N ``onsite-server
sync`` processes would (leases and ``SKIP LOCKED`` share the rows out); the CPU ratio then sums
the workers' CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "bench-secret-key"
PHQ9_MODERATE = {"1": 2, "2": 2, "3": 2, "4": 1, "5": 1, "6": 1, "7": 1, "8": 2, "9": 0}
GAD7_MODERATE = {str(i): 2 for i in range(1, 8)}
BATCH = 500  # the kiosk API's largest batch


def _seed(app: Any, items: int) -> tuple[Any, dict[str, str], list[str]]:
    """Create members and post one identified PHQ-9 per member through the kiosk API.

    Returns the kiosk's test client, its headers and the members' refs, for the update phase.
    """
    from sqlalchemy import select

    from onsite_server.db import get_db
    from onsite_server.models import Kiosk, Member
    from onsite_server.services.members import make_member_ref
    from onsite_server.services.pairing import issue_pairing_code
    from onsite_server.services.sites import create_site

    db = get_db(app)
    with db.transaction() as session:
        site = create_site(session, employer_slug="bench", employer_name="Bench Employer",
                           slug="bench", name="Bench site")
        employer = site.employer
        code = issue_pairing_code(session, site)
        session.add_all(Member(employer_id=employer.id, member_id=f"M{i}", employee_id=f"E{i}",
                               first_name="Bench", last_name=f"Member{i}",
                               birth_date=date(1980, 1, 1)) for i in range(items))
    client = app.test_client()
    paired = client.post("/api/v1/pair", json={"pairing_code": code}).get_json()
    headers = {"Authorization": f"Bearer {paired['token']}"}
    with db.transaction(write=False) as session:
        kiosk = session.scalars(select(Kiosk).where(Kiosk.public_id == paired["kiosk_id"])).one()
        refs = [make_member_ref(SECRET, m, kiosk)
                for m in session.scalars(select(Member).order_by(Member.id))]
    now = datetime.now(UTC).isoformat()
    for start in range(0, items, BATCH):
        body = {"items": [{"idempotency_key": str(uuid.uuid4()), "session_id": str(uuid.uuid4()),
                           "instrument_id": "phq9", "instrument_version": "1.0.0",
                           "answers": PHQ9_MODERATE, "taken_at": now, "member_ref": ref}
                          for ref in refs[start:start + BATCH]]}
        resp = client.post("/api/v1/submissions", json=body, headers=headers)
        if resp.status_code != 200:
            raise SystemExit(f"seeding failed: {resp.status_code} {resp.get_data(as_text=True)}")
    # Each member agrees to be contacted: without consent nothing would leave the site
    # (docs/privacy.md), and there would be nothing to forward.
    for ref in refs:
        resp = client.post("/api/v1/referrals/consent", headers=headers, json={
            "idempotency_key": str(uuid.uuid4()), "member_ref": ref, "consent": True,
            "contact_method": "phone", "contact_time": "morning", "phone": "+1 555 0100"})
        if resp.status_code != 200:
            raise SystemExit(f"consent failed: {resp.status_code} {resp.get_data(as_text=True)}")
    return client, headers, refs


def _new_findings(client: Any, headers: dict[str, str], refs: list[str]) -> None:
    """Post one GAD-7 per member: each referral gets a new version to send as an update."""
    now = datetime.now(UTC).isoformat()
    for start in range(0, len(refs), BATCH):
        body = {"items": [{"idempotency_key": str(uuid.uuid4()), "session_id": str(uuid.uuid4()),
                           "instrument_id": "gad7", "instrument_version": "1.0.0",
                           "answers": GAD7_MODERATE, "taken_at": now, "member_ref": ref}
                          for ref in refs[start:start + BATCH]]}
        resp = client.post("/api/v1/submissions", json=body, headers=headers)
        if resp.status_code != 200:
            raise SystemExit(f"update failed: {resp.status_code} {resp.get_data(as_text=True)}")


def _central(kind: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start the sink or the emulator on loopback and wait until it answers."""
    if kind == "sink":
        command = [sys.executable, str(ROOT / "bench" / "central_sink.py"), "--port", str(port)]
    else:
        command = [str(Path(sys.executable).with_name("central-emulator")),
                   "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=out)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=2).ok:
                return proc
        except requests.ConnectionError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"the {kind} did not start: {log.read_text()[-2000:]}")


def _forward_all(workers: int, db: Any, config: Any, settings: Any, rows: int
                 ) -> tuple[dict[str, int], float]:
    """Run ``run_cycle`` in ``workers`` processes at once (as ``onsite-server sync`` run that
    many times would); return the summed counts and their CPU seconds."""
    import multiprocessing
    from dataclasses import replace

    from onsite_server.central import client_from_config
    from onsite_server.services.sync import run_cycle

    def one(index: int, out: Any) -> None:
        mine = replace(settings, worker_id=f"bench-{index}")
        report = run_cycle(db.transaction, client_from_config(config), mine, max_rows=rows)
        out.put({"sent": report.sent, "dead": report.dead, "retried": report.retried})

    db.dispose()  # each forked worker opens its own connections
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    before = os.times()
    procs = [context.Process(target=one, args=(i, out)) for i in range(workers)]
    for proc in procs:
        proc.start()
    counts = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    after = os.times()
    cpu = (after.children_user - before.children_user
           + after.children_system - before.children_system)
    return {k: sum(c[k] for c in counts) for k in ("sent", "dead", "retried")}, cpu


def _child_cpu(preparer: Any) -> float:
    """CPU seconds the preparing process has used (0 without one)."""
    if preparer is None:
        return 0.0
    pids = preparer.children()
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _by_process(out: Path) -> dict[str, int]:
    """Samples of a raw py-spy file by process: the worker (this one), its preparing child
    and central (told apart by their command lines)."""
    counts: dict[str, int] = {}
    for line in out.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        head = [f for f in stack.split(";") if f.startswith("process ")][-1]
        name = ("central" if "central_sink" in head or "central-emulator" in head else
                "child" if "multiprocessing" in head else "worker")
        counts[name] = counts.get(name, 0) + int(count)
    return counts


def _run(kind: str, items: int, profile: str | None, workers: int = 1,
         prepare: str = "process", spy: Path | None = None, preparers: int = 1
         ) -> dict[str, Any]:
    """Seed a fresh site, time phases (a) to (d) against one central; return the figures."""
    from sqlalchemy import select

    from onsite_server import create_app
    from onsite_server.central import client_from_config
    from onsite_server.db import get_db
    from onsite_server.devserver import free_port
    from onsite_server.fhir import Systems, validate
    from onsite_server.migrate import upgrade
    from onsite_server.models import OutboxMessage
    from onsite_server.services.signing import KeyStore
    from onsite_server.services.sync import SyncSettings, build_bundle, key_snapshot, run_cycle

    with tempfile.TemporaryDirectory(prefix="bench-forwarding-") as tmp:
        port = free_port()
        app = create_app({"DATABASE_URL": f"sqlite:///{tmp}/onsite.sqlite",
                          "INSTANCE_PATH": f"{tmp}/instance", "SECRET_KEY": SECRET,
                          "CENTRAL_URL": f"http://127.0.0.1:{port}/fhir",
                          "CENTRAL_ALLOW_INSECURE_HTTP": True})  # a local test central
        db = get_db(app)
        upgrade(db)
        started = time.perf_counter()
        kiosk, headers, refs = _seed(app, items)
        seed_s = time.perf_counter() - started
        settings = SyncSettings(systems=Systems(str(app.config["FHIR_IDENTIFIER_BASE"])),
                                site="bench", keys=KeyStore(Path(app.config["SIGNING_KEY_DIR"])),
                                worker_id="bench", batch=50)
        now = datetime.now(UTC)

        build_s = validate_s = validate_cpu = 0.0
        with db.transaction(write=False) as session:
            rows = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
            queued = len(rows)
            keys = key_snapshot(session, settings, now)  # once per batch, as the worker does
            for row in rows:
                t0 = time.perf_counter()
                bundle = build_bundle(session, row, settings, now, check=False, keys=keys)
                t1 = time.perf_counter()
                c1 = time.process_time()
                validate(bundle)
                validate_cpu += time.process_time() - c1
                t2 = time.perf_counter()
                build_s += t1 - t0
                validate_s += t2 - t1

        proc = _central(kind, port, Path(tmp) / "central.log")
        try:
            client = client_from_config(app.config)
            profiler = None
            if profile is not None:
                import cProfile
                profiler = cProfile.Profile()
                profiler.enable()
            preparer = None
            if workers == 1 and prepare == "process":
                from onsite_server.sync_preparer import ProcessPreparer

                # As ``onsite-server sync`` does: started once per worker, before its first
                # cycle (its start-up, about a second of imports, is not a cycle's cost).
                preparer = ProcessPreparer(db.url, settings, preparers)
                preparer.warm()
            spying = None
            if spy is not None:
                from bench.spy import Spy

                # This process, its preparing child and central, while they hold the GIL.
                spying = Spy(os.getpid(), spy, gil=True)
                time.sleep(1)  # py-spy attaches
            t0, c0 = time.perf_counter(), time.process_time()
            child0 = _child_cpu(preparer)
            if workers == 1:
                one = run_cycle(db.transaction, client, settings, max_rows=queued + 1,
                                preparer=preparer)
                report = {"sent": one.sent, "dead": one.dead, "retried": one.retried}
                child_cpu = _child_cpu(preparer) - child0
                worker_cpu = time.process_time() - c0
                forward_cpu = worker_cpu + child_cpu
            else:
                worker_cpu = child_cpu = None
                report, forward_cpu = _forward_all(workers, db, app.config, settings,
                                                   queued + 1)
            forward_s = time.perf_counter() - t0
            spied = None
            if spying is not None and spy is not None:
                from bench.spy import summary

                spying.stop()
                spied = {"by_process": _by_process(spy),
                         **summary(spy, top=40, match="onsite_server/")}
            if profiler is not None and profile is not None:
                profiler.disable()
                profiler.dump_stats(profile)
            # (d) every referral again, now that central holds it: an update of what is there.
            _new_findings(kiosk, headers, refs)
            t0 = time.perf_counter()
            if workers == 1:
                again = run_cycle(db.transaction, client, settings, max_rows=queued + 1,
                                  preparer=preparer)
                updated = {"sent": again.sent, "dead": again.dead}
            else:
                updated = _forward_all(workers, db, app.config, settings, queued + 1)[0]
            update_s = time.perf_counter() - t0
            counts = requests.get(f"http://127.0.0.1:{port}/_state", timeout=30).json()["counts"]
        finally:
            if preparer is not None:
                preparer.close()
            proc.terminate()
            proc.wait(timeout=30)
        db.dispose()
    return {
        "items": queued, "seed_s": round(seed_s, 1), "prepare": prepare,
        **({"preparers": preparers} if prepare == "process" and workers == 1 else {}),
        "workers": workers, "sent": report["sent"], "dead": report["dead"],
        "retried": report["retried"],
        "central_service_requests": counts.get("ServiceRequest", 0),
        "build_items_per_s": round(queued / build_s, 1),
        "validate_items_per_s": round(queued / validate_s, 1),
        "forward_items_per_s": round(queued / forward_s, 1),
        "forward_over_validate": round(forward_s / validate_s, 2),
        # The issue's wording of the baseline: building and validating the bundles alone.
        "forward_over_build_and_validate": round(forward_s / (build_s + validate_s), 2),
        # CPU seconds of this process (every thread; not central's): far steadier than wall
        # time on a shared machine, and what is left of the ratio once nothing waits.
        "forward_cpu_over_validate_cpu": round(forward_cpu / validate_cpu, 2),
        # The same split by process (one worker): with a core each, the busier one sets the
        # pace, so the larger of the two is about the wall ratio on an idle machine.
        **({"worker_cpu_over_validate_cpu": round(worker_cpu / validate_cpu, 2),
            "child_cpu_over_validate_cpu": round(child_cpu / validate_cpu, 2)}
           if worker_cpu is not None and child_cpu is not None and preparer is not None
           else {}),
        "updates_sent": updated["sent"], "updates_dead": updated["dead"],
        "update_items_per_s": round(updated["sent"] / update_s, 1) if update_s else None,
        "update_over_validate": round(update_s / validate_s, 2),
        **({"spy": spied} if spied is not None else {}),
    }


def main() -> None:
    """Run the phases against each central and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--central", choices=("sink", "emulator", "both"), default="both")
    parser.add_argument("--profile", metavar="FILE",
                        help="write a cProfile of the sink's forward phase here")
    parser.add_argument("--workers", type=int, default=1,
                        help="sync workers forwarding at once, each its own process")
    parser.add_argument("--prepare", choices=("process", "thread"), default="process",
                        help="where rows are prepared ahead: a child process, as "
                             "`onsite-server sync` does, or a thread of the worker")
    parser.add_argument("--preparers", type=int, default=1,
                        help="with --prepare process: how many children prepare rows")
    parser.add_argument("--spy", type=Path, metavar="FILE",
                        help="py-spy (GIL holders) the forward phase of this process, its "
                             "preparing child and central; raw stacks to FILE, a summary by "
                             "process and function in the JSON line")
    args = parser.parse_args()

    out: dict[str, Any] = {
        "bench": "forwarding", "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{platform.machine()} {os.cpu_count()} CPU, Python "
                   f"{platform.python_version()}",
        "load_average": [round(x, 2) for x in os.getloadavg()]}
    if args.central in ("sink", "both"):
        out |= {"central": "sink", **_run("sink", args.items, args.profile, args.workers,
                                          args.prepare, args.spy, args.preparers)}
    if args.central in ("emulator", "both"):
        emulated = _run("emulator", args.items,
                        None if args.central == "both" else args.profile, args.workers,
                        args.prepare, None if args.central == "both" else args.spy,
                        args.preparers)
        if args.central == "emulator":
            out |= {"central": "emulator", **emulated}
        else:
            out["emulator"] = emulated
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
