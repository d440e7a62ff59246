"""Dashboard users: accounts, Argon2 passwords, the TOTP second factor, recovery codes and
one-time links (invitations and resets), shared by the CLI and the dashboard.

There is no email from the site server: an invitation or a reset is a one-time link that the
admin is shown once and hands over; only a hash of it is kept.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ..models import Advocate, Site, User, UserSession, UserToken, utcnow
from .errors import N_, ServiceError, required_text

ROLES = ("admin", "coordinator", "advocate", "employer", "operator")
# What an admin may invite from the dashboard. ``operator`` sees the whole server (every
# site's audit log, outbox and alerts), so only the command line grants it.
INVITABLE_ROLES = ("admin", "coordinator", "advocate", "employer")
# Roles that work at a site (an employer's account: at one of the employer's sites).
SITE_ROLES = frozenset({"admin", "coordinator", "employer"})
# Roles that see individual health data or change everything: a password alone is not enough.
SECOND_FACTOR_ROLES = frozenset({"admin", "advocate", "operator"})
MIN_PASSWORD = 10
LINK_PURPOSES = ("invite", "reset")
RECOVERY_CODES = 10
TOTP_STEP = 30
# A password hash no password matches: an invited user has none until they follow the link.
NO_PASSWORD = "!"

# Argon2id cost by the PASSWORD_HASH_COST setting. "standard" is argon2-cffi's default, the
# RFC 9106 low-memory profile (about 0.7 s a hash on a 2-core machine). "test" is the cheapest
# the library allows, for test suites only (pretix's test settings swap in a fast hasher the
# same way): a hash made at either cost verifies under the other, because its parameters are
# stored in it.
HASH_COSTS: dict[str, PasswordHasher] = {
    "standard": PasswordHasher(),
    "test": PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
}
_hasher = HASH_COSTS["standard"]


def configure_hashing(cost: str) -> None:
    """Hash new passwords at this PASSWORD_HASH_COST ("standard" or "test"); create_app calls it."""
    global _hasher
    _hasher = HASH_COSTS[cost]


@functools.cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash compared against when the email is unknown, made on first use at hasher's cost.

    A wrong address then takes as long as a wrong password, and the answer's timing does not
    tell which accounts exist. It is made lazily: hashing at import cost every process that
    imports the module (the CLI, each test run) a full hash.
    """
    return hasher.hash(secrets.token_urlsafe(16))


def _invalid(field: str, message: str) -> ServiceError:
    return ServiceError("invalid", "Invalid request", [{"field": field, "message": message}])


def hash_password(password: str) -> str:
    """Hash a dashboard password with Argon2id."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Tell whether password matches the stored Argon2 hash (never raises for a bad hash)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def check_password_policy(password: str, field: str = "password") -> None:
    """Refuse a password that is too short (naming the field)."""
    if len(password) < MIN_PASSWORD:
        raise _invalid(field, N_("must be at least %(n)d characters", n=MIN_PASSWORD))


def find_by_email(session: Session, email: str) -> User | None:
    """Return the user with this email (case-insensitive), if any."""
    return session.scalars(select(User).where(User.email == email.strip().lower())).first()


def create_user(session: Session, *, email: str, name: str, role: str,
                password: str | None = None, site_id: int | None = None,
                advocate_public_id: str | None = None,
                roles: tuple[str, ...] = INVITABLE_ROLES) -> User:
    """Create a user; without a password the account waits for its invitation link.

    ``roles`` are those the caller may grant: the dashboard's invitations cannot make an
    operator; the command line passes ``ROLES``.
    """
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise _invalid("email", N_("is not an email address"))
    required_text(name, "name")
    if role not in roles:
        raise _invalid("role", N_("must be one of %(choices)s", choices=", ".join(roles)))
    if find_by_email(session, email) is not None:
        raise ServiceError("conflict", "Conflict",
                           [{"field": "email", "message": N_("a user with email %(email)s exists",
                                                               email=email)}])
    if password is not None:
        check_password_policy(password)
    if site_id is not None and session.get(Site, site_id) is None:
        raise _invalid("site", N_("no such site"))
    if role == "operator" and site_id is not None:
        raise _invalid("site", N_("an operator works for the whole server, not one site"))
    if role == "employer" and site_id is None:
        raise _invalid("site", N_("is required for employer users"))
    advocate_id = None
    if advocate_public_id:
        advocate = session.scalars(select(Advocate).where(
            Advocate.public_id == advocate_public_id)).first()
        if advocate is None:
            raise _invalid("advocate", N_("no advocate %(id)s", id=advocate_public_id))
        advocate_id = advocate.id
    elif role == "advocate":
        raise _invalid("advocate", N_("is required for advocate users"))
    user = User(email=email, name=name.strip(), role=role, site_id=site_id,
                advocate_id=advocate_id, active=True, recovery_codes=[], session_epoch=0,
                password_hash=hash_password(password) if password is not None else NO_PASSWORD)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    """Return the active user whose password this is, else None (same work either way)."""
    user = find_by_email(session, email)
    if user is None or not user.active or user.password_hash == NO_PASSWORD:
        verify_password(_dummy_hash(_hasher), password)
        return None
    if not verify_password(user.password_hash, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def set_password(user: User, password: str) -> None:
    """Set a new password and end every session the user had."""
    check_password_policy(password)
    user.password_hash = hash_password(password)
    user.session_epoch += 1


def set_active(user: User, active: bool) -> None:
    """Disable or re-enable an account; disabling ends its sessions at once."""
    user.active = active
    user.session_epoch += 1


def needs_second_factor(user: User) -> bool:
    """Tell whether the account must pass TOTP after its password."""
    return user.role in SECOND_FACTOR_ROLES or user.totp_secret is not None


# --- TOTP (RFC 6238) ----------------------------------------------------------------------

def new_totp_secret() -> str:
    """Return a fresh base32 TOTP secret."""
    return pyotp.random_base32()


def totp_uri(secret: str, email: str, issuer: str) -> str:
    """Return the otpauth:// URI an authenticator app reads (from a QR code or typed)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def _step(now: float) -> int:
    return int(now // TOTP_STEP)


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """Return the time step whose code this is (this step or one either side), else None."""
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = _step(time.time() if now is None else now)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.at(step * TOTP_STEP), code):
            return step
    return None


def verify_totp(user: User, code: str, now: float | None = None) -> bool:
    """Check a code against the user's secret; each time step is accepted only once."""
    if user.totp_secret is None:
        return False
    step = matching_step(user.totp_secret, code, now)
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        return False
    user.totp_last_step = step
    return True


def enroll_totp(user: User, secret: str, code: str, now: float | None = None) -> list[str]:
    """Turn on TOTP with a secret the user proved they hold; return new recovery codes."""
    step = matching_step(secret, code, now)
    if step is None:
        raise _invalid("code", N_("does not match: check the authenticator app's clock "
                                        "and retry"))
    user.totp_secret = secret
    user.totp_last_step = step
    return new_recovery_codes(user)


# --- recovery codes -----------------------------------------------------------------------

def _code_hash(code: str) -> str:
    return hashlib.sha256(normalize_recovery_code(code).encode()).hexdigest()


def normalize_recovery_code(code: str) -> str:
    """Lower-case a recovery code and drop spaces and dashes (as people type them)."""
    return "".join(ch for ch in code.lower() if ch.isalnum())


def new_recovery_codes(user: User) -> list[str]:
    """Replace the user's recovery codes; return the new ones (shown once, never stored)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    codes = ["".join(secrets.choice(alphabet) for _ in range(10)) for _ in range(RECOVERY_CODES)]
    shown = [f"{c[:5]}-{c[5:]}" for c in codes]
    user.recovery_codes = [_code_hash(c) for c in codes]
    return shown


def use_recovery_code(user: User, code: str) -> bool:
    """Spend one recovery code in place of a TOTP code; each works once."""
    wanted = _code_hash(code)
    remaining = list(user.recovery_codes or [])
    for stored in remaining:
        if hmac.compare_digest(str(stored), wanted):
            remaining.remove(stored)
            user.recovery_codes = remaining
            return True
    return False


# --- one-time links -----------------------------------------------------------------------

def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_link(session: Session, user: User, purpose: str, *, actor: str,
               ttl: timedelta = timedelta(hours=72)) -> str:
    """Issue a one-time invitation or reset token (earlier unused ones for it stop working)."""
    if purpose not in LINK_PURPOSES:
        raise _invalid("purpose", N_("must be one of %(choices)s",
                                            choices=", ".join(LINK_PURPOSES)))
    now = utcnow()
    for old in session.scalars(select(UserToken).where(
            UserToken.user_id == user.id, UserToken.used_at.is_(None))):
        old.used_at = now
    token = secrets.token_urlsafe(32)
    session.add(UserToken(user_id=user.id, purpose=purpose, token_hash=_token_hash(token),
                          created_by=actor, created_at=now, expires_at=now + ttl))
    if purpose == "reset":
        # A reset means the old password may be known to someone else: it stops working now.
        user.password_hash = NO_PASSWORD
        user.session_epoch += 1
    return token


def link_user(session: Session, token: str, now: datetime | None = None) -> tuple[User, str]:
    """Return the user and purpose of a usable token; refuse a used, expired or unknown one."""
    row = session.scalars(select(UserToken).where(
        UserToken.token_hash == _token_hash(token))).first()
    now = now or utcnow()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise ServiceError("not_found", "Not Found",
                           [{"field": "token",
                             "message": N_("this link is unknown, used or expired")}])
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        raise ServiceError("not_found", "Not Found",
                           [{"field": "token", "message": N_("this account is disabled")}])
    return user, row.purpose


def redeem_link(session: Session, token: str, password: str) -> User:
    """Set the password through a one-time link and spend the link."""
    user, _purpose = link_user(session, token)
    set_password(user, password)
    # The second factor stays: a lost authenticator is what recovery codes and
    # reset_second_factor are for, so a leaked link alone never opens an admin account.
    for row in session.scalars(select(UserToken).where(
            UserToken.token_hash == _token_hash(token))):
        row.used_at = utcnow()
    return user


# --- sessions -----------------------------------------------------------------------------
# The browser's signed cookie names a row here; logging out ends the row, so a copy of the
# cookie taken before stops working at once. A password change, a reset, disabling the account
# or a new second factor still ends all of the user's sessions through ``session_epoch``.

def open_session(session: Session, user: User, *, keep_for: timedelta,
                 now: datetime | None = None) -> str:
    """Record a new log-in of user; return the session id for the cookie (only its hash is kept).

    The user's rows older than keep_for (the absolute session limit) are deleted here: they
    can no longer open anything, and the table stays as small as the logged-in staff.
    """
    now = now or utcnow()
    for old in session.scalars(select(UserSession).where(
            UserSession.user_id == user.id, UserSession.created_at < now - keep_for)):
        session.delete(old)
    token = secrets.token_urlsafe(32)
    session.add(UserSession(user_id=user.id, token_hash=_token_hash(token), created_at=now))
    return token


def live_session(session: Session, token: str | None) -> UserSession | None:
    """Return the open session row a cookie's session id names, else None."""
    if not token:
        return None
    return session.scalars(select(UserSession).where(
        UserSession.token_hash == _token_hash(str(token)),
        UserSession.ended_at.is_(None))).first()


class LiveSessionUser(NamedTuple):
    """An open session row's facts and its user's, as the per-request session check needs them."""

    user_id: int
    created_at: datetime
    active: bool
    session_epoch: int
    email: str
    name: str
    role: str
    site_id: int | None
    advocate_id: int | None


def live_session_user(session: Session, token: str | None) -> LiveSessionUser | None:
    """Return the open session row a cookie's session id names, with its user's columns, in
    one query (every dashboard request asks for both), else None."""
    if not token:
        return None
    row = session.connection().execute(
        _LIVE_SESSION_USER, {"token_hash": _token_hash(str(token))}).first()
    return None if row is None else LiveSessionUser(*row)


# Built once, and a Core statement of the columns the check reads: every dashboard request
# runs it, and loading the two rows as mapped objects cost about half of the check (the ORM's
# per-execution set-up and two objects built); the check only reads values. Never cached
# across requests: a session ended elsewhere is refused at its very next request.
_SESSIONS = UserSession.__table__
_USERS = User.__table__
_LIVE_SESSION_USER = (
    select(_SESSIONS.c.user_id, _SESSIONS.c.created_at, _USERS.c.active,
           _USERS.c.session_epoch, _USERS.c.email, _USERS.c.name, _USERS.c.role,
           _USERS.c.site_id, _USERS.c.advocate_id)
    .join_from(_SESSIONS, _USERS, _USERS.c.id == _SESSIONS.c.user_id)
    .where(_SESSIONS.c.token_hash == bindparam("token_hash"), _SESSIONS.c.ended_at.is_(None)))


def end_session(session: Session, token: str | None, reason: str = "logout",
                now: datetime | None = None) -> UserSession | None:
    """End the session a cookie names (log-out); return its row, if it was open."""
    row = live_session(session, token)
    if row is not None:
        row.ended_at = now or utcnow()
        row.ended_reason = reason
    return row


def reset_second_factor(user: User) -> None:
    """Clear TOTP and recovery codes; the user enrols again at their next log-in."""
    user.totp_secret = None
    user.totp_last_step = None
    user.recovery_codes = []
    user.session_epoch += 1


def describe(user: User) -> dict[str, Any]:
    """Return what an admin's user list shows (no secrets)."""
    return {"id": user.id, "email": user.email, "name": user.name, "role": user.role,
            "active": user.active, "second_factor": user.totp_secret is not None,
            "recovery_codes_left": len(user.recovery_codes or []),
            "invited": user.password_hash == NO_PASSWORD,
            "last_login_at": user.last_login_at}
