"""SMART Backend Services for the emulator: the client-credentials grant with a signed JWT.

A registered client (its id and public JWKs) posts ``grant_type=client_credentials`` with a
``client_assertion`` JWT signed with ES384 or RS384 (iss = sub = client id, aud = the token
URL, exp at most five minutes ahead, a jti never seen before) and gets a short-lived bearer
token. Verified with ``cryptography`` alone; https://hl7.org/fhir/smart-app-launch/backend-services.html
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("ES384", "RS384")
TOKEN_SECONDS = 300
MAX_ASSERTION_SECONDS = 300  # the spec: exp no more than five minutes in the future
_LEEWAY = 60

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


class OAuthError(Exception):
    """A refused token request: an RFC 6749 error code, a description and an HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.status = status

    def body(self) -> dict[str, str]:
        """Return the RFC 6749 error body."""
        return {"error": self.error, "error_description": str(self)}


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise OAuthError("invalid_client", "the assertion is not base64url") from exc


def _int(text: Any) -> int:
    if not isinstance(text, str):
        raise ValueError("a key parameter is missing")
    return int.from_bytes(_unb64(text), "big")


def key_from_jwk(jwk: Mapping[str, Any]) -> tuple[str | None, PublicKey]:
    """Read a public EC P-384 or RSA JWK; return its kid and key."""
    kid = jwk.get("kid")
    if jwk.get("kty") == "EC" and jwk.get("crv") == "P-384":
        key: PublicKey = ec.EllipticCurvePublicNumbers(
            _int(jwk.get("x")), _int(jwk.get("y")), ec.SECP384R1()).public_key()
    elif jwk.get("kty") == "RSA":
        key = rsa.RSAPublicNumbers(_int(jwk.get("e")), _int(jwk.get("n"))).public_key()
    else:
        raise ValueError("only EC P-384 and RSA keys are accepted")
    return (str(kid) if kid is not None else None), key


@dataclass
class Smart:
    """Registered clients, the access tokens issued, and the assertion ids already used."""

    clients: dict[str, dict[str | None, PublicKey]] = field(default_factory=dict)
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    used_jti: dict[str, float] = field(default_factory=dict)
    scopes: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, client_id: str, jwks: Any) -> int:
        """Trust a client's public keys (a JWK Set); return how many were read."""
        keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
        if not client_id or not isinstance(keys, list) or not keys:
            raise ValueError("a client needs an id and a JWK Set with keys")
        found = dict(key_from_jwk(k) for k in keys if isinstance(k, Mapping))
        if len(found) != len(keys):
            raise ValueError("every key must be a JSON object")
        with self.lock:
            self.clients[client_id] = found
        return len(found)

    @property
    def enabled(self) -> bool:
        """Whether any client is registered (then FHIR needs a token)."""
        return bool(self.clients)

    def issue(self, form: Mapping[str, str], token_url: str,
              now: datetime | None = None) -> dict[str, Any]:
        """Check a client-credentials request and return the token response."""
        moment = (now or datetime.now(UTC)).timestamp()
        if form.get("grant_type") != "client_credentials":
            raise OAuthError("unsupported_grant_type", "grant_type must be client_credentials")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
        claims = self._verified_claims(form.get("client_assertion", ""), token_url, moment)
        scope = form.get("scope") or ""
        if not scope or parse_scope(scope) is None:
            raise OAuthError("invalid_scope", "scope must be SMART system scopes, such as "
                             "system/Observation.c or system/Patient.cru")
        token = secrets.token_urlsafe(32)
        with self.lock:
            # Forget what has expired, so the tables stay bounded by what is live.
            self.tokens = {t: v for t, v in self.tokens.items() if v[1] > moment}
            self.scopes = {t: v for t, v in self.scopes.items() if t in self.tokens}
            self.used_jti = {j: e for j, e in self.used_jti.items() if e > moment - _LEEWAY}
            if claims["jti"] in self.used_jti:
                raise OAuthError("invalid_client", "the assertion's jti was already used", 401)
            self.used_jti[claims["jti"]] = float(claims["exp"])
            self.tokens[token] = (claims["iss"], moment + TOKEN_SECONDS)
            self.scopes[token] = scope
        return {"access_token": token, "token_type": "bearer", "expires_in": TOKEN_SECONDS,
                "scope": scope}

    def scope_of(self, token: str) -> str:
        """The scope granted with a token (empty when unknown)."""
        with self.lock:
            return self.scopes.get(token, "")

    def valid(self, token: str, now: datetime | None = None) -> bool:
        """Whether a bearer token was issued here and has not expired."""
        moment = (now or datetime.now(UTC)).timestamp()
        with self.lock:
            entry = self.tokens.get(token)
        return entry is not None and entry[1] > moment

    def _verified_claims(self, assertion: str, token_url: str, moment: float) -> dict[str, Any]:
        parts = assertion.split(".")
        if len(parts) != 3:
            raise OAuthError("invalid_client", "the client_assertion is not a signed JWT", 401)
        try:
            header = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
        except ValueError as exc:
            raise OAuthError("invalid_client", "the assertion is not JSON", 401) from exc
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise OAuthError("invalid_client", "the assertion is not a JWT", 401)
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise OAuthError("invalid_client", f"alg must be one of {', '.join(ALGORITHMS)}",
                             401)
        client = claims.get("iss")
        keys = self.clients.get(str(client))
        if keys is None or claims.get("sub") != client:
            raise OAuthError("invalid_client", "unknown client (iss and sub must be the "
                             "registered client id)", 401)
        # SMART Backend Services: the header's kid names the client's key; it is required.
        if not isinstance(header.get("kid"), str) or not header["kid"]:
            raise OAuthError("invalid_client", "the assertion's header has no kid", 401)
        key = keys.get(header["kid"])
        if key is None:
            raise OAuthError("invalid_client", "no registered key has this kid", 401)
        _check_signature(alg, key, f"{parts[0]}.{parts[1]}".encode(), _unb64(parts[2]))
        audience = claims.get("aud")
        if token_url not in (audience if isinstance(audience, list) else [audience]):
            raise OAuthError("invalid_client", f"aud must be {token_url}", 401)
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp <= moment - _LEEWAY:
            raise OAuthError("invalid_client", "the assertion has expired", 401)
        if exp > moment + MAX_ASSERTION_SECONDS + _LEEWAY:
            raise OAuthError("invalid_client", "exp is more than five minutes ahead", 401)
        if not isinstance(claims.get("jti"), str) or not claims["jti"]:
            raise OAuthError("invalid_client", "the assertion has no jti", 401)
        return claims


def _check_signature(alg: str, key: PublicKey, signed: bytes, signature: bytes) -> None:
    try:
        if alg == "ES384" and isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 96:
                raise InvalidSignature
            # JWS carries r || s; cryptography wants DER.
            der = encode_dss_signature(int.from_bytes(signature[:48], "big"),
                                       int.from_bytes(signature[48:], "big"))
            key.verify(der, signed, ec.ECDSA(hashes.SHA384()))
        elif alg == "RS384" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA384())
        else:
            raise InvalidSignature
    except InvalidSignature as exc:
        raise OAuthError("invalid_client", "the assertion's signature does not verify "
                         "with the client's key", 401) from exc


# SMART v1 permissions in v2 letters (c create, r read, u update, d delete, s search).
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(r"system/(\*|[A-Z][A-Za-z]+)\.([a-z*]+)")


def parse_scope(scope: str) -> dict[str, str] | None:
    """Map each resource type (or *) to its permission letters; None if any part is not a
    SMART system scope."""
    granted: dict[str, str] = {}
    for part in scope.split():
        found = _SCOPE.fullmatch(part)
        if found is None:
            return None
        kind, perms = found.groups()
        letters = _V1.get(perms, perms)
        if not letters or any(c not in "cruds" for c in letters) or (
                perms not in _V1 and list(letters) != sorted(letters, key="cruds".index)):
            return None
        granted[kind] = granted.get(kind, "") + letters
    return granted


def scope_allows(scope: str, kind: str, permission: str) -> bool:
    """Whether a granted scope lets a client do permission (one letter) on kind."""
    granted = parse_scope(scope) or {}
    return permission in granted.get(kind, "") or permission in granted.get("*", "")
