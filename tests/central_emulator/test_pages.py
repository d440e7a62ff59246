"""The advocate-link page, the ticket page with its calendar file, and an advocate's referrals."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient

from central_emulator.services import PRIORITY_RANK

from .helpers import SiteKeys, appointment_entry, key_entries, referral, transaction

NAME = "Maria Lopez"


def _send_keys(client: FlaskClient, keys: SiteKeys, revoked: tuple[str, ...] = ()) -> None:
    answer = client.post("/fhir", json=transaction(*key_entries(keys, revoked=revoked)))
    assert answer.status_code == 200, answer.json


def _change_one(token: str, at: int) -> str:
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1:]


def test_connect_page_shows_the_advocate(client: FlaskClient, keys: SiteKeys) -> None:
    _send_keys(client, keys)
    page = client.get(f"/connect/{keys.link_token()}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert NAME in html
    assert 'name="viewport"' in html
    assert 'href="tel:+15550101"' in html
    assert 'href="mailto:maria.lopez@advocates.example"' in html
    assert ">ML<" in html  # the photo placeholder's initials
    assert "Request a call" in html
    assert page.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("at", [0, 10, 30, 60, -5, -1])
def test_one_changed_character_is_refused_without_a_name(client: FlaskClient, keys: SiteKeys,
                                                         at: int) -> None:
    _send_keys(client, keys)
    token = keys.link_token()
    page = client.get(f"/connect/{_change_one(token, at % len(token))}")
    assert 400 <= page.status_code < 500
    assert NAME not in page.get_data(as_text=True)


def _refusal(client: FlaskClient, token: str) -> tuple[int, str]:
    page = client.get(f"/connect/{token}")
    html = page.get_data(as_text=True)
    assert NAME not in html and "tel:+1555" not in html
    return page.status_code, html


def test_refusals_say_why(client: FlaskClient, keys: SiteKeys) -> None:
    revoked_id = str(uuid.uuid4())
    _send_keys(client, keys, revoked=(revoked_id,))
    long_ago = datetime.now(UTC) - timedelta(days=30)
    status, html = _refusal(client, keys.link_token(lifetime=timedelta(days=1), now=long_ago))
    assert status == 410 and "expired" in html
    status, html = _refusal(client, keys.link_token(token_id=revoked_id))
    assert status == 410 and "withdrawn" in html
    status, html = _refusal(client, keys.ticket_token("booking-1"))
    assert status == 403 and "not meant for this page" in html
    status, html = _refusal(client, SiteKeys().link_token())
    assert status == 403 and "not issued by a workplace we know" in html
    status, html = _refusal(client, "not-a-token")
    assert status == 400


def test_keys_can_also_come_by_hand(client: FlaskClient, keys: SiteKeys) -> None:
    assert client.get(f"/connect/{keys.link_token()}").status_code == 403
    answer = client.post("/_keys", json=keys.ring().jwks())
    assert answer.status_code == 200 and answer.json["added"] == 2
    assert client.get(f"/connect/{keys.link_token()}").status_code == 200
    assert client.post("/_keys", json={"keys": [{"kty": "RSA"}]}).status_code == 400


def test_a_bad_keys_binary_refuses_the_transaction(client: FlaskClient, keys: SiteKeys) -> None:
    entries = key_entries(keys)
    entries[0]["resource"]["data"] = "bm90IGpzb24="  # base64 of "not json"
    answer = client.post("/fhir", json=transaction(*entries))
    assert answer.status_code == 400 and "entry 0" in answer.json["issue"][0]["diagnostics"]
    assert "Binary" not in client.get("/_state").json["counts"]


def test_an_unknown_advocate_is_a_404_without_a_name(client: FlaskClient,
                                                     keys: SiteKeys) -> None:
    _send_keys(client, keys)
    assert client.get(f"/connect/{keys.link_token('adv-999')}").status_code == 404


def test_request_a_call_is_recorded_once(client: FlaskClient, keys: SiteKeys) -> None:
    _send_keys(client, keys)
    token = keys.link_token("adv-002")
    first = client.post(f"/connect/{token}/call")
    assert first.status_code == 200 and "James Carter" in first.get_data(as_text=True)
    assert "Thank you" in first.get_data(as_text=True)
    again = client.post(f"/connect/{token}/call")
    assert "already have your request" in again.get_data(as_text=True)
    requests = client.get("/fhir/CommunicationRequest").json
    assert requests["total"] == 1
    assert requests["entry"][0]["resource"]["recipient"][0]["reference"] == \
        "Practitioner/adv-002"
    assert client.post(f"/connect/{_change_one(token, 20)}/call").status_code == 403
    # It reaches the advocate, with no referral (and no consent) needed.
    calls = client.get("/api/advocates/adv-002/referrals").json["calls"]
    assert [c["member"] for c in calls] == ["4b7e2c1a-0000-4000-8000-000000000001"]
    assert "asked for a call" in client.get("/advocates/adv-002/referrals").get_data(
        as_text=True)
    assert client.get("/api/advocates/adv-001/referrals").json["calls"] == []


def test_ticket_page_with_the_appointment_and_its_calendar(client: FlaskClient,
                                                           keys: SiteKeys) -> None:
    booking = str(uuid.uuid4())
    answer = client.post("/fhir", json=transaction(*key_entries(keys),
                                                   appointment_entry(booking)))
    assert answer.status_code == 200, answer.json
    token = keys.ticket_token(booking)
    page = client.get(f"/ticket/{token}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Flu shot clinic" in html and "Lobby B" in html
    assert "09:00–09:15 (UTC-05:00)" in html
    assert "data:image/svg+xml;base64," in html
    assert f'href="/ticket/{token}.ics"' in html
    cal = client.get(f"/ticket/{token}.ics")
    assert cal.status_code == 200 and cal.content_type.startswith("text/calendar")
    text = cal.get_data(as_text=True)
    assert text.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
    assert text.endswith("END:VEVENT\r\nEND:VCALENDAR\r\n")
    lines = text.split("\r\n")
    assert f"UID:{booking}" in lines
    assert "DTSTART:20261202T140000Z" in lines and "DTEND:20261202T141500Z" in lines
    assert any(line.startswith("DTSTAMP:") and line.endswith("Z") for line in lines)
    assert all(len(line.encode()) <= 75 for line in lines)  # folded as RFC 5545 asks


def test_ticket_page_before_the_appointment_syncs(client: FlaskClient, keys: SiteKeys) -> None:
    _send_keys(client, keys)
    token = keys.ticket_token("booking-not-synced")
    page = client.get(f"/ticket/{token}")
    assert page.status_code == 200
    assert "confirmed" in page.get_data(as_text=True)
    assert ".ics" not in page.get_data(as_text=True)
    assert client.get(f"/ticket/{token}.ics").status_code == 404
    assert client.get(f"/ticket/{keys.link_token()}").status_code == 403
    assert client.get(f"/ticket/{_change_one(token, 12)}.ics").status_code == 403


def test_ticket_qr_holds_the_ticket_url(client: FlaskClient, keys: SiteKeys) -> None:
    import base64
    import io
    import re

    import cairosvg
    import zxingcpp
    from PIL import Image

    _send_keys(client, keys)
    token = keys.ticket_token("booking-qr")
    html = client.get(f"/ticket/{token}").get_data(as_text=True)
    svg = base64.b64decode(re.search(r"data:image/svg\+xml;base64,([^\"]+)", html)[1])  # type: ignore[index]
    png = cairosvg.svg2png(bytestring=svg, output_width=600)
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)),
                                   formats=zxingcpp.BarcodeFormat.QRCode)
    assert [r.text for r in found] == [f"http://localhost/ticket/{token}"]


def test_referrals_an_advocate_sees_most_pressing_then_newest(client: FlaskClient) -> None:
    day = datetime(2026, 12, 1, 9, tzinfo=UTC)
    sent = [("M-1001", "routine", day + timedelta(hours=3)),  # adv-001 by CareTeam
            ("M-1004", "crisis", day),
            ("M-1007", "routine", day + timedelta(hours=5)),
            ("M-1010", "soon", day + timedelta(hours=1)),
            ("M-1008", "urgent", day + timedelta(hours=2)),
            ("M-1002", "crisis", day + timedelta(hours=9))]  # adv-002: not hers
    # Our priorities; central sees FHIR ones (crisis -> stat, urgent -> asap, soon -> urgent).
    for member, priority, when in sent:
        client.post("/fhir", json=referral(member, priority=priority, authored=when))
    # Named as performer, whatever the CareTeam says.
    client.post("/fhir", json=referral("M-1003", priority="urgent", advocate="adv-001",
                                       authored=day + timedelta(hours=4)))
    # Consent withdrawn: revoked, not shown.
    revoked = referral("M-1012", priority="soon")
    for entry in revoked["entry"]:
        if entry["resource"]["resourceType"] == "ServiceRequest":
            entry["resource"]["status"] = "revoked"
    client.post("/fhir", json=revoked)
    listed = client.get("/api/advocates/adv-001/referrals").json["referrals"]
    assert [(r["member"], r["priority"]) for r in listed] == [
        ("M-1004", "stat"), ("M-1003", "asap"), ("M-1008", "asap"), ("M-1010", "urgent"),
        ("M-1007", "routine"), ("M-1001", "routine")]
    assert all(PRIORITY_RANK[a["priority"]] <= PRIORITY_RANK[b["priority"]]
               for a, b in zip(listed, listed[1:], strict=False))
    page = client.get("/advocates/adv-001/referrals").get_data(as_text=True)
    assert page.index("M-1004") < page.index("M-1003") < page.index("M-1001")
    assert "M-1002" not in page
    assert client.get("/api/advocates/adv-999/referrals").status_code == 404
    assert client.get("/advocates/adv-999/referrals").status_code == 404


def test_a_retired_key_is_refused_even_when_a_stale_key_set_lists_it_again(
        client: FlaskClient, keys: SiteKeys) -> None:
    _send_keys(client, keys)
    token = keys.link_token()
    assert client.get(f"/connect/{token}").status_code == 200
    ring = keys.ring()
    ring.retire(keys.link.key_id)
    assert client.post("/_keys", json=ring.jwks()).status_code == 200
    status, html = _refusal(client, token)
    assert status == 410 and "withdrawn" in html
    # A bundle built before the retirement arrives late, still listing the key: no matter.
    _send_keys(client, keys)
    assert _refusal(client, token)[0] == 410
    assert client.get("/_state").json["retired_keys"] == [keys.link.key_id]
    # The site's other key is untouched.
    assert client.get(f"/ticket/{keys.ticket_token('b-1')}").status_code == 200
