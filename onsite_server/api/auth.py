"""Who is calling: the kiosk behind a device token, and the member behind a reference."""

from __future__ import annotations

from typing import Any

from flask import g, request
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Mapper, Session, make_transient_to_detached

from ..app_settings import current as current_settings
from ..db import get_read_session, get_session
from ..errors import ApiProblem
from ..models import Kiosk, Member, Site
from ..services.members import MemberKeys, resolve_member_keys, resolve_member_ref
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


# The token check is on every kiosk request, so it is one Core statement, compiled once: the
# kiosk's columns and its site's (submissions, identify and the catalog all read the site),
# joined, by the unique token_hash index. A Core row skips the ORM's query path (compile state,
# loading context, row processors built per execution), which cost this check half its time;
# the two entities are then made from the row below. Nothing is cached across requests: every
# request reads the row, so a kiosk revoked a moment ago is refused at its very next request.
_KIOSKS = Kiosk.__table__
_SITES = Site.__table__
_KIOSK_ROW_BY_TOKEN = (
    select(*_KIOSKS.c, *_SITES.c)
    .join_from(_KIOSKS, _SITES, _KIOSKS.c.site_id == _SITES.c.id)
    .where(_KIOSKS.c.token_hash == bindparam("token_hash"))
)
_KIOSK_KEYS = tuple(Kiosk.__mapper__.get_property_by_column(c).key for c in _KIOSKS.c)
_SITE_KEYS = tuple(Site.__mapper__.get_property_by_column(c).key for c in _SITES.c)
_REVOKED_AT = _KIOSK_KEYS.index("revoked_at")


def _entity(mapper: Mapper[Any], keys: tuple[str, ...], values: Any) -> Any:
    """An instance of mapper's class holding values as loaded (no history), detached."""
    # What the ORM's loading does for a row, without its per-execution set-up: a new
    # instrumented instance, its columns as loaded state, its identity key from them.
    obj = mapper.class_manager.new_instance()
    obj.__dict__.update(zip(keys, values, strict=True))
    make_transient_to_detached(obj)
    return obj


def authenticate() -> Kiosk:
    """Return the kiosk whose device token the request carries, or raise 401.

    The kiosk (with its site) is attached to the request's session as if the session had
    loaded it: views read it, and ``current_kiosk`` callers change it and have the change
    flushed with the request's writes.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiProblem(401, "Unauthorized", "A device token is required (Authorization: Bearer).",
                         headers={"WWW-Authenticate": 'Bearer realm="kiosk"'})
    # A read: on SQLite it runs before the write lock is taken (see db.get_read_session).
    session = get_read_session()
    row = session.connection().execute(
        _KIOSK_ROW_BY_TOKEN, {"token_hash": hash_token(token.strip())}).first()
    split = len(_KIOSK_KEYS)
    if row is None or row[_REVOKED_AT] is not None:
        raise ApiProblem(
            401, "Unauthorized", "The device token is unknown or revoked.",
            headers={"WWW-Authenticate": 'Bearer realm="kiosk", error="invalid_token"'},
        )
    kiosk: Kiosk = _entity(Kiosk.__mapper__, _KIOSK_KEYS, row[:split])
    site: Site = _entity(Site.__mapper__, _SITE_KEYS, row[split:])
    # kiosk.site keeps the site in the session's identity map (which holds objects weakly),
    # so session.get(Site, kiosk.site_id) finds it there without a query.
    kiosk.__dict__["site"] = site
    session.add(kiosk)  # cascades to the site
    return kiosk


def member_for_ref(session: Session, kiosk: Kiosk, ref: str) -> Member:
    """Resolve a kiosk's member reference; a bad one raises MemberRefError (422, member_ref)."""
    return resolve_member_ref(
        session, current_settings().secret_key, ref, kiosk,
        current_settings().member_ref_ttl_seconds,
        fallbacks=current_settings().secret_key_fallbacks,
    )


def member_keys_for_ref(session: Session, kiosk: Kiosk, ref: str) -> MemberKeys:
    """Resolve a kiosk's member reference as the member's keys (the same checks, no object)."""
    return resolve_member_keys(
        session, current_settings().secret_key, ref, kiosk,
        current_settings().member_ref_ttl_seconds,
        fallbacks=current_settings().secret_key_fallbacks,
    )
