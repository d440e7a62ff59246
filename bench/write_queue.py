"""SQLite write queue under contention: short write transactions from several processes.

Each of --processes processes runs --threads threads, and each thread commits --transactions
one-row INSERT transactions through ``Database.transaction()`` (the server's write path: the
queue's thread lock, its file lock, BEGIN IMMEDIATE, COMMIT). In the same run, one thread alone
commits the same number of transactions, for a baseline. No HTTP: this isolates the queue.
Prints ONE JSON line.

    .venv/bin/python bench/write_queue.py [--processes 2] [--threads 4] [--transactions 500]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _worker(url: str, threads: int, transactions: int, go: Any, results: Any) -> None:
    from sqlalchemy import text

    from onsite_server.db import Database

    db = Database()
    db.configure(url)
    latencies: list[float] = []
    lock = threading.Lock()

    def run() -> None:
        mine = []
        for _ in range(transactions):
            start = time.perf_counter()
            with db.transaction() as session:
                session.execute(text("INSERT INTO t (pid) VALUES (:pid)"), {"pid": os.getpid()})
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    go.wait()
    began = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.put({"began": began, "ended": time.perf_counter(), "latencies": latencies})
    db.dispose()


def _phase(url: str, processes: int, threads: int, transactions: int) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, threads, transactions, go, results))
             for _ in range(processes)]
    for proc in procs:
        proc.start()
    time.sleep(1.0)  # let every process import and connect before the start
    go.set()
    parts = [results.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    latencies = sorted(x for part in parts for x in part["latencies"])
    wall = max(p["ended"] for p in parts) - min(p["began"] for p in parts)
    return {"tps": len(latencies) / wall,
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
            "max_ms": latencies[-1] * 1000, "n": len(latencies)}


def main() -> None:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--transactions", type=int, default=500, help="per thread")
    args = parser.parse_args()
    from sqlalchemy import text

    from onsite_server.db import Database

    tmp = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    url = f"sqlite:///{tmp / 'q.sqlite'}"
    db = Database()
    db.configure(url)
    with db.transaction() as session:
        session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, pid INTEGER)"))
    db.dispose()
    alone = _phase(url, 1, 1, args.transactions)
    contended = _phase(url, args.processes, args.threads, args.transactions)
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({
        "bench": "write_queue", "processes": args.processes, "threads": args.threads,
        "transactions_per_thread": args.transactions, "cpus": os.cpu_count(),
        "alone_tps": round(alone["tps"], 1), "alone_p50_ms": round(alone["p50_ms"], 3),
        "contended_tps": round(contended["tps"], 1),
        "contended_p50_ms": round(contended["p50_ms"], 3),
        "contended_p99_ms": round(contended["p99_ms"], 3),
        "contended_max_ms": round(contended["max_ms"], 3),
        "ratio_tps": round(contended["tps"] / alone["tps"], 3),
    }))


if __name__ == "__main__":
    main()
