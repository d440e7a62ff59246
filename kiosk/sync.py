"""The sync worker: a background thread that empties the outbox into the onsite server.

Each cycle sends what waits (crisis lane first, then in the order written; submission items
in batches, each with the idempotency key it was queued under, so a resend after a lost
answer changes nothing on the server), then a heartbeat, then revalidates the catalog with
its ETag. A failure waits a full-jitter backoff (``shared.backoff``: doubling, capped) before
the next try; ``wake`` cuts a wait short ("sync now", or a crisis just queued).

Nothing here touches the UI: the app passes a ``notify`` callable that receives a fresh
``SyncStatus`` after each batch and cycle, and the Kivy side wraps it in
``Clock.schedule_once`` so it runs on the UI thread.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.backoff import full_jitter

from .api_client import (
    APP_VERSION,
    ApiClient,
    ApiRefused,
    RateLimited,
    TooOld,
    Unauthorized,
)
from .backend import Offline, SyncStatus
from .outbox import Outbox, Row
from .sync_drain import Drain, DrainSettings
from .sync_plan import Unit

log = logging.getLogger("kiosk.sync")

DEFAULT_INTERVAL = 30.0  # DESIGN.md §6: every 30 s while online
BACKOFF_BASE = 2.0
# ... doubling with full jitter, up to 30 s: a kiosk back online sends within 30 s (issue 15;
# at 600 s, members' answers sat unsent for minutes after the network came back).
BACKOFF_CAP = 30.0
# Items per request. Each request costs the server a fixed share (TLS, the token check, the
# batch's few set-based statements, one durable commit) on top of its items: the same
# 4,000-item backlog cost the server 1.75 s of CPU in 40 requests, 1.34 s in 8
# (docs/BENCHMARKS.md, issue 20 P6, session 10). Not the server's whole MAX_BATCH (500 by
# default): a batch holds SQLite's write lock while it is written, and live visits on other
# kiosks wait behind it (about 40 ms for 250 items).
DEFAULT_BATCH = 250
# And at most this much JSON per request, half the server's 2 MiB body limit: 250 items of
# the longest answers the schema allows would be refused whole (413) and retried forever.
MAX_BATCH_BYTES = 1024 * 1024
# Requests in flight during a drain: the server's second process prepares one batch while the
# first is written (docs/BENCHMARKS.md, issue 20 P6, session 12); ``sync_plan`` keeps the
# rows of two requests in flight apart, so that their order never matters.
IN_FLIGHT = 2
# An offline-typed identity outlives its visit only long enough for the visit's own writes.
IDENTITY_TTL = timedelta(minutes=30)
MAX_ERRORS = 10


def _retry_later(answer: dict[str, Any]) -> bool:
    """True when the server refused an item only for now (over its per-request limit)."""
    problem = answer.get("problem") or {}
    text = json.dumps(problem.get("errors") or [])
    return "send it again" in text


def _recorded(refusal: ApiRefused) -> bool:
    """True when the server kept the crisis of a crisis alert it refused.

    A 422 says so in ``crisis_recorded``; a 409 means its key already raised an alert.
    """
    return refusal.status == 409 or refusal.problem.get("crisis_recorded") is True


class CatalogCache:
    """The last catalog the server sent and its ETag, on disk so a restart offline has it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._etag: str | None = None
        self._body: dict[str, Any] | None = None
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            self._etag, self._body = stored.get("etag"), stored["body"]
        except (OSError, ValueError, KeyError, AttributeError):
            pass  # none yet, or a torn write from before os.replace was used: fetch again

    @property
    def etag(self) -> str | None:
        """The ETag of the cached copy."""
        with self._lock:
            return self._etag

    def body(self) -> dict[str, Any] | None:
        """The cached catalog as the server sent it, or None."""
        with self._lock:
            return self._body

    def store(self, etag: str | None, body: dict[str, Any]) -> None:
        """Replace the cached copy atomically (write, fsync, rename)."""
        tmp = self.path.with_suffix(".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump({"etag": etag, "body": body}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        with self._lock:
            self._etag, self._body = etag, body


@dataclass
class _State:
    online: bool = False
    last_sync_at: datetime | None = None
    sent_since_backlog: int = 0
    backlog_at_start: int = 0
    failures: int = 0
    update_required: str | None = None  # the server's minimum app version, when refused


class SyncWorker:
    """Sends the outbox, heartbeats and refreshes the catalog, off the UI thread."""

    def __init__(self, outbox: Outbox, client: Callable[[], ApiClient | None], *,
                 catalog: CatalogCache, notify: Callable[[SyncStatus], None] | None = None,
                 interval: float = DEFAULT_INTERVAL, batch_size: int = DEFAULT_BATCH,
                 batch_bytes: int = MAX_BATCH_BYTES, in_flight: int = IN_FLIGHT,
                 backoff_base: float = BACKOFF_BASE, backoff_cap: float = BACKOFF_CAP,
                 disk_path: Path | None = None, app_version: str = APP_VERSION,
                 rng: random.Random | None = None) -> None:
        self.outbox = outbox
        self._client = client
        self.catalog = catalog
        self.notify = notify
        self.interval = interval
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.in_flight = max(1, in_flight)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.disk_path = disk_path or outbox.path.parent
        self.app_version = app_version
        self._rng = rng or random.Random()
        self._state = _State()
        self._errors: deque[str] = deque(maxlen=MAX_ERRORS)
        self._lock = threading.Lock()
        # One cycle at a time, whether from the thread or a direct run_once call.
        self._cycle_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ thread

    def start(self) -> None:
        """Start the background thread (once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="kiosk-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to stop after its current request, and wait for it."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        """Start a cycle now instead of after the current wait."""
        self._wake.set()

    def reached(self) -> None:
        """A request of the screens got through: while backing off, drain at once."""
        with self._lock:
            backing_off = not self._state.online and self._state.failures > 0
        if backing_off:
            self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                delay = self.run_once()
            except Exception as exc:  # noqa: BLE001 - the worker must outlive any one bug
                log.exception("sync cycle failed")
                self._error(f"sync failed: {type(exc).__name__}: {exc}")
                delay = self._backoff()
            self._wake.wait(delay)
            self._wake.clear()

    # ------------------------------------------------------------------ status

    def status(self) -> SyncStatus:
        """What the admin screen shows."""
        with self._lock:
            s = self._state
            return SyncStatus(
                paired=self._client() is not None, online=s.online,
                outbox_depth=self.outbox.depth(), sent_since_backlog=s.sent_since_backlog,
                backlog_at_start=s.backlog_at_start,
                last_sync_at=s.last_sync_at.isoformat() if s.last_sync_at else None,
                last_errors=tuple(self._errors), update_required=s.update_required,
                app_version=self.app_version)

    def _tell(self) -> None:
        if self.notify is None:
            return
        try:
            self.notify(self.status())
        except Exception:  # noqa: BLE001 - a UI callback's bug must not stop the sync
            log.exception("sync notify callback failed")

    def note(self, message: str) -> None:
        """Add a problem found outside a cycle (a damaged outbox at start) to the admin list."""
        self._error(message)

    def _error(self, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        with self._lock:
            self._errors.append(f"{stamp} {message}")

    def _set_online(self, online: bool) -> None:
        with self._lock:
            self._state.online = online
            if online:
                self._state.failures = 0
                self._state.last_sync_at = datetime.now(UTC)

    def _backoff(self) -> float:
        with self._lock:
            self._state.failures += 1
            failures = self._state.failures
        return full_jitter(failures, self.backoff_base, self.backoff_cap, self._rng)

    # ------------------------------------------------------------------ one cycle

    def run_once(self) -> float:
        """Run one cycle (drain, heartbeat, catalog); return the seconds to wait until the next."""
        with self._cycle_lock:
            self.outbox.forget_identities(IDENTITY_TTL)
            client = self._client()
            if client is None:
                self._tell()
                return self.interval
            try:
                self.drain(client)
                self._heartbeat(client)
                self._refresh_catalog(client)
            except RateLimited as exc:
                self._error(f"rate limited: {exc.reason}")
                self._tell()
                return max(exc.retry_after, self._backoff())
            except TooOld as exc:
                # Nothing was stored: every row stays in the outbox until the app is updated.
                self._set_online(False)
                with self._lock:
                    self._state.update_required = exc.minimum
                self._error(f"this app ({self.app_version}) is too old for the server: "
                            f"it needs {exc.minimum}")
                self._tell()
                return max(self.interval, self._backoff())
            except Unauthorized as exc:
                self._set_online(False)
                self._error(f"the server refused this kiosk's token: {exc.reason}")
                self._tell()
                return self._backoff()
            except ApiRefused as exc:
                # The server answered but refused a heartbeat or catalog request: it is up,
                # the outbox went through; try again at the usual pace.
                self._error(f"refused: {exc.reason}")
            except Offline as exc:
                self._set_online(False)
                self._error(str(exc))
                self._tell()
                return self._backoff()
            self._set_online(True)
            with self._lock:
                self._state.update_required = None
            self._tell()
            return self._interval()

    def _interval(self) -> float:
        body = self.catalog.body() or {}
        try:
            return float(body["settings"]["timeouts"]["sync_seconds"])
        except (KeyError, TypeError, ValueError):
            return self.interval

    def drain(self, client: ApiClient) -> int:
        """Send everything that waits; return how many rows were acknowledged.

        Up to ``in_flight`` requests at a time (two by default), so that the server prepares
        one batch while it writes another. A request sent while another is in flight carries
        only rows that cannot meet the other's on the server (``sync_plan``: no shared kiosk
        session, at most one request naming members, nothing beside a crisis nor ahead of one
        that waits); with nothing in flight a request is the next rows in order, as ever. Every
        plan reads the outbox afresh from its head, so a crisis queued meanwhile goes in the
        next request.
        The outbox is read and written on a helper thread, while requests are in flight. A row
        the server acknowledged is deleted after the next request was sent; a crash in between
        only resends it, and the server replays its answer (same idempotency key).

        Raises Offline (or Unauthorized, RateLimited) once the server stops answering, after
        the requests still in flight were answered; what was acknowledged stays acknowledged.
        """
        run = Drain(DrainSettings(
            outbox=self.outbox, send=lambda unit: self._send_unit(client, unit),
            note_backlog=self._note_backlog, count_acked=self._count_acked, stop=self._stop,
            in_flight=self.in_flight, batch_size=self.batch_size,
            batch_bytes=self.batch_bytes))
        with ThreadPoolExecutor(max_workers=self.in_flight,
                                thread_name_prefix="kiosk-sync-send") as senders, \
                ThreadPoolExecutor(max_workers=1,
                                   thread_name_prefix="kiosk-sync-outbox") as helper:
            try:
                run.loop(senders, helper)
            finally:
                run.finish()
        if run.failure is not None:
            raise run.failure
        if self.outbox.depth() == 0:
            with self._lock:
                self._state.backlog_at_start = self._state.sent_since_backlog = 0
        return run.total

    def _count_acked(self, done: int, settled: int) -> int:
        """Count a batch's rows as sent once their deletion is on disk; tell the screen."""
        if settled == 0 and done == 0:
            return 0
        with self._lock:
            self._state.sent_since_backlog += settled
            self._state.online = True
        self._tell()
        return done

    def _send_unit(self, client: ApiClient, unit: Unit) -> tuple[list[str], int, bool]:
        """Send one request; return (keys acknowledged, rows settled, a row left waiting)."""
        rows = list(unit.rows)
        if rows[0].kind == "submission":
            return self._send_items(client, rows)
        acked, settled = self._send_single(client, rows[0])
        return acked, settled, False

    def _note_backlog(self, seen: int) -> None:
        depth = self.outbox.depth()
        with self._lock:
            s = self._state
            # New rows written during a drain grow the bar's total instead of resetting it.
            s.backlog_at_start = max(s.backlog_at_start, s.sent_since_backlog + depth, seen)

    def _send_items(self, client: ApiClient, rows: list[Row]) -> tuple[list[str], int, bool]:
        """Send a batch of items; return (keys to delete, acknowledged or set aside, waits).

        The acknowledged rows are deleted by ``drain`` (after the next request was sent).
        """
        try:
            answers = client.submit([r.payload for r in rows])
        except ApiRefused as exc:
            if isinstance(exc, Unauthorized | RateLimited | TooOld):
                raise
            # The whole request was refused (it should never be): keep the rows, say why.
            self.outbox.failed([r.key for r in rows], exc.reason)
            self._error(f"submissions refused: {exc.reason}")
            return [], 0, True
        except Offline:
            self.outbox.failed([r.key for r in rows], "offline")
            raise
        acked: list[str] = []
        buried = 0
        waiting = len(answers) < len(rows)
        for row, answer in zip(rows, answers, strict=False):
            status = answer.get("status")
            if status in ("accepted", "replayed"):
                acked.append(row.key)
            elif status == "rejected" and _retry_later(answer):
                waiting = True
                continue
            else:
                # Refused for good (invalid, or the key taken by another body): a resend would
                # be refused the same way, so it is set aside for an admin instead of blocking.
                detail = (answer.get("problem") or {}).get("detail") or status
                self.outbox.bury(row.key, str(detail))
                self._error(f"item {row.key[:8]} refused: {detail}")
                buried += 1
        return acked, len(acked) + buried, waiting

    def _send_single(self, client: ApiClient, row: Row) -> tuple[list[str], int]:
        """Send one consent or crisis alert; return (keys to delete, rows settled)."""
        try:
            if row.kind == "consent":
                client.consent(row.payload)
            elif row.kind == "crisis_alert":
                client.crisis_alert(row.payload)
            else:
                raise ValueError(f"unexpected outbox kind {row.kind!r}")
        except (Unauthorized, RateLimited, TooOld):
            raise
        except ApiRefused as exc:
            if row.kind == "crisis_alert" and not _recorded(exc):
                # Refused before the server read it (a proxy's 4xx, a body cut short): set
                # aside, nobody would ever be alerted. It stays at the head and goes again.
                self.outbox.failed([row.key], exc.reason)
                self._error(f"crisis alert {row.key[:8]} not recorded yet: {exc.reason}")
                return [], 0
            self.outbox.bury(row.key, exc.reason)
            self._error(f"{row.kind} {row.key[:8]} refused: {exc.reason}")
            return [], 1
        except Offline:
            self.outbox.failed([row.key], "offline")
            raise
        return [row.key], 1

    def _heartbeat(self, client: ApiClient) -> None:
        try:
            free = shutil.disk_usage(self.disk_path).free
        except OSError:
            free = 0
        with self._lock:
            last = self._state.last_sync_at
        client.heartbeat({"app_version": self.app_version,
                          "outbox_depth": self.outbox.depth(),
                          "last_sync_at": (last or datetime.now(UTC)).isoformat(),
                          "free_disk_bytes": free})

    def _refresh_catalog(self, client: ApiClient) -> None:
        fetched = client.catalog(self.catalog.etag if self.catalog.body() else None)
        if fetched is not None:
            etag, body = fetched
            self.catalog.store(etag, body)
