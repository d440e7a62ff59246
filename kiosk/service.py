"""KioskService: the ``Backend`` the screens call, over the outbox, sync worker and API client.

Writes (a visit's items, consent, a crisis alert) go to the encrypted outbox and return as
soon as SQLite has them on disk; the sync worker sends them. Reads that need the server
(identify, the advocate link, bookings) go straight to it with short timeouts and raise
``Offline`` when it cannot answer, except identify, which then keeps what the member typed
sealed in the outbox for the server to match when their items arrive.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from shared.crisis import triggers_in_raw
from shared.schemas.bookings import BookingOut
from shared.schemas.catalog import CatalogResponse
from shared.schemas.members import AdvocateLinkResponse
from shared.schemas.referrals import ConsentRequest
from shared.schemas.submissions import OfflineIdentity

from .api_client import APP_VERSION, DEFAULT_TIMEOUT, ApiClient, Pairing
from .backend import Identity, Offline, Refused, SyncStatus
from .outbox import Entry, Outbox, Row
from .settings import KioskSettings
from .sync import CatalogCache, SyncWorker

log = logging.getLogger("kiosk.service")
T = TypeVar("T")

NEEDS_CONNECTION = "This needs a connection to the server; please try again later."


def load_pairing(settings: KioskSettings) -> Pairing | None:
    """Return the stored pairing, or None when the kiosk was never paired."""
    try:
        data = json.loads(settings.pairing_path.read_text(encoding="utf-8"))
        return Pairing(**data)
    except (OSError, ValueError, TypeError):
        return None


def save_pairing(settings: KioskSettings, pairing: Pairing) -> None:
    """Store the pairing (it holds the device token: 0600, written atomically)."""
    path = settings.pairing_path
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(pairing.as_dict(), fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _check_consent(payload: Mapping[str, Any]) -> None:
    """Refuse now what the server would refuse later, when the member is long gone.

    The same schema as the server's, plus its roster-independent rule: consent to be
    contacted needs a way and a time of day.
    """
    try:
        ConsentRequest.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "consent"
        raise Refused(str(first["msg"]), field) from exc
    if payload["consent"]:
        for name in ("contact_method", "contact_time"):
            if payload.get(name) is None:
                raise Refused("is required when consent is true", name)


class KioskService:
    """Implements ``kiosk.backend.Backend``."""

    def __init__(self, settings: KioskSettings, *,
                 notify: Callable[[SyncStatus], None] | None = None,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 sync_interval: float | None = None, batch_size: int | None = None,
                 app_version: str = APP_VERSION) -> None:
        self.settings = settings
        self.timeout = timeout
        self.app_version = app_version
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.outbox = Outbox(settings.outbox_path, settings.key_path)
        self.catalog_cache = CatalogCache(settings.catalog_path)
        self._catalog: tuple[str | None, CatalogResponse] | None = None
        self._pairing = load_pairing(settings)
        # The UI's calls and the worker's each get their own connection pool.
        self._client: ApiClient | None = None
        self._worker_client: ApiClient | None = None
        self._connect()
        extra: dict[str, Any] = {}
        if sync_interval is not None:
            extra["interval"] = sync_interval
        if batch_size is not None:
            extra["batch_size"] = batch_size
        self.worker = SyncWorker(self.outbox, lambda: self._worker_client,
                                 catalog=self.catalog_cache, notify=notify,
                                 disk_path=settings.data_dir, app_version=app_version,
                                 **extra)
        if self.outbox.recovered is not None:
            # Started on a fresh file instead of failing at every start: say so to staff.
            log.error("outbox: %s", self.outbox.recovered)
            self.worker.note(self.outbox.recovered)
        # Rows the outbox could not take (a full or failing disk), in the order given: written
        # ahead of the next row that can be, and counted as not sent until then.
        self._unsaved: list[Entry] = []

    def _connect(self) -> None:
        for old in (self._client, self._worker_client):
            if old is not None:
                old.close()
        p = self._pairing
        if p is None:
            self._client = self._worker_client = None
            return
        self._client = ApiClient(p.server_url, token=p.token, fingerprint=p.fingerprint,
                                 timeout=self.timeout, app_version=self.app_version,
                                 too_old_is_offline=True)
        self._worker_client = ApiClient(p.server_url, token=p.token, fingerprint=p.fingerprint,
                                        timeout=self.timeout, app_version=self.app_version)

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Start the sync worker thread."""
        self.worker.start()

    def close(self) -> None:
        """Stop the worker and close the outbox and connections."""
        self.worker.stop()
        for client in (self._client, self._worker_client):
            if client is not None:
                client.close()
        self.outbox.close()

    def set_notify(self, notify: Callable[[SyncStatus], None] | None) -> None:
        """Set the callable that receives sync status (the app wraps it for its UI thread)."""
        self.worker.notify = notify

    @property
    def pairing(self) -> Pairing | None:
        """The stored pairing, if any."""
        return self._pairing

    # ------------------------------------------------------------------ Backend

    def catalog(self) -> CatalogResponse | None:
        """The cached catalog (instruments, events, settings), or None when never fetched."""
        body = self.catalog_cache.body()
        if body is None:
            return None
        etag = self.catalog_cache.etag
        if self._catalog is None or self._catalog[0] != etag:
            self._catalog = (etag, CatalogResponse.model_validate(body))
        return self._catalog[1]

    def identify(self, employee_id: str, birth_date: str) -> Identity:
        """Match online; when the server cannot be reached, keep the typed id sealed."""
        try:
            typed = OfflineIdentity.model_validate({"id": employee_id.strip(),
                                                    "birth_date": birth_date})
        except ValidationError as exc:
            first = exc.errors()[0]
            field = "id" if first["loc"] and first["loc"][0] == "id" else "birth_date"
            raise Refused(str(first["msg"]), field) from exc
        client = self._client
        if client is not None:
            try:
                found = client.identify(typed.id, typed.birth_date.isoformat())
                self.worker.reached()
                return Identity(member_ref=found.member_ref, first_name=found.first_name,
                                language=found.language)
            except Offline:
                # Unreachable, or this app too old for the server: held until it can be sent.
                log.info("identify: server unreachable, keeping the id for a match on arrival")
        handle = str(uuid.uuid4())
        self._queue([Entry(handle, "identity", typed.model_dump(mode="json"))])
        return Identity(pending=handle)

    def claim_contact(self, identity: Identity, *, phone: str | None = None,
                      email: str | None = None) -> Identity:
        """Seal the contact beside the typed id under a new handle (outbox rows never change)."""
        if identity.pending is None:
            return identity
        row = self._stored(identity.pending)
        if row is None or row.kind != "identity":
            return identity
        contact = {"phone": phone} if phone else {"email": email} if email else {}
        typed = OfflineIdentity.model_validate({**row.payload, **contact})
        handle = str(uuid.uuid4())
        self._queue([Entry(handle, "identity",
                           typed.model_dump(mode="json", exclude_none=True))])
        return dataclasses.replace(identity, pending=handle)

    def _who(self, identity: Identity | None) -> dict[str, Any]:
        """The submission fields that say who answered."""
        if identity is not None and identity.member_ref is not None:
            return {"member_ref": identity.member_ref}
        if identity is not None and identity.pending is not None:
            row = self._stored(identity.pending)
            if row is not None and row.kind == "identity":
                return {"offline_identity": row.payload}
            log.warning("offline identity expired before its items were queued; anonymous")
        return {"anonymous": True}

    def submit(self, identity: Identity | None, items: Sequence[Mapping[str, Any]],
               *, crisis: bool) -> None:
        """Queue a visit's items in one transaction; crisis items go to the head of the queue."""
        who = self._who(identity)
        session_id = str(uuid.uuid4())
        entries = []
        for item in items:
            payload: dict[str, Any] = {
                "idempotency_key": str(item.get("idempotency_key") or uuid.uuid4()),
                "session_id": str(item.get("session_id") or session_id),
                "instrument_id": item["instrument_id"],
                "instrument_version": item["instrument_version"],
                "answers": dict(item.get("answers") or {}),
                "skipped": list(item.get("skipped") or []),
                "taken_at": str(item.get("taken_at") or _now()),
                **who,
            }
            if item.get("kiosk_result") is not None:
                payload["kiosk_result"] = item["kiosk_result"]
            if item.get("devices"):  # the cuff or scale behind some answers (issue 19)
                payload["devices"] = [dict(device) for device in item["devices"]]
            urgent = crisis or bool(triggers_in_raw(payload))
            entries.append(Entry(payload["idempotency_key"], "submission", payload, urgent))
        self._queue(entries)
        self.worker.wake()

    def crisis_alert(self, trigger: Literal["phq9_item9", "hypertensive_crisis"]) -> None:
        """Queue an anonymous crisis alert at the head of the queue, and wake the worker."""
        key = str(uuid.uuid4())
        self._queue([Entry(key, "crisis_alert",
                           {"idempotency_key": key, "trigger": trigger, "raised_at": _now()},
                           crisis=True)])
        self.worker.wake()

    def consent(self, identity: Identity, *, consent: bool, contact_method: str | None = None,
                contact_time: str | None = None, phone: str | None = None,
                email: str | None = None) -> None:
        """Queue the member's consent (or its withdrawal) after their items."""
        who = self._who(identity)
        if "anonymous" in who:
            raise Refused("an anonymous visit has no referral to consent to", "member_ref")
        key = str(uuid.uuid4())
        payload: dict[str, Any] = {"idempotency_key": key, "consent": consent, **who}
        for name, value in (("contact_method", contact_method), ("contact_time", contact_time),
                            ("phone", phone), ("email", email)):
            if value is not None:
                payload[name] = value
        _check_consent(payload)
        self._queue([Entry(key, "consent", payload)])
        self.worker.wake()

    def _online(self, identity: Identity) -> tuple[ApiClient, str]:
        if self._client is None:
            raise Offline("this kiosk is not paired")
        if identity.member_ref is None:
            raise Offline(NEEDS_CONNECTION)
        return self._client, identity.member_ref

    def _reached(self, answer: T) -> T:
        """The server answered a screen's request: a worker backing off drains now."""
        self.worker.reached()
        return answer

    def advocate_link(self, identity: Identity) -> AdvocateLinkResponse:
        """The member's advocate and QR contents; raises Offline."""
        client, ref = self._online(identity)
        return self._reached(client.advocate_link(ref))

    def bookings(self, identity: Identity) -> list[BookingOut]:
        """The member's current bookings; raises Offline."""
        client, ref = self._online(identity)
        return self._reached(client.bookings(ref))

    def book(self, identity: Identity, slot_id: str) -> BookingOut:
        """Book a seat or join the waitlist; raises Offline or Refused."""
        client, ref = self._online(identity)
        return self._reached(client.book(str(uuid.uuid4()), ref, slot_id))

    def cancel(self, identity: Identity, booking_id: str) -> BookingOut:
        """Cancel one of the member's bookings; raises Offline or Refused."""
        client, ref = self._online(identity)
        return self._reached(client.cancel(str(uuid.uuid4()), ref, booking_id))

    def reschedule(self, identity: Identity, booking_id: str, slot_id: str) -> BookingOut:
        """Move a booking to another slot; raises Offline or Refused."""
        client, ref = self._online(identity)
        return self._reached(client.reschedule(str(uuid.uuid4()), ref, booking_id, slot_id))

    def _queue(self, entries: Sequence[Entry]) -> None:
        """Write rows to the outbox, after any it could not take before.

        A full or failing disk must not end the visit with an error: the crisis screen may be
        next, and a kiosk that stops there shows neither 988 nor 911. The rows are kept in
        memory instead (lost only if the kiosk stops before its disk takes them), the admin
        screen says why, and they count as waiting, so the member is never told that staff
        were alerted (``staff_told``).
        """
        rows = [*self._unsaved, *entries]
        if not rows:
            return
        try:
            self.outbox.put_many(rows)
        except (sqlite3.Error, OSError) as exc:
            if not self._unsaved:  # said once, not at every status read that tries again
                self.worker.note(f"answers could not be saved on this kiosk ({exc}): they are "
                                 "held in memory until its disk takes them; free its disk")
                log.error("outbox: %d rows not written (%s); held in memory", len(rows), exc)
            self._unsaved = rows
        else:
            self._unsaved = []

    def _stored(self, key: str) -> Entry | Row | None:
        """The row with this key (kind, payload), written or still held in memory, or None."""
        for entry in self._unsaved:
            if entry.key == key:
                return entry
        return self.outbox.get(key)

    def status(self) -> SyncStatus:
        """The connection and outbox state for the admin screen (rows held in memory count as
        waiting; they are written again first)."""
        self._queue([])
        status = self.worker.status()
        held = sum(1 for entry in self._unsaved if entry.kind != "identity")
        return dataclasses.replace(status, outbox_depth=status.outbox_depth + held) if held \
            else status

    def sync_now(self) -> None:
        """Ask the sync worker to try at once."""
        self.worker.wake()

    def pair(self, server_url: str, pairing_code: str) -> None:
        """Pair with a server, pin its certificate and store the token; raises Offline/Refused."""
        pairing = ApiClient.pair(server_url, pairing_code.strip(), app_version=self.app_version,
                                 timeout=self.timeout)
        save_pairing(self.settings, pairing)
        self._pairing = pairing
        self._connect()
        self.worker.wake()


def build_backend(settings: KioskSettings, *,
                  notify: Callable[[SyncStatus], None] | None = None,
                  start: bool = True) -> KioskService:
    """Build the kiosk's backend from its settings and start its sync worker."""
    service = KioskService(settings, notify=notify)
    if start:
        service.start()
    return service
