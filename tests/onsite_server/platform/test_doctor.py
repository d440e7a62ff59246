"""`onsite-server doctor`: every check passes on a healthy site, and each one names its fault.

The command is run as an administrator runs it (the console script in its own process, with
the instance's settings in the environment) for the pinned exit codes and ``--json`` shape;
the single faults are made one at a time on a healthy instance and checked through
``doctor.run`` with the test's own app.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Flask
from sqlalchemy import select

from onsite_server import doctor
from onsite_server.app_settings import override
from onsite_server.db import get_db
from onsite_server.models import CrisisAlert, Kiosk, OutboxMessage
from onsite_server.services.signing import KeyStore
from shared.tokens import Purpose

from ...live import serve_in_thread

EXE = Path(sys.executable).with_name("onsite-server")


@pytest.fixture
def central() -> Iterator[str]:
    """A live central emulator with a static bearer token; yields its FHIR base URL."""
    from central_emulator import create_app as central_app

    with serve_in_thread(central_app({"TESTING": True, "TOKEN": "t0ken"})) as port:
        yield f"http://127.0.0.1:{port}/fhir"


@pytest.fixture
def healthy(app: Flask, central: str) -> Flask:
    """The test app made healthy: keys made, central reachable with its token."""
    KeyStore(Path(app.config["SIGNING_KEY_DIR"])).ring()
    override(app, CENTRAL_URL=central, CENTRAL_TOKEN="t0ken",
                  CENTRAL_ALLOW_INSECURE_HTTP=True)
    return app


def _by_name(checks: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {c.name: c for c in checks}


def _run(app: Flask, central: bool = True) -> dict[str, doctor.Check]:
    return _by_name(doctor.run(lambda: app, central=central))


def test_a_healthy_site_passes_every_check(healthy: Flask) -> None:
    checks = _run(healthy)
    assert {"config", "database", "migrations", "database-writes", "disk", "file-modes", "tls",
            "clock", "signing-keys", "central", "sync", "crises"} == set(checks)
    failed = {name: c.message for name, c in checks.items() if not c.ok}
    assert failed == {}


def _env(app: Flask, **extra: str) -> dict[str, str]:
    return {**os.environ, "ONSITE_INSTANCE_PATH": app.instance_path,
            "ONSITE_DATABASE_URL": app.config["DATABASE_URL"],
            "ONSITE_SIGNING_KEY_DIR": app.config["SIGNING_KEY_DIR"],
            "ONSITE_SECRET_KEY": app.config["SECRET_KEY"], **extra}


def test_the_command_exits_0_with_json_when_all_pass_and_1_when_one_fails(
        healthy: Flask) -> None:
    env = _env(healthy, ONSITE_CENTRAL_URL=healthy.config["CENTRAL_URL"],
               ONSITE_CENTRAL_TOKEN="t0ken", ONSITE_CENTRAL_ALLOW_INSECURE_HTTP="true")
    done = subprocess.run([str(EXE), "doctor", "--json"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert all(set(c) == {"name", "ok", "message"} and c["ok"] for c in report["checks"])

    wrong_token = subprocess.run([str(EXE), "doctor"], env={**env, "ONSITE_CENTRAL_TOKEN": "no"},
                                 capture_output=True, text=True, timeout=120)
    assert wrong_token.returncode == 1
    line = next(li for li in wrong_token.stdout.splitlines() if " central " in li)
    assert line.startswith("FAIL") and "refused our credentials" in line


def test_a_configuration_that_does_not_validate_stops_there(tmp_path: Path) -> None:
    env = {**os.environ, "ONSITE_INSTANCE_PATH": str(tmp_path / "inst"),
           "ONSITE_MIN_CELL": "2"}
    done = subprocess.run([str(EXE), "doctor", "--json"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    checks = json.loads(done.stdout)["checks"]
    assert [c["name"] for c in checks] == ["config"]
    assert "MIN_CELL" in checks[0]["message"]


def test_an_empty_database_says_to_run_init_db(app_config: dict[str, Any], tmp_path: Path
                                                ) -> None:
    from onsite_server import create_app

    empty = create_app({**app_config, "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"})
    checks = _run(empty, central=False)
    assert not checks["migrations"].ok and "init-db" in checks["migrations"].message
    # The outbox and crisis checks need the tables: they are not run rather than misreported.
    assert "sync" not in checks and "crises" not in checks


@pytest.mark.sqlite_only
def test_file_modes_name_the_file_readable_by_others(healthy: Flask) -> None:
    secret = Path(healthy.instance_path) / "secret_key"
    secret.write_text("x")
    secret.chmod(0o644)
    check = _run(healthy, central=False)["file-modes"]
    assert not check.ok and str(secret) in check.message and "644" in check.message


def _certificate(path: Path, not_before: dt.datetime, not_after: dt.datetime) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(not_before).not_valid_after(not_after).sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@pytest.mark.parametrize(("days_left", "ok", "words"), [
    (400, True, "expires in 399 days"), (5, False, "renew it now"), (-3, False, "expired on")])
@pytest.mark.sqlite_only
def test_tls_reports_days_to_expiry(healthy: Flask, tmp_path: Path, days_left: int, ok: bool,
                                    words: str) -> None:
    now = dt.datetime.now(dt.UTC)
    cert = tmp_path / "cert.pem"
    _certificate(cert, now - dt.timedelta(days=30), now + dt.timedelta(days=days_left, hours=-1))
    override(healthy, TLS_CERT=str(cert))
    check = _run(healthy, central=False)["tls"]
    assert check.ok is ok and words in check.message


@pytest.mark.sqlite_only
def test_a_clock_before_the_release_is_refused(healthy: Flask) -> None:
    check = doctor.check_clock(healthy, dt.datetime(2020, 5, 1, tzinfo=dt.UTC))
    assert not check.ok and "NTP" in check.message


@pytest.mark.sqlite_only
def test_missing_signing_keys_are_named(app: Flask) -> None:
    check = _run(app, central=False)["signing-keys"]
    assert not check.ok
    assert all(p.label in check.message for p in Purpose)


@pytest.mark.sqlite_only
def test_central_unreachable_is_reported(healthy: Flask) -> None:
    override(healthy, CENTRAL_URL="http://127.0.0.1:9/fhir")  # discard port: nothing listens
    check = _run(healthy)["central"]
    assert not check.ok and "did not answer" in check.message


def test_a_stalled_sync_and_dead_letters_are_reported(healthy: Flask) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    with get_db(healthy).transaction() as session:
        session.add(OutboxMessage(kind="booking", key="k-old", payload={}, created_at=old))
        session.add(OutboxMessage(kind="booking", key="k-dead", payload={}, status="dead"))
    check = _run(healthy, central=False)["sync"]
    assert not check.ok
    assert "waited 120 minutes" in check.message and "1 dead letters" in check.message


def test_a_stalled_sync_says_what_the_last_try_met(healthy: Flask) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    with get_db(healthy).transaction() as session:
        session.add(OutboxMessage(kind="booking", key="k-old", payload={}, created_at=old,
                                  attempts=3, last_error="POST https://central.example/fhir: "
                                  "central's TLS certificate was refused (self-signed)"))
    check = _run(healthy, central=False)["sync"]
    assert not check.ok and "waited 120 minutes" in check.message
    assert "the last try failed" in check.message and "TLS certificate" in check.message


def test_an_unacknowledged_crisis_fails_with_its_age(healthy: Flask, kiosk: Any) -> None:
    raised = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=47)
    with get_db(healthy).transaction() as session:
        kiosk_id = session.scalars(select(Kiosk.id)).one()
        session.add(CrisisAlert(kiosk_id=kiosk_id, trigger="phq9_item9", raised_at=raised,
                                received_at=raised))
    check = _run(healthy, central=False)["crises"]
    assert not check.ok and "1 crisis" in check.message and "47 minutes" in check.message


def test_a_closed_crisis_referral_is_not_waiting(healthy: Flask, site: Any) -> None:
    from onsite_server.models import Referral, Site

    from ..helpers import gen_member

    with get_db(healthy).transaction() as session:
        member = gen_member(session, session.get(Site, site.id))
        session.add(Referral(member_id=member.id, priority="crisis", status="closed"))
    assert _run(healthy, central=False)["crises"].ok
    with get_db(healthy).transaction() as session:
        session.add(Referral(member_id=member.id, priority="crisis", status="new"))
    check = _run(healthy, central=False)["crises"]
    assert not check.ok and check.message.startswith("1 crisis")
