"""`onsite-server serve` started and stopped: its CPU and its memory against one app built.

Each round starts the real server (gunicorn, ``--workers W``, no TLS) on a copy of a migrated
SQLite database, waits for ``/healthz``, asks ``/healthz`` and ``/login`` a number of times,
reads the proportional memory (PSS, ``/proc/PID/smaps_rollup``) of the master and each worker,
then stops it politely; the CPU is that of the server's processes (they are waited for, so
``RUSAGE_CHILDREN`` counts the master and its workers). The same-run baseline is one process
that imports the app and builds it once (``create_app``), then waits to be read: its CPU, and
its PSS. Rounds alternate server and baseline so drift hits both alike. Prints ONE JSON line
(seconds, MiB, ratios of the medians).
Usage: python bench/serve_start.py [--rounds 5] [--workers 4] [--requests 50]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from onsite_server import devserver  # noqa: E402

# Builds the app once, says so, then waits for stdin to close: the bench reads its PSS meanwhile.
BUILD_ONCE = ("import sys; from onsite_server import create_app; create_app(); "
              "print('built', flush=True); sys.stdin.read()")


def pss_mib(pid: int) -> float:
    """The proportional set size of a process: its own pages plus its share of shared ones."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no Pss line for {pid}")


def children_cpu() -> float:
    """CPU seconds of the children this process has waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def workers_of(pid: int) -> list[int]:
    """The pids of a gunicorn master's workers."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def serve_round(env: dict[str, str], folder: Path, workers: int, requests: int) -> dict[str, Any]:
    """Start, ask, read the memory, stop: the server's CPU and PSS."""
    before = children_cpu()
    proc, url = devserver.start_server(env, folder / "server.log", workers=workers,
                                       migrate=False)
    try:
        for _ in range(requests):
            for path in ("/healthz", "/login"):
                with urllib.request.urlopen(url + path) as resp:  # noqa: S310
                    resp.read()
        pids = workers_of(proc.pid)
        if len(pids) != workers:
            raise RuntimeError(f"{len(pids)} workers, {workers} asked")
        memory = pss_mib(proc.pid) + sum(pss_mib(p) for p in pids)
        worker_memory = statistics.mean(pss_mib(p) for p in pids)
    finally:
        devserver.stop_server(proc)
    return {"cpu_s": children_cpu() - before, "pss_mib": memory,
            "worker_pss_mib": worker_memory}


def baseline_round(env: dict[str, str]) -> dict[str, Any]:
    """One process that builds the app once: its CPU and PSS."""
    before = children_cpu()
    proc = subprocess.Popen([sys.executable, "-c", BUILD_ONCE], env=env, cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    if proc.stdout.readline().strip() != "built":
        raise RuntimeError("the baseline did not build the app")
    memory = pss_mib(proc.pid)
    proc.stdin.close()
    proc.wait(timeout=30)
    return {"cpu_s": children_cpu() - before, "pss_mib": memory}


def main() -> None:
    """Alternate server and baseline rounds; print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    from onsite_server.db import Database
    from onsite_server.migrate import upgrade

    folder = Path(tempfile.mkdtemp(prefix="serve-start-"))
    try:
        template = folder / "template.sqlite"
        database = Database()
        database.configure(f"sqlite:///{template}")
        upgrade(database)
        database.dispose()
        served: list[dict[str, Any]] = []
        built: list[dict[str, Any]] = []
        for n in range(args.rounds):
            copy = folder / f"round{n}.sqlite"
            shutil.copyfile(template, copy)
            env = {**os.environ, "ONSITE_DATABASE_URL": f"sqlite:///{copy}",
                   "ONSITE_INSTANCE_PATH": str(folder / f"instance{n}"),
                   "ONSITE_SECRET_KEY": "bench-secret-key-not-for-production"}
            served.append(serve_round(env, folder, args.workers, args.requests))
            built.append(baseline_round(env))
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    def median(rows: list[dict[str, Any]], key: str) -> float:
        return round(float(statistics.median(r[key] for r in rows)), 3)

    print(json.dumps({
        "bench": "serve_start", "rounds": args.rounds, "workers": args.workers,
        "requests": args.requests * 2,
        "server_cpu_s": median(served, "cpu_s"), "server_pss_mib": median(served, "pss_mib"),
        "worker_pss_mib": median(served, "worker_pss_mib"),
        "baseline_cpu_s": median(built, "cpu_s"), "baseline_pss_mib": median(built, "pss_mib"),
        "cpu_ratio": round(median(served, "cpu_s") / median(built, "cpu_s"), 2),
        "pss_ratio": round(median(served, "pss_mib") / median(built, "pss_mib"), 2),
        "machine": f"{platform.node()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }))


if __name__ == "__main__":
    main()
