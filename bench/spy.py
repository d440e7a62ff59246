"""Sample a live server's processes with py-spy while a benchmark runs; summarise where time goes.

A benchmark passes ``--profile OUT`` to record the server (its gunicorn master and workers)
for exactly the phase it measures. py-spy samples the real processes from outside (no
instrumentation inside the path measured, so the figures are not bent by the profiler the way
cProfile bends a path of many small calls). The collapsed stacks are written to OUT, and
``summary`` gives the functions with the largest share of the samples: inclusive (the
function and what it calls) and self (the function's own lines).

py-spy is not a project dependency: ``.venv/bin/pip install py-spy`` to use this.

    .venv/bin/python bench/spy.py OUT [--top 30] [--match onsite_server]   # summarise again
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


class Spy:
    """One ``py-spy record`` of a process and its children, started and stopped around a phase.

    ``gil=True`` keeps only the samples of threads holding the GIL: Python's CPU time without
    the waits py-spy cannot tell from work (``fsync`` in a commit, a ``flock`` on SQLite's
    write queue).
    """

    def __init__(self, pid: int, out: Path, rate: int = 200, gil: bool = False) -> None:
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(exe).exists():
            raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
        self.out = out
        self.proc = subprocess.Popen(
            [exe, "record", "--pid", str(pid), "--subprocesses", "--format", "raw",
             "--rate", str(rate), "--nonblocking", "--output", str(out),
             *(["--gil"] if gil else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> None:
        """Stop sampling and let py-spy write its file."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def server_pid(port: int) -> int:
    """Return the pid of the gunicorn arbiter serving port (its workers are its children)."""
    serving: dict[int, int] = {}  # pid -> ppid of every process whose command serves port
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if b"serve" in cmd and b"--port" in cmd and str(port).encode() in cmd:
            serving[int(entry.name)] = ppid
    # Workers are forks with the arbiter's command line: the arbiter's parent is not serving.
    arbiter = next((pid for pid, ppid in serving.items() if ppid not in serving), None)
    if arbiter is None:
        raise RuntimeError(f"no server process found for port {port}")
    return arbiter


def _name(frame: str) -> str:
    """Return 'module.py:function' for a py-spy frame 'function (path/module.py:line)'."""
    m = _FRAME.match(frame.strip())
    if m is None:
        return frame.strip()
    path = m.group("file")
    for marker in ("site-packages/", "/onsite_server/", "/shared/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker in ("/onsite_server/", "/shared/"):
                path = marker.strip("/") + "/" + path
            break
    return f"{path}:{m.group('func')}"


def summary(out: Path, top: int = 25, match: str = "") -> dict[str, Any]:
    """Return the busiest functions of a raw py-spy file: inclusive and self shares of samples.

    Idle samples (a thread waiting in a lock, a socket or the accept loop) are dropped by
    py-spy itself (no ``--idle``), so the shares are of the time a CPU was working.
    """
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in out.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_name(f) for f in stack.split(";")
                  if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count

    def rows(counter: Counter[str]) -> list[tuple[str, float]]:
        picked = [(n, c) for n, c in counter.most_common() if match in n][:top]
        return [(n, round(100 * c / total, 1)) for n, c in picked]

    return {"samples": total, "inclusive_pct": rows(inclusive), "self_pct": rows(own)}


def main() -> None:
    """Summarise a raw py-spy file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--match", default="")
    args = parser.parse_args()
    print(json.dumps(summary(args.out, args.top, args.match), indent=1))


if __name__ == "__main__":
    main()
