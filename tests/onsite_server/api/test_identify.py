"""Identify: one generic miss, kiosk-bound references, a per-kiosk limit shared by workers."""

from __future__ import annotations

import concurrent.futures
from datetime import date, timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select, update

from onsite_server.db import get_db
from onsite_server.models import AuditLog, Employer, Kiosk, Site
from onsite_server.services.identify import NOT_FOUND_DETAIL, id_variants, pad_to_floor
from onsite_server.services.members import resolve_member_ref
from onsite_server.services.pairing import revoke_kiosk

from ..cli_in_process import run_cli
from ..helpers import auth, gen_member, gen_site, pair_kiosk

BORN = date(1980, 1, 15)


@pytest.fixture
def roster(app: Any, site: Any) -> dict[str, Any]:
    """A member of the kiosk's employer, and one of another employer with the same ids."""
    with get_db(app).transaction() as session:
        home = session.get(Site, site.id)
        member = gen_member(session, home, "E5001", badge_id="B-5001", birth_date=BORN,
                            first_name="Dana")
        member.language = "es"
        other_employer = Employer(slug="other-corp", name="Other Corp")
        session.add(other_employer)
        session.flush()
        other_site = gen_site(session, "other-site", employer=other_employer)
        gen_member(session, other_site, "E6001", badge_id="B-6001", birth_date=BORN,
                   first_name="Olga")
        return {"public_id": member.public_id}


def _identify(client: Any, kiosk: dict[str, Any], typed_id: str, born: str) -> Any:
    return client.post("/api/v1/identify", json={"id": typed_id, "birth_date": born},
                       headers=auth(kiosk["token"]))


@pytest.mark.parametrize("typed_id", ["E5001", "B-5001", "b-5001", " E5001 "])
def test_hit_by_employee_or_badge_id(app: Any, client: Any, kiosk: dict[str, Any],
                                     roster: dict[str, Any], typed_id: str) -> None:
    resp = _identify(client, kiosk, typed_id, BORN.isoformat())
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["first_name"] == "Dana" and data["language"] == "es"
    # The reference is opaque but resolves, for this kiosk, to exactly that member.
    with get_db(app).transaction() as session:
        k = session.scalars(select(Kiosk).where(Kiosk.public_id == kiosk["kiosk_id"])).one()
        member = resolve_member_ref(session, app.config["SECRET_KEY"], data["member_ref"], k,
                                    3600)
        assert member.public_id == roster["public_id"]
    assert "E5001" not in data["member_ref"] and roster["public_id"] not in data["member_ref"]


def test_every_miss_gets_the_identical_answer(client: Any, kiosk: dict[str, Any],
                                              roster: dict[str, Any]) -> None:
    misses = {
        "unknown id": _identify(client, kiosk, "E9999", BORN.isoformat()),
        "wrong birth date": _identify(client, kiosk, "E5001", "1980-01-16"),
        "other employer's member": _identify(client, kiosk, "E6001", BORN.isoformat()),
        "other employer's badge": _identify(client, kiosk, "B-6001", BORN.isoformat()),
    }
    bodies = {resp.data for resp in misses.values()}
    assert len(bodies) == 1, {k: r.data for k, r in misses.items()}
    for resp in misses.values():
        assert resp.status_code == 404
        assert resp.mimetype == "application/problem+json"
    assert misses["unknown id"].get_json()["detail"] == NOT_FOUND_DETAIL


@pytest.mark.parametrize(("body", "field"), [
    ({"id": "", "birth_date": "1980-01-15"}, "id"),
    ({"id": "   ", "birth_date": "1980-01-15"}, "id"),
    ({"id": "E5001", "birth_date": "1980-02-30"}, "birth_date"),
    ({"id": "E5001", "birth_date": "15/01/1980"}, "birth_date"),
    ({"id": "E5001", "birth_date": 316742400}, "birth_date"),
    ({"id": "E5001", "birth_date": "2999-01-01"}, "birth_date"),
    ({"id": "E5001", "birth_date": "1899-12-31"}, "birth_date"),
    ({"id": "E5001"}, "birth_date"),
    ({"id": "x" * 65, "birth_date": "1980-01-15"}, "id"),
    ({"id": "E5001", "birth_date": "1980-01-15", "pin": "1"}, "pin"),
])
@pytest.mark.sqlite_only
def test_bad_input_is_422_naming_the_field_and_not_an_attempt(
        app: Any, client: Any, kiosk: dict[str, Any], roster: dict[str, Any],
        body: dict[str, Any], field: str) -> None:
    resp = client.post("/api/v1/identify", json=body, headers=auth(kiosk["token"]))
    assert resp.status_code == 422
    assert field in {e["field"] for e in resp.get_json()["errors"]}
    with get_db(app).transaction() as session:
        assert session.scalars(select(AuditLog).where(
            AuditLog.action == "identify.attempt")).all() == []


def test_attempts_are_audited_without_what_was_typed(app: Any, client: Any,
                                                     kiosk: dict[str, Any],
                                                     roster: dict[str, Any]) -> None:
    _identify(client, kiosk, "E5001", BORN.isoformat())
    _identify(client, kiosk, "E5001", "1980-01-16")
    _identify(client, kiosk, "ZZ-404", "1975-05-05")
    with get_db(app).transaction() as session:
        rows = session.scalars(select(AuditLog).where(AuditLog.action == "identify.attempt")
                               .order_by(AuditLog.id)).all()
        assert [r.detail["outcome"] for r in rows] == ["match", "no_match", "no_match"]
        assert all(r.actor == f"kiosk:{kiosk['kiosk_id']}" for r in rows)
        assert rows[0].subject == f"member:{roster['public_id']}"
        text = " ".join(f"{r.subject} {r.detail} {r.note}" for r in rows)
    for typed in ("E5001", "ZZ-404", "1980-01-15", "1980-01-16", "1975-05-05"):
        assert typed not in text


def test_revoked_kiosk_cannot_identify(app: Any, client: Any, kiosk: dict[str, Any],
                                       roster: dict[str, Any]) -> None:
    with get_db(app).transaction() as session:
        revoke_kiosk(session, session.scalars(
            select(Kiosk).where(Kiosk.public_id == kiosk["kiosk_id"])).one())
    assert _identify(client, kiosk, "E5001", BORN.isoformat()).status_code == 401


class TestRateLimit:
    """A small limit set through the test configuration layer."""

    @pytest.fixture
    def app_config(self, app_config: dict[str, Any]) -> dict[str, Any]:
        return {**app_config, "IDENTIFY_RATE_PER_MINUTE": 3}

    def test_over_the_limit_is_429_even_for_a_correct_pair(
            self, app: Any, client: Any, kiosk: dict[str, Any], roster: dict[str, Any]) -> None:
        assert _identify(client, kiosk, "E1", "1980-01-01").status_code == 404
        assert _identify(client, kiosk, "E2", "1980-01-01").status_code == 404
        assert _identify(client, kiosk, "E5001", BORN.isoformat()).status_code == 200
        limited = _identify(client, kiosk, "E5001", BORN.isoformat())
        assert limited.status_code == 429
        assert limited.mimetype == "application/problem+json"
        assert "member_ref" not in limited.get_json()
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        # Limited attempts are not recorded, so the kiosk is not locked out for longer.
        with get_db(app).transaction() as session:
            assert len(session.scalars(select(AuditLog).where(
                AuditLog.action == "identify.attempt")).all()) == 3

    def test_limit_is_per_kiosk(self, app: Any, client: Any, site: Any, kiosk: dict[str, Any],
                                roster: dict[str, Any]) -> None:
        for _ in range(3):
            _identify(client, kiosk, "E1", "1980-01-01")
        assert _identify(client, kiosk, "E1", "1980-01-01").status_code == 429
        other = pair_kiosk(app, client, site.slug)
        assert _identify(client, other, "E5001", BORN.isoformat()).status_code == 200

    def test_window_slides(self, app: Any, client: Any, kiosk: dict[str, Any],
                           roster: dict[str, Any]) -> None:
        for _ in range(3):
            _identify(client, kiosk, "E1", "1980-01-01")
        assert _identify(client, kiosk, "E1", "1980-01-01").status_code == 429
        # Age the recorded attempts past the 60 s window instead of waiting for it.
        with get_db(app).transaction() as session:
            for row in session.scalars(select(AuditLog).where(
                    AuditLog.action == "identify.attempt")):
                session.execute(update(AuditLog).where(AuditLog.id == row.id)
                                .values(at=row.at - timedelta(seconds=61)))
        assert _identify(client, kiosk, "E5001", BORN.isoformat()).status_code == 200


def test_limit_holds_across_gunicorn_workers(live_server: Any) -> None:
    """Concurrent attempts from one kiosk against 2 workers: exactly the limit gets through."""
    # The site and its pairing code by the commands, in this process (the server's workers
    # are what this test is about).
    made = run_cli(live_server.env, "create-site", "--employer", "live-corp", "--slug", "live",
                   "--name", "Live")
    assert made.exit_code == 0, made.output
    issued = run_cli(live_server.env, "pairing-code", "--site", "live")
    assert issued.exit_code == 0, issued.output
    code = issued.stdout.strip().splitlines()[-1]
    paired = requests.post(f"{live_server.url}/api/v1/pair", json={"pairing_code": code},
                           timeout=30)
    assert paired.status_code == 201
    headers = auth(paired.json()["token"])
    limit = 10  # the IDENTIFY_RATE_PER_MINUTE default the live server runs with

    def attempt(i: int) -> int:
        resp = requests.post(f"{live_server.url}/api/v1/identify", headers=headers,
                             json={"id": f"E{i}", "birth_date": "1980-01-01"}, timeout=60)
        return resp.status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        codes = list(pool.map(attempt, range(3 * limit)))
    assert codes.count(404) == limit
    assert codes.count(429) == 2 * limit


def test_id_variants() -> None:
    assert id_variants(" b-12 ") == ["b-12", "B-12"]
    assert id_variants("E7") == ["E7"]


def test_pad_to_floor_sleeps_the_remainder() -> None:
    slept: list[float] = []
    now = iter([10.1])
    pad_to_floor(10.0, 0.25, clock=lambda: next(now), sleep=slept.append)
    assert slept == [pytest.approx(0.15)]
    slept.clear()
    now = iter([10.3])
    pad_to_floor(10.0, 0.25, clock=lambda: next(now), sleep=slept.append)
    assert slept == []
