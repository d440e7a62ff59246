"""SMART Backend Services as the spec says: a kid on every assertion (the RFC 7638 thumbprint
unless configured), our public keys published, the token endpoint discovered, one fresh token
after a 401, the narrowest v2 scopes, and invalid_client treated as the stop it is."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask, Response, request
from flask.testing import FlaskClient
from sqlalchemy import select

from central_emulator import create_app as central_app
from central_emulator.smart import scope_allows
from onsite_server import devserver
from onsite_server.app_settings import override
from onsite_server.central import (
    SCOPE_PERMISSIONS,
    SCOPES,
    CentralClient,
    CentralError,
    SmartAuth,
    jwk_thumbprint,
    public_jwk,
)
from onsite_server.db import get_db
from onsite_server.fhir.samples import samples
from onsite_server.models import Alert

from ...live import serve_in_thread

# RFC 7638 section 3.1: this RSA key's thumbprint is the text below.
RFC7638_JWK = {
    "kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSo"
         "c_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YG"
         "jQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt"
         "-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDK"
         "gw"}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def _pem(key: Any) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _header(assertion: str) -> dict[str, Any]:
    import base64

    part = assertion.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def test_the_thumbprint_matches_rfc_7638() -> None:
    assert jwk_thumbprint(RFC7638_JWK) == RFC7638_THUMBPRINT


def test_every_assertion_carries_a_kid_the_thumbprint_by_default() -> None:
    pem = _pem(ec.generate_private_key(ec.SECP384R1()))
    auth = SmartAuth(client_id="onsite", token_url="https://c.example/token",
                     private_key_pem=pem)
    header = _header(auth.assertion())
    assert header["kid"] == jwk_thumbprint(public_jwk(pem)) == auth.jwks()["keys"][0]["kid"]
    configured = SmartAuth(client_id="onsite", token_url="https://c.example/token",
                           private_key_pem=pem, key_id="k-2026")
    assert _header(configured.assertion())["kid"] == "k-2026"


def test_the_scopes_are_v2_and_cover_exactly_what_the_sync_sends_and_reads() -> None:
    assert "*" not in SCOPES and "write" not in SCOPES and "read" not in SCOPES.split(".")
    needed: dict[str, set[str]] = {}
    for bundle in samples().values():
        for entry in bundle["entry"]:
            req = entry["request"]
            kind = req["url"].split("?")[0].split("/")[0]
            letters = {"POST": "c", "PUT": "cu" if "?" in req["url"] else "u"}[req["method"]]
            needed.setdefault(kind, set()).update(letters)
    # The site's public keys go with every bundle as Binary PUTs (sync.with_keys), made at
    # central by the first one.
    needed.setdefault("Binary", set()).update("cu")
    # The searches: the directory pull, central's copies before a merge, statuses.
    # (Every shared resource is read back before a merge: the Patient that gains the chosen
    # contact and the contact preference too.)
    for kind in ("Practitioner", "PractitionerRole", "CareTeam", "Task", "ServiceRequest",
                 "Patient", "CommunicationRequest"):
        needed.setdefault(kind, set()).add("s")
    # Shared resources merged with central's edits are read back by id before an If-Match.
    for kind in ("ServiceRequest", "Task", "CareTeam", "CommunicationRequest"):
        needed.setdefault(kind, set()).add("r")
    for kind, letters in needed.items():
        for letter in letters:
            assert scope_allows(SCOPES, kind, letter), (kind, letter)
    # Nothing asked for that no message or search uses (reads back central's copies: r).
    unused = {k for k in SCOPE_PERMISSIONS if k not in needed}
    assert unused == set()


@pytest.fixture
def fake_central() -> Iterator[tuple[str, dict[str, Any]]]:
    """A central with discovery, a token endpoint and a FHIR base whose answers a test sets."""
    state: dict[str, Any] = {"tokens": 0, "auth": [], "refuse": set(), "token_status": 200}
    app = Flask("fake-central")

    @app.get("/fhir/.well-known/smart-configuration")
    def discovery() -> Response:
        return Response(json.dumps({"token_endpoint": request.url_root + "oauth/token"}),
                        mimetype="application/json")

    @app.post("/oauth/token")
    def token() -> tuple[Response, int]:
        state["tokens"] += 1
        state["scope"] = request.form["scope"]
        if state["token_status"] != 200:
            return Response(json.dumps({"error": "invalid_client"}),
                            mimetype="application/json"), state["token_status"]
        return Response(json.dumps({"access_token": f"tok-{state['tokens']}", "expires_in": 300}),
                        mimetype="application/json"), 200

    @app.post("/fhir")
    def fhir() -> tuple[Response, int]:
        given = request.headers.get("Authorization", "")
        state["auth"].append(given)
        status = 401 if given.removeprefix("Bearer ") in state["refuse"] else 200
        return Response(json.dumps({"resourceType": "Bundle", "type": "transaction-response"}),
                        mimetype="application/fhir+json"), status

    with serve_in_thread(app) as port:
        yield f"http://127.0.0.1:{port}", state


def _client(base: str) -> CentralClient:
    pem = _pem(ec.generate_private_key(ec.SECP384R1()))
    return CentralClient(base + "/fhir", smart=SmartAuth(
        client_id="onsite", token_url=None, private_key_pem=pem, base_url=base + "/fhir"))


BUNDLE = {"resourceType": "Bundle", "type": "transaction"}


def test_the_token_endpoint_is_discovered(fake_central: tuple[str, dict[str, Any]]) -> None:
    base, state = fake_central
    client = _client(base)
    client.transaction(BUNDLE)
    assert state["tokens"] == 1 and client.smart is not None
    assert client.smart.token_url == base + "/oauth/token"  # not <base>/fhir/auth/token
    assert state["scope"] == SCOPES


def test_a_401_gets_one_new_token_then_the_same_request_again(
        fake_central: tuple[str, dict[str, Any]]) -> None:
    base, state = fake_central
    client = _client(base)
    client.transaction(BUNDLE)
    state["refuse"].add("tok-1")  # central restarted and forgot it
    client.transaction(BUNDLE)
    assert state["auth"] == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]
    state["refuse"].update({"tok-2", "tok-3"})
    with pytest.raises(CentralError) as refused:
        client.transaction(BUNDLE)
    assert refused.value.status == 401
    assert state["tokens"] == 3  # one new token per refused request, not a loop


def test_invalid_client_is_not_transient(fake_central: tuple[str, dict[str, Any]]) -> None:
    base, state = fake_central
    state["token_status"] = 401
    with pytest.raises(CentralError) as refused:
        _client(base).transaction(BUNDLE)
    assert refused.value.credentials_refused and "invalid_client" in str(refused.value)


def test_the_emulator_refuses_what_the_scope_does_not_cover() -> None:
    app = central_app({"TESTING": True})
    key = ec.generate_private_key(ec.SECP384R1())
    auth = SmartAuth(client_id="narrow", token_url="http://localhost/fhir/auth/token",
                     private_key_pem=_pem(key), scope="system/Practitioner.rs")
    client: FlaskClient = app.test_client()
    assert client.post("/_clients", json={"client_id": "narrow", "jwks": auth.jwks()}
                       ).status_code == 200
    token = client.post("/fhir/auth/token", data={
        "grant_type": "client_credentials", "scope": auth.scope,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": auth.assertion()}).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/fhir/Practitioner", headers=headers).status_code == 200
    bundle = samples()["booking"] if "booking" in samples() else next(iter(samples().values()))
    refused = client.post("/fhir", json=bundle, headers=headers)
    assert refused.status_code == 403
    assert "scope" in refused.get_json()["issue"][0]["diagnostics"]


@pytest.mark.slow
def test_published_keys_register_at_central_and_a_refused_client_stops_the_sync(
        app: Flask, tmp_path: Path) -> None:
    """Our JWKS, fetched from this server, is what central registers; then the sync runs on a
    discovered endpoint; with a key central does not hold it stops at once, with an alert."""
    central = central_app({"TESTING": True})
    with serve_in_thread(central) as port:
        base = f"http://127.0.0.1:{port}"
        key_path = tmp_path / "smart.pem"
        key_path.write_bytes(_pem(ec.generate_private_key(ec.SECP384R1())))
        override(app, CENTRAL_CLIENT_ID="onsite-site", CENTRAL_PRIVATE_KEY_PATH=str(key_path))
        published = app.test_client().get("/.well-known/smart-client-jwks.json")
        assert published.status_code == 200
        jwks = published.get_json()
        assert jwks["keys"][0]["kid"] == jwk_thumbprint(jwks["keys"][0])
        assert "d" not in jwks["keys"][0]  # the public half only
        requests.post(base + "/_clients", json={"client_id": "onsite-site", "jwks": jwks},
                      timeout=10).raise_for_status()
        env = {**os.environ, "ONSITE_DATABASE_URL": app.config["DATABASE_URL"],
               "ONSITE_INSTANCE_PATH": app.instance_path,
               "ONSITE_SECRET_KEY": app.config["SECRET_KEY"],
               "ONSITE_CENTRAL_URL": base + "/fhir", "ONSITE_CENTRAL_ALLOW_INSECURE_HTTP": "1",
               "ONSITE_CENTRAL_CLIENT_ID": "onsite-site",
               "ONSITE_CENTRAL_PRIVATE_KEY_PATH": str(key_path)}
        good = devserver.run(env, "sync", "--once", timeout=120)
        assert good.returncode == 0, good.stderr

        other = tmp_path / "other.pem"
        other.write_bytes(_pem(ec.generate_private_key(ec.SECP384R1())))
        bad = devserver.run({**env, "ONSITE_CENTRAL_PRIVATE_KEY_PATH": str(other)}, "sync",
                            "--once", timeout=120)
        assert bad.returncode != 0 and "invalid_client" in bad.stderr
        with get_db(app).transaction(write=False) as session:
            kinds = list(session.scalars(select(Alert.kind).where(Alert.cleared_at.is_(None))))
        assert kinds.count("central_credentials") == 1
