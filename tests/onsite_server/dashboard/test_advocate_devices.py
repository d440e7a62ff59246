"""The advocate's view says which readings came from a Bluetooth device (issue 19)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from onsite_server.db import get_db
from onsite_server.models import Kiosk, Referral, Submission, utcnow

from .helpers import Staff
from .test_advocate import _referral

pytestmark = pytest.mark.sqlite_only

CUFF = {"kind": "blood_pressure", "manufacturer": "Onsite Simulated Devices",
        "model": "SIM-BP1", "serial": "BP-0001", "link_ids": ["diastolic", "systolic"]}


def test_a_device_reading_says_so_and_a_typed_one_does_not(
        app: Flask, site: Any, staff: dict[str, Staff], as_advocate: FlaskClient) -> None:
    case = _referral(app, site, staff["advocate"].advocate_id, priority="urgent")
    with get_db(app).transaction() as session:
        referral = session.scalars(select(Referral).where(
            Referral.public_id == case["referral"])).one()
        kiosk = Kiosk(site_id=site.id, label="k")
        session.add(kiosk)
        session.flush()
        for devices, days in (([CUFF], 1), ([], 2)):  # one from the cuff, one typed
            session.add(Submission(
                idempotency_key=str(uuid.uuid4()), request_hash="0" * 64, kiosk_id=kiosk.id,
                member_id=referral.member_id, instrument_id="blood_pressure",
                instrument_version="1.0.0", answers={"systolic": 152, "diastolic": 96},
                devices=devices, result={"band": "stage_2", "flags": []}, response={},
                taken_at=utcnow() - timedelta(days=days), referral_id=referral.id))
    html = as_advocate.get(f"/advocate/referrals/{case['referral']}").get_data(as_text=True)
    assert html.count("Measured by a Bluetooth device: Onsite Simulated Devices SIM-BP1") == 1
