"""Unmatched sign-ins: an offline sign-in that matched nobody is shown to staff with its contact.

Before, such answers were filed as anonymous and nobody was told (issue 15, "Signing in,
honestly"). The kiosk's answer stays the same whether the id matched.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from onsite_server.db import get_db
from onsite_server.models import Site, UnmatchedClaim

from ..api.test_offline_identify import CONSENT, PHQ9_MODERATE, _consent, offline_item, post
from ..helpers import auth, gen_member, gen_site
from .helpers import post_form

BIRTH = date(1979, 8, 9)


def _claims(app: Flask) -> list[UnmatchedClaim]:
    with get_db(app).transaction() as session:
        rows = list(session.scalars(select(UnmatchedClaim).order_by(UnmatchedClaim.id)))
        session.expunge_all()
        return rows


def test_a_miss_is_kept_with_its_contact_and_a_match_is_not(
        app: Flask, client: FlaskClient, kiosk: dict[str, Any], site: Any) -> None:
    with get_db(app).transaction() as session:
        gen_member(session, session.get(Site, site.id), "E5150", birth_date=BIRTH)
    hit = offline_item(PHQ9_MODERATE, "E5150")
    hit["offline_identity"]["phone"] = "5550100199"
    miss = offline_item(PHQ9_MODERATE, "e5105")  # a typo: no one has this id
    miss["offline_identity"]["phone"] = "5550100142"
    answers = post(client, kiosk["token"], hit, miss)
    assert answers[0]["result"] == answers[1]["result"]  # the kiosk learns nothing
    (claim,) = _claims(app)
    assert (claim.typed_id, claim.birth_date, claim.phone, claim.email) == (
        "E5105", BIRTH, "5550100142", None)
    # A later batch of the same visit, and an offline consent, add to the one open claim.
    post(client, kiosk["token"], offline_item(PHQ9_MODERATE, "E5105"))
    resp = client.post(CONSENT, json=_consent("E5105", "9f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b"),
                       headers=auth(kiosk["token"]))
    assert resp.status_code == 200
    (claim,) = _claims(app)
    assert (claim.phone, claim.email) == ("5550100142", "member@example.com")


def test_staff_see_the_claim_with_its_contact_and_mark_it_followed_up(
        app: Flask, client: FlaskClient, kiosk: dict[str, Any],
        as_coordinator: FlaskClient, as_advocate: FlaskClient) -> None:
    miss = offline_item(PHQ9_MODERATE, "NOBODY")
    miss["offline_identity"]["email"] = "ana.demo@example.com"
    post(client, kiosk["token"], miss)
    kiosk_id = _claims(app)[0].kiosk_id
    with get_db(app).transaction() as session:  # another site's claim stays out of view
        other = gen_site(session, "elsewhere")
        session.add(UnmatchedClaim(site_id=other.id, kiosk_id=kiosk_id, typed_id="OTHERSITE",
                                   birth_date=BIRTH))
    page = as_coordinator.get("/dashboard/claims")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "NOBODY" in html and "1979-08-09" in html
    assert 'href="mailto:ana.demo@example.com"' in html
    assert "OTHERSITE" not in html
    assert 'href="/dashboard/claims"' in as_coordinator.get("/dashboard/").get_data(as_text=True)
    assert as_advocate.get("/dashboard/claims").status_code == 403
    claim = next(c for c in _claims(app) if c.typed_id == "NOBODY")
    resp = post_form(as_coordinator, f"/dashboard/claims/{claim.public_id}/resolve",
                     page="/dashboard/claims", follow_redirects=True)
    assert resp.status_code == 200 and "Marked as followed up." in resp.get_data(as_text=True)
    assert "NOBODY" not in resp.get_data(as_text=True)
    resolved = next(c for c in _claims(app) if c.typed_id == "NOBODY")
    assert resolved.resolved_at is not None and resolved.resolved_by
    other_site = next(c for c in _claims(app) if c.typed_id == "OTHERSITE")
    refused = post_form(as_coordinator, f"/dashboard/claims/{other_site.public_id}/resolve",
                        page="/dashboard/claims")
    assert refused.status_code == 404
