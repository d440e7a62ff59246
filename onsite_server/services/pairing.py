"""Kiosk pairing: one-time codes traded for device tokens, and revocation."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..models import AuditLog, Kiosk, PairingCode, Site, utcnow
from . import ratelimit
from .errors import ServiceError, TooManyAttempts

# Crockford-style alphabet: no 0/O or 1/I/L, so codes read aloud or typed on a kiosk survive.
ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
CODE_LENGTH = 8


FAILED_ACTION = "pairing.failed"
_MESSAGE = "pairing code is unknown, already used or expired"


class PairingError(ServiceError):
    """The pairing code is unknown, used or expired (one message for all three)."""

    def __init__(self, reason: str) -> None:
        # The reason is for the audit log only: the kiosk sees one message whatever it is.
        super().__init__("refused", "Pairing failed",
                         [{"field": "pairing_code", "message": _MESSAGE}], _MESSAGE,
                         reason=reason)


class PairingRateLimited(TooManyAttempts):
    """Too many failed pairings from this address, or from everyone, in the window."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after, "Too many failed pairing attempts; try again in "
                                      f"{retry_after} s.", reason="pairing_rate_limited")


@dataclass(frozen=True)
class PairingLimits:
    """How many failed pairings are allowed per client address and in all, per window."""

    per_address: int = 10
    total: int = 100
    window_seconds: int = 900


def kiosk_actor(kiosk: Kiosk) -> str:
    """Return the audit actor string of a kiosk."""
    return f"kiosk:{kiosk.public_id}"


@dataclass(frozen=True)
class Paired:
    """A freshly paired kiosk and its token (the only time the token is visible)."""

    kiosk: Kiosk
    token: str


def normalize_code(code: str) -> str:
    """Upper-case and strip separators so 'abcd-2345' and 'ABCD 2345' match."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


def hash_secret(value: str) -> str:
    """Return the stored form of a pairing code or device token (SHA-256, hex)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def issue_pairing_code(
    session: Session, site: Site, *, label: str = "kiosk", place: str | None = None,
    ttl_seconds: int = 900, actor: str = "cli",
) -> str:
    """Create a pairing code for site and return it formatted as XXXX-XXXX."""
    code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    session.add(PairingCode(
        site_id=site.id, code_hash=hash_secret(code), label=label, place=place,
        expires_at=utcnow() + timedelta(seconds=ttl_seconds),
    ))
    session.add(AuditLog(actor=actor, action="pairing_code.issued", subject=f"site:{site.slug}"))
    return f"{code[:4]}-{code[4:]}"


def pair(session: Session, code: str, app_version: str | None = None) -> Paired:
    """Consume a pairing code and create a kiosk with a new device token."""
    now = utcnow()
    row = session.scalars(
        select(PairingCode).where(PairingCode.code_hash == hash_secret(normalize_code(code)))
    ).first()
    if row is None:
        raise PairingError("unknown")
    if row.used_at is not None:
        raise PairingError("used")
    if row.expires_at <= now:
        raise PairingError("expired")
    # Claim the code with a conditional update so two kiosks racing on one code cannot both win.
    claimed = session.execute(  # type: ignore[attr-defined]
        update(PairingCode)
        .where(PairingCode.id == row.id, PairingCode.used_at.is_(None))
        .values(used_at=now)
    ).rowcount
    if claimed != 1:
        raise PairingError("used")
    token = secrets.token_urlsafe(32)
    kiosk = Kiosk(
        site_id=row.site_id, label=row.label, place=row.place,
        token_hash=hash_secret(token), paired_at=now, app_version=app_version,
    )
    session.add(kiosk)
    session.flush()
    row.kiosk_id = kiosk.id
    session.add(AuditLog(actor=kiosk_actor(kiosk), action="kiosk.paired",
                         subject=f"site:{row.site_id}"))
    return Paired(kiosk=kiosk, token=token)


def address_actor(address: str | None) -> str:
    """Return the audit actor string of an unauthenticated client address."""
    return f"address:{address or 'unknown'}"


def pair_limited(session: Session, code: str, app_version: str | None, *, address: str | None,
                 limits: PairingLimits) -> Paired:
    """Pair as ``pair`` does, refusing addresses (or everyone) over the failed-pairing limits.

    Raises PairingRateLimited before the code is looked at, so a guesser learns nothing while
    limited. A failed pairing is added to `session` as an audit row (the address and why it
    failed, never the code sent); the caller commits it although the request is refused.
    """
    actor = address_actor(address)
    # One lock for all pairings: the overall limit is one key, and pairings are rare.
    ratelimit.serialize(session, FAILED_ACTION)
    decisions = [
        ratelimit.check(session, actor=actor, action=FAILED_ACTION, limit=limits.per_address,
                        window_seconds=limits.window_seconds),
        ratelimit.check(session, actor=None, action=FAILED_ACTION, limit=limits.total,
                        window_seconds=limits.window_seconds),
    ]
    refused = [d.retry_after for d in decisions if not d.allowed]
    if refused:
        raise PairingRateLimited(max(refused))
    try:
        return pair(session, code, app_version)
    except PairingError as exc:
        ratelimit.record(session, actor=actor, action=FAILED_ACTION,
                         detail={"reason": exc.reason})
        raise


def revoke_kiosk(session: Session, kiosk: Kiosk, actor: str = "cli") -> None:
    """Revoke a kiosk's token; its next call gets a 401."""
    kiosk.revoked_at = utcnow()
    session.add(AuditLog(actor=actor, action="kiosk.revoked", subject=f"kiosk:{kiosk.public_id}"))
