"""Opaque member references: what a kiosk holds instead of any roster data."""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Kiosk, Member, Site

SALT = "onsite.member-ref.v1"


class MemberRefError(ValueError):
    """The member reference is malformed, expired, or belongs to another kiosk."""


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=SALT)


def make_member_ref(secret: str, member: Member, kiosk: Kiosk) -> str:
    """Return a signed, kiosk-bound reference to member that reveals nothing about them."""
    return _serializer(secret).dumps({"m": member.public_id, "k": kiosk.public_id})


def resolve_member_ref(
    session: Session, secret: str, ref: str, kiosk: Kiosk, max_age: int
) -> Member:
    """Return the member a reference names, checking signature, age, kiosk and employer."""
    try:
        data: Any = _serializer(secret).loads(ref, max_age=max_age)
    except SignatureExpired as exc:
        raise MemberRefError("has expired; identify the member again") from exc
    except BadSignature as exc:
        raise MemberRefError("is not a valid member reference") from exc
    if not isinstance(data, dict) or data.get("k") != kiosk.public_id:
        raise MemberRefError("was issued to another kiosk")
    site = session.get(Site, kiosk.site_id)
    member = session.scalars(select(Member).where(Member.public_id == data.get("m"))).first()
    if member is None or site is None or member.employer_id != site.employer_id:
        raise MemberRefError("does not name a member of this site")
    return member
