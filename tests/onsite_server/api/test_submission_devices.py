"""A reading's device travels with its submission (issue 19): stored beside the answers it
gave; a device that names an answer the item lacks is refused, naming the field."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from onsite_server.db import get_db
from onsite_server.models import Submission

from ..helpers import identified_member, submission_item
from .test_submissions import fields, post

CUFF = {"kind": "blood_pressure", "manufacturer": "Onsite Simulated Devices",
        "model": "SIM-BP1", "serial": "BP-0001", "link_ids": ["diastolic", "systolic"]}


def _stored(app, key):
    with get_db(app).transaction(write=False) as session:
        row = session.scalars(select(Submission).where(Submission.idempotency_key == key)).one()
        return row.answers, row.devices


def test_a_device_reading_is_stored_with_its_device(app, client, site, kiosk):
    _, ref = identified_member(app, site, kiosk)
    item = submission_item("blood_pressure", {"systolic": 152, "diastolic": 96}, member_ref=ref)
    item["devices"] = [CUFF]
    (answer,) = post(client, kiosk["token"], item)
    assert answer["status"] == "accepted", answer
    assert _stored(app, item["idempotency_key"]) == ({"systolic": 152, "diastolic": 96}, [CUFF])


def test_a_typed_reading_has_no_device(app, client, site, kiosk):
    _, ref = identified_member(app, site, kiosk)
    item = submission_item("blood_pressure", {"systolic": 152, "diastolic": 96}, member_ref=ref)
    (answer,) = post(client, kiosk["token"], item)
    assert answer["status"] == "accepted"
    assert _stored(app, item["idempotency_key"])[1] == []


@pytest.mark.sqlite_only
def test_bad_devices_are_refused_naming_the_field(app, client, site, kiosk):
    _, ref = identified_member(app, site, kiosk)
    answers = {"systolic": 152, "diastolic": 96}
    unknown = submission_item("blood_pressure", answers, member_ref=ref)
    unknown["devices"] = [{**CUFF, "link_ids": ["systolic", "pulse"]}]
    twice = submission_item("blood_pressure", answers, member_ref=ref)
    twice["devices"] = [CUFF, {**CUFF, "serial": "BP-0002", "link_ids": ["systolic"]}]
    kind = submission_item("blood_pressure", answers, member_ref=ref)
    kind["devices"] = [{**CUFF, "kind": "thermometer"}]
    control = submission_item("blood_pressure", answers, member_ref=ref)
    control["devices"] = [{**CUFF, "serial": "BP\x07"}]
    results = post(client, kiosk["token"], unknown, twice, kind, control)
    assert [r["status"] for r in results] == ["rejected"] * 4
    assert fields(results[0]) == ["items.0.devices.0.link_ids"]
    assert "'pulse' is not among the answers" in results[0]["problem"]["errors"][0]["message"]
    assert fields(results[1]) == ["items.1.devices.1.link_ids"]
    assert fields(results[2]) == ["items.2.devices.0.kind"]
    assert fields(results[3]) == ["items.3.devices.0.serial"]
