"""Dashboard test helpers: staff accounts, CSRF-aware form posts, log-in as a role."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from onsite_server.db import get_db
from onsite_server.models import Site
from onsite_server.services import users as users_service

from ..helpers import gen_advocate, gen_site

ROLES = ("admin", "coordinator", "advocate")
PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


@dataclass
class Staff:
    """A dashboard account made for a test, with what logging in needs."""

    id: int
    role: str
    email: str
    password: str
    totp_secret: str | None
    site_id: int | None
    advocate_id: int | None
    advocate_public_id: str | None = None


def gen_staff(app: Flask, role: str, site: Site | int | None, *, email: str | None = None,
              advocate_public_id: str | None = None, second_factor: bool = True) -> Staff:
    """Create a user of role at site (an advocate gets a new Advocate unless one is named).

    Any role, operator included (site None: the command line's grant, not an invitation).
    """
    site_id = site if isinstance(site, int) or site is None else site.id
    with get_db(app).transaction() as session:
        if role == "advocate" and advocate_public_id is None:
            advocate_public_id = gen_advocate(session, f"Advocate for {email or role}").public_id
        user = users_service.create_user(
            session, email=email or f"{role}@test.example", name=f"Test {role}", role=role,
            password=PASSWORD, site_id=site_id,
            advocate_public_id=advocate_public_id if role == "advocate" else None,
            roles=users_service.ROLES)
        secret = None
        if second_factor and users_service.needs_second_factor(user):
            secret = users_service.new_totp_secret()
            user.totp_secret = secret
        session.flush()
        return Staff(user.id, role, user.email, PASSWORD, secret, site_id, user.advocate_id,
                     advocate_public_id)


def csrf_token(html: str) -> str:
    """Return the first CSRF token in a page."""
    found = _CSRF.search(html)
    assert found, "no csrf_token input on the page"
    return found.group(1) or found.group(2)


def post_form(client: FlaskClient, url: str, data: dict[str, Any] | None = None, *,
              page: str | None = None, **kwargs: Any) -> TestResponse:
    """GET the page with the form (default: url), then POST data with its CSRF token."""
    html = client.get(page or url).get_data(as_text=True)
    payload = {"csrf_token": csrf_token(html), **(data or {})}
    return client.post(url, data=payload, **kwargs)


def totp_code(secret: str, offset_steps: int = 0) -> str:
    """The TOTP code of a secret for the current time step (or one beside it)."""
    import time

    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def login(client: FlaskClient, staff: Staff) -> TestResponse:
    """Log the client in as staff, second factor included; return the final answer."""
    resp = post_form(client, "/login", {"email": staff.email, "password": staff.password})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    if resp.headers["Location"].startswith("/login/verify"):
        assert staff.totp_secret
        # A code is accepted once per time step; the next step is also accepted, so a second
        # log-in within the same 30 s still works.
        for offset in (0, 1):
            resp = post_form(client, "/login/verify", {"code": totp_code(staff.totp_secret,
                                                                         offset)})
            if resp.status_code == 302:
                break
        assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    return resp


class AuthActions:
    """The tutorial's ``auth`` helper: one staff account per role, log in and out."""

    def __init__(self, app: Flask, client: FlaskClient, staff: dict[str, Staff]) -> None:
        self.app = app
        self.client = client
        self.staff = staff

    def login(self, role: str, client: FlaskClient | None = None) -> FlaskClient:
        """Log a client (default: the shared one) in as the role's account."""
        target = client or self.client
        login(target, self.staff[role])
        return target

    def logout(self, client: FlaskClient | None = None) -> TestResponse:
        """Log out with the page's CSRF token."""
        target = client or self.client
        return post_form(target, "/logout", page="/login")


def site_of(app: Flask, slug: str = "dash-site") -> Site:
    """Create and return (detached) a site."""
    with get_db(app).transaction() as session:
        site = gen_site(session, slug)
        session.expunge(site)
    return site
