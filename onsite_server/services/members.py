"""Opaque member references: what a kiosk holds instead of any roster data."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ..models import Kiosk, Member, Site
from .errors import ServiceError
from .statements import Prepared

_LOCK_MEMBER = select(Member.id).where(Member.id == bindparam("member_id")).with_for_update()

SALT = "onsite.member-ref.v1"


class MemberRefError(ServiceError):
    """The member reference is malformed, expired, or belongs to another kiosk."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid", "Invalid request",
                         [{"field": "member_ref", "message": message}], reason="member_ref")
        self.message = message  # what is wrong with it, without the field's name


# One query, built once: the member, if their employer runs the kiosk's site.
_MEMBER_AT_SITE = (
    select(Member)
    .join(Site, Site.employer_id == Member.employer_id)
    .where(Member.public_id == bindparam("public_id"), Site.id == bindparam("site_id"))
)

# The same member, as the three values a booking uses (issue 20 P2): loading a mapped Member
# through the session was the largest part of a contended booking's read phase.
_MEMBER_KEYS_AT_SITE = Prepared(
    select(Member.id, Member.public_id, Member.language)
    .join(Site, Site.employer_id == Member.employer_id)
    .where(Member.public_id == bindparam("public_id"), Site.id == bindparam("site_id")),
    flush=True)


class MemberKeys(NamedTuple):
    """What a booking needs of a member: the row id, the public id and the language."""

    id: int
    public_id: str
    language: str


@lru_cache(maxsize=8)
def _serializer(secret: str, fallbacks: tuple[str, ...] = ()) -> URLSafeTimedSerializer:
    # Stateless once built (the key is derived per call), so one per secret is safe to share.
    # itsdangerous signs with the last key and verifies with any: the fallbacks go first.
    return URLSafeTimedSerializer([*fallbacks, secret], salt=SALT)


def make_member_ref(secret: str, member: Member, kiosk: Kiosk) -> str:
    """Return a signed, kiosk-bound reference to member that reveals nothing about them."""
    return _serializer(secret).dumps({"m": member.public_id, "k": kiosk.public_id})


def resolve_member_ref(
    session: Session, secret: str, ref: str, kiosk: Kiosk, max_age: int, *,
    fallbacks: Sequence[str] = (),
) -> Member:
    """Return the member a reference names, checking signature, age, kiosk and employer.

    ``fallbacks``: earlier secrets (``SECRET_KEY_FALLBACKS``) whose signatures still verify.
    """
    return _member_named(session, _verified(secret, ref, kiosk, max_age, fallbacks), kiosk)


def resolve_member_keys(
    session: Session, secret: str, ref: str, kiosk: Kiosk, max_age: int, *,
    fallbacks: Sequence[str] = (),
) -> MemberKeys:
    """Like ``resolve_member_ref`` (the same checks), but read as ``MemberKeys``, no object."""
    public_id = _verified(secret, ref, kiosk, max_age, fallbacks).get("m")
    row = _MEMBER_KEYS_AT_SITE.run(session, {"public_id": public_id, "site_id": kiosk.site_id}) \
        .first() if isinstance(public_id, str) else None
    if row is None:
        raise MemberRefError("does not name a member of this site")
    return MemberKeys(int(row[0]), str(row[1]), str(row[2]))


def _verified(secret: str, ref: str, kiosk: Kiosk, max_age: int,
              fallbacks: Sequence[str] = ()) -> dict[str, Any]:
    """Return a reference's payload once its signature, age and kiosk are checked."""
    try:
        data: Any = _serializer(secret, tuple(fallbacks)).loads(ref, max_age=max_age)
    except SignatureExpired as exc:
        raise MemberRefError("has expired; identify the member again") from exc
    except BadSignature as exc:
        raise MemberRefError("is not a valid member reference") from exc
    if not isinstance(data, dict) or data.get("k") != kiosk.public_id:
        raise MemberRefError("was issued to another kiosk")
    return data


def _member_named(session: Session, data: dict[str, Any], kiosk: Kiosk) -> Member:
    """Return the member a verified reference's payload names, if they belong to this site."""
    public_id = data.get("m")
    if not isinstance(public_id, str):
        raise MemberRefError("does not name a member of this site")
    member = session.scalars(_MEMBER_AT_SITE,
                             {"public_id": public_id, "site_id": kiosk.site_id}).first()
    if member is None:
        raise MemberRefError("does not name a member of this site")
    return member


# A kiosk of the same site, by public id (revoked ones included: a re-paired kiosk's old id).
_SITE_KIOSK = select(Kiosk.id).where(Kiosk.public_id == bindparam("public_id"),
                                     Kiosk.site_id == bindparam("site_id"))

LATE_EXPIRED = "expired"
LATE_OTHER_KIOSK = "other_kiosk"


def resolve_filed_ref(
    session: Session, secret: str, ref: str, kiosk: Kiosk, max_age: int, *,
    fallbacks: Sequence[str] = (),
) -> tuple[Member, str | None]:
    """Resolve a reference for filing answers already taken: (member, why it is late or None).

    Answers a kiosk queued offline must not be lost because the reference aged: a reference
    whose signature verifies and that was issued to a kiosk of this site still files its
    items after it expired, or after its kiosk was re-paired. A forged or foreign one never
    does. Lookups that act now (bookings, consent) keep the strict ``resolve_member_ref``.
    """
    late: str | None = None
    signer = _serializer(secret, tuple(fallbacks))
    try:
        data: Any = signer.loads(ref, max_age=max_age)
    except SignatureExpired:
        try:
            data = signer.loads(ref)
        except BadSignature as exc:
            raise MemberRefError("is not a valid member reference") from exc
        late = LATE_EXPIRED
    except BadSignature as exc:
        raise MemberRefError("is not a valid member reference") from exc
    if not isinstance(data, dict) or not isinstance(data.get("k"), str):
        raise MemberRefError("is not a valid member reference")
    if data["k"] != kiosk.public_id:
        if session.scalars(_SITE_KIOSK, {"public_id": data["k"],
                                         "site_id": kiosk.site_id}).first() is None:
            raise MemberRefError("was issued to another kiosk")
        late = late or LATE_OTHER_KIOSK
    return _member_named(session, data, kiosk), late


def lock_member(session: Session, member_id: int) -> None:
    """Serialise one member's concurrent writes (a row lock on PostgreSQL).

    SQLite write transactions already hold the whole database's write lock (BEGIN IMMEDIATE),
    so there is nothing to add there and the query is skipped.
    """
    if session.get_bind().dialect.name == "sqlite":
        return
    session.execute(_LOCK_MEMBER, {"member_id": member_id})
