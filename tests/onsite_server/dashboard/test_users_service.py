"""services/users: passwords, TOTP steps, recovery codes and one-time links."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from flask import Flask

from onsite_server.db import get_db
from onsite_server.models import User, utcnow
from onsite_server.services import users as users_service
from onsite_server.services.errors import ServiceError

# Account rules: no SQL behaviour that differs between databases,
# so these run on SQLite only (conftest.py, sqlite_only).
pytestmark = pytest.mark.sqlite_only


def _user(session: Any, site: Any, role: str = "coordinator") -> User:
    return users_service.create_user(session, email=f"{role}@svc.example", name="Svc",
                                     role=role, password="long enough password",
                                     site_id=site.id)


def test_passwords_are_argon2_and_checked(app: Flask, site: Any) -> None:
    with get_db(app).transaction() as session:
        user = _user(session, site)
        assert user.password_hash.startswith("$argon2id$")
        assert users_service.authenticate(session, "COORDINATOR@svc.example",
                                          "long enough password") is user
        assert users_service.authenticate(session, user.email, "wrong") is None
        assert users_service.authenticate(session, "nobody@svc.example", "x") is None
        with pytest.raises(ServiceError) as short:
            users_service.set_password(user, "short")
        assert short.value.errors[0]["field"] == "password"


def test_totp_step_is_used_once_and_neighbours_accepted() -> None:
    secret = users_service.new_totp_secret()
    user = User(email="t@x", name="t", role="admin", password_hash="!", totp_secret=secret)
    now = time.time()
    totp = pyotp.TOTP(secret)
    assert users_service.verify_totp(user, totp.at(now - 30), now)
    assert not users_service.verify_totp(user, totp.at(now - 30), now)  # replay
    assert users_service.verify_totp(user, totp.at(now), now)
    assert not users_service.verify_totp(user, totp.at(now - 30), now)  # older step
    assert not users_service.verify_totp(user, totp.at(now + 90), now)  # too far ahead
    assert not users_service.verify_totp(user, "12345", now)


def test_recovery_codes_work_once_in_any_spelling() -> None:
    user = User(email="r@x", name="r", role="advocate", password_hash="!")
    codes = users_service.new_recovery_codes(user)
    assert len(set(codes)) == users_service.RECOVERY_CODES
    assert all(len(c) == 11 and c[5] == "-" for c in codes)
    assert users_service.use_recovery_code(user, codes[0].upper().replace("-", " "))
    assert not users_service.use_recovery_code(user, codes[0])
    assert len(user.recovery_codes) == users_service.RECOVERY_CODES - 1
    assert codes[1] not in str(user.recovery_codes)  # only hashes are kept


def test_links_expire_and_a_new_one_voids_the_old(app: Flask, site: Any) -> None:
    with get_db(app).transaction() as session:
        user = _user(session, site)
        first = users_service.issue_link(session, user, "reset", actor="user:1")
        assert user.password_hash == users_service.NO_PASSWORD
        second = users_service.issue_link(session, user, "reset", actor="user:1")
        with pytest.raises(ServiceError):
            users_service.link_user(session, first)
        assert users_service.link_user(session, second)[0] is user
        with pytest.raises(ServiceError):
            users_service.link_user(session, second, now=utcnow() + timedelta(days=4))
        epoch = user.session_epoch
        users_service.redeem_link(session, second, "a fresh long password")
        assert user.session_epoch > epoch
        with pytest.raises(ServiceError):
            users_service.redeem_link(session, second, "another long password")
