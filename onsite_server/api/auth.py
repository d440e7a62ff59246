"""Who is calling: the kiosk behind a device token, and the member behind a reference."""

from __future__ import annotations

from flask import g, request
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload

from ..app_settings import current as current_settings
from ..db import get_read_session, get_session
from ..errors import ApiProblem
from ..models import Kiosk, Member
from ..services.members import resolve_member_ref
from ..services.pairing import hash_secret


def hash_token(token: str) -> str:
    """Return the stored form of a device token (the same hash pairing stored)."""
    return hash_secret(token)


def current_kiosk() -> Kiosk:
    """Return the kiosk authenticated for this request, in the request's session."""
    # Moves the request into its write phase (db.get_session), so changes to the row are
    # written under the write lock.
    get_session()
    kiosk: Kiosk = g.kiosk
    return kiosk


def authenticated_kiosk() -> Kiosk:
    """Return the kiosk as loaded by the token check, for reading its columns only.

    Unlike ``current_kiosk`` it does not start the request's write phase, so a view can finish
    its read-only checks before SQLite's write lock is taken. Never change the row through it.
    """
    kiosk: Kiosk = g.kiosk
    return kiosk


# Built once: constructing a select() per request costs more than running it on SQLite. The
# kiosk's site comes in the same statement: submissions, identify and the catalog all read it,
# and session.get then finds it in the identity map (kiosk.site keeps it there: the map holds
# objects only weakly), which saves them a query each.
_KIOSK_BY_TOKEN = select(Kiosk).options(joinedload(Kiosk.site, innerjoin=True)).where(
    Kiosk.token_hash == bindparam("token_hash"))


def authenticate() -> Kiosk:
    """Return the kiosk whose device token the request carries, or raise 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiProblem(401, "Unauthorized", "A device token is required (Authorization: Bearer).",
                         headers={"WWW-Authenticate": 'Bearer realm="kiosk"'})
    # A read: on SQLite it runs before the write lock is taken (see db.get_read_session).
    kiosk = get_read_session().scalars(
        _KIOSK_BY_TOKEN, {"token_hash": hash_token(token.strip())}
    ).first()
    if kiosk is None or kiosk.revoked_at is not None:
        raise ApiProblem(
            401, "Unauthorized", "The device token is unknown or revoked.",
            headers={"WWW-Authenticate": 'Bearer realm="kiosk", error="invalid_token"'},
        )
    return kiosk


def member_for_ref(session: Session, kiosk: Kiosk, ref: str) -> Member:
    """Resolve a kiosk's member reference; a bad one raises MemberRefError (422, member_ref)."""
    return resolve_member_ref(
        session, current_settings().secret_key, ref, kiosk,
        current_settings().member_ref_ttl_seconds,
    )
