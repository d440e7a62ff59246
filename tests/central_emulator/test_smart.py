"""SMART Backend Services: a client-credentials token from a signed JWT assertion (ES384 or
RS384), then FHIR with that bearer token."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from flask.testing import FlaskClient

from central_emulator import create_app
from central_emulator.smart import ASSERTION_TYPE

TOKEN_URL = "http://localhost/fhir/auth/token"
Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _jwk(key: Key, kid: str) -> dict[str, Any]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        numbers = key.public_key().public_numbers()
        return {"kty": "EC", "crv": "P-384", "kid": kid, "x": _b64(numbers.x.to_bytes(48, "big")),
                "y": _b64(numbers.y.to_bytes(48, "big"))}
    rsa_numbers = key.public_key().public_numbers()
    return {"kty": "RSA", "kid": kid, "n": _uint(rsa_numbers.n), "e": _uint(rsa_numbers.e)}


def _assertion(key: Key, kid: str, client: str = "onsite-demo", **claims: Any) -> str:
    alg = "ES384" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS384"
    body = {"iss": client, "sub": client, "aud": TOKEN_URL, "exp": int(time.time()) + 240,
            "jti": str(uuid.uuid4()), **claims}
    signed = (f"{_b64(json.dumps({'alg': alg, 'kid': kid, 'typ': 'JWT'}).encode())}."
              f"{_b64(json.dumps(body).encode())}")
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(signed.encode(), ec.ECDSA(hashes.SHA384())))
        signature = r.to_bytes(48, "big") + s.to_bytes(48, "big")
    else:
        signature = key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA384())
    return f"{signed}.{_b64(signature)}"


def _form(assertion: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion, "scope": "system/*.cruds"}


@pytest.fixture
def ec_key() -> ec.EllipticCurvePrivateKey:
    """The onsite server's ES384 key."""
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture
def smart(ec_key: ec.EllipticCurvePrivateKey) -> FlaskClient:
    """An emulator that knows one SMART client."""
    return create_app({"TESTING": True, "SMART_CLIENTS": {
        "onsite-demo": {"keys": [_jwk(ec_key, "k1")]}}}).test_client()


def test_a_token_from_a_signed_assertion_opens_fhir(smart: FlaskClient,
                                                    ec_key: ec.EllipticCurvePrivateKey) -> None:
    discovery = smart.get("/fhir/.well-known/smart-configuration").json
    assert discovery["token_endpoint"] == TOKEN_URL
    assert "ES384" in discovery["token_endpoint_auth_signing_alg_values_supported"]
    CapabilityStatement.model_validate(smart.get("/fhir/metadata").json)
    assert smart.get("/fhir/Practitioner").status_code == 401
    answer = smart.post("/fhir/auth/token", data=_form(_assertion(ec_key, "k1")))
    assert answer.status_code == 200, answer.json
    assert answer.json["token_type"] == "bearer" and answer.json["expires_in"] == 300
    bearer = {"Authorization": f"Bearer {answer.json['access_token']}"}
    assert smart.get("/fhir/Practitioner", headers=bearer).status_code == 200
    assert smart.get("/fhir/Practitioner", headers={"Authorization": "Bearer guess"}
                     ).status_code == 401


def test_rs384_clients_register_by_hand(client: FlaskClient) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    registered = client.post("/_clients", json={"client_id": "rsa-site",
                                                "jwks": {"keys": [_jwk(key, "r1")]}})
    assert registered.status_code == 200
    answer = client.post("/fhir/auth/token", data=_form(_assertion(key, "r1", "rsa-site")))
    assert answer.status_code == 200, answer.json
    assert client.post("/_clients", json={"client_id": "x", "jwks": {"keys": [
        {"kty": "oct"}]}}).status_code == 400


@pytest.mark.parametrize("change, error", [
    ({"aud": "http://elsewhere/token"}, "aud"),
    ({"exp": int(time.time()) - 600}, "expired"),
    ({"exp": int(time.time()) + 3600}, "five minutes"),
    ({"sub": "someone-else"}, "unknown client"),
    ({"jti": ""}, "jti"),
])
def test_bad_assertions_are_refused(smart: FlaskClient, ec_key: ec.EllipticCurvePrivateKey,
                                    change: dict[str, Any], error: str) -> None:
    answer = smart.post("/fhir/auth/token", data=_form(_assertion(ec_key, "k1", **change)))
    assert answer.status_code == 401
    assert answer.json["error"] == "invalid_client" and error in answer.json["error_description"]


def test_replays_forgeries_and_wrong_grants_are_refused(smart: FlaskClient,
                                                        ec_key: ec.EllipticCurvePrivateKey
                                                        ) -> None:
    assertion = _assertion(ec_key, "k1")
    assert smart.post("/fhir/auth/token", data=_form(assertion)).status_code == 200
    replay = smart.post("/fhir/auth/token", data=_form(assertion))
    assert replay.status_code == 401 and "jti" in replay.json["error_description"]
    other = ec.generate_private_key(ec.SECP384R1())
    forged = smart.post("/fhir/auth/token", data=_form(_assertion(other, "k1")))
    assert forged.status_code == 401 and "signature" in forged.json["error_description"]
    wrong = smart.post("/fhir/auth/token", data={**_form(_assertion(ec_key, "k1")),
                                            "grant_type": "password"})
    assert wrong.status_code == 400 and wrong.json["error"] == "unsupported_grant_type"
    assert smart.post("/fhir/auth/token", data=_form("not.a.jwt")).status_code == 401
