"""What an authenticated durable write costs before its own work, in process: the request floor.

Calls the app's WSGI callable with prebuilt environs, as gunicorn calls it (no HTTP, no test
client, no other process), on a temporary SQLite file with one paired kiosk, and prints the
server CPU (``time.process_time``) per request of:

- ``healthz``: ``GET /healthz``;
- ``auth_only``: an authenticated POST with a ``{}`` body answering ``{}`` (the device-token
  check, the body read, the JSON answer);
- ``one_write``: the same plus one ``UPDATE kiosk ... WHERE id`` and the durable COMMIT;
- ``heartbeat``: ``POST /api/v1/heartbeat``;
- ``submit``: ``POST /api/v1/submissions`` with a one-item anonymous PHQ-9 batch (fresh keys).

The two bench-only routes are added to the API blueprint before the app is built (in this
process only). Phases alternate over ``--rounds`` rounds; each figure is the median. Prints one
JSON line; no test asserts any of it.

    .venv/bin/python bench/request_floor.py [--requests 800] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _bench_routes() -> None:
    """Add the two bench-only operations to the API blueprint (before the app is built)."""
    from sqlalchemy import text

    from onsite_server.api import authenticated_kiosk, operation
    from onsite_server.db import get_session

    touch = text("UPDATE kiosk SET place = place WHERE id = :id")

    @operation("/bench-auth-only", "POST", summary="bench", tag="bench",
               responses={200: ("ok", None)})
    def bench_auth_only() -> dict[str, bool]:
        return {"ok": True}

    @operation("/bench-one-write", "POST", summary="bench", tag="bench",
               responses={200: ("ok", None)})
    def bench_one_write() -> dict[str, bool]:
        get_session().connection().execute(touch, {"id": authenticated_kiosk().id})
        return {"ok": True}


def main() -> None:
    """Run the phases and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=800, help="requests a phase")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    try:
        print(json.dumps(_run(folder, args.requests, args.rounds)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run(folder: Path, requests: int, rounds: int) -> dict[str, Any]:
    from werkzeug.test import EnvironBuilder

    env = {"ONSITE_DATABASE_URL": f"sqlite:///{folder / 'onsite.sqlite'}",
           "ONSITE_INSTANCE_PATH": str(folder / "instance"), "ONSITE_SECRET_KEY": "bench"}
    os.environ.update(env)
    from onsite_server import create_app, devserver
    from onsite_server.db import get_db
    from onsite_server.services.pairing import issue_pairing_code
    from onsite_server.services.sites import create_site

    devserver.cli({**os.environ, **env}, "init-db")
    _bench_routes()
    app = create_app()
    with get_db(app).transaction() as session:
        site = create_site(session, employer_slug="bench", employer_name="Bench",
                           slug="bench", name="Bench site")
        code = issue_pairing_code(session, site)
    token = app.test_client().post("/api/v1/pair", json={"pairing_code": code}
                                   ).get_json()["token"]
    device = [("Authorization", f"Bearer {token}"), ("Content-Type", "application/json"),
              ("Host", "localhost")]

    def submission() -> bytes:
        answers = {str(i): random.randint(0, 2) for i in range(1, 9)} | {"9": 0}
        return json.dumps({"items": [{
            "idempotency_key": str(uuid.uuid4()), "anonymous": True,
            "session_id": str(uuid.uuid4()), "instrument_id": "phq9",
            "instrument_version": "1.0.0", "answers": answers, "kiosk_result": None,
            "taken_at": datetime.now(UTC).isoformat()}]}).encode()

    heartbeat = json.dumps({"app_version": "1.0.0", "outbox_depth": 0,
                            "free_disk_bytes": 1_000_000_000}).encode()

    def post(path: str, body: Callable[[], bytes]) -> Callable[[], dict[str, Any]]:
        return lambda: EnvironBuilder(path=path, method="POST", data=body(),
                                      headers=device).get_environ()

    phases: dict[str, Callable[[], dict[str, Any]]] = {
        "healthz": lambda: EnvironBuilder(path="/healthz",
                                          headers=[("Host", "localhost")]).get_environ(),
        "auth_only": post("/api/v1/bench-auth-only", lambda: b"{}"),
        "one_write": post("/api/v1/bench-one-write", lambda: b"{}"),
        "heartbeat": post("/api/v1/heartbeat", lambda: heartbeat),
        "submit": post("/api/v1/submissions", submission),
    }
    refused: list[str] = []

    def start_response(status: str, _headers: Any, _exc: Any = None) -> Callable[[bytes], object]:
        if not status.startswith("200"):
            refused.append(status)
        return lambda _data: None

    def call(environ: dict[str, Any]) -> None:
        answer = app.wsgi_app(environ, start_response)
        b"".join(answer)
        getattr(answer, "close", lambda: None)()

    for _ in range(100):  # warm-up: imports, statement caches, the pool
        for make in phases.values():
            call(make())
    gc.collect()
    gc.freeze()  # as the workers do (cli_serve)
    cpu: dict[str, list[float]] = {name: [] for name in phases}
    for _ in range(rounds):
        for name, make in phases.items():
            environs = [make() for _ in range(requests)]  # built outside the timing
            started = time.process_time()
            for environ in environs:
                call(environ)
            cpu[name].append((time.process_time() - started) * 1000 / requests)
    get_db(app).dispose()
    ms = {name: round(statistics.median(values), 4) for name, values in cpu.items()}
    return {
        "bench": "request_floor", "cpu_ms_per_request": ms,
        "over_healthz": {name: round(value / ms["healthz"], 2) for name, value in ms.items()},
        "submit_over_heartbeat": round(ms["submit"] / ms["heartbeat"], 2),
        "refused": refused[:3], "requests_per_phase": requests, "rounds": rounds,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


if __name__ == "__main__":
    main()
