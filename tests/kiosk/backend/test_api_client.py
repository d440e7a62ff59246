"""The kiosk's API client against a live onsite server over TLS: pinning, errors, calls."""

from __future__ import annotations

import hashlib
import ssl
import uuid

import pytest

from kiosk.api_client import (
    ApiClient,
    ApiRefused,
    CertificateMismatch,
    Unauthorized,
    server_fingerprint,
)
from kiosk.backend import Offline, Refused
from onsite_server.devserver import free_port

from .conftest import SITE
from .helpers import TlsServer


def _pinned(server: TlsServer) -> ApiClient:
    pairing = ApiClient.pair(server.url, server.pairing_code(SITE), app_version="0.1.0")
    return ApiClient(pairing.server_url, token=pairing.token, fingerprint=pairing.fingerprint)


def test_pairing_pins_the_certificate_the_server_presents(server: TlsServer) -> None:
    pairing = ApiClient.pair(server.url, server.pairing_code(SITE), app_version="0.1.0")
    served = ssl.get_server_certificate(("127.0.0.1", server.port))
    assert pairing.fingerprint == hashlib.sha256(ssl.PEM_cert_to_DER_cert(served)).hexdigest()
    assert pairing.site == SITE and pairing.token
    client = ApiClient(pairing.server_url, token=pairing.token, fingerprint=pairing.fingerprint)
    fetched = client.catalog(None)
    assert fetched is not None
    etag, body = fetched
    assert body["site"]["slug"] == SITE
    assert client.catalog(etag) is None  # 304: the cached copy is current
    client.close()


def test_a_different_certificate_is_refused_before_anything_is_sent(server: TlsServer) -> None:
    pairing = ApiClient.pair(server.url, server.pairing_code(SITE), app_version="0.1.0")
    wrong = hashlib.sha256(b"another certificate").hexdigest()
    client = ApiClient(pairing.server_url, token=pairing.token, fingerprint=wrong)
    with pytest.raises(CertificateMismatch):
        client.heartbeat({"app_version": "t", "outbox_depth": 0, "free_disk_bytes": 1})
    # The refusal is a kind of Offline: the screens offer what works without the server.
    assert issubclass(CertificateMismatch, Offline)
    client.close()


def test_an_unpinned_client_does_not_trust_the_self_signed_certificate(server: TlsServer
                                                                      ) -> None:
    client = ApiClient(server.url, token="whatever")
    with pytest.raises(Offline):
        client.catalog(None)
    client.close()


def test_problem_answers_become_refused_with_the_field(server: TlsServer) -> None:
    client = _pinned(server)
    with pytest.raises(ApiRefused) as bad_date:
        client.identify("E1", "1980-13-40")
    assert bad_date.value.status == 422 and bad_date.value.field == "birth_date"
    with pytest.raises(Refused) as nobody:
        client.identify("NOBODY", "1980-01-15")
    assert getattr(nobody.value, "status", None) == 404
    server.add_member(SITE, "E7001")
    found = client.identify("E7001", "1980-01-15")
    assert found.first_name == "Alex" and found.member_ref
    client.close()


def test_a_wrong_token_is_unauthorized(server: TlsServer) -> None:
    good = _pinned(server)
    client = ApiClient(server.url, token="not-a-token", fingerprint=good.fingerprint)
    with pytest.raises(Unauthorized):
        client.catalog(None)
    client.close()
    good.close()


def test_nothing_listening_is_offline() -> None:
    client = ApiClient(f"https://127.0.0.1:{free_port()}", token="t",
                       fingerprint="ab" * 32, timeout=(1.0, 1.0))
    with pytest.raises(Offline):
        client.catalog(None)
    with pytest.raises(Offline):
        server_fingerprint(client.base, timeout=1.0)


def test_submissions_crisis_alert_heartbeat_and_member_calls(server: TlsServer) -> None:
    client = _pinned(server)
    server.add_member(SITE, "E7002")
    ref = client.identify("E7002", "1980-01-15").member_ref
    key = str(uuid.uuid4())
    item = {"idempotency_key": key, "member_ref": ref, "session_id": str(uuid.uuid4()),
            "instrument_id": "phq9", "instrument_version": "1.0.0",
            "answers": {str(i): 1 for i in range(1, 10)} | {"9": 0},
            "taken_at": "2026-01-01T10:00:00+00:00"}
    first = client.submit([item])
    again = client.submit([item])
    assert [a["status"] for a in first + again] == ["accepted", "replayed"]
    alert = client.crisis_alert({"idempotency_key": str(uuid.uuid4()), "trigger": "phq9_item9",
                                 "raised_at": "2026-01-01T10:00:00+00:00"})
    assert alert["trigger"] == "phq9_item9"
    beat = client.heartbeat({"app_version": "t", "outbox_depth": 3, "free_disk_bytes": 10})
    assert beat["ok"] is True
    consent = client.consent({"idempotency_key": str(uuid.uuid4()), "member_ref": ref,
                              "consent": True, "contact_method": "email",
                              "contact_time": "morning", "email": "alex@example.com"})
    assert consent["consent"] is True and consent["referral_id"]
    assert client.bookings(ref) == []
    client.close()


def test_each_batch_of_submissions_goes_on_a_connection_of_its_own(server: TlsServer) -> None:
    """So that a draining kiosk's requests in flight are taken by whichever process is free."""
    client = _pinned(server)
    seen: list[tuple[str, str | None, str | None]] = []
    client.session.hooks["response"].append(lambda r, *_a, **_k: seen.append(
        (r.request.path_url, r.request.headers.get("Connection"), r.headers.get("Connection"))))
    item = {"idempotency_key": str(uuid.uuid4()), "anonymous": True,
            "session_id": str(uuid.uuid4()), "instrument_id": "phq9",
            "instrument_version": "1.0.0", "answers": {str(i): 0 for i in range(1, 10)},
            "taken_at": "2026-01-01T10:00:00+00:00"}
    assert client.submit([item])[0]["status"] == "accepted"
    client.heartbeat({"app_version": "t", "outbox_depth": 0, "free_disk_bytes": 10})
    submitted, beat = seen
    # Asked to close, and closed by the server after its answer.
    assert submitted[0].endswith("/submissions") and submitted[1:] == ("close", "close")
    # Other calls keep the connection alive as before.
    assert beat[0].endswith("/heartbeat") and beat[1] != "close" and beat[2] != "close"
    client.close()
