"""Referral consent and contact preference, and anonymous crisis alerts from a kiosk."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from shared.schemas.common import Problem
from shared.schemas.referrals import (
    ConsentRequest,
    ConsentResponse,
    CrisisAlertRequest,
    CrisisAlertResponse,
)

from ..app_settings import current as current_settings
from ..db import get_session, keep_on_refusal
from ..errors import ApiProblem, field_problem
from ..models import utcnow
from ..services.clock import ClockPolicy, note_suspect
from ..services.crisis import alert_body, raise_anonymous_alert, raise_lenient_alert
from ..services.idempotency import run_once
from ..services.referrals import record_consent, record_offline_consent
from . import current_kiosk, member_for_ref, operation, parse_json_as


def _json(status: int, body: object) -> Response:
    resp = jsonify(body)
    resp.status_code = status
    return resp


@operation(
    "/referrals/consent", "POST", summary="Record consent and contact preference",
    tag="referrals", request_model=ConsentRequest,
    responses={200: ("Attached to the member's open referral (or declined)", ConsentResponse),
               409: ("Idempotency key reused with a different body", Problem)},
)
def record_referral_consent(body: ConsentRequest) -> Response:
    """Attach the member's consent and contact preference to their one open referral."""
    who = body.who_problem()
    if who is not None:
        raise field_problem("member_ref", who)
    session = get_session()
    kiosk = current_kiosk()

    def work() -> tuple[int, object]:
        if body.offline_identity is not None:
            settings = current_settings()
            return 200, record_offline_consent(
                session, kiosk, body.offline_identity, consent=body.consent,
                contact_method=body.contact_method, contact_time=body.contact_time,
                phone=body.phone, email=body.email, secret=settings.secret_key,
                per_day=settings.offline_identify_per_day)
        assert body.member_ref is not None  # who_problem
        member = member_for_ref(session, kiosk, body.member_ref)
        return 200, record_consent(
            session, kiosk, member, consent=body.consent, contact_method=body.contact_method,
            contact_time=body.contact_time, phone=body.phone, email=body.email)

    status, answer = run_once(session, key=body.idempotency_key, operation="referral.consent",
                              payload=body.model_dump(mode="json"), kiosk_id=kiosk.id, work=work)
    return _json(status, answer)


@operation(
    "/crisis-alerts", "POST", summary="Raise an anonymous crisis alert", tag="crisis",
    request_model=CrisisAlertRequest, raw_body=True,
    responses={201: ("Raised (or already raised with this key)", CrisisAlertResponse),
               409: ("Idempotency key reused with a different body", Problem)},
)
def raise_crisis_alert(body: Any) -> Response:
    """Tell staff on site that a crisis was seen at this kiosk: no answers, no identity.

    A body the model refuses is answered 422 naming its fields, but when its trigger can be
    read the alert is raised first, and kept with the 422: a crisis never fails silently.
    """
    try:
        parsed = parse_json_as(CrisisAlertRequest, body)
    except ApiProblem as problem:
        problem.extra.update(raise_lenient_alert(get_session(), current_kiosk(), body))
        keep_on_refusal()  # the alert stands although the answer is a 422
        raise
    return _raise(parsed)


def _raise(body: CrisisAlertRequest) -> Response:
    session = get_session()
    kiosk = current_kiosk()

    def work() -> tuple[int, object]:
        now = utcnow()
        suspect = ClockPolicy.from_settings(current_settings()).suspect(body.raised_at, now)
        if suspect:
            note_suspect(kiosk.public_id, "crisis alert", body.raised_at, now)
        alert = raise_anonymous_alert(session, kiosk, body.trigger, body.raised_at,
                                      key=body.idempotency_key, clock_suspect=suspect)
        return 201, alert_body(alert)

    status, answer = run_once(session, key=body.idempotency_key, operation="crisis.alert",
                              payload=body.model_dump(mode="json"), kiosk_id=kiosk.id, work=work)
    return _json(status, answer)
