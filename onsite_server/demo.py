"""Demo data: an employer and site, advocates, members, users, events, a few completed
check-ups (referrals waiting to be forwarded) and a pairing code."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.assessments import available_versions
from shared.triage import PROGRAMS

from .models import Advocate, Employer, Event, Kiosk, Member, Site, User, utcnow
from .services.events import make_slots
from .services.pairing import issue_pairing_code
from .services.users import hash_password, totp_uri
from .settings import Settings

DEMO_SITE = "demo-hq"
DEMO_LOGINS = {
    "admin": ("admin@demo.example", "demo-admin-2026"),
    "coordinator": ("coordinator@demo.example", "demo-coord-2026"),
    "advocate": ("advocate@demo.example", "demo-advocate-2026"),
}
# Demo only: fixed TOTP secrets, printed with the log-ins so anyone trying the demo can add
# them to an authenticator app (or compute a code with pyotp). Never use fixed secrets for a
# real account: create-user and the invitation link make a fresh one at first log-in.
DEMO_TOTP = {
    "admin": "ONSITEWELLNESSDEMOADMINSECRET234",
    "advocate": "ONSITEWELLNESSDEMOADVOCATESECRT7",
}
ADVOCATES = [
    ("adv-001", "Maria Lopez", "+1-555-0101", "maria.lopez@advocates.example", ["en", "es"]),
    ("adv-002", "James Carter", "+1-555-0102", "james.carter@advocates.example", ["en"]),
    ("adv-003", "Aisha Rahman", "+1-555-0103", "aisha.rahman@advocates.example", ["en"]),
]
# Fictional people; birth dates are what a member types at the kiosk to identify.
MEMBERS = [
    ("M-1001", "E1001", "B-7001", "Ana", "Garcia", "1985-03-14", "es"),
    ("M-1002", "E1002", "B-7002", "Ben", "Miller", "1979-11-02", "en"),
    ("M-1003", "E1003", "B-7003", "Chloe", "Nguyen", "1992-07-21", "en"),
    ("M-1004", "E1004", "B-7004", "David", "Okafor", "1968-01-30", "en"),
    ("M-1005", "E1005", "B-7005", "Elena", "Rossi", "1990-05-09", "en"),
    ("M-1006", "E1006", "B-7006", "Farid", "Haddad", "1975-09-17", "en"),
    ("M-1007", "E1007", "B-7007", "Grace", "Kim", "1988-12-25", "en"),
    ("M-1008", "E1008", "B-7008", "Hector", "Ramirez", "1960-04-04", "es"),
    ("M-1009", "E1009", "B-7009", "Ivy", "Chen", "1995-02-28", "en"),
    ("M-1010", "E1010", "B-7010", "Jamal", "Wright", "1983-08-08", "en"),
    ("M-1011", "E1011", "B-7011", "Kara", "Schmidt", "1971-06-19", "en"),
    ("M-1012", "E1012", "B-7012", "Luis", "Fernandez", "1999-10-10", "es"),
]
EVENTS = [
    ("biometric_screening", "Biometric screening", "Evaluación biométrica", "Room 2A",
     9, 12, 15, 2),
    ("flu_shot", "Flu shot clinic", "Clínica de vacuna contra la gripe", "Lobby B",
     10, 16, 10, 3),
    ("coaching", "Health coaching session", "Sesión de coaching de salud", "Wellness room",
     13, 6, 30, 1),
]


def load_demo_data(session: Session, config: Mapping[str, Any]) -> dict[str, Any]:
    """Create (or reuse) the demo records and issue a fresh pairing code."""
    # The app's raw layers, converted as create_app converts them (the filing path below
    # still reads the raw keys it needs: BatchSettings.from_config).
    settings = Settings.from_config(config)
    lines: list[str] = []
    employer = session.scalars(select(Employer).where(Employer.slug == "demo-corp")).first()
    if employer is None:
        employer = Employer(slug="demo-corp", name="Demo Corp")
        session.add(employer)
        session.flush()
        lines.append("created employer demo-corp")
    site = session.scalars(select(Site).where(Site.slug == DEMO_SITE)).first()
    if site is None:
        site = Site(employer_id=employer.id, slug=DEMO_SITE, name="Demo Corp headquarters",
                    timezone="America/New_York")
        session.add(site)
        session.flush()
        lines.append(f"created site {DEMO_SITE}")
    advocates = {}
    for public_id, name, phone, email, langs in ADVOCATES:
        adv = session.scalars(select(Advocate).where(Advocate.public_id == public_id)).first()
        if adv is None:
            adv = Advocate(public_id=public_id, name=name, phone=phone, email=email,
                           languages=langs, programs=list(PROGRAMS))
            session.add(adv)
            session.flush()
        advocates[public_id] = adv
    adv_list = list(advocates.values())
    created = 0
    for i, (mid, emp, badge, first, last, born, lang) in enumerate(MEMBERS):
        found = session.scalars(select(Member).where(
            Member.employer_id == employer.id, Member.employee_id == emp)).first()
        if found is None:
            advocate = advocates["adv-001"] if lang == "es" else adv_list[i % len(adv_list)]
            session.add(Member(
                employer_id=employer.id, member_id=mid, employee_id=emp, badge_id=badge,
                first_name=first, last_name=last, birth_date=date.fromisoformat(born),
                language=lang, email=f"{first.lower()}.{last.lower()}@demo.example",
                advocate_id=advocate.id,
            ))
            created += 1
    if created:
        lines.append(f"created {created} members")
    for role, (email, password) in DEMO_LOGINS.items():
        if session.scalars(select(User).where(User.email == email)).first() is None:
            session.add(User(
                email=email, name=f"Demo {role}", role=role,
                password_hash=hash_password(password), site_id=site.id,
                advocate_id=advocates["adv-001"].id if role == "advocate" else None,
                totp_secret=DEMO_TOTP.get(role), recovery_codes=[], session_epoch=0,
            ))
    zone = ZoneInfo(site.timezone)
    today = utcnow().astimezone(zone).date()
    for kind, title, title_es, location, hour, count, minutes, capacity in EVENTS:
        event = session.scalars(select(Event).where(
            Event.site_id == site.id, Event.title == title)).first()
        if event is None:
            event = Event(site_id=site.id, kind=kind, title=title, title_es=title_es,
                          location=location)
            session.add(event)
            session.flush()
            for day_offset in (1, 2):
                session.add_all(make_slots(event, today + timedelta(days=day_offset),
                                           time(hour, 0), count, minutes, capacity, zone))
            lines.append(f"created event {title!r}")
    session.flush()
    filed = _demo_checkups(session, site, config, settings)
    if filed:
        lines.append(f"recorded {filed} demo check-up answers")
    code = issue_pairing_code(session, site, label="demo kiosk", place="Lobby",
                              ttl_seconds=settings.pairing_code_ttl_seconds)
    return {
        "_lines": lines,
        "pairing_code": code,
        "site": DEMO_SITE,
        "logins": {role: _login(role, e, p, settings.branding_name)
                   for role, (e, p) in DEMO_LOGINS.items()},
        "members": [{"employee_id": m[1], "birth_date": m[5], "first_name": m[3]}
                    for m in MEMBERS[:3]],
        "generated_at": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def _login(role: str, email: str, password: str, organization: str) -> dict[str, str]:
    login = {"email": email, "password": password}
    secret = DEMO_TOTP.get(role)
    if secret:
        login["totp_secret"] = secret
        login["otpauth_uri"] = totp_uri(secret, email, organization)
    return login


# A few completed check-ups, so a fresh demo has referrals waiting to be forwarded. Answers
# are fictional; PHQ-9 bands per Kroenke 2001, blood pressure per the 2017 ACC/AHA guideline.
DEMO_CHECKUPS = [
    ("M-1001", "phq9", {"1": 2, "2": 2, "3": 1, "4": 2, "5": 1, "6": 1, "7": 1, "8": 1, "9": 0}),
    ("M-1001", "blood_pressure", {"systolic": 146, "diastolic": 92}),
    ("M-1002", "gad7", {"1": 2, "2": 2, "3": 2, "4": 2, "5": 1, "6": 1, "7": 1}),
    ("M-1003", "phq9", {"1": 3, "2": 3, "3": 2, "4": 3, "5": 2, "6": 2, "7": 2, "8": 1, "9": 0}),
]
_DEMO_NAMESPACE = uuid.UUID("b3a5d9e2-7c41-4f0a-8e6b-1d2c3f4a5b6c")


def _demo_checkups(session: Session, site: Site, config: Mapping[str, Any],
                   settings: Settings) -> int:
    """File the demo check-ups through the same path as a kiosk's (idempotent keys)."""
    from .services.members import make_member_ref
    from .services.submissions import BatchSettings, process_batch

    kiosk = session.scalars(select(Kiosk).where(Kiosk.site_id == site.id,
                                                Kiosk.label == "demo data")).first()
    if kiosk is None:
        # A kiosk row with no device token: it can never call the API, it only files these.
        kiosk = Kiosk(site_id=site.id, label="demo data", place="demo data")
        session.add(kiosk)
        session.flush()
    secret = settings.secret_key
    items = []
    taken = utcnow() - timedelta(hours=2)
    for member_id, instrument, answers in DEMO_CHECKUPS:
        member = session.scalars(select(Member).where(Member.member_id == member_id,
                                                      Member.employer_id == site.employer_id)
                                 ).one()
        items.append({
            "idempotency_key": str(uuid.uuid5(_DEMO_NAMESPACE, f"{member_id}:{instrument}")),
            "session_id": str(uuid.uuid5(_DEMO_NAMESPACE, member_id)),
            "member_ref": make_member_ref(secret, member, kiosk), "instrument_id": instrument,
            "instrument_version": available_versions(instrument)[-1], "answers": answers,
            "taken_at": taken.isoformat()})
    batch = BatchSettings.from_config(config, settings.enabled_instruments)
    results = process_batch(lambda: session, kiosk, items, settings=batch,
                            shared_transaction=True)
    _demo_consent(session, site, kiosk)
    return sum(1 for r in results if r["status"] == "accepted")


def _demo_consent(session: Session, site: Site, kiosk: Kiosk) -> None:
    """The demo members agreed to be contacted by email, so their referrals reach central.

    Without consent nothing about a member leaves the site (docs/privacy.md).
    """
    from .services.referrals import open_referral, record_consent

    for member_id in sorted({m for m, _, _ in DEMO_CHECKUPS}):
        member = session.scalars(select(Member).where(Member.member_id == member_id,
                                                      Member.employer_id == site.employer_id)
                                 ).one()
        referral = open_referral(session, member)
        if referral is not None and referral.consent is None:
            record_consent(session, kiosk, member, consent=True, contact_method="email",
                           contact_time="morning", phone=None, email=None)
