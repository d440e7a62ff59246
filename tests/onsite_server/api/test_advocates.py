"""POST /members/advocate-link, assignment by rules, and the keys that verify the link offline."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlsplit

import PIL.Image
import pytest
import zxingcpp
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from onsite_server.db import get_db
from onsite_server.models import Advocate, AuditLog, Member
from onsite_server.services.advocates import AssignmentRules, parse_rules, reassign
from shared.qr import qr_png
from shared.schemas.members import AdvocateLinkResponse
from shared.tokens import KeyRing, Purpose, TokenError, verify

from ..helpers import auth, identified_member

URL = "/api/v1/members/advocate-link"


def _advocate(app: Flask, public_id: str, name: str, languages: list[str],
              programs: list[str], active: bool = True) -> None:
    with get_db(app).transaction() as session:
        session.add(Advocate(public_id=public_id, name=name, phone="+1-555-0100",
                             email=f"{public_id}@advocates.example", languages=languages,
                             programs=programs, active=active))


def _ring(client: FlaskClient) -> KeyRing:
    ring = KeyRing()
    for key in client.get("/.well-known/jwks.json").get_json()["keys"]:
        ring.add_jwk(key)
    ring.revoke(client.get("/.well-known/revoked-tokens.json").get_json()["revoked"])
    return ring


def _link(client: FlaskClient, kiosk: dict[str, Any], ref: str) -> dict[str, Any]:
    resp = client.post(URL, json={"member_ref": ref}, headers=auth(kiosk["token"]))
    assert resp.status_code == 200, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    AdvocateLinkResponse.model_validate(body)
    return body


def _token(link_url: str) -> str:
    return urlsplit(link_url).path.rsplit("/", 1)[1]


def test_link_assigns_an_advocate_and_verifies_offline(app: Flask, client: FlaskClient,
                                                       site: Any, kiosk: dict[str, Any]) -> None:
    _advocate(app, "adv-en", "James Carter", ["en"], ["behavioral_health"])
    _advocate(app, "adv-es", "Maria Lopez", ["en", "es"], ["behavioral_health"])
    member_id, ref = identified_member(app, site, kiosk)
    with get_db(app).transaction() as session:
        member = session.scalars(select(Member).where(Member.public_id == member_id)).one()
        member.language = "es"
    body = _link(client, kiosk, ref)
    assert body["advocate"]["name"] == "Maria Lopez"
    assert body["advocate"]["languages"] == ["en", "es"]
    assert body["link_url"].startswith(app.config["CENTRAL_WEB_URL"] + "/connect/")
    token = verify(_token(body["link_url"]), _ring(client), purpose=Purpose.ADVOCATE_LINK)
    assert token.fields == {"subject": member_id, "advocate": "adv-es"}
    assert "Maria" not in _token(body["link_url"])
    assert "FN:Maria Lopez" in body["vcard"] and "TEL;TYPE=WORK,VOICE:+1-555-0100" in body["vcard"]
    # Both QR contents survive a real code.
    for text in (body["link_url"], body["vcard"]):
        decoded = zxingcpp.read_barcodes(PIL.Image.open(io.BytesIO(qr_png(text))),
                                         formats=zxingcpp.BarcodeFormat.QRCode)
        assert [r.text for r in decoded] == [text]
    with get_db(app).transaction(write=False) as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "member.assigned"))
        # The kiosk's site: the site's admins see it in their audit log.
        assert [(a.detail["advocate"], a.site_id) for a in audit] == [("adv-es", site.id)]


def test_assignment_stays(app: Flask, client: FlaskClient, site: Any,
                          kiosk: dict[str, Any]) -> None:
    _advocate(app, "adv-a", "A Advocate", ["en"], [])
    _advocate(app, "adv-b", "B Advocate", ["en"], [])
    _, ref = identified_member(app, site, kiosk)
    first = _link(client, kiosk, ref)
    second = _link(client, kiosk, ref)
    assert first["advocate"] == second["advocate"]
    assert first["link_url"] != second["link_url"]  # re-issued on request


def test_load_is_balanced_among_equals(app: Flask, client: FlaskClient, site: Any,
                                       kiosk: dict[str, Any]) -> None:
    _advocate(app, "adv-a", "A Advocate", ["en"], [])
    _advocate(app, "adv-b", "B Advocate", ["en"], [])
    names = [_link(client, kiosk, identified_member(app, site, kiosk)[1])["advocate"]["name"]
             for _ in range(4)]
    assert sorted(names) == ["A Advocate", "A Advocate", "B Advocate", "B Advocate"]


def test_program_of_the_highest_need_wins(app: Flask, client: FlaskClient, site: Any,
                                          kiosk: dict[str, Any]) -> None:
    from ..helpers import submission_item

    _advocate(app, "adv-coach", "Coach Only", ["en"], ["health_coaching"])
    _advocate(app, "adv-bh", "Behavioral Health", ["en"], ["behavioral_health"])
    _, ref = identified_member(app, site, kiosk)
    severe = {str(i): 3 for i in range(1, 9)} | {"9": 0}
    resp = client.post("/api/v1/submissions", headers=auth(kiosk["token"]),
                       json={"items": [submission_item("phq9", severe, member_ref=ref)]})
    referral = resp.get_json()["results"][0]["result"]["referral"]
    assert referral["programs"][0] == "behavioral_health"
    assert _link(client, kiosk, ref)["advocate"]["name"] == "Behavioral Health"


def test_a_step_that_would_leave_nobody_is_skipped(app: Flask, client: FlaskClient, site: Any,
                                                   kiosk: dict[str, Any]) -> None:
    _advocate(app, "adv-en", "English Only", ["en"], [])
    member_id, ref = identified_member(app, site, kiosk)
    with get_db(app).transaction() as session:
        member = session.scalars(select(Member).where(Member.public_id == member_id)).one()
        member.language = "es"
    assert _link(client, kiosk, ref)["advocate"]["name"] == "English Only"


def test_no_active_advocate_is_a_409(app: Flask, client: FlaskClient, site: Any,
                                     kiosk: dict[str, Any]) -> None:
    _advocate(app, "adv-off", "On Leave", ["en"], [], active=False)
    _, ref = identified_member(app, site, kiosk)
    resp = client.post(URL, json={"member_ref": ref}, headers=auth(kiosk["token"]))
    assert resp.status_code == 409


@pytest.mark.sqlite_only
def test_bad_member_ref_is_named(client: FlaskClient, kiosk: dict[str, Any]) -> None:
    resp = client.post(URL, json={"member_ref": "nope"}, headers=auth(kiosk["token"]))
    assert resp.status_code == 422
    assert [e["field"] for e in resp.get_json()["errors"]] == ["member_ref"]


def test_reassignment_revokes_the_old_links(app: Flask, client: FlaskClient, site: Any,
                                            kiosk: dict[str, Any]) -> None:
    _advocate(app, "adv-a", "A Advocate", ["en"], [])
    _advocate(app, "adv-b", "B Advocate", ["en"], [])
    member_id, ref = identified_member(app, site, kiosk)
    old = _token(_link(client, kiosk, ref)["link_url"])
    verify(old, _ring(client), purpose=Purpose.ADVOCATE_LINK)
    with get_db(app).transaction() as session:
        member = session.scalars(select(Member).where(Member.public_id == member_id)).one()
        other = session.scalars(select(Advocate).where(
            Advocate.id != member.advocate_id)).one()
        reassign(session, member, other, actor="central", reason="central assignment")
    with pytest.raises(TokenError) as caught:
        verify(old, _ring(client), purpose=Purpose.ADVOCATE_LINK)
    assert caught.value.reason == "revoked"
    new = _link(client, kiosk, ref)
    verify(_token(new["link_url"]), _ring(client), purpose=Purpose.ADVOCATE_LINK)


@pytest.mark.sqlite_only
def test_jwks_publishes_both_purposes_as_okp(client: FlaskClient) -> None:
    keys = client.get("/.well-known/jwks.json").get_json()["keys"]
    assert {k["purpose"] for k in keys} == {"advocate_link", "ticket"}
    assert all(k["kty"] == "OKP" and k["crv"] == "Ed25519" and k["kid"] for k in keys)
    assert all("d" not in k for k in keys)  # never a private part


def test_unknown_rule_step_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown steps"):
        parse_rules({"steps": [{"id": "horoscope"}]})
    assert parse_rules({"steps": [{"id": "language"}]}) == AssignmentRules(steps=("language",))


@pytest.mark.sqlite_only
def test_signing_keys_are_private_files(app: Flask, client: FlaskClient) -> None:
    import stat
    from pathlib import Path

    client.get("/.well-known/jwks.json")
    folder = Path(app.config["SIGNING_KEY_DIR"])
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = sorted(folder.glob("*.pem"))
    assert [f.name.split("-")[0] for f in files] == ["advocate_link", "ticket"]
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}


def test_rotation_keeps_old_links_verifying(app: Flask, client: FlaskClient, site: Any,
                                            kiosk: dict[str, Any]) -> None:
    from pathlib import Path

    from onsite_server.services.signing import KeyStore

    _advocate(app, "adv-a", "A Advocate", ["en"], [])
    _, ref = identified_member(app, site, kiosk)
    old = _token(_link(client, kiosk, ref)["link_url"])
    KeyStore(Path(app.config["SIGNING_KEY_DIR"])).rotate(Purpose.ADVOCATE_LINK)
    new = _token(_link(client, kiosk, ref)["link_url"])
    ring = _ring(client)
    assert verify(old, ring, purpose=Purpose.ADVOCATE_LINK).key_id != \
        verify(new, ring, purpose=Purpose.ADVOCATE_LINK).key_id
