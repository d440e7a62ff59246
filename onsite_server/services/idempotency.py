"""Run a keyed write once: a replay of the key returns the first answer and changes nothing."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..models import IdempotentRequest
from .errors import ServiceError


def request_hash(payload: Any) -> str:
    """Return a stable hash of a JSON-able payload (key order does not matter)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _replay(row: IdempotentRequest, operation: str, digest: str) -> tuple[int, Any]:
    if row.operation != operation or row.request_hash != digest:
        raise ServiceError(
            "conflict", "Idempotency key reused",
            [{"field": "idempotency_key", "message": "was used with a different body"}],
            "This idempotency key was already used with a different request.")
    return row.status_code, json.loads(row.response)


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
    # The kiosk is part of the request: another kiosk replaying the same body and key is a
    # different request (409), never a way to read the first kiosk's answer.
    digest = request_hash({"kiosk": kiosk_id, "payload": payload})
    lookup = select(IdempotentRequest).where(IdempotentRequest.key == key)
    existing = session.scalars(lookup).first()
    if existing is not None:
        return _replay(existing, operation, digest)
    claim = IdempotentRequest(key=key, kiosk_id=kiosk_id, operation=operation,
                              request_hash=digest, status_code=0, response="null")
    try:
        with session.begin_nested():
            session.add(claim)
            session.flush()
    except IntegrityError:
        row = session.scalars(lookup).one()
        return _replay(row, operation, digest)
    status, body = work()
    claim.status_code = status
    claim.response = json.dumps(body, default=str)
    return status, body


def parse_uuid(value: object) -> str | None:
    """Read an idempotency key (a UUID, any case) from untrusted input, or None."""
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        return None
