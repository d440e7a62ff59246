"""Issue 6 §4 and §5 at the API's edge: no input gets a 5xx, and only what makes sense is taken.

Deep nesting and control characters are refused before any work; booleans and numbers are
strict; instruments are accepted only as the site offered them; kiosk clocks are kept but
flagged, and alert lists go by the server's clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from onsite_server.api import registry
from onsite_server.app_settings import override
from onsite_server.db import get_db
from onsite_server.models import CrisisAlert, Kiosk, Referral, Submission
from onsite_server.services.referrals import recent_alerts

from ..helpers import auth, identified_member, new_key, submission_item

PHQ9_ITEM9 = {str(i): 0 for i in range(1, 9)} | {"9": 1}
PHQ9_MILD = {str(i): 1 for i in range(1, 8)} | {"8": 0, "9": 0}
POSTS = sorted(op.path for op in registry.operations if op.method == "POST")


def _fields(resp: Any) -> list[str]:
    return [e["field"] for e in resp.get_json()["errors"]]


@pytest.mark.parametrize("path", POSTS)
@pytest.mark.sqlite_only
def test_deeply_nested_json_is_a_400_on_every_operation(client: FlaskClient,
                                                        kiosk: dict[str, Any],
                                                        path: str) -> None:
    body = "[" * 5000 + "]" * 5000
    resp = client.post("/api/v1" + path.replace("{", "").replace("}", ""), data=body,
                       content_type="application/json", headers=auth(kiosk["token"]))
    assert resp.status_code == 400
    assert resp.mimetype == "application/problem+json"
    assert _fields(resp) == ["body"]


@pytest.mark.sqlite_only
def test_deep_nesting_inside_an_object_is_refused_too(client: FlaskClient,
                                                      kiosk: dict[str, Any]) -> None:
    body = '{"items": ' + "[{\"a\": " * 2000 + "1" + "}]" * 2000 + "}"
    resp = client.post("/api/v1/submissions", data=body, content_type="application/json",
                       headers=auth(kiosk["token"]))
    assert resp.status_code == 400


def test_ordinary_nesting_still_passes(client: FlaskClient, kiosk: dict[str, Any]) -> None:
    item = submission_item("phq9", PHQ9_MILD, kiosk_result={"total": 7, "band": "mild",
                                                            "flags": []})
    resp = client.post("/api/v1/submissions", json={"items": [item]},
                       headers=auth(kiosk["token"]))
    assert resp.status_code == 200
    assert resp.get_json()["results"][0]["status"] == "accepted"


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/v1/heartbeat", {"app_version": "1.0\x00", "outbox_depth": 0,
                           "free_disk_bytes": 1}, "app_version"),
    ("/api/v1/heartbeat", {"app_version": "1.0\x1b[31m", "outbox_depth": 0,
                           "free_disk_bytes": 1}, "app_version"),
    ("/api/v1/identify", {"id": "E\x001", "birth_date": "1980-01-15"}, "id"),
])
@pytest.mark.sqlite_only
def test_control_characters_are_refused_naming_the_field(client: FlaskClient,
                                                         kiosk: dict[str, Any], path: str,
                                                         body: dict[str, Any],
                                                         field: str) -> None:
    resp = client.post(path, json=body, headers=auth(kiosk["token"]))
    assert resp.status_code == 422
    assert field in _fields(resp)


@pytest.mark.sqlite_only
def test_nul_in_a_consent_email_is_a_422_not_a_500(app: Flask, client: FlaskClient, site: Any,
                                                   kiosk: dict[str, Any]) -> None:
    _, ref = identified_member(app, site, kiosk)
    resp = client.post("/api/v1/referrals/consent", headers=auth(kiosk["token"]), json={
        "idempotency_key": new_key(), "member_ref": ref, "consent": True,
        "contact_method": "email", "contact_time": "morning", "email": "a\x00@b.example"})
    assert resp.status_code == 422
    assert _fields(resp) == ["email"]


def test_nul_in_a_submission_answer_rejects_that_item_only(client: FlaskClient,
                                                           kiosk: dict[str, Any]) -> None:
    bad = submission_item("who5", {"1": "5\x00"})
    good = submission_item("phq9", PHQ9_MILD)
    resp = client.post("/api/v1/submissions", json={"items": [bad, good]},
                       headers=auth(kiosk["token"]))
    assert resp.status_code == 200
    bad_answer, good_answer = resp.get_json()["results"]
    assert bad_answer["status"] == "rejected" and good_answer["status"] == "accepted"
    assert [e["field"] for e in bad_answer["problem"]["errors"]] == ["items.0.answers.1"]


@pytest.mark.parametrize(("where", "text"), [
    ("session_id", "\x7f"),          # DEL, written raw in the body
    ("answers", "\x1b[31m"),         # an escape, written \u001b
    ("answers", "line\nbreak"),      # written \n
])
def test_a_control_character_anywhere_in_a_batch_still_refuses_its_item(
        client: FlaskClient, kiosk: dict[str, Any], where: str, text: str) -> None:
    good = submission_item("phq9", PHQ9_MILD)
    if where == "answers":
        bad = submission_item("who5", {"1": text})
        field = "items.1.answers.1"
    else:
        bad = submission_item("phq9", PHQ9_MILD, session_id=new_key() + text)
        field = "items.1.session_id"
    resp = client.post("/api/v1/submissions", json={"items": [good, bad]},
                       headers=auth(kiosk["token"]))
    assert resp.status_code == 200
    good_answer, bad_answer = resp.get_json()["results"]
    assert good_answer["status"] == "accepted" and bad_answer["status"] == "rejected"
    assert [e["field"] for e in bad_answer["problem"]["errors"]] == [field]
    assert "control characters" in bad_answer["problem"]["errors"][0]["message"]


def test_a_batch_whose_text_has_no_escape_is_not_walked_for_control_characters(
        client: FlaskClient, kiosk: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # Issue 20 (P6), session 11: one look at the body's bytes instead of a walk of every
    # string of every item (12 us an item of a kiosk's backlog).
    from onsite_server.services.submissions import item as item_module

    walked: list[object] = []

    def walk(data: object, path: str = "") -> list[str]:
        walked.append(data)
        return []

    monkeypatch.setattr(item_module, "control_character_paths", walk)
    items = [submission_item("phq9", PHQ9_MILD) for _ in range(3)]
    resp = client.post("/api/v1/submissions", json={"items": items},
                       headers=auth(kiosk["token"]))
    assert [r["status"] for r in resp.get_json()["results"]] == ["accepted"] * 3
    assert walked == []
    # A body with an escape (here a name typed with an accent, sent as \u00f1) is walked.
    resp = client.post("/api/v1/submissions",
                       json={"items": [submission_item("phq9", PHQ9_MILD),
                                       submission_item("who5", {"1": "ñ"})]},
                       headers=auth(kiosk["token"]))
    assert resp.status_code == 200
    assert len(walked) == 2


@pytest.mark.parametrize("consent", ["yes", 1, "on", "true", 1.0])
@pytest.mark.sqlite_only
def test_consent_must_be_a_real_true(app: Flask, client: FlaskClient, site: Any,
                                     kiosk: dict[str, Any], consent: Any) -> None:
    _, ref = identified_member(app, site, kiosk)
    resp = client.post("/api/v1/referrals/consent", headers=auth(kiosk["token"]), json={
        "idempotency_key": new_key(), "member_ref": ref, "consent": consent,
        "contact_method": "phone", "contact_time": "morning", "phone": "+1 555 010 2000"})
    assert resp.status_code == 422
    assert _fields(resp) == ["consent"]


@pytest.mark.parametrize(("change", "field"), [
    ({"outbox_depth": False}, "outbox_depth"),
    ({"outbox_depth": True}, "outbox_depth"),
    ({"outbox_depth": 3.0}, "outbox_depth"),
    ({"outbox_depth": "3"}, "outbox_depth"),
    ({"free_disk_bytes": "100"}, "free_disk_bytes"),
])
@pytest.mark.sqlite_only
def test_heartbeat_numbers_are_strict(client: FlaskClient, kiosk: dict[str, Any],
                                      change: dict[str, Any], field: str) -> None:
    body = {"app_version": "1.0", "outbox_depth": 0, "free_disk_bytes": 1, **change}
    resp = client.post("/api/v1/heartbeat", json=body, headers=auth(kiosk["token"]))
    assert resp.status_code == 422
    assert _fields(resp) == [field]


@pytest.mark.parametrize(("change", "field"), [
    ({"anonymous": "yes"}, "items.0.anonymous"),
    ({"anonymous": 1}, "items.0.anonymous"),
    ({"answers": dict(PHQ9_MILD, **{"1": 1.0})}, "items.0.answers.1"),
    ({"answers": dict(PHQ9_MILD, **{"1": "1"})}, "items.0.answers.1"),
])
@pytest.mark.sqlite_only
def test_submission_types_are_strict(client: FlaskClient, kiosk: dict[str, Any],
                                     change: dict[str, Any], field: str) -> None:
    item = {**submission_item("phq9", PHQ9_MILD), **change}
    resp = client.post("/api/v1/submissions", json={"items": [item]},
                       headers=auth(kiosk["token"]))
    (answer,) = resp.get_json()["results"]
    assert answer["status"] == "rejected"
    assert field in [e["field"] for e in answer["problem"]["errors"]]


@pytest.mark.sqlite_only
def test_skipped_choice_answer_as_float_is_refused(client: FlaskClient,
                                                   kiosk: dict[str, Any]) -> None:
    """The partial-answer check agrees with the engine: 1.0 is not the option 1."""
    answers = {k: v for k, v in PHQ9_MILD.items() if k != "4"} | {"1": 1.0}
    item = submission_item("phq9", answers, skipped=["4"])
    resp = client.post("/api/v1/submissions", json={"items": [item]},
                       headers=auth(kiosk["token"]))
    (answer,) = resp.get_json()["results"]
    assert answer["status"] == "rejected"
    assert [e["field"] for e in answer["problem"]["errors"]] == ["items.0.answers.1"]


@pytest.mark.sqlite_only
def test_item_without_taken_at_is_rejected_by_name(client: FlaskClient,
                                                   kiosk: dict[str, Any]) -> None:
    item = submission_item("phq9", PHQ9_MILD)
    del item["taken_at"]
    resp = client.post("/api/v1/submissions", json={"items": [item]},
                       headers=auth(kiosk["token"]))
    (answer,) = resp.get_json()["results"]
    assert answer["status"] == "rejected"
    assert [e["field"] for e in answer["problem"]["errors"]] == ["items.0.taken_at"]


# --------------------------------------------------------------------------- instruments


def _post_one(client: FlaskClient, kiosk: dict[str, Any], item: dict[str, Any]
              ) -> dict[str, Any]:
    resp = client.post("/api/v1/submissions", json={"items": [item]},
                       headers=auth(kiosk["token"]))
    assert resp.status_code == 200
    answer: dict[str, Any] = resp.get_json()["results"][0]
    return answer


@pytest.mark.sqlite_only
def test_an_instrument_never_offered_is_refused(app: Flask, client: FlaskClient,
                                                kiosk: dict[str, Any]) -> None:
    override(app, ENABLED_INSTRUMENTS=["phq9", "gad7"])
    answer = _post_one(client, kiosk, submission_item("who5", {str(i): 3 for i in range(1, 6)}))
    assert answer["status"] == "rejected"
    assert [e["field"] for e in answer["problem"]["errors"]] == ["items.0.instrument_id"]


def test_a_site_setting_narrows_what_is_offered(app: Flask, client: FlaskClient, site: Any,
                                                kiosk: dict[str, Any]) -> None:
    from onsite_server.models import Site

    with get_db(app).transaction() as session:
        row = session.get(Site, site.id)
        assert row is not None
        row.settings = {"enabled_instruments": ["phq9"]}
    catalog = client.get("/api/v1/catalog", headers=auth(kiosk["token"])).get_json()
    assert [i["id"] for i in catalog["instruments"]] == ["phq9"]
    answer = _post_one(client, kiosk, submission_item("gad2", {"1": 0, "2": 0}))
    assert answer["status"] == "rejected"


def test_disabled_since_the_item_was_taken_is_still_accepted(app: Flask, client: FlaskClient,
                                                             kiosk: dict[str, Any]) -> None:
    """Items queued offline while an instrument was offered are not lost when it is dropped."""
    assert client.get("/api/v1/catalog", headers=auth(kiosk["token"])).status_code == 200
    taken = datetime.now(UTC) - timedelta(minutes=5)
    queued = submission_item("phq9", PHQ9_MILD, taken_at=taken.isoformat())
    override(app, ENABLED_INSTRUMENTS=["gad7"])
    catalog = client.get("/api/v1/catalog", headers=auth(kiosk["token"])).get_json()
    assert [i["id"] for i in catalog["instruments"]] == ["gad7"]
    assert _post_one(client, kiosk, queued)["status"] == "accepted"
    # Taken after it was dropped, beyond the slack allowed for a kiosk clock (5 minutes).
    late = submission_item("phq9", PHQ9_MILD,
                           taken_at=(datetime.now(UTC) + timedelta(minutes=10)).isoformat())
    answer = _post_one(client, kiosk, late)
    assert answer["status"] == "rejected"
    assert "not offered" in answer["problem"]["errors"][0]["message"]


# --------------------------------------------------------------------------- clocks


@pytest.mark.parametrize("taken_at", ["1970-01-01T00:00:00+00:00", "9999-12-31T00:00:00+00:00"])
def test_a_far_off_kiosk_clock_is_kept_and_flagged(app: Flask, client: FlaskClient,
                                                   kiosk: dict[str, Any], taken_at: str) -> None:
    answer = _post_one(client, kiosk, submission_item("phq9", PHQ9_MILD, taken_at=taken_at))
    assert answer["status"] == "accepted"
    with get_db(app).transaction(write=False) as session:
        row = session.scalars(select(Submission)).one()
        assert row.taken_at.isoformat() == taken_at
        assert row.clock_suspect is True
        assert abs(row.received_at - datetime.now(UTC)) < timedelta(minutes=5)


def test_a_recent_clock_is_not_flagged(app: Flask, client: FlaskClient,
                                       kiosk: dict[str, Any]) -> None:
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    _post_one(client, kiosk, submission_item("phq9", PHQ9_MILD, taken_at=yesterday))
    with get_db(app).transaction(write=False) as session:
        assert session.scalars(select(Submission)).one().clock_suspect is False


@pytest.mark.parametrize("raised_at", ["1970-01-01T00:00:00+00:00", "9999-12-31T00:00:00+00:00"])
def test_recent_alerts_never_hide_an_alert_with_a_wrong_clock(app: Flask, client: FlaskClient,
                                                              site: Any, kiosk: dict[str, Any],
                                                              raised_at: str) -> None:
    item = submission_item("phq9", PHQ9_ITEM9, taken_at=raised_at)
    assert _post_one(client, kiosk, item)["crisis_recorded"] is True
    resp = client.post("/api/v1/crisis-alerts", headers=auth(kiosk["token"]), json={
        "idempotency_key": new_key(), "trigger": "hypertensive_crisis", "raised_at": raised_at})
    assert resp.status_code == 201
    with get_db(app).transaction(write=False) as session:
        since = datetime.now(UTC) - timedelta(hours=1)
        alerts = recent_alerts(session, site.id, since)
        assert sorted(a.trigger for a in alerts) == ["hypertensive_crisis", "phq9_item9"]
        assert all(a.clock_suspect for a in alerts)
        assert all(a.raised_at.isoformat() == raised_at for a in alerts)
        kiosk_row = session.scalars(select(Kiosk)).one()
        assert {a.kiosk_id for a in session.scalars(select(CrisisAlert))} == {kiosk_row.id}


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+00:00", "1969-12-31T23:59:59+00:00",
                                  "9999-12-31T23:59:59+00:00"])
def test_a_time_no_kiosk_clock_can_say_is_refused_by_name_and_its_crisis_kept(
        app: Flask, client: FlaskClient, site: Any, kiosk: dict[str, Any], when: str) -> None:
    """Stored as sent, year 1 took down every dashboard page with its crisis banner (500)."""
    _, ref = identified_member(app, site, kiosk)
    answer = _post_one(client, kiosk, submission_item("phq9", PHQ9_ITEM9, member_ref=ref,
                                                      taken_at=when))
    assert answer["status"] == "rejected" and answer["crisis_recorded"] is True
    assert [e["field"] for e in answer["problem"]["errors"]] == ["items.0.taken_at"]
    assert "1970-01-01 to 9999-12-31" in answer["problem"]["errors"][0]["message"]
    resp = client.post("/api/v1/crisis-alerts", headers=auth(kiosk["token"]), json={
        "idempotency_key": new_key(), "trigger": "phq9_item9", "raised_at": when})
    assert resp.status_code == 422 and _fields(resp) == ["raised_at"]
    assert resp.get_json()["crisis_recorded"] is True
    resp = client.post("/api/v1/heartbeat", headers=auth(kiosk["token"]), json={
        "app_version": "1.0", "outbox_depth": 0, "free_disk_bytes": 1, "last_sync_at": when})
    assert resp.status_code == 422 and _fields(resp) == ["last_sync_at"]
    with get_db(app).transaction(write=False) as session:
        # Both crises were filed at the server's time, not at the time no clock could say.
        (alert,) = session.scalars(select(CrisisAlert)).all()
        assert alert.clock_suspect is True
        assert abs(alert.raised_at - datetime.now(UTC)) < timedelta(minutes=5)
        referral = session.scalars(select(Referral)).one()
        assert referral.priority == "crisis"


def test_an_unknown_id_in_a_sites_setting_is_left_out(app: Flask, client: FlaskClient,
                                                      site: Any, kiosk: dict[str, Any]) -> None:
    from onsite_server.models import Site

    with get_db(app).transaction() as session:
        row = session.get(Site, site.id)
        assert row is not None
        row.settings = {"enabled_instruments": ["phq9", "phq99"]}
    resp = client.get("/api/v1/catalog", headers=auth(kiosk["token"]))
    assert resp.status_code == 200
    assert [i["id"] for i in resp.get_json()["instruments"]] == ["phq9"]


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+00:09", "9999-12-31T23:59:59-00:09"])
def test_timestamps_that_overflow_in_utc_never_give_a_500(client: FlaskClient,
                                                          kiosk: dict[str, Any],
                                                          when: str) -> None:
    """Found by fuzzing: a crisis alert (refused, so read leniently) stored such a time."""
    resp = client.post("/api/v1/crisis-alerts", headers=auth(kiosk["token"]), json={
        "idempotency_key": new_key(), "trigger": "phq9_item9", "raised_at": when})
    assert resp.status_code == 422
    assert resp.get_json()["crisis_recorded"] is True
    item = submission_item("phq9", PHQ9_ITEM9, taken_at=when, colour="x")
    answer = _post_one(client, kiosk, item)
    assert answer["status"] == "rejected" and answer["crisis_recorded"] is True


@pytest.mark.parametrize("value", [1764547200, 1764547200.5, True])
@pytest.mark.sqlite_only
def test_a_number_is_not_a_timestamp(client: FlaskClient, kiosk: dict[str, Any],
                                     value: object) -> None:
    """Found by fuzzing: lax parsing read a number as Unix seconds."""
    resp = client.post("/api/v1/heartbeat", headers=auth(kiosk["token"]), json={
        "app_version": "1.0", "outbox_depth": 0, "free_disk_bytes": 1, "last_sync_at": value})
    assert resp.status_code == 422
    assert _fields(resp) == ["last_sync_at"]
