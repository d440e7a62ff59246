"""A crisis alert a proxy refuses before the server reads it is kept, never set aside.

The kiosk's real client and outbox talk HTTP to a stand-in for what sits between a kiosk and
its server on a real site: a proxy that compresses bodies, rewrites paths or cuts them short
answers a 4xx of its own, and the server never saw the alert.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kiosk.api_client import ApiClient
from kiosk.outbox import Outbox
from kiosk.sync import CatalogCache, SyncWorker


class Proxy(ThreadingHTTPServer):
    """Answers each POST path with the (status, body) set for it; 200 {} otherwise."""

    answers: dict[str, tuple[int, dict[str, Any]]]
    seen: list[str]


class _Handler(BaseHTTPRequestHandler):
    server: Proxy

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.seen.append(self.path)
        status, body = self.server.answers.get(self.path, (200, {}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/problem+json" if status >= 400
                         else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(304)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    """The stand-in, on a free loopback port."""
    server = Proxy(("127.0.0.1", 0), _Handler)
    server.answers, server.seen = {}, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _worker(tmp_path: Path, proxy: Proxy) -> tuple[SyncWorker, Outbox]:
    outbox = Outbox(tmp_path / "data" / "outbox.sqlite", tmp_path / "keys" / "outbox.key")
    host, port = proxy.server_address[:2]
    client = ApiClient(f"http://{host!s}:{port}", token="device-token")
    worker = SyncWorker(outbox, lambda: client, catalog=CatalogCache(tmp_path / "catalog.json"))
    return worker, outbox


ALERTS = "/api/v1/crisis-alerts"


@pytest.mark.parametrize("status", [400, 404, 413, 415])
def test_a_crisis_alert_refused_unread_stays_at_the_head_and_goes_again(
        tmp_path: Path, proxy: Proxy, status: int) -> None:
    worker, outbox = _worker(tmp_path, proxy)
    outbox.put("a1", "crisis_alert", {"idempotency_key": "a1", "trigger": "phq9_item9",
                                      "raised_at": "2026-12-08T01:00:00+00:00"}, crisis=True)
    proxy.answers[ALERTS] = (status, {"title": "Refused by the proxy", "status": status})
    worker.run_once()
    # Not set aside for good (a dead letter nobody is alerted on): it waits, and says so.
    assert outbox.dead_count() == 0 and [r.key for r in outbox.pending()] == ["a1"]
    assert any("crisis alert a1 not recorded yet" in e for e in worker.status().last_errors)
    del proxy.answers[ALERTS]  # the path through is mended
    worker.run_once()
    assert outbox.depth() == 0 and outbox.dead_count() == 0
    assert proxy.seen.count(ALERTS) == 2


@pytest.mark.parametrize(("status", "body"), [
    (422, {"title": "Invalid request", "status": 422, "crisis_recorded": True}),
    (409, {"title": "Idempotency key reused with a different body", "status": 409}),
])
def test_a_crisis_alert_the_server_recorded_is_settled(tmp_path: Path, proxy: Proxy,
                                                       status: int, body: dict[str, Any]) -> None:
    worker, outbox = _worker(tmp_path, proxy)
    outbox.put("a1", "crisis_alert", {"idempotency_key": "a1", "trigger": "phq9_item9",
                                      "raised_at": "2026-12-08T01:00:00+00:00"}, crisis=True)
    proxy.answers[ALERTS] = (status, body)
    worker.run_once()
    assert outbox.depth() == 0 and outbox.dead_count() == 1
    assert proxy.seen.count(ALERTS) == 1
