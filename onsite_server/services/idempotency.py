"""Run a keyed write once: a replay of the key returns the first answer and changes nothing."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, select, update
from sqlalchemy.orm import Session

from ..models import IdempotentRequest, utcnow
from .errors import ServiceError
from .statements import Prepared, insert_ignoring_conflicts

_TABLE = cast(Table, IdempotentRequest.__table__)
# The stored answer's four values (strings and an integer, so the driver's row is read as
# it comes): a replay check runs on every keyed kiosk write, and loading the row as a mapped
# object through the session cost several times the database's work.
_LOOKUP = Prepared(select(IdempotentRequest.operation, IdempotentRequest.request_hash,
                          IdempotentRequest.status_code, IdempotentRequest.response)
                   .where(IdempotentRequest.key == bindparam("key")), flush=True)
# The claim is one statement: it inserts the key, or (taken) does nothing and returns no row.
# On PostgreSQL a claim racing an uncommitted one waits for it, as a plain INSERT would.
_CLAIM = Prepared(insert_ignoring_conflicts(_TABLE, (
    "key", "kiosk_id", "operation", "request_hash", "status_code", "response", "created_at"),
    "key"))
_ANSWER = Prepared(update(_TABLE).where(_TABLE.c.id == bindparam("claim_id"))
                   .values(status_code=bindparam("status"), response=bindparam("body")))


def request_hash(payload: Any) -> str:
    """Return a stable hash of a JSON-able payload (key order does not matter)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _replay(row: Row[Any], operation: str, digest: str) -> tuple[int, Any]:
    if row.operation != operation or row.request_hash != digest:
        raise ServiceError(
            "conflict", "Idempotency key reused",
            [{"field": "idempotency_key", "message": "was used with a different body"}],
            "This idempotency key was already used with a different request.")
    return row.status_code, json.loads(row.response)


def _digest(kiosk_id: int | None, payload: Any) -> str:
    # The kiosk is part of the request: another kiosk replaying the same body and key is a
    # different request (409), never a way to read the first kiosk's answer.
    return request_hash({"kiosk": kiosk_id, "payload": payload})


def stored_answer(session: Session, *, key: str, operation: str, payload: Any,
                  kiosk_id: int | None) -> tuple[int, Any] | None:
    """Return the stored answer to this key (409 for another body), or None when there is none.

    A read, for a request's read phase: on SQLite a replay is answered before the write lock
    is taken. ``run_once`` still claims the key, so a request that races this check is
    answered correctly there.
    """
    existing = _LOOKUP.run(session, {"key": key}).first()
    if existing is None:
        return None
    return _replay(existing, operation, _digest(kiosk_id, payload))


def run_once(
    session: Session,
    *,
    key: str,
    operation: str,
    payload: Any,
    kiosk_id: int | None,
    work: Callable[[], tuple[int, Any]],
) -> tuple[int, Any]:
    """Return work()'s (status, body), or the stored answer if key was seen before.

    The key is claimed before the work runs, so a concurrent replay waits on the claim (a
    unique index) and then reads the first answer instead of doing the work twice.
    """
    digest = _digest(kiosk_id, payload)
    claim_id = _CLAIM.run(session, {
        "key": key, "kiosk_id": kiosk_id, "operation": operation, "request_hash": digest,
        "status_code": 0, "response": "null", "created_at": utcnow()}).scalar()
    if claim_id is None:  # taken: by an earlier request, or a concurrent one now committed
        row = _LOOKUP.run(session, {"key": key}).one()
        return _replay(row, operation, digest)
    status, body = work()
    _ANSWER.run(session, {"claim_id": claim_id, "status": status,
                          "body": json.dumps(body, default=str)})
    return status, body


def parse_uuid(value: object) -> str | None:
    """Read an idempotency key (a UUID, any case) from untrusted input, or None."""
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        return None
