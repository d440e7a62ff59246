"""The `onsite-server` command line: schema, demo data, sites, events, slots, codes, users."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from onsite_server import devserver
from onsite_server.cli import main
from onsite_server.db import get_db
from onsite_server.models import (
    Employer,
    Event,
    Member,
    OutboxMessage,
    PairingCode,
    Referral,
    Site,
    Slot,
    Submission,
    User,
)
from onsite_server.services import users as users_service
from onsite_server.services.errors import ServiceError
from onsite_server.services.pairing import ALPHABET

LOGIN_ROLES = {"admin", "coordinator", "advocate"}


def _run(app: Any, runner: Any, *args: str) -> Any:
    return runner.invoke(main, list(args), obj={"app": app})


def _count(app: Any, model: Any) -> int:
    with get_db(app).transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _last_json(stdout: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return data


def test_init_db_reports_revision(app: Any, runner: Any) -> None:
    result = _run(app, runner, "init-db")
    assert result.exit_code == 0, result.output
    assert "database ready at revision" in result.stdout
    assert _run(app, runner, "init-db").exit_code == 0  # upgrading twice is harmless


def test_demo_data_is_idempotent_and_ends_with_json(app: Any, runner: Any) -> None:
    first = _run(app, runner, "demo-data")
    assert first.exit_code == 0, first.output
    one = _last_json(first.stdout)
    assert one["site"] == "demo-hq"
    assert LOGIN_ROLES <= set(one["logins"])
    assert all(v["email"] and v["password"] for v in one["logins"].values())
    counts = {m: _count(app, m) for m in (Member, Event, Slot, User, Site, Employer,
                                          Submission, Referral, OutboxMessage)}
    # The demo check-ups leave referrals waiting to be forwarded to central.
    assert counts[Submission] == 4 and counts[Referral] == 3 and counts[OutboxMessage] == 3
    second = _run(app, runner, "demo-data")
    assert second.exit_code == 0, second.output
    two = _last_json(second.stdout)
    assert two["pairing_code"] != one["pairing_code"]  # a fresh code each run
    assert {m: _count(app, m) for m in counts} == counts  # everything else reused
    assert _count(app, PairingCode) == 2


def test_demo_data_from_a_real_process(app: Any, database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "ONSITE_DATABASE_URL": database_url,
           "ONSITE_INSTANCE_PATH": str(tmp_path / "proc-instance")}
    proc = devserver.run(env, "demo-data", timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = _last_json(proc.stdout)
    assert {"pairing_code", "site", "logins"} <= set(data)
    assert _count(app, Member) == 12  # the same database the app fixture sees


@pytest.mark.parametrize(("option", "value"), [
    ("--slug", "North Campus"), ("--slug", "north campus!"), ("--slug", "-north"),
    ("--slug", "north-"), ("--slug", "a" * 65), ("--slug", ""), ("--employer", ""),
    ("--employer", "~roster-import-1"), ("--employer", "acme\nONSITE_X=1"), ("--name", "  "),
    ("--employer-name", ""),
], ids=["capitals", "space", "leading-hyphen", "trailing-hyphen", "too-long", "empty-slug",
        "empty-employer", "staging-prefix", "newline", "blank-name", "blank-employer-name"])
def test_create_site_refuses_what_is_not_a_slug_or_a_name(app: Any, runner: Any, option: str,
                                                          value: str) -> None:
    """A slug goes into URLs, the settings file and the audit log: refused naming the option,
    and nothing is stored (too long would also fail PostgreSQL's 64-character column)."""
    args = {"--employer": "acme", "--slug": "north", "--name": "North campus"}
    args[option] = value
    result = _run(app, runner, "create-site", *[part for pair in args.items() for part in pair])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for {option}" in result.stderr
    assert _count(app, Site) == 0 and _count(app, Employer) == 0
    fine = _run(app, runner, "create-site", "--employer", "acme-corp-2", "--slug", "n0rth-1",
                "--name", " North ")
    assert fine.exit_code == 0, fine.output
    with get_db(app).transaction() as session:
        assert session.scalars(select(Site.name)).one() == "North"


def test_an_employer_stored_before_slugs_were_checked_still_takes_new_sites(
        app: Any, runner: Any) -> None:
    with get_db(app).transaction() as session:
        session.add(Employer(slug="Acme_Corp", name="Acme"))
    result = _run(app, runner, "create-site", "--employer", "Acme_Corp", "--slug", "north",
                  "--name", "North")
    assert result.exit_code == 0, result.output
    with get_db(app).transaction() as session:
        assert session.scalar(select(func.count()).select_from(Employer)) == 1


def test_install_refuses_a_site_that_is_not_a_slug(tmp_path: Path) -> None:
    """The slug becomes a line of the settings file: a newline would add a setting of its own."""
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["install", "--prefix", str(tmp_path / "root"),
                                       "--site", "north\nONSITE_SECRET_KEY=chosen"])
    assert result.exit_code == 2, result.output
    assert "Invalid value for --site" in result.stderr
    assert not (tmp_path / "root").exists()


def test_create_site_event_and_slots_in_local_time(app: Any, runner: Any) -> None:
    assert _run(app, runner, "create-site", "--employer", "acme", "--slug", "acme-nyc",
                "--name", "Acme NYC", "--timezone", "America/New_York").exit_code == 0
    again = _run(app, runner, "create-site", "--employer", "acme", "--slug", "acme-nyc",
                 "--name", "Acme NYC")
    assert again.exit_code == 2 and "--slug" in again.stderr
    bad_zone = _run(app, runner, "create-site", "--employer", "acme", "--slug", "x",
                    "--name", "X", "--timezone", "Mars/Olympus")
    assert bad_zone.exit_code == 2 and "--timezone" in bad_zone.stderr
    machine_zone = _run(app, runner, "create-site", "--employer", "acme", "--slug", "x",
                        "--name", "X", "--timezone", "localtime")
    assert machine_zone.exit_code == 2 and "--timezone" in machine_zone.stderr
    made = _run(app, runner, "create-event", "--site", "acme-nyc", "--title", "Flu shots",
                "--kind", "flu_shot")
    assert made.exit_code == 0, made.output
    event_id = made.stdout.strip().splitlines()[-1]
    # 2026-03-08 is the US spring-forward day (second Sunday of March, Energy Policy Act of
    # 2005): 09:00 is EDT (UTC-4) that day but EST (UTC-5) the day before.
    for day in ("2026-03-07", "2026-03-08"):
        result = _run(app, runner, "add-slots", "--event", event_id, "--date", day,
                      "--start", "09:00", "--count", "2", "--minutes", "30", "--capacity", "4")
        assert result.exit_code == 0, result.output
    with get_db(app).transaction() as session:
        starts = [(s.start_at, s.end_at, s.capacity) for s in session.scalars(
            select(Slot).order_by(Slot.start_at))]
    assert starts == [
        (datetime(2026, 3, 7, 14, 0, tzinfo=UTC), datetime(2026, 3, 7, 14, 30, tzinfo=UTC), 4),
        (datetime(2026, 3, 7, 14, 30, tzinfo=UTC), datetime(2026, 3, 7, 15, 0, tzinfo=UTC), 4),
        (datetime(2026, 3, 8, 13, 0, tzinfo=UTC), datetime(2026, 3, 8, 13, 30, tzinfo=UTC), 4),
        (datetime(2026, 3, 8, 13, 30, tzinfo=UTC), datetime(2026, 3, 8, 14, 0, tzinfo=UTC), 4),
    ]
    unknown = _run(app, runner, "add-slots", "--event", "nope", "--date", "2026-03-08",
                   "--start", "09:00")
    assert unknown.exit_code == 2 and "--event" in unknown.stderr


def test_slots_across_the_dst_change_stay_consecutive(app: Any, runner: Any) -> None:
    _run(app, runner, "create-site", "--employer", "acme", "--slug", "acme-nyc", "--name", "N")
    event_id = _run(app, runner, "create-event", "--site", "acme-nyc",
                    "--title", "Night shift clinic").stdout.strip().splitlines()[-1]
    # 01:30 EST on 2026-03-08; clocks jump from 02:00 EST to 03:00 EDT.
    _run(app, runner, "add-slots", "--event", event_id, "--date", "2026-03-08",
         "--start", "01:30", "--count", "7", "--minutes", "15")
    with get_db(app).transaction() as session:
        slots = session.scalars(select(Slot).order_by(Slot.id)).all()
        spans = [(s.start_at, s.end_at) for s in slots]
    start = datetime(2026, 3, 8, 6, 30, tzinfo=UTC)
    assert spans == [(start + timedelta(minutes=15 * i), start + timedelta(minutes=15 * (i + 1)))
                     for i in range(7)]


def test_slot_start_skipped_by_spring_forward_is_refused(app: Any, runner: Any) -> None:
    _run(app, runner, "create-site", "--employer", "acme", "--slug", "acme-nyc", "--name", "N")
    event_id = _run(app, runner, "create-event", "--site", "acme-nyc",
                    "--title", "Night shift clinic").stdout.strip().splitlines()[-1]
    # 02:30 on 2026-03-08 never happens in New York: clocks go from 02:00 straight to 03:00.
    result = _run(app, runner, "add-slots", "--event", event_id, "--date", "2026-03-08",
                  "--start", "02:30")
    assert result.exit_code == 2 and "--start" in result.stderr
    assert _count(app, Slot) == 0


@pytest.mark.parametrize(("day", "start", "option", "message"), [
    ("9999-12-31", "23:30", "--date", "must be between 2000-01-01 and 2999-12-31"),
    ("0001-01-01", "00:00", "--date", "must be between 2000-01-01 and 2999-12-31"),
    ("2026-03-08", "02:30", "--start", "2026-03-08 02:30 does not exist"),
])
@pytest.mark.sqlite_only
def test_slots_on_a_day_or_time_that_cannot_be_are_refused_by_option(
        app: Any, runner: Any, day: str, start: str, option: str, message: str) -> None:
    """No traceback for the ends of the calendar: the option is named, nothing is stored."""
    _run(app, runner, "create-site", "--employer", "acme", "--slug", "acme-nyc", "--name", "N")
    event_id = _run(app, runner, "create-event", "--site", "acme-nyc",
                    "--title", "Clinic").stdout.strip().splitlines()[-1]
    result = _run(app, runner, "add-slots", "--event", event_id, "--date", day,
                  "--start", start, "--count", "2", "--minutes", "30")
    assert result.exit_code == 2, result.output
    assert option in result.stderr and message in result.stderr
    assert _count(app, Slot) == 0


@pytest.mark.sqlite_only
def test_text_typed_in_a_terminal_that_is_not_utf8_is_refused_by_option(app: Any,
                                                                        runner: Any) -> None:
    """"Café" typed in a Latin-1 terminal reaches Python as Caf\\udce9, which no database
    stores: the command died with a traceback; now the option is named and nothing stored."""
    _run(app, runner, "create-site", "--employer", "acme", "--slug", "acme-nyc", "--name", "N")
    result = _run(app, runner, "create-event", "--site", "acme-nyc", "--title", "Caf\udce9 day")
    assert result.exit_code == 2, result.output
    assert "--title" in result.stderr and "is not UTF-8 text" in result.stderr
    assert "Traceback" not in result.output
    assert _count(app, Event) == 0
    made = _run(app, runner, "create-event", "--site", "acme-nyc", "--title", "Café day")
    assert made.exit_code == 0, made.output


def test_pairing_code_is_issued(app: Any, runner: Any) -> None:
    _run(app, runner, "create-site", "--employer", "acme", "--slug", "acme-nyc", "--name", "N")
    result = _run(app, runner, "pairing-code", "--site", "acme-nyc", "--place", "Lobby")
    assert result.exit_code == 0, result.output
    code = result.stdout.strip().splitlines()[-1]
    assert len(code) == 9 and code[4] == "-"
    assert all(ch in ALPHABET for ch in code.replace("-", ""))
    assert _count(app, PairingCode) == 1
    missing = _run(app, runner, "pairing-code", "--site", "nowhere")
    assert missing.exit_code == 2 and "--site" in missing.stderr


def test_create_user_hashes_with_argon2(app: Any, runner: Any) -> None:
    result = _run(app, runner, "create-user", "--email", "Coord@Example.com", "--name", "Cora",
                  "--role", "coordinator", "--password", "correct horse battery")
    assert result.exit_code == 0, result.output
    with get_db(app).transaction() as session:
        user = session.scalars(select(User)).one()
        assert user.email == "coord@example.com" and user.role == "coordinator"
        assert user.password_hash.startswith("$argon2id$")
        assert "correct horse" not in user.password_hash
        assert PasswordHasher().verify(user.password_hash, "correct horse battery")


def test_only_the_command_line_makes_an_operator(app: Any, runner: Any) -> None:
    result = _run(app, runner, "create-user", "--email", "ops@example.com", "--name", "Ops",
                  "--role", "operator", "--password", "correct horse battery")
    assert result.exit_code == 0, result.output
    with get_db(app).transaction() as session:
        user = session.scalars(select(User)).one()
        assert (user.role, user.site_id) == ("operator", None)
        with pytest.raises(ServiceError):  # the dashboard's invitations cannot
            users_service.create_user(session, email="b@example.com", name="B",
                                      role="operator")


@pytest.mark.parametrize(("args", "named"), [
    (["--role", "superuser", "--password", "long enough pass"], "--role"),
    (["--role", "admin", "--password", "short"], "--password"),
    (["--role", "advocate", "--password", "long enough pass"], "--advocate-id"),
    # An operator works for the whole server; an employer's account belongs to a site.
    (["--role", "operator", "--password", "long enough pass", "--site", "test-site"], "--site"),
    (["--role", "employer", "--password", "long enough pass"], "--site"),
])
@pytest.mark.sqlite_only
def test_create_user_refuses_bad_input(app: Any, runner: Any, site: Any, args: list[str],
                                       named: str) -> None:
    result = _run(app, runner, "create-user", "--email", "a@example.com", "--name", "A", *args)
    assert result.exit_code == 2
    assert named in result.stderr
    assert _count(app, User) == 0


def test_export_questionnaires_writes_valid_r4(app: Any, runner: Any, tmp_path: Path) -> None:
    from onsite_server.fhir import validate
    from shared.assessments import available_versions, list_instruments

    out = tmp_path / "questionnaires"
    result = runner.invoke(main, ["export-questionnaires", "--out", str(out), "--all-versions"])
    assert result.exit_code == 0, result.output
    expected = {f"{i}-{v}.json" for i, _ in list_instruments() for v in available_versions(i)}
    assert {p.name for p in out.iterdir() if not p.name.startswith("CodeSystem-")} == expected
    phq9 = json.loads((out / "phq9-1.1.0.json").read_text(encoding="utf-8"))
    validate(phq9)
    assert phq9["resourceType"] == "Questionnaire" and phq9["version"] == "1.1.0"
    assert phq9["code"][0]["code"] == "44249-1"
    assert phq9["url"].endswith("/Questionnaire/phq9")
