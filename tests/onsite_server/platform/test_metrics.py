"""GET /metrics: Prometheus' text format, the site's state from the database, requests summed
over gunicorn's workers, and open only to loopback or the metrics token."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from onsite_server.app_settings import override
from onsite_server.db import get_db
from onsite_server.models import CrisisAlert, Kiosk, OutboxMessage

from ..conftest import LiveServer


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse the exposition (failing on anything Prometheus would not read)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_state_from_the_database(app: Flask, client: FlaskClient, kiosk: Any) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    with get_db(app).transaction() as session:
        kiosk_id = session.scalars(select(Kiosk.id)).one()
        session.add(CrisisAlert(kiosk_id=kiosk_id, trigger="phq9_item9", received_at=old))
        session.add(OutboxMessage(kind="booking", key="a", payload={}, created_at=old))
        session.add(OutboxMessage(kind="booking", key="b", payload={}, status="dead"))
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = _samples(resp.get_data(as_text=True))
    assert samples[("onsite_outbox_messages", (("status", "pending"),))] == 1
    assert samples[("onsite_outbox_messages", (("status", "dead"),))] == 1
    assert samples[("onsite_outbox_messages", (("status", "sent"),))] == 0
    assert samples[("onsite_crisis_unacknowledged", ())] == 1
    assert 590 < samples[("onsite_crisis_oldest_unacknowledged_seconds", ())] < 900
    assert 590 < samples[("onsite_outbox_oldest_pending_seconds", ())] < 900
    # The kiosk fixture pairs without a heartbeat yet.
    assert samples[("onsite_kiosks", (("heartbeat", "never"),))] == 1


@pytest.mark.sqlite_only
def test_requests_are_counted_by_route_not_path(client: FlaskClient) -> None:
    client.get("/healthz")
    client.get("/api/v1/bookings/not-a-real-id/cancel")
    samples = _samples(client.get("/metrics").get_data(as_text=True))
    routes = {dict(labels).get("route") for (name, labels) in samples
              if name == "onsite_http_requests_total"}
    assert "/healthz" in routes
    assert not any(route and "not-a-real-id" in route for route in routes)
    assert any(name == "onsite_http_request_duration_seconds_bucket" for name, _ in samples)


@pytest.mark.parametrize(("environ", "headers", "status"), [
    ({"REMOTE_ADDR": "10.20.30.40"}, {}, 403),
    ({"REMOTE_ADDR": "10.20.30.40"}, {"Authorization": "Bearer wrong"}, 403),
    ({"REMOTE_ADDR": "10.20.30.40"}, {"Authorization": "Bearer scrape-me"}, 200),
    ({"REMOTE_ADDR": "127.0.0.1"}, {"X-Forwarded-For": "203.0.113.9"}, 403),
    ({"REMOTE_ADDR": "127.0.0.1"}, {}, 200),
])
@pytest.mark.sqlite_only
def test_open_to_loopback_or_the_token(app: Flask, client: FlaskClient,
                                       environ: dict[str, str], headers: dict[str, str],
                                       status: int) -> None:
    override(app, METRICS_TOKEN="scrape-me")
    resp = client.get("/metrics", environ_base=environ,
                      headers={**headers, "Accept": "application/json"})
    assert resp.status_code == status
    if status == 403:
        assert resp.get_json()["errors"][0]["field"] == "Authorization"


@pytest.mark.slow
@pytest.mark.sqlite_only
def test_gunicorn_workers_share_their_request_counts(live_server: LiveServer) -> None:
    # gunicorn hands connections to whichever worker accepts first; each request on a new
    # connection, so both of the live server's two workers answer some.
    for _ in range(40):
        assert requests.get(f"{live_server.url}/healthz", verify=False, timeout=10,
                            headers={"Connection": "close"}).status_code == 200
    text = requests.get(f"{live_server.url}/metrics", verify=False, timeout=10).text
    samples = _samples(text)
    counted = sum(value for (name, labels), value in samples.items()
                  if name == "onsite_http_requests_total" and ("route", "/healthz") in labels)
    # The live server's own start-up polls /healthz too, so at least the 40 sent here.
    assert counted >= 40


def test_the_sync_workers_last_cycle(app: Flask, client: FlaskClient) -> None:
    from ..cli_in_process import run_cli

    samples = _samples(client.get("/metrics").get_data(as_text=True))
    assert ("onsite_sync_last_cycle_timestamp_seconds", ()) not in samples  # no cycle yet
    # The worker's command, in this process: it leaves its cycle in the instance folder,
    # where /metrics reads it, as from a process of its own.
    env: dict[str, str | None] = {
        "ONSITE_DATABASE_URL": app.config["DATABASE_URL"],
        "ONSITE_INSTANCE_PATH": app.instance_path, "ONSITE_SECRET_KEY": "s",
        "ONSITE_CENTRAL_URL": "http://127.0.0.1:9/fhir",  # nothing listens: central is down
        "ONSITE_CENTRAL_ALLOW_INSECURE_HTTP": "1"}
    done = run_cli(env, "sync", "--once")
    assert done.exit_code == 0, done.output
    samples = _samples(client.get("/metrics").get_data(as_text=True))
    finished = samples[("onsite_sync_last_cycle_timestamp_seconds", ())]
    assert abs(finished - dt.datetime.now(dt.UTC).timestamp()) < 300
    assert samples[("onsite_sync_last_cycle", (("result", "sent"),))] == 0
    assert samples[("onsite_sync_credentials_refused", ())] == 0

    from onsite_server.metrics import record_sync_cycle

    record_sync_cycle(app.instance_path, {"sent": 7, "dead": 1, "statuses_moved": 2})
    samples = _samples(client.get("/metrics").get_data(as_text=True))
    assert samples[("onsite_sync_last_cycle", (("result", "sent"),))] == 7
    assert samples[("onsite_sync_last_cycle", (("result", "dead"),))] == 1
    record_sync_cycle(app.instance_path, {"credentials_refused": True})
    samples = _samples(client.get("/metrics").get_data(as_text=True))
    assert samples[("onsite_sync_credentials_refused", ())] == 1


@pytest.mark.sqlite_only
def test_a_start_removes_the_metrics_folders_of_servers_killed_outright(tmp_path: Path) -> None:
    """SIGKILL runs no atexit: the next start removes what such a server left, and nothing
    of a server still running or of a folder it cannot tell apart."""
    import subprocess
    import sys

    from onsite_server.cli_serve import remove_orphaned_metrics

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    killed = tmp_path / f"onsite-metrics-{gone.pid}-abcd1234"
    running = tmp_path / f"onsite-metrics-{os.getpid()}-efgh5678"
    unnamed = tmp_path / "onsite-metrics-k2j4x9q1"  # named before folders carried a pid
    for folder in (killed, running, unnamed):
        folder.mkdir()
        (folder / "counter_1.db").write_bytes(b"x")
    assert remove_orphaned_metrics(tmp_path) == [killed]
    assert not killed.exists() and running.exists() and unnamed.exists()
