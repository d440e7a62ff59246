"""GET /metrics: the site's state in Prometheus' text format, for monitoring.

Two kinds of figures:
- **State read from the database at each scrape** (outbox depth by status and the oldest
  pending message's age, unacknowledged crises and the oldest one's age, kiosks by the age of
  their last heartbeat, messages sent in the last hour). Every worker and node reads the same
  rows, so whichever one answers tells the same truth.
- **Requests** (counts and latency histograms by route), counted by each worker. Under
  `onsite-server serve` the workers share them through prometheus_client's multiprocess
  files (``PROMETHEUS_MULTIPROC_DIR``, which ``serve`` sets before anything imports the
  library), so a scrape sums all workers rather than showing one at random.

Who may read it: a request from this machine's loopback that no proxy forwarded, or one that
carries ``METRICS_TOKEN`` as a bearer token. Nothing in it identifies a member; route labels
are URL rules (``/api/v1/bookings/<booking_id>/cancel``), never the paths themselves.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from .app_settings import current as current_settings
from .db import get_db
from .errors import error_response
from .instance import write_private
from .models import as_utc

bp = Blueprint("metrics", __name__)

# Requests are counted into this registry (not the library's global one), so a test can build
# many apps in one process without "duplicated timeseries" errors.
REQUESTS_REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter("onsite_http_requests", "HTTP requests answered, by route, method and status",
                   ["route", "method", "status"], registry=REQUESTS_REGISTRY)
LATENCY = Histogram("onsite_http_request_duration_seconds",
                    "Time from the request's arrival to its answer, by route and method",
                    ["route", "method"], registry=REQUESTS_REGISTRY,
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
# The classic text format every Prometheus reads; our names are plain ASCII, for which the
# library's output is the same in every version of the format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Heartbeat ages a coordinator cares about: answering, quiet a while, gone.
HEARTBEAT_BANDS = (("under_5m", timedelta(minutes=5)), ("under_1h", timedelta(hours=1)))


class SiteStateCollector(Collector):
    """Reads the outbox, crises and kiosks from the database when scraped."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        """Yield the database-backed gauges (nothing when the database cannot be read)."""
        from .models import OUTBOX_STATUSES, Kiosk, OutboxMessage
        from .services.crisis import waiting_since

        now = datetime.now(UTC)
        try:
            with get_db(self.app).transaction(write=False) as session:
                by_status = dict(session.execute(
                    select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
                ).tuples().all())
                oldest_pending = session.scalar(
                    select(func.min(OutboxMessage.created_at))
                    .where(OutboxMessage.status.in_(("pending", "sending"))))
                sent_hour = session.scalar(
                    select(func.count()).select_from(OutboxMessage)
                    .where(OutboxMessage.sent_at >= now - timedelta(hours=1))) or 0
                crises = [as_utc(t) for t in waiting_since(session)]
                heartbeats = session.scalars(
                    select(Kiosk.last_heartbeat_at).where(Kiosk.revoked_at.is_(None))).all()
        except SQLAlchemyError:
            # /healthz and the log say why; a scrape without these series shows the gap.
            return
        outbox = GaugeMetricFamily("onsite_outbox_messages",
                                   "Messages to central in the outbox, by status",
                                   labels=["status"])
        for status in OUTBOX_STATUSES:
            outbox.add_metric([status], int(by_status.get(status, 0)))
        yield outbox
        yield GaugeMetricFamily(
            "onsite_outbox_oldest_pending_seconds",
            "Age of the oldest message still waiting to reach central (0 when none)",
            value=(now - as_utc(oldest_pending)).total_seconds() if oldest_pending else 0.0)
        yield GaugeMetricFamily("onsite_outbox_sent_last_hour",
                                "Messages central accepted in the last hour", value=sent_hour)
        yield GaugeMetricFamily("onsite_crisis_unacknowledged",
                                "Crises (anonymous alerts and crisis referrals) not yet "
                                "acknowledged by staff", value=len(crises))
        yield GaugeMetricFamily(
            "onsite_crisis_oldest_unacknowledged_seconds",
            "How long the oldest unacknowledged crisis has waited since it reached the server "
            "(0 when none)", value=(now - min(crises)).total_seconds() if crises else 0.0)
        kiosks = GaugeMetricFamily("onsite_kiosks", "Paired kiosks by the age of their last "
                                   "heartbeat", labels=["heartbeat"])
        counts = dict.fromkeys([name for name, _ in HEARTBEAT_BANDS] + ["older", "never"], 0)
        for seen in heartbeats:
            counts[_band(now, seen)] += 1
        for band, count in counts.items():
            kiosks.add_metric([band], count)
        yield kiosks
        yield from _sync_cycle(self.app.instance_path)


SYNC_CYCLE_FILE = "sync-last-cycle.json"
# The counts of a cycle that /metrics reports, by the name of the label.
SYNC_RESULTS = ("sent", "withheld", "retried", "dead", "statuses_moved")


def record_sync_cycle(instance_path: str, outcome: Mapping[str, Any]) -> None:
    """Leave the sync worker's last cycle where this node's /metrics reads it (atomically)."""
    folder = Path(instance_path)
    data = {"finished_at": time.time(), **{k: outcome.get(k, 0) for k in SYNC_RESULTS},
            "credentials_refused": bool(outcome.get("credentials_refused", False))}
    partial = folder / (SYNC_CYCLE_FILE + f".{os.getpid()}")
    write_private(partial, json.dumps(data).encode())
    partial.replace(folder / SYNC_CYCLE_FILE)


def _sync_cycle(instance_path: str) -> Iterator[Metric]:
    try:
        data = json.loads((Path(instance_path) / SYNC_CYCLE_FILE).read_text())
    except (OSError, ValueError):
        return  # no worker has finished a cycle on this node yet: no series, not zeros
    yield GaugeMetricFamily("onsite_sync_last_cycle_timestamp_seconds",
                            "When this node's sync worker last finished a cycle (Unix time)",
                            value=float(data.get("finished_at", 0)))
    cycle = GaugeMetricFamily("onsite_sync_last_cycle", "What the last sync cycle did, by "
                              "result", labels=["result"])
    for result in SYNC_RESULTS:
        cycle.add_metric([result], float(data.get(result, 0)))
    yield cycle
    yield GaugeMetricFamily("onsite_sync_credentials_refused",
                            "1 when central refused the sync's credentials at the last try",
                            value=1.0 if data.get("credentials_refused") else 0.0)


def _band(now: datetime, seen: datetime | None) -> str:
    if seen is None:
        return "never"
    age = now - as_utc(seen)
    return next((name for name, limit in HEARTBEAT_BANDS if age < limit), "older")


def _allowed() -> bool:
    token = current_settings().metrics_token
    sent = request.headers.get("Authorization", "")
    if token and sent[:7].lower() == "bearer " and hmac.compare_digest(
            sent[7:].encode(), str(token).encode()):
        return True
    # A reverse proxy on this machine connects from loopback for everyone it serves: a
    # forwarded request is not a local one.
    if request.headers.get("X-Forwarded-For") or request.headers.get("Forwarded"):
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


@bp.get("/metrics")
def metrics() -> Response:
    """Answer the Prometheus text exposition to loopback or to the metrics bearer token."""
    if not _allowed():
        return error_response(403, "Forbidden", "Metrics are open to this machine only, or "
                              "to a request with the metrics token.",
                              errors=[{"field": "Authorization",
                                       "message": "missing or wrong metrics token"}])
    state = CollectorRegistry(auto_describe=True)
    state.register(SiteStateCollector(current_app._get_current_object()))  # type: ignore[attr-defined]
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        requests_registry = CollectorRegistry()
        MultiProcessCollector(requests_registry)  # type: ignore[no-untyped-call]
    else:
        requests_registry = REQUESTS_REGISTRY
    body = generate_latest(state) + generate_latest(requests_registry)
    return Response(body, mimetype=None, content_type=CONTENT_TYPE)


def init_app(app: Flask) -> None:
    """Register /metrics and count every request by its route."""
    app.register_blueprint(bp)

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _count(response: Response) -> Response:
        started = g.get("metrics_started")
        if started is not None:
            route = request.url_rule.rule if request.url_rule is not None else "unmatched"
            REQUESTS.labels(route, request.method, str(response.status_code)).inc()
            LATENCY.labels(route, request.method).observe(time.perf_counter() - started)
        return response
