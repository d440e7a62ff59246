"""The server's secret changed while kiosks held answers offline under references it signed.

Refused as forged, such items were set aside on the kiosk for good: the member's answers lost
(a crisis among them only reached staff as an anonymous alert). With the old secret kept in
``SECRET_KEY_FALLBACKS`` they are filed for their member; new references use the new secret.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from onsite_server import create_app
from onsite_server.db import get_db
from onsite_server.models import Member, Submission

from ..helpers import auth, identified_member, submission_item

PHQ9 = {str(i): 1 for i in range(1, 10)}


def test_a_reference_signed_before_the_secret_changed_still_files_its_answers(
        app: Flask, app_config: dict[str, Any], site: Any, kiosk: dict[str, Any]) -> None:
    member_id, old_ref = identified_member(app, site, kiosk)  # signed with the old secret
    rotated = create_app({**app_config, "SECRET_KEY": "the-new-secret",
                          "SECRET_KEY_FALLBACKS": [app_config["SECRET_KEY"]]})
    client = rotated.test_client()
    resp = client.post("/api/v1/submissions", headers=auth(kiosk["token"]),
                       json={"items": [submission_item("phq9", PHQ9, member_ref=old_ref)]})
    assert resp.get_json()["results"][0]["status"] == "accepted"
    lookup = client.post("/api/v1/members/bookings/lookup", headers=auth(kiosk["token"]),
                         json={"member_ref": old_ref})
    assert lookup.status_code == 200
    with get_db(rotated).transaction(write=False) as session:
        member = session.scalars(select(Member).where(Member.public_id == member_id)).one()
        assert session.scalars(select(Submission.member_id)).all() == [member.id]
    get_db(rotated).dispose()


def test_without_the_fallback_the_old_reference_is_refused_naming_it(
        app: Flask, app_config: dict[str, Any], site: Any, kiosk: dict[str, Any]) -> None:
    _, old_ref = identified_member(app, site, kiosk)
    rotated = create_app({**app_config, "SECRET_KEY": "the-new-secret"})
    client: FlaskClient = rotated.test_client()
    resp = client.post("/api/v1/submissions", headers=auth(kiosk["token"]),
                       json={"items": [submission_item("phq9", PHQ9, member_ref=old_ref)]})
    (answer,) = resp.get_json()["results"]
    assert answer["status"] == "rejected"
    assert [e["field"] for e in answer["problem"]["errors"]] == ["items.0.member_ref"]
    get_db(rotated).dispose()
