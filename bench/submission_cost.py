"""Submission cost against routes that do less, measured with wrk; then an open-loop latency run.

Starts ``onsite-server serve --no-tls --workers 2`` (gunicorn gthread) on a temporary SQLite
file, pairs one kiosk, and measures, on that one server in that one run:

(a) peak rate and server CPU per request, with ``wrk`` (closed loop, keep-alive), for
    ``GET /healthz`` (a ``SELECT 1``), ``GET /`` (a redirect that touches no database),
    ``POST /api/v1/heartbeat`` (the API's smallest durable write: the device-token check, a
    small validated body, one UPDATE and the durable COMMIT; what every authenticated write
    pays before its own work) and ``POST /api/v1/submissions`` with a one-item anonymous
    PHQ-9 batch whose idempotency key and session id are fresh for every request (a Lua
    script builds them), so the full path runs every time and no replay is measured. Server
    CPU is utime+stime of the gunicorn worker processes from /proc, before and after each
    phase, divided by the requests answered. Phases alternate over ``--rounds`` rounds; the
    JSON gives each figure's median and range.
(b) an open-loop run at a constant ``--rate`` submissions/s for ``--seconds``: several client
    processes each own every n-th slot of one schedule and send on keep-alive connections
    (a new one when all are busy). Latency counts from each request's scheduled send time, so
    a stalled server shows up in the figures instead of slowing the client (no coordinated
    omission).

Loopback only; wrk comes from Debian (installed here with apt-get when missing). Prints ONE
JSON line. No test asserts any of these numbers.

    .venv/bin/python bench/submission_cost.py [--rounds 2] [--phase-seconds 8] [--rate 200]
        [--profile OUT]

``--profile OUT`` samples the server's processes with py-spy during the last round's
submission phase (``bench/spy.py``, GIL holders only: CPU, not waits) and adds the busiest
functions to the JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.spy import Spy  # noqa: E402
from bench.spy import summary as spy_summary  # noqa: E402
from onsite_server import devserver  # noqa: E402

SECRET = "bench-secret-key"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Per open-loop client process: enough to keep every server thread busy; beyond it, sends wait
# for a connection (still timed from their schedule) instead of opening hundreds of sockets.
MAX_CONNECTIONS_PER_PROCESS = 16

# One Lua state per wrk thread. The seed comes from /dev/urandom (plus the thread's number), so
# keys never repeat across threads or runs: a repeated key would measure a replay instead.
WRK_SUBMIT_LUA = r"""
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local f = io.open("/dev/urandom", "rb")
  local s = f:read(4)
  f:close()
  local seed = 0
  for i = 1, 4 do seed = seed * 256 + s:byte(i) end
  math.randomseed(seed + (tid or 0) * 7919)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
end

local function hex16() return string.format("%04x", math.random(0, 65535)) end

local function uuid4()
  return hex16() .. hex16() .. "-" .. hex16() .. "-4"
    .. string.format("%03x", math.random(0, 4095)) .. "-"
    .. string.format("%04x", math.random(32768, 49151)) .. "-" .. hex16() .. hex16() .. hex16()
end

function request()
  local answers = {}
  for i = 1, 8 do answers[i] = string.format('"%d":%d', i, math.random(0, 2)) end
  answers[9] = '"9":0'
  local body = '{"items":[{"idempotency_key":"' .. uuid4() .. '","anonymous":true,'
    .. '"session_id":"' .. uuid4() .. '","instrument_id":"phq9","instrument_version":"1.0.0",'
    .. '"answers":{' .. table.concat(answers, ",") .. '},"kiosk_result":null,'
    .. '"taken_at":"' .. os.date("!%Y-%m-%dT%H:%M:%SZ") .. '"}]}'
  return wrk.format(nil, "/api/v1/submissions", nil, body)
end
"""

WRK_HEARTBEAT_LUA = r"""
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
  wrk.body = '{"app_version":"1.0.0","outbox_depth":0,"free_disk_bytes":1000000000}'
end
"""

WRK_DONE_LUA = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,'
    .. '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


# --------------------------------------------------------------------------- setup


def ensure_wrk() -> str:
    """Return the path of wrk, installing Debian's package first when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], env=env, check=True,
                   stdout=subprocess.DEVNULL, timeout=600)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and apt-get could not install it")
    return found


def _pair_kiosk(env: dict[str, str], base_url: str) -> str:
    """Create an employer, a site and a pairing code; pair one kiosk and return its token."""
    from onsite_server import create_app
    from onsite_server.db import get_db
    from onsite_server.services.pairing import issue_pairing_code
    from onsite_server.services.sites import create_site

    app = create_app({"DATABASE_URL": env["ONSITE_DATABASE_URL"],
                      "INSTANCE_PATH": env["ONSITE_INSTANCE_PATH"], "SECRET_KEY": SECRET})
    db = get_db(app)
    with db.transaction() as session:
        site = create_site(session, employer_slug="bench", employer_name="Bench Employer",
                           slug="bench", name="Bench site")
        code = issue_pairing_code(session, site)
    db.dispose()
    resp = requests.post(base_url + "/api/v1/pair", json={"pairing_code": code}, timeout=30)
    resp.raise_for_status()
    return str(resp.json()["token"])


def _worker_pids(port: int) -> list[int]:
    """Return the pids of the gunicorn workers serving port (children of its arbiter)."""
    matching: dict[int, int] = {}  # pid -> ppid of every process running that server
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
        if b"serve" in cmd and b"--port" in cmd and str(port).encode() in cmd:
            matching[int(entry.name)] = ppid
    # Workers are forks with the arbiter's command line: the arbiter is the one whose parent
    # is not also serving.
    arbiter = next((pid for pid, ppid in matching.items() if ppid not in matching), None)
    if arbiter is None:
        raise RuntimeError(f"no server process found for port {port}")
    pids = children.get(arbiter, [])
    if not pids:
        raise RuntimeError("the server has no worker processes")
    return pids


def _cpu_seconds(pids: list[int]) -> float:
    """Return utime+stime of pids (all their threads), in seconds."""
    return sum(_cpu_split(pids))


def _cpu_split(pids: list[int]) -> tuple[float, float]:
    """Return (utime, stime) of pids (all their threads), in seconds: user and kernel CPU."""
    user = system = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user += int(fields[11])  # utime (field 14)
        system += int(fields[12])  # stime (field 15): system calls, fsync, flock, sockets
    return user / CLK_TCK, system / CLK_TCK


def _machine_busy() -> tuple[float, float]:
    """Return (busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


# --------------------------------------------------------------------------- wrk phases


def wrk_phase(wrk: str, base_url: str, path: str, script: Path, seconds: float,
              connections: int, pids: list[int], env: dict[str, str]) -> dict[str, Any]:
    """Run wrk against one path; return its rate, server CPU per request and errors."""
    busy0, total0 = _machine_busy()
    user0, sys0 = _cpu_split(pids)
    cpu0 = user0 + sys0
    before = os.times()
    out = subprocess.run(
        [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s",
         str(script), base_url + path],
        env=env, capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout
    after = os.times()
    user1, sys1 = _cpu_split(pids)
    cpu1 = user1 + sys1
    busy1, total1 = _machine_busy()
    line = next((x for x in out.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {out[-2000:]}")
    summary = json.loads(line.removeprefix("WRKJSON "))
    n = summary["requests"]
    errors = sum(summary[k] for k in ("connect_errors", "read_errors", "write_errors",
                                      "status_errors", "timeouts"))
    if n == 0:
        raise RuntimeError(f"wrk answered nothing on {path}: {out[-2000:]}")
    return {
        "requests": n,
        "rps": n / (summary["duration_us"] / 1e6),
        "cpu_ms_per_req": (cpu1 - cpu0) * 1000 / n,
        "kernel_cpu_ms_per_req": (sys1 - sys0) * 1000 / n,
        "wrk_p99_ms": summary["p99_us"] / 1000,
        "errors": errors,
        "client_cpu_s": round((after.children_user + after.children_system)
                              - (before.children_user + before.children_system), 2),
        "machine_busy": round((busy1 - busy0) / max(1, total1 - total0), 3),
    }


# --------------------------------------------------------------------------- open loop


def _submission_body() -> bytes:
    answers = {str(i): random.randint(0, 2) for i in range(1, 9)}
    answers["9"] = 0  # crisis is rare in real traffic and not what this figure measures
    item = {"idempotency_key": str(uuid.uuid4()), "anonymous": True,
            "session_id": str(uuid.uuid4()), "instrument_id": "phq9",
            "instrument_version": "1.0.0", "answers": answers, "kiosk_result": None,
            "taken_at": datetime.now(UTC).isoformat()}
    return json.dumps({"items": [item]}).encode()


class _Conn:
    """One keep-alive HTTP/1.1 connection (asyncio streams)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def post(self, head: bytes, body: bytes) -> tuple[int, bytes, bool]:
        """Send one request; return (status, body, whether the server keeps the connection)."""
        self.writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
        await self.writer.drain()
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (x.partition(":") for x in lines[1:] if x)}
        payload = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, payload, headers.get("connection", "").lower() != "close"

    def close(self) -> None:
        """Close the socket."""
        self.writer.close()


async def _open_loop(host: str, port: int, token: str, slots: list[float], warm_until: float,
                     max_connections: int) -> dict[str, Any]:
    """Send one request at each slot (monotonic times); return the measured latencies."""
    head = (f"POST /api/v1/submissions HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            "Content-Length: ").encode()
    idle: list[_Conn] = []
    latencies: list[float] = []
    lags: list[float] = []
    errors: list[str] = []
    opened = 0
    slots_free = asyncio.Semaphore(max_connections)

    async def send(scheduled: float) -> None:
        nonlocal opened
        body = _submission_body()
        # Waiting for a connection is part of the latency: it is counted from the schedule.
        async with slots_free:
            for attempt in (1, 2):
                if idle and attempt == 1:
                    conn = idle.pop()
                else:
                    reader, writer = await asyncio.open_connection(host, port)
                    conn = _Conn(reader, writer)
                    opened += 1
                try:
                    status, payload, keep = await conn.post(head, body)
                except (ConnectionError, asyncio.IncompleteReadError) as exc:
                    # A keep-alive connection the server closed while idle: resend on a fresh
                    # one (same key, so a request that did land is still answered once).
                    conn.close()
                    if attempt == 2:
                        errors.append(repr(exc))
                        return
                    continue
                break
            done = time.monotonic()
            if keep:
                idle.append(conn)
            else:
                conn.close()
            ok = status == 200 and json.loads(payload)["results"][0]["status"] == "accepted"
            if not ok:
                errors.append(f"{status} {payload[:200]!r}")
            elif scheduled >= warm_until:
                latencies.append(done - scheduled)
            return

    tasks = []
    for scheduled in slots:
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if scheduled >= warm_until:
            lags.append(time.monotonic() - scheduled)
        tasks.append(asyncio.create_task(send(scheduled)))
    await asyncio.gather(*tasks)
    for conn in idle:
        conn.close()
    return {"latencies": latencies, "lags": lags, "errors": errors[:5],
            "error_count": len(errors), "connections": opened}


def _open_loop_process(base_url: str, token: str, start_wall: float, rate: float,
                       count: int, warm: int, index: int, processes: int, results: Any) -> None:
    """One client process: every processes-th slot of the shared schedule, from index."""
    parts = urlsplit(base_url)
    mono_start = time.monotonic() + (start_wall - time.time())
    slots = [mono_start + k / rate for k in range(index, count, processes)]
    warm_until = mono_start + warm / rate
    results.put(asyncio.run(_open_loop(parts.hostname or "127.0.0.1", parts.port or 80, token,
                                       slots, warm_until, MAX_CONNECTIONS_PER_PROCESS)))


def open_loop_phase(base_url: str, token: str, rate: float, seconds: float, warm_s: float,
                    processes: int, pids: list[int]) -> dict[str, Any]:
    """Run the open-loop schedule over several processes; return percentiles and the rate."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    warm = int(rate * warm_s)
    count = warm + int(rate * seconds)
    start_wall = time.time() + 2.0  # time for the spawned processes to start
    procs = [ctx.Process(target=_open_loop_process,
                         args=(base_url, token, start_wall, rate, count, warm, i, processes,
                               results)) for i in range(processes)]
    for p in procs:
        p.start()
    time.sleep(max(0.0, start_wall + warm_s - time.time()))
    cpu0, busy0 = _cpu_seconds(pids), _machine_busy()
    parts = [results.get(timeout=seconds + warm_s + 120) for _ in procs]
    cpu1, busy1 = _cpu_seconds(pids), _machine_busy()
    for p in procs:
        p.join(timeout=30)
    errors = sum(p["error_count"] for p in parts)
    lat = sorted(x for p in parts for x in p["latencies"])
    lags = sorted(x for p in parts for x in p["lags"])
    measured = count - warm

    def pct(values: list[float], q: float) -> float:
        return round(values[min(len(values) - 1, int(len(values) * q))] * 1000, 2)

    return {
        "rate_target": rate, "seconds": seconds, "scheduled": measured, "answered": len(lat),
        "errors": errors, "error_sample": [e for p in parts for e in p["errors"]][:3],
        # Answered over the schedule's span plus the slowest answer's tail.
        "rate_achieved": round(len(lat) / (seconds + (lat[-1] if lat else 0.0)), 1),
        "p50_ms": pct(lat, 0.50), "p95_ms": pct(lat, 0.95), "p99_ms": pct(lat, 0.99),
        "max_ms": pct(lat, 1.0),
        # How late the client itself started sends: large values would blame the client.
        "send_lag_p99_ms": pct(lags, 0.99),
        "server_cpu_ms_per_req": round((cpu1 - cpu0) * 1000 / max(1, len(lat)), 3),
        "machine_busy": round((busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]), 3),
        "connections": sum(p["connections"] for p in parts),
    }


# --------------------------------------------------------------------------- main


def _summary(values: list[float], digits: int = 3) -> dict[str, Any]:
    return {"median": round(statistics.median(values), digits),
            "min": round(min(values), digits), "max": round(max(values), digits)}


def _sqlite_info(db_path: Path) -> dict[str, Any]:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT count(*) FROM submission").fetchone()[0]
    return {"submission_rows": rows}


def main() -> None:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2, help="wrk rounds (phases alternate)")
    parser.add_argument("--phase-seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--rate", type=float, default=200.0, help="open-loop submissions/s")
    parser.add_argument("--seconds", type=float, default=20.0, help="open-loop duration")
    parser.add_argument("--processes", type=int, default=4, help="open-loop client processes")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--serve-arg", action="append", default=[],
                        help="extra argument for `serve` (diagnosis, e.g. --threads=1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary instance")
    parser.add_argument("--profile", type=Path, default=None,
                        help="py-spy the server in the last submission phase; stacks here")
    parser.add_argument("--profile-phase", default="submit",
                        choices=("healthz", "no_db", "heartbeat", "submit"),
                        help="which phase of the last round --profile samples")
    args = parser.parse_args()
    profile: dict[str, Any] | None = None
    if not (1 <= args.rounds <= 10 and 1 <= args.phase_seconds <= 60 and
            1 <= args.seconds <= 120 and 0 < args.rate <= 5000):
        parser.error("rounds 1-10, phase-seconds 1-60, seconds 1-120, rate up to 5000")

    # A SIGTERM (e.g. a stopped CI job) unwinds like an error, so the server below is stopped
    # and the temporary folder removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    wrk = ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="bench-cost-"))
    db_path = tmp / "onsite.sqlite"
    env = {**os.environ, "ONSITE_DATABASE_URL": f"sqlite:///{db_path}",
           "ONSITE_INSTANCE_PATH": str(tmp / "instance"), "ONSITE_SECRET_KEY": SECRET}
    (tmp / "submit.lua").write_text(WRK_SUBMIT_LUA + WRK_DONE_LUA)
    (tmp / "get.lua").write_text(WRK_DONE_LUA)
    (tmp / "heartbeat.lua").write_text(WRK_HEARTBEAT_LUA + WRK_DONE_LUA)
    load_before = os.getloadavg()
    started = time.monotonic()
    try:
        with devserver.running_server(env, tmp / "server.log", workers=args.workers,
                                      extra_args=args.serve_arg) as base_url:
            token = _pair_kiosk(env, base_url)
            wrk_env = {**env, "BENCH_TOKEN": token}
            pids = _worker_pids(urlsplit(base_url).port or 0)
            phases = {"healthz": ("/healthz", tmp / "get.lua"),
                      "no_db": ("/", tmp / "get.lua"),
                      "heartbeat": ("/api/v1/heartbeat", tmp / "heartbeat.lua"),
                      "submit": ("/api/v1/submissions", tmp / "submit.lua")}
            # Warm both workers: imports, definition caches, connection pools.
            for path, script in phases.values():
                wrk_phase(wrk, base_url, path, script, 2, args.connections, pids, wrk_env)
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in phases}
            for round_ in range(args.rounds):
                for name, (path, script) in phases.items():
                    spy = None
                    if args.profile and name == args.profile_phase and \
                            round_ == args.rounds - 1:
                        arbiter = int(Path(f"/proc/{pids[0]}/stat").read_text()
                                      .rsplit(")", 1)[1].split()[1])
                        spy = Spy(arbiter, args.profile, gil=True)
                    runs[name].append(wrk_phase(wrk, base_url, path, script,
                                                args.phase_seconds, args.connections, pids,
                                                wrk_env))
                    if spy is not None:
                        spy.stop()
                        profile = spy_summary(spy.out, top=25)
            open_loop = open_loop_phase(base_url, token, args.rate, args.seconds, 2.0,
                                        args.processes, pids)
        stored = _sqlite_info(db_path)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    def ratios(key: str, base: str, invert: bool) -> dict[str, Any]:
        # Paired round by round: each round's figures were measured minutes apart at most.
        values = [(b[key] / s[key]) if invert else (s[key] / b[key])
                  for s, b in zip(runs["submit"], runs[base], strict=True)]
        return _summary(values, 2)

    peak = {name: {"rps": _summary([r["rps"] for r in rs], 1),
                   "cpu_ms_per_req": _summary([r["cpu_ms_per_req"] for r in rs]),
                   "kernel_cpu_ms_per_req": _summary([r["kernel_cpu_ms_per_req"] for r in rs]),
                   "wrk_p99_ms": _summary([r["wrk_p99_ms"] for r in rs], 2),
                   "errors": sum(r["errors"] for r in rs),
                   "client_cpu_s": [r["client_cpu_s"] for r in rs],
                   "machine_busy": [r["machine_busy"] for r in rs]}
            for name, rs in runs.items()}
    sqlite_version = sqlite3.sqlite_version
    print(json.dumps({
        "bench": "submission_cost", "db": "sqlite",
        "server": " ".join([f"serve --no-tls --workers {args.workers}", *args.serve_arg]),
        "wrk": f"-t1 -c{args.connections} -d{args.phase_seconds}s x {args.rounds} rounds",
        "peak": peak,
        "ratio_cpu_vs_healthz": ratios("cpu_ms_per_req", "healthz", False),
        "ratio_rps_vs_healthz": ratios("rps", "healthz", True),
        "ratio_cpu_vs_no_db": ratios("cpu_ms_per_req", "no_db", False),
        "ratio_rps_vs_no_db": ratios("rps", "no_db", True),
        # The floor: what an authenticated durable write costs before any work of its own.
        "ratio_cpu_heartbeat_vs_healthz": _summary(
            [h["cpu_ms_per_req"] / b["cpu_ms_per_req"]
             for h, b in zip(runs["heartbeat"], runs["healthz"], strict=True)], 2),
        "ratio_cpu_vs_heartbeat": ratios("cpu_ms_per_req", "heartbeat", False),
        "open_loop": open_loop,
        "stored": stored,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "wall_s": round(time.monotonic() - started, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "sqlite": sqlite_version},
        **({"profile": profile} if profile is not None else {}),
    }))


if __name__ == "__main__":
    main()
