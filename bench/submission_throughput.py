"""Submission throughput: simulated kiosks against gunicorn on SQLite, vs a trivial endpoint.

Starts ``onsite-server serve --no-tls --workers 2`` on a temporary SQLite instance, seeds a site,
members and paired kiosks, then for 10 and 50 concurrent kiosks sends one-item PHQ-9
submissions (an identified member each) and, in the same run and the same way, ``GET /healthz``.
Kiosks are threads spread over several client processes, because one Python process tops out
near 500 requests/s. Prints ONE JSON line.

    .venv/bin/python bench/submission_throughput.py [--requests 1500] [--kiosks 10,50]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from onsite_server import devserver

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "bench-secret-key"
MEMBERS_PER_KIOSK = 20


def _seed(env: dict[str, str], base_url: str, kiosks: int) -> list[dict[str, Any]]:
    """Create a site, members and paired kiosks; return [{token, refs}] per kiosk."""
    from sqlalchemy import select

    from onsite_server import create_app
    from onsite_server.db import get_db
    from onsite_server.models import Kiosk, Member
    from onsite_server.services.members import make_member_ref
    from onsite_server.services.pairing import issue_pairing_code
    from onsite_server.services.sites import create_site

    app = create_app({"DATABASE_URL": env["ONSITE_DATABASE_URL"],
                      "INSTANCE_PATH": env["ONSITE_INSTANCE_PATH"], "SECRET_KEY": SECRET})
    db = get_db(app)
    with db.transaction() as session:
        site = create_site(session, employer_slug="bench", employer_name="Bench Employer",
                           slug="bench", name="Bench site")
        employer = site.employer
        codes = [issue_pairing_code(session, site) for _ in range(kiosks)]
        for i in range(kiosks * MEMBERS_PER_KIOSK):
            session.add(Member(employer_id=employer.id, member_id=f"M{i}", employee_id=f"E{i}",
                               first_name="Bench", last_name=f"Member{i}",
                               birth_date=datetime(1980, 1, 1).date()))
    out = []
    for code in codes:
        resp = requests.post(base_url + "/api/v1/pair", json={"pairing_code": code}, timeout=30)
        resp.raise_for_status()
        out.append({"token": resp.json()["token"], "kiosk_id": resp.json()["kiosk_id"]})
    with db.transaction(write=False) as session:
        members = session.scalars(select(Member).order_by(Member.id)).all()
        for n, entry in enumerate(out):
            kiosk = session.scalars(select(Kiosk).where(Kiosk.public_id == entry["kiosk_id"])
                                    ).one()
            mine = members[n * MEMBERS_PER_KIOSK:(n + 1) * MEMBERS_PER_KIOSK]
            entry["refs"] = [make_member_ref(SECRET, m, kiosk) for m in mine]
    db.dispose()
    return out


def _phq9(rng: random.Random) -> dict[str, int]:
    # Item 9 stays 0: crisis is rare in real traffic and not what this figure measures.
    answers = {str(i): rng.randint(0, 2) for i in range(1, 9)}
    answers["9"] = 0
    return answers


def _kiosk_thread(base_url: str, kiosk: dict[str, Any], kind: str, count: int,
                  latencies: list[float], errors: list[str], seed: int) -> None:
    rng = random.Random(seed)
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {kiosk['token']}"
    for i in range(count):
        if kind == "submit":
            item = {
                "idempotency_key": str(uuid.uuid4()), "session_id": str(uuid.uuid4()),
                "member_ref": kiosk["refs"][i % len(kiosk["refs"])],
                "instrument_id": "phq9", "instrument_version": "1.0.0",
                "answers": _phq9(rng), "kiosk_result": None,
                "taken_at": datetime.now(UTC).isoformat(),
            }
            start = time.monotonic()
            resp = http.post(base_url + "/api/v1/submissions", json={"items": [item]},
                             timeout=60)
            elapsed = time.monotonic() - start
            ok = resp.status_code == 200 and resp.json()["results"][0]["status"] == "accepted"
        else:
            start = time.monotonic()
            resp = http.get(base_url + "/healthz", timeout=60)
            elapsed = time.monotonic() - start
            ok = resp.status_code == 200
        if not ok:
            errors.append(f"{resp.status_code} {resp.text[:200]}")
        latencies.append(elapsed)


def _client_process(base_url: str, kiosks: list[dict[str, Any]], kind: str, count: int,
                    ready: Any, go: Any, results: Any, seed: int) -> None:
    latencies: list[float] = []
    errors: list[str] = []
    threads = [threading.Thread(target=_kiosk_thread,
                                args=(base_url, k, kind, count, latencies, errors, seed + n))
               for n, k in enumerate(kiosks)]
    ready.wait()
    go.wait()
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put({"start": start, "end": time.monotonic(), "latencies": latencies,
                 "errors": errors[:5], "error_count": len(errors)})


def _phase(base_url: str, kiosks: list[dict[str, Any]], kind: str, total: int,
           processes: int) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    per_kiosk = max(1, total // len(kiosks))
    groups = [kiosks[i::processes] for i in range(processes)]
    groups = [g for g in groups if g]
    ready = ctx.Barrier(len(groups) + 1)
    go = ctx.Event()
    results = ctx.Queue()
    procs = [ctx.Process(target=_client_process,
                         args=(base_url, g, kind, per_kiosk, ready, go, results, 1000 * n))
             for n, g in enumerate(groups)]
    for p in procs:
        p.start()
    ready.wait()
    go.set()
    parts = [results.get(timeout=900) for _ in procs]
    for p in procs:
        p.join()
    latencies = sorted(x for part in parts for x in part["latencies"])
    error_count = sum(part["error_count"] for part in parts)
    if error_count:
        sample = [e for part in parts for e in part["errors"]][:3]
        raise RuntimeError(f"{kind}: {error_count} failed requests, e.g. {sample}")
    wall = max(p["end"] for p in parts) - min(p["start"] for p in parts)
    return {
        "rps": len(latencies) / wall,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "n": len(latencies),
    }


def main() -> None:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1500,
                        help="requests per phase (split over the kiosks)")
    parser.add_argument("--kiosks", default="10,50")
    parser.add_argument("--processes", type=int, default=4, help="client processes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary instance")
    parser.add_argument("--serve-arg", action="append", default=[],
                        help="extra argument for `serve` (diagnosis only, e.g. --threads=1)")
    args = parser.parse_args()
    levels = [int(x) for x in args.kiosks.split(",")]

    tmp = Path(tempfile.mkdtemp(prefix="bench-submit-"))
    env = {**os.environ, "ONSITE_DATABASE_URL": f"sqlite:///{tmp / 'onsite.sqlite'}",
           "ONSITE_INSTANCE_PATH": str(tmp / "instance"), "ONSITE_SECRET_KEY": SECRET}
    try:
        with devserver.running_server(env, tmp / "server.log",
                                      extra_args=args.serve_arg) as base_url:
            all_kiosks = _seed(env, base_url, max(levels))
            # Warm both workers (imports, definition caches, connection pools).
            _phase(base_url, all_kiosks[:4], "submit", 80, 2)
            _phase(base_url, all_kiosks[:4], "trivial", 80, 2)
            runs = []
            for level in levels:
                kiosks = all_kiosks[:level]
                processes = min(args.processes, level)
                submit = _phase(base_url, kiosks, "submit", args.requests, processes)
                trivial = _phase(base_url, kiosks, "trivial", args.requests, processes)
                runs.append({
                    "kiosks": level,
                    "requests_per_phase": submit["n"],
                    "submit_rps": round(submit["rps"], 1),
                    "submit_p50_ms": round(submit["p50_ms"], 2),
                    "submit_p99_ms": round(submit["p99_ms"], 2),
                    "trivial_rps": round(trivial["rps"], 1),
                    "trivial_p50_ms": round(trivial["p50_ms"], 2),
                    "trivial_p99_ms": round(trivial["p99_ms"], 2),
                    "ratio_p50": round(submit["p50_ms"] / trivial["p50_ms"], 2),
                    "ratio_rps": round(trivial["rps"] / submit["rps"], 2),
                })
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({"bench": "submission_throughput", "db": "sqlite",
                      "server": " ".join(["serve --no-tls --workers 2", *args.serve_arg]),
                      "client_processes": args.processes, "cpus": os.cpu_count(),
                      "runs": runs}))


if __name__ == "__main__":
    main()
