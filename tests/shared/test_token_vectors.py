"""docs/tokens.md's test vectors: exactly what ``shared.token_vectors`` makes, each verifying
as stated with our code and with an independent verifier written from the document alone."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from shared.token_vectors import vectors
from shared.tokens import KeyRing, Purpose, TokenError, verify

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "tokens.md"


def _document() -> dict[str, Any]:
    text = DOC_PATH.read_text(encoding="utf-8")
    found = re.search(r"<!-- vectors:begin -->\n```json\n(.*?)\n```\n<!-- vectors:end -->",
                      text, re.S)
    assert found, "docs/tokens.md has no vectors block"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


DOC = _document()
TOKENS = DOC["tokens"]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_document_holds_exactly_the_generated_vectors() -> None:
    assert DOC == json.loads(json.dumps(vectors()))


def test_the_vectors_cover_every_refusal() -> None:
    results = {t["result"] for t in TOKENS}
    assert results == {"ok", "malformed", "non_canonical", "unknown_key", "retired_key",
                       "bad_signature", "wrong_purpose", "not_yet_valid", "expired", "revoked"}


@pytest.mark.parametrize("vector", TOKENS, ids=[t["name"] for t in TOKENS])
def test_our_verifier_gives_each_vectors_result(vector: dict[str, Any]) -> None:
    ring = KeyRing()
    ring.add_jwks(DOC["key_set"])
    ring.revoke(DOC["revoked"])
    try:
        token = verify(vector["token"], ring, purpose=Purpose.from_label(vector["purpose"]),
                       now=_time(DOC["checked_at"]),
                       leeway=timedelta(seconds=DOC["leeway_seconds"]))
    except TokenError as exc:
        assert exc.reason == vector["result"]
        return
    assert vector["result"] == "ok"
    claims = vector["claims"]
    assert (token.key_id, token.token_id, dict(token.fields)) == (
        claims["kid"], claims["token_id"], claims["fields"])
    assert (token.issued_at, token.expires_at) == (_time(claims["issued_at"]),
                                                   _time(claims["expires_at"]))


# -- an independent verifier, written from docs/tokens.md only -----------------------------

class Refused(Exception):
    """The document's reason for refusing a token."""


FIELD_NAMES = {1: "subject", 2: "advocate", 3: "site", 4: "slot"}
PURPOSES = {"advocate_link": 1, "ticket": 2}


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def _trusted(key_set: dict[str, Any]) -> tuple[dict[str, tuple[bytes, int]], set[str]]:
    retired = {r["kid"] for r in key_set.get("retired", [])}
    keys = {}
    for jwk in key_set["keys"]:
        raw = _unb64(jwk["x"])
        assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and len(raw) == 32
        assert hashlib.sha256(raw).digest()[:8].hex() == jwk["kid"]
        assert jwk["status"] in ("active", "rotated")
        if jwk["kid"] not in retired:
            keys[jwk["kid"]] = (raw, PURPOSES[jwk["purpose"]])
    return keys, retired


def independent_verify(token: str, expected: str) -> dict[str, Any]:
    """Verify as docs/tokens.md says, step by step; return the claims or raise Refused."""
    keys, retired = _trusted(DOC["key_set"])
    domain = bytes.fromhex(DOC["domain_hex"])
    if not 1 <= len(token) <= 400 or len(token) % 4 == 1:
        raise Refused("malformed")
    try:
        data = _unb64(token)
    except (binascii.Error, ValueError):
        raise Refused("malformed") from None
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode() != token:
        raise Refused("non_canonical")
    if len(data) < 34 + 64 or data[0] != 1:
        raise Refused("malformed")
    body, signature = data[:-64], data[-64:]
    kid = body[2:10].hex()
    if kid in retired:
        raise Refused("retired_key")
    if kid not in keys:
        raise Refused("unknown_key")
    raw, key_purpose = keys[kid]
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(signature, domain + body)
    except InvalidSignature:
        raise Refused("bad_signature") from None
    if body[1] != key_purpose or body[1] != PURPOSES[expected]:
        raise Refused("wrong_purpose")
    fields: dict[str, str] = {}
    at, last = 34, 0
    while at < len(body):
        if at + 2 > len(body) or at + 2 + body[at + 1] > len(body):
            raise Refused("malformed")
        fid, size = body[at], body[at + 1]
        if fid <= last or fid not in FIELD_NAMES:
            raise Refused("non_canonical")
        fields[FIELD_NAMES[fid]] = body[at + 2:at + 2 + size].decode("utf-8")
        at, last = at + 2 + size, fid
    issued = int.from_bytes(body[10:14], "big")
    expires = int.from_bytes(body[14:18], "big")
    now = _time(DOC["checked_at"]).timestamp()
    if now + DOC["leeway_seconds"] < issued:
        raise Refused("not_yet_valid")
    if now - DOC["leeway_seconds"] >= expires:
        raise Refused("expired")
    token_id = str(uuid.UUID(bytes=body[18:34]))
    if token_id in DOC["revoked"]:
        raise Refused("revoked")
    return {"kid": kid, "token_id": token_id,
            "issued_at": datetime.fromtimestamp(issued, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "expires_at": datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "fields": fields}


@pytest.mark.parametrize("vector", TOKENS, ids=[t["name"] for t in TOKENS])
def test_an_independent_verifier_from_the_document_agrees(vector: dict[str, Any]) -> None:
    try:
        claims = independent_verify(vector["token"], vector["purpose"])
    except Refused as exc:
        assert str(exc) == vector["result"]
        return
    assert vector["result"] == "ok" and claims == vector["claims"]


@pytest.mark.parametrize("vector", [t for t in TOKENS if t["result"] == "ok"],
                         ids=lambda t: t["name"])
def test_the_good_tokens_sign_again_from_their_seeds(vector: dict[str, Any]) -> None:
    claims = vector["claims"]
    (key,) = [k for k in DOC["keys"] if k["kid"] == claims["kid"]]
    private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(key["seed_hex"]))
    ids = {v: k for k, v in FIELD_NAMES.items()}
    body = bytes([1, PURPOSES[key["purpose"]]]) + bytes.fromhex(claims["kid"])
    body += int(_time(claims["issued_at"]).timestamp()).to_bytes(4, "big")
    body += int(_time(claims["expires_at"]).timestamp()).to_bytes(4, "big")
    body += uuid.UUID(claims["token_id"]).bytes
    for name in sorted(claims["fields"], key=ids.__getitem__):
        value = claims["fields"][name].encode()
        body += bytes([ids[name], len(value)]) + value
    signed = body + private.sign(bytes.fromhex(DOC["domain_hex"]) + body)
    assert base64.urlsafe_b64encode(signed).rstrip(b"=").decode() == vector["token"]
