"""The server's log as an administrator reads it: JSON lines carrying request ids, and never a
member's health data, identity, contact or any token, through a whole visit that includes a
crisis, refusals, a failed staff log-in and a booking."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from onsite_server import devserver

from ..cli_in_process import run_cli
from ..helpers import auth, gen_member, gen_site
from .test_drills import _env

pytestmark = pytest.mark.slow

PASSWORD = "a-Staff-pass-7731"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


@pytest.mark.sqlite_only
def test_json_logs_with_request_ids_and_no_member_data_or_tokens(database_url: str,
                                                                  tmp_path: Path) -> None:
    env = _env(database_url, tmp_path, ONSITE_LOG_FORMAT="json", ONSITE_LOG_LEVEL="DEBUG")
    log_path = tmp_path / "server.log"
    # The schema, the code and the user by the commands, in this process: the server's log
    # is what this test reads.
    assert run_cli(env, "init-db").exit_code == 0
    engine = create_engine(database_url)
    with Session(engine) as session, session.begin():
        site = gen_site(session, "logsite")
        member = gen_member(session, site, "EMP-LOG-4417", birth_date=date(1979, 4, 23),
                            first_name="Zephyrine")
        employee_id, member_id = member.employee_id, member.member_id
    engine.dispose()
    issued = run_cli(env, "pairing-code", "--site", "logsite")
    assert issued.exit_code == 0, issued.output
    code = issued.stdout.strip().splitlines()[-1]
    made = run_cli(env, "create-user", "--email", "coord.logs@example.org", "--name", "Coord",
                   "--role", "coordinator", "--site", "logsite", "--password", PASSWORD)
    assert made.exit_code == 0, made.output

    secrets: dict[str, str] = {"pairing code": code, "employee id": employee_id,
                               "member id": member_id, "first name": "Zephyrine",
                               "birth date": "1979-04-23", "phone": "+1 555 0147 88",
                               "email": "zephyrine.logtest@example.org", "password": PASSWORD}
    proc, url = devserver.start_server(env, log_path)
    try:
        http = requests.Session()
        paired = http.post(url + "/api/v1/pair", json={"pairing_code": code}, timeout=30)
        assert paired.status_code == 201, paired.text
        token = paired.json()["token"]
        secrets["device token"] = token
        http.headers.update(auth(token))
        who = http.post(url + "/api/v1/identify", timeout=30,
                        json={"id": employee_id, "birth_date": "1979-04-23"})
        assert who.status_code == 200, who.text
        ref = who.json()["member_ref"]
        secrets["member ref"] = ref
        # PHQ-9 with item 9 positive: a crisis, which the server logs about.
        answers = {"1": 3, "2": 3, "3": 2, "4": 2, "5": 1, "6": 3, "7": 2, "8": 1, "9": 2}
        item = {"idempotency_key": str(uuid.uuid4()), "session_id": str(uuid.uuid4()),
                "instrument_id": "phq9", "instrument_version": "1.0.0", "answers": answers,
                "taken_at": datetime.now(UTC).isoformat(), "member_ref": ref}
        sent = http.post(url + "/api/v1/submissions", json={"items": [item]}, timeout=30)
        assert sent.status_code == 200, sent.text
        consent = http.post(url + "/api/v1/referrals/consent", timeout=30, json={
            "idempotency_key": str(uuid.uuid4()), "member_ref": ref, "consent": True,
            "contact_method": "phone", "contact_time": "morning", "phone": secrets["phone"]})
        assert consent.status_code in (200, 201), consent.text
        # Refusals the server logs: a bad item carrying answers, a forged token.
        bad = dict(item, idempotency_key=str(uuid.uuid4()), answers={**answers, "9": 7})
        http.post(url + "/api/v1/submissions", json={"items": [bad]}, timeout=30)
        requests.post(url + "/api/v1/identify", headers=auth("forged-" + token[:20]),
                      json={"id": employee_id, "birth_date": "1979-04-23"}, timeout=30)
        http.post(url + "/api/v1/identify", timeout=30,
                  json={"id": employee_id, "birth_date": "1979-04-24"})
        # A failed and a good staff log-in.
        staff = requests.Session()
        page = staff.get(url + "/login", timeout=30)
        for password in ("wrong-" + PASSWORD, PASSWORD):
            staff.post(url + "/login", timeout=30, data={
                "csrf_token": _csrf(page.text), "email": "coord.logs@example.org",
                "password": password})
        given = staff.get(url + "/healthz", headers={"X-Request-Id": "probe-7f3a9c21"},
                          timeout=30)
        assert given.headers["X-Request-Id"] == "probe-7f3a9c21"
        own = staff.get(url + "/healthz", headers={"X-Request-Id": "bad id!"}, timeout=30)
        assert re.fullmatch(r"[0-9a-f]{32}", own.headers["X-Request-Id"])
    finally:
        devserver.stop_server(proc)

    text = log_path.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    records = []
    for line in lines:
        record = json.loads(line)  # every line is JSON, gunicorn's own included
        assert {"time", "level", "logger", "message", "request_id"} <= set(record), line
        records.append(record)
    access = [r for r in records if r["logger"] == "access"]
    assert any(r["request_id"] == "probe-7f3a9c21" and r["path"] == "/healthz" for r in access)
    assert all(r["request_id"] != "-" for r in access)
    # The app wrote during requests (the crisis, the refusals), each line with its request.
    in_requests = [r for r in records if r["logger"].startswith("onsite_server")
                   and r["request_id"] != "-"]
    assert in_requests, "the visit wrote no app log line: nothing was checked"
    leaked = {name: value for name, value in secrets.items() if value in text}
    assert leaked == {}
    assert json.dumps(answers) not in text and '"9": 2' not in text
