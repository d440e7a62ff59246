"""Identify timing: a miss on the id vs a miss on the birth date vs a hit, on a real server.

Starts `onsite-server serve` (gunicorn, 2 workers, SQLite, no TLS) twice: once with
IDENTIFY_MIN_SECONDS=0, to show the code path itself takes equal time, and once with the
default floor. The rate limit is raised for the run. Requests of the three kinds are shuffled
together so drift (cache warmth, a growing audit log) hits all kinds alike.

Prints ONE JSON line: per mode and kind the median/p90/mean in ms, the median ratio
miss_id/miss_birthdate, a two-sided Mann-Whitney U p-value, and a bootstrap 95% interval of
the median difference. Usage: python bench/identify_timing.py [--n 400] [--floor-n 150]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import requests

from onsite_server import devserver

KINDS = ("hit", "miss_id", "miss_birthdate")


class Server:
    """A throwaway onsite server with demo data, on a free port."""

    def __init__(self, floor: float | None) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="bench-identify-")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ONSITE_")}
        env.update({
            "ONSITE_INSTANCE_PATH": str(Path(self.dir.name) / "instance"),
            "ONSITE_SECRET_KEY": "bench-secret",
            "ONSITE_IDENTIFY_RATE_PER_MINUTE": "100000000",
        })
        if floor is not None:
            env["ONSITE_IDENTIFY_MIN_SECONDS"] = str(floor)
        self.env = env
        out = devserver.cli(env, "demo-data", timeout=120)
        self.demo: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        self._stack = ExitStack()
        self.url = self._stack.enter_context(devserver.running_server(
            env, Path(self.dir.name) / "server.log", extra_args=("--threads", "4")))
        paired = requests.post(self.url + "/api/v1/pair",
                               json={"pairing_code": self.demo["pairing_code"]}, timeout=30)
        paired.raise_for_status()
        self.token = paired.json()["token"]

    def close(self) -> None:
        """Stop the server and remove its files."""
        self._stack.close()
        self.dir.cleanup()


def _bodies(demo: dict[str, Any], n: int, rng: random.Random) -> list[tuple[str, dict[str, str]]]:
    member = demo["members"][0]
    born = date.fromisoformat(member["birth_date"])
    plan: list[tuple[str, dict[str, str]]] = []
    for i in range(n):
        plan.append(("hit", {"id": member["employee_id"], "birth_date": born.isoformat()}))
        # Same length and shape as a real id, so only "exists or not" differs.
        plan.append(("miss_id", {"id": f"E{9000 + i % 1000}",
                                 "birth_date": born.isoformat()}))
        plan.append(("miss_birthdate", {"id": member["employee_id"],
                                        "birth_date": (born + timedelta(days=1 + i % 300))
                                        .isoformat()}))
    rng.shuffle(plan)
    return plan


def _run(server: Server, plan: list[tuple[str, dict[str, str]]],
         threads: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    expected = {"hit": 200, "miss_id": 404, "miss_birthdate": 404}
    lock = threading.Lock()

    def worker(items: list[tuple[str, dict[str, str]]]) -> None:
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {server.token}"
        for kind, body in items:
            t0 = time.perf_counter()
            resp = http.post(server.url + "/api/v1/identify", json=body, timeout=60)
            elapsed = (time.perf_counter() - t0) * 1000
            if resp.status_code != expected[kind]:
                raise RuntimeError(f"{kind}: unexpected {resp.status_code} {resp.text[:200]}")
            with lock:
                times[kind].append(elapsed)

    chunks = [plan[i::threads] for i in range(threads)]
    pool = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return times


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(math.ceil(q * len(ordered))) - 1)]


def mann_whitney_p(a: list[float], b: list[float]) -> float:
    """Two-sided Mann-Whitney U p-value (normal approximation with tie correction)."""
    pooled = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks = [0.0] * len(pooled)
    ties = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        size = j - i + 1
        ties += size**3 - size
        i = j + 1
    n1, n2 = len(a), len(b)
    r1 = sum(r for r, (_, g) in zip(ranks, pooled, strict=True) if g == 0)
    u = r1 - n1 * (n1 + 1) / 2
    mean = n1 * n2 / 2
    n = n1 + n2
    var = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if var <= 0:
        return 1.0
    z = (u - mean) / math.sqrt(var)
    return math.erfc(abs(z) / math.sqrt(2))


def bootstrap_median_diff(a: list[float], b: list[float], rng: random.Random,
                          rounds: int = 2000) -> tuple[float, float]:
    """95% percentile-bootstrap interval of median(a) - median(b)."""
    diffs = sorted(
        statistics.median(rng.choices(a, k=len(a))) - statistics.median(rng.choices(b, k=len(b)))
        for _ in range(rounds)
    )
    return diffs[int(0.025 * rounds)], diffs[int(0.975 * rounds) - 1]


def _summary(times: dict[str, list[float]], rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in KINDS:
        vals = times[kind]
        out[kind] = {"n": len(vals), "median_ms": round(statistics.median(vals), 3),
                     "p90_ms": round(_pct(vals, 0.9), 3),
                     "mean_ms": round(statistics.fmean(vals), 3)}
    a, b = times["miss_id"], times["miss_birthdate"]
    lo, hi = bootstrap_median_diff(a, b, rng)
    out["ratio_miss_id_over_miss_birthdate"] = round(statistics.median(a) / statistics.median(b), 4)
    out["ratio_hit_over_miss_birthdate"] = round(
        statistics.median(times["hit"]) / statistics.median(b), 4)
    out["mann_whitney_p_miss_id_vs_miss_birthdate"] = round(mann_whitney_p(a, b), 4)
    out["median_diff_ms_95ci"] = [round(lo, 3), round(hi, 3)]
    return out


def main() -> None:
    """Run both modes and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="requests per kind, floor 0")
    parser.add_argument("--floor-n", type=int, default=150,
                        help="requests per kind with the default floor")
    parser.add_argument("--floor-threads", type=int, default=4,
                        help="client threads for the floor run (the floor is a sleep)")
    parser.add_argument("--seed", type=int, default=20261127)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    result: dict[str, Any] = {"bench": "identify_timing", "server": "gunicorn 2 workers x 4 "
                              "threads, SQLite, loopback HTTP", "seed": args.seed}
    for mode, floor, n, threads in (("floor_0", 0.0, args.n, 1),
                                    ("floor_default", None, args.floor_n, args.floor_threads)):
        server = Server(floor)
        try:
            _run(server, _bodies(server.demo, 20, rng), 1)  # warm-up, discarded
            started = time.perf_counter()
            times = _run(server, _bodies(server.demo, n, rng), threads)
            summary = _summary(times, rng)
            summary["floor_seconds"] = floor if floor is not None else "default (0.25)"
            summary["client_threads"] = threads
            summary["wall_s"] = round(time.perf_counter() - started, 2)
            result[mode] = summary
        finally:
            server.close()
    result["machine"] = {"python": platform.python_version(), "platform": platform.platform(),
                         "cpus": os.cpu_count()}
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
