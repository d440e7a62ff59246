"""The sync against a central that misbehaves as real ones do, served on a real socket in front
of the central emulator (``misbehaving_central``): no referral lost, none sent twice, central's
Retry-After honoured within our caps, redirects followed only where our data may go, and every
failure recorded in words that name what is wrong. The worker never stops for any of it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select

from central_emulator import create_app as create_central
from onsite_server.app_settings import override
from onsite_server.central import CentralClient, CentralError, SmartAuth, client_from_config
from onsite_server.cli import main
from onsite_server.db import get_db
from onsite_server.fhir import Systems
from onsite_server.models import OutboxMessage
from onsite_server.services.signing import KeyStore
from onsite_server.services.sync import SyncReport, SyncSettings, run_cycle

from ...live import serve_in_thread
from .misbehaving_central import Front, Reply, misbehaving
from .test_sync import PHQ9_ITEM9, PHQ9_MODERATE, _submit

TOKEN = "t0ken"
FHIR_JSON = (("Content-Type", "application/fhir+json"),)


@pytest.fixture
def upstream() -> Iterator[str]:
    """The central emulator (static token), served for real; yields its address."""
    with serve_in_thread(create_central({"TESTING": True, "TOKEN": TOKEN})) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def front(upstream: str) -> Iterator[Front]:
    """The misbehaving front before the emulator."""
    with misbehaving(upstream, token=TOKEN) as served:
        yield served


def _settings(app: Flask) -> SyncSettings:
    return SyncSettings(systems=Systems("https://fhir.example/id"), site="test-site",
                        keys=KeyStore(Path(app.config["SIGNING_KEY_DIR"])), worker_id="w1")


def _client(front: Front, **config: Any) -> CentralClient:
    return client_from_config({"CENTRAL_URL": front.url + "/fhir", "CENTRAL_TOKEN": TOKEN,
                               "CENTRAL_ALLOW_INSECURE_HTTP": True,
                               "CENTRAL_READ_TIMEOUT_SECONDS": 2, **config})


def _cycle(app: Flask, front: Front, **config: Any) -> SyncReport:
    return run_cycle(get_db(app).transaction, _client(front, **config), _settings(app))


def _row(app: Flask) -> OutboxMessage:
    with get_db(app).transaction(write=False) as session:
        row = session.scalars(select(OutboxMessage)).one()
        session.expunge(row)
        return row


def _bundle(*statuses: str) -> bytes:
    return json.dumps({"resourceType": "Bundle", "type": "transaction-response",
                       "entry": [{"response": {"status": s}} for s in statuses]}).encode()


OUTCOME = json.dumps({"resourceType": "OperationOutcome", "issue": [
    {"severity": "information", "code": "informational", "diagnostics": "accepted"}]}).encode()
NOT_CONFIRMED = {
    # Central's answer does not say it kept the Bundle; "forward" ones did commit first.
    "an OperationOutcome": Reply(200, OUTCOME, FHIR_JSON),
    "an OperationOutcome after committing": Reply(200, OUTCOME, FHIR_JSON, forward=True),
    "a JSON list": Reply(200, b"[]", FHIR_JSON),
    "a JSON object that is no resource": Reply(200, b"{}", FHIR_JSON, forward=True),
    "a Bundle of another type": Reply(200, json.dumps(
        {"resourceType": "Bundle", "type": "batch-response", "entry": []}).encode()),
    "fewer entries than sent": Reply(200, _bundle("201 Created")),
    "no entries": Reply(201, _bundle()),
    "an HTML page after committing": Reply(200, b"<html>OK</html>",
                                           (("Content-Type", "text/html"),), forward=True),
    "an empty body": Reply(200, b""),
    "a reset mid-answer after committing": Reply(200, b"x" * 4000, FHIR_JSON, forward=True,
                                                 reset=True),
}


@pytest.mark.sqlite_only
@pytest.mark.parametrize("answer", list(NOT_CONFIRMED))
def test_an_answer_that_does_not_confirm_the_bundle_leaves_it_to_be_sent_again_once(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any], front: Front,
        answer: str) -> None:
    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    front.then("POST", "/fhir", NOT_CONFIRMED[answer])
    report = _cycle(app, front)
    row = _row(app)
    assert report.sent == 0 and row.status == "pending" and row.attempts == 1
    assert row.waiting_on_central and report.central_unavailable  # central's trouble
    # Sent again (the same bundle, conditional creates), it lands once at central.
    assert _cycle(app, front, CENTRAL_READ_TIMEOUT_SECONDS=10).sent == 0  # its backoff
    with get_db(app).transaction() as session:
        session.get(OutboxMessage, row.id).next_attempt_at = dt.datetime.now(dt.UTC)
    assert _cycle(app, front).sent == 1 and _row(app).status == "sent"
    counts = front.counts()
    assert counts["ServiceRequest"] == counts["Task"] == counts["Patient"] == 1


def _refusing_entry_2(request: bytes) -> bytes:
    """A transaction-response with every entry created but entry 2 refused (422)."""
    statuses = ["201 Created"] * len(json.loads(request)["entry"])
    statuses[2] = "422 Unprocessable Entity"
    return _bundle(*statuses)


@pytest.mark.sqlite_only
def test_an_entry_central_refused_in_its_answer_is_not_counted_as_sent(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any], front: Front) -> None:
    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    front.then("POST", "/fhir", Reply(200, headers=FHIR_JSON, respond=_refusing_entry_2))
    report = _cycle(app, front)
    row = _row(app)
    assert report.sent == 0 and report.dead == 1 and row.status == "dead"  # an admin is told
    assert "entry 2" in (row.last_error or "") and "422" in (row.last_error or "")


@pytest.mark.sqlite_only
@pytest.mark.parametrize(("code", "elsewhere", "followed"), [
    (307, False, True), (308, False, True),
    (301, False, False), (302, False, False), (303, False, False),
    (301, True, False), (302, True, False), (307, True, False), (308, True, False),
])
def test_a_redirect_is_followed_only_to_central_s_own_address_keeping_the_method(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any], upstream: str,
        front: Front, code: int, elsewhere: bool, followed: bool) -> None:
    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    with misbehaving(upstream, host="localhost", token=TOKEN) as other:
        target = (other.url if elsewhere else front.url) + "/moved/fhir"
        front.always("POST", "/fhir", Reply(code, b"", (("Location", target),)))
        report = _cycle(app, front)
    row = _row(app)
    if followed:
        assert report.sent == 1 and row.status == "sent"
        assert front.counts()["ServiceRequest"] == 1
        return
    # Not followed: members' data never went to the other address, nor as a GET; the row
    # waits, and its error says where central pointed and which setting to change.
    assert other.seen == [] and [m for m, p, _ in front.seen if p == "/moved/fhir"] == []
    assert row.status == "pending" and report.central_unavailable
    assert f"answered {code}" in (row.last_error or "") and target in (row.last_error or "")
    assert "CENTRAL_URL" in (row.last_error or "")
    assert "ServiceRequest" not in front.counts()


@pytest.mark.sqlite_only
@pytest.mark.parametrize(("header", "crisis", "at_least", "at_most"), [
    ("120", False, 120, 121),  # seconds
    ("120", True, 30, 31),  # a crisis keeps its own short cap
    ("Wed, 21 Oct 2037 07:28:00 GMT", False, 600, 601),  # a date years off: our cap
    ("in 200 s", False, 195, 201),  # an HTTP date (made when the test runs)
])
def test_retry_after_is_honoured_within_our_caps(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any], front: Front,
        header: str, crisis: bool, at_least: float, at_most: float) -> None:
    _submit(app, client, site, kiosk, PHQ9_ITEM9 if crisis else PHQ9_MODERATE)
    if header == "in 200 s":
        header = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=200)).strftime(
            "%a, %d %b %Y %H:%M:%S GMT")
    front.then("POST", "/fhir", Reply(429, b"", (("Retry-After", header),)))
    before = dt.datetime.now(dt.UTC)
    report = _cycle(app, front)
    row = _row(app)
    wait = (row.next_attempt_at.replace(tzinfo=dt.UTC) - before).total_seconds()
    assert at_least <= wait <= at_most, wait
    assert report.hold_until is not None and report.central_unavailable
    assert "answered 429" in (row.last_error or "")


@pytest.mark.sqlite_only
def test_the_worker_asks_nothing_of_central_while_it_said_to_wait(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any], front: Front,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """After a 429 with Retry-After, the next cycles neither pull nor revive the backlog,
    which the directory pull answering would otherwise make due again at once."""
    import time

    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    # The keys' own transaction goes first; the row's is refused.
    front.then("POST", "/fhir", None, Reply(429, b"", (("Retry-After", "120"),)))
    override(app, CENTRAL_URL=front.url + "/fhir", CENTRAL_TOKEN=TOKEN,
             CENTRAL_ALLOW_INSECURE_HTTP=True)
    cycles: list[int] = []

    class Enough(Exception):
        """Three cycles are enough."""

    def sleep(seconds: float) -> None:
        cycles.append(len(front.seen))
        if len(cycles) == 3:
            raise Enough

    monkeypatch.setattr(time, "sleep", sleep)
    result = CliRunner().invoke(main, ["sync", "--interval", "0.01"], obj={"app": app})
    assert isinstance(result.exception, Enough), result.output
    assert front.transactions() == 2 and cycles[0] == cycles[1] == cycles[2]
    assert _row(app).status == "pending"


@pytest.mark.sqlite_only
@pytest.mark.parametrize(("path", "body"), [
    ("/fhir/Practitioner", b"[]"), ("/fhir/Practitioner", b'"maintenance"'),
    ("/fhir/Practitioner", b'{"resourceType": "Bundle", "entry": ["x", 1]}'),
    ("/fhir/Task", b"[1]"),
])
def test_a_search_answered_with_the_wrong_json_never_stops_the_worker(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any], front: Front,
        path: str, body: bytes) -> None:
    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    front.always("GET", path, Reply(200, body, FHIR_JSON))
    override(app, CENTRAL_URL=front.url + "/fhir", CENTRAL_TOKEN=TOKEN,
             CENTRAL_ALLOW_INSECURE_HTTP=True)
    result = CliRunner().invoke(main, ["sync", "--once"], obj={"app": app})
    assert result.exit_code == 0, (result.output, result.exception)
    assert "pull failed" in result.output and "not a Bundle of resources" in result.output
    assert _row(app).status == "sent"  # forwarding went on


@pytest.mark.sqlite_only
def test_a_pull_that_trips_on_an_answer_is_logged_and_forwarding_goes_on(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any], front: Front,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever central's data makes our reading of it raise, the worker forwards."""
    from onsite_server.services import directory

    def tripped(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("identifier")

    monkeypatch.setattr(directory, "pull_directory", tripped)
    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    override(app, CENTRAL_URL=front.url + "/fhir", CENTRAL_TOKEN=TOKEN,
             CENTRAL_ALLOW_INSECURE_HTTP=True)
    result = CliRunner().invoke(main, ["sync", "--once"], obj={"app": app})
    assert result.exit_code == 0, (result.output, result.exception)
    assert "directory pull failed: KeyError" in result.output
    assert _row(app).status == "sent"


@pytest.mark.parametrize("body", [b"<html>sign in</html>", b"[]", b'{"token_type": "bearer"}'])
def test_a_token_endpoint_that_answers_200_without_a_token_is_a_central_error(
        front: Front, body: bytes) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    front.always("POST", "/token", Reply(200, body, (("Content-Type", "application/json"),)))
    smart = SmartAuth(client_id="onsite", token_url=front.url + "/token", private_key_pem=pem)
    with pytest.raises(CentralError) as failed:
        CentralClient(front.url + "/fhir", smart=smart).authenticate()
    assert "without an access_token" in str(failed.value) and failed.value.retryable


@pytest.mark.sqlite_only
def test_a_read_slower_than_the_timeout_is_retried_and_named(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any], front: Front) -> None:
    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    front.then("POST", "/fhir", Reply(200, _bundle(), FHIR_JSON, forward=True, delay=2.5))
    report = _cycle(app, front, CENTRAL_READ_TIMEOUT_SECONDS=1)
    row = _row(app)
    assert report.central_unavailable and row.status == "pending"
    assert "no answer within the read timeout (1 s)" in (row.last_error or "")


@pytest.mark.sqlite_only
def test_an_expired_token_is_named_and_the_row_waits(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any], front: Front) -> None:
    """Central took rows, then refuses the token (401): the rows wait, nothing is lost, and
    the error says it is the token."""
    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    assert _cycle(app, front).sent == 1
    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    front.always("POST", "/fhir", Reply(401, b"", (("WWW-Authenticate", "Bearer"),)))
    report = _cycle(app, front)
    with get_db(app).transaction(write=False) as session:
        waiting = session.scalars(select(OutboxMessage).where(
            OutboxMessage.status == "pending")).one()
    assert report.central_unavailable and waiting.attempts == 1
    assert "answered 401" in (waiting.last_error or "")
    assert "does not accept our token" in (waiting.last_error or "")


def test_retry_after_reads_seconds_and_http_dates() -> None:
    from onsite_server.central_answers import retry_after

    assert retry_after("120") == 120.0
    assert retry_after(" 0 ") == 0.0
    assert retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now=784111777.0 - 60) == 60.0
    assert retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now=784111777.0 + 60) == 0.0
    for unreadable in (None, "", "soon", "-5", "1.5"):
        assert retry_after(unreadable) is None


def _certificate(folder: Path, name: str, *, ip: bool) -> tuple[Path, Path]:
    """A self-signed certificate for a DNS name or an IP address: (cert, key) files."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name)) if ip \
        else x509.DNSName(name)
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / f"{name}-{id(key)}.pem", folder / f"{name}-{id(key)}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.mark.sqlite_only
@pytest.mark.parametrize("fault", ["another name", "another certificate"])
def test_a_tls_certificate_that_does_not_match_or_changed_is_named_and_nothing_is_sent(
        app: Flask, client: Any, site: Any, kiosk: dict[str, Any], upstream: str,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    import ssl

    trusted, _ = _certificate(tmp_path, "127.0.0.1", ip=True)
    served = _certificate(tmp_path, "localhost", ip=False) if fault == "another name" \
        else _certificate(tmp_path, "127.0.0.1", ip=True)  # a new key central did not pin
    if fault == "another name":
        trusted = served[0]  # trusted, but for another name than the one we connect to
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(trusted))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*served)
    _submit(app, client, site, kiosk, PHQ9_MODERATE)
    with misbehaving(upstream, ssl_context=context, token=TOKEN) as secure:
        report = _cycle(app, secure)
        row = _row(app)
        assert report.central_unavailable and row.status == "pending"
        assert "TLS certificate was refused" in (row.last_error or "")
        reason = "mismatch" if fault == "another name" else "self-signed"
        assert reason in (row.last_error or "")
        assert [p for _m, p, _t in secure.seen] == []  # no request got through
        assert "ServiceRequest" not in secure.counts()
