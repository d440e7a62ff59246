"""The check-in benchmark's own measuring: the access log's split and the per-phase timers."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask

from bench.checkin import server_durations
from bench.inprocess import Phases


def _access(path: str, duration_ms: float) -> str:
    return json.dumps({"logger": "access", "path": path, "duration_ms": duration_ms})


def test_theserver_durations_are_the_access_lines_after_the_start(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(_access("/dashboard/checkin/scan", 99.0) + "\n")
    start = log.stat().st_size
    with log.open("a") as out:
        for line in (_access("/dashboard/checkin/scan", 3.5), "not json at all",
                     json.dumps({"logger": "gunicorn.error", "message": "booted"}),
                     _access("/healthz", 0.6), _access("/login", 40.0), "[1, 2]",
                     _access("/dashboard/checkin/scan", 4.5)):
            out.write(line + "\n")
    assert server_durations(log, start) == {"scan": [3.5, 4.5], "healthz": [0.6]}


class FakeClock:
    """A clock that moves only when the code under test says it worked."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def work(self, seconds: float) -> None:
        self.now += seconds


def test_phases_charge_each_request_its_hooks_view_and_wrapped_calls() -> None:
    app = Flask(__name__)
    app.secret_key = "test"  # a real cookie session, opened and saved as the server's is
    clock = FakeClock()

    class Service:
        @staticmethod
        def work() -> None:
            clock.work(4)

    @app.before_request
    def check() -> None:
        clock.work(2)

    @app.get("/x")
    def view() -> str:
        clock.work(1)
        Service.work()
        return "ok"

    @app.get("/idle")
    def idle() -> str:
        return "ok"

    phases = Phases(app, clock=clock)
    phases.wrap(Service, "work", "service work")
    client = app.test_client()
    assert client.get("/x").status_code == 200
    assert phases.take() == {"before check": 2, "view": 5, "service work": 4,
                             "cookie session opened": 0, "cookie session saved": 0,
                             "server (wsgi_app)": 7}
    assert client.get("/idle").status_code == 200
    # Taken afresh: nothing of the first request is left, and the idle view cost nothing.
    assert phases.take() == {"before check": 2, "view": 0, "cookie session opened": 0,
                             "cookie session saved": 0, "server (wsgi_app)": 2}
