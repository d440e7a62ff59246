"""Signed tokens for QR codes: compact, expiring, verifiable offline, free of readable data.

In the spirit of pretix's "signature scheme 1" (a small binary payload plus an Ed25519
signature), but our own layout. A token is ``base64url(body || signature)`` without padding:

    body = version (1 byte, 1) | purpose (1 byte) | key id (8 bytes)
         | issued at (4 bytes, Unix seconds, big-endian) | expires at (4 bytes)
         | token id (16 bytes, a UUID: what a revocation list names)
         | fields: (field id: 1 byte, length: 1 byte, UTF-8 value) in ascending field id
    signature = Ed25519(DOMAIN || body), 64 bytes

Fields hold opaque identifiers only (a booking id, an advocate id): never a name or any
health data. Each purpose has its own keys: a ticket key cannot sign an advocate link.
Verification refuses any non-canonical form (padding, other alphabets, stray bits, fields out
of order, trailing bytes), so no two strings verify as the same token, and gives a reason
for every refusal. Keys rotate: a ring holds the current key and recent ones by key id, and
publishes them as JWK (``kty`` OKP, ``crv`` Ed25519), each with a status (``active``: signs
new tokens; ``rotated``: signs no more, verifies what it signed). A retired key (compromised,
withdrawn) is named in the set's ``retired`` list instead: nothing signed with it verifies
again, and a retirement is never undone by a later set that still lists the key. The format
is written down, with test vectors, in docs/tokens.md.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import struct
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "FIELDS",
    "KEY_STATUSES",
    "KeyRing",
    "Purpose",
    "SigningKey",
    "Token",
    "TokenError",
    "jwk",
    "key_from_jwk",
    "mint",
    "verify",
]

VERSION = 1
DOMAIN = b"onsite-wellness token v1\x00"
_HEADER = struct.Struct(">BB8sII16s")
_SIGNATURE_SIZE = 64
MAX_TOKEN_CHARS = 400  # a QR code stays easy to scan well below this
# A published key's status: it signs new tokens, or it only verifies those it signed.
KEY_STATUSES = ("active", "rotated")
_KID = frozenset("0123456789abcdef")


class Purpose(enum.IntEnum):
    """What a token is for; each purpose is signed with its own keys."""

    ADVOCATE_LINK = 1
    TICKET = 2

    @property
    def label(self) -> str:
        """The purpose's name in JWKs and messages ("advocate_link", "ticket")."""
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Purpose:
        """Return the purpose named by its label."""
        try:
            return cls[label.upper()]
        except KeyError as exc:
            raise ValueError(f"unknown token purpose {label!r}") from exc


# Field names and their ids; ids are part of the format and never reused.
FIELDS: Mapping[str, int] = {"subject": 1, "advocate": 2, "site": 3, "slot": 4}
_FIELD_NAMES = {v: k for k, v in FIELDS.items()}


class TokenError(ValueError):
    """A token that does not verify; ``reason`` is a stable code, the message is for people."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Token:
    """What a verified token says."""

    purpose: Purpose
    key_id: str
    token_id: str
    issued_at: datetime
    expires_at: datetime
    fields: Mapping[str, str]

    @property
    def subject(self) -> str:
        """The identifier the token is about (a booking, a member link)."""
        return self.fields.get("subject", "")


def _key_id(public: Ed25519PublicKey) -> bytes:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:8]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Decode base64url without padding, refusing every non-canonical spelling."""
    if not text or len(text) > MAX_TOKEN_CHARS or len(text) % 4 == 1:
        raise TokenError("malformed", "is not a token (wrong length)")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenError("malformed", "is not a token (not base64url)") from exc
    # The strict round trip rejects padding, '+' and '/', whitespace and non-zero spare bits.
    if _b64(data) != text:
        raise TokenError("non_canonical", "is not in the one canonical encoding")
    return data


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key for one purpose, with its key id."""

    private: Ed25519PrivateKey
    purpose: Purpose

    @classmethod
    def generate(cls, purpose: Purpose) -> SigningKey:
        """Make a new random key for a purpose."""
        return cls(Ed25519PrivateKey.generate(), purpose)

    @classmethod
    def from_pem(cls, pem: bytes, purpose: Purpose) -> SigningKey:
        """Load a PKCS#8 PEM Ed25519 private key."""
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the key is not an Ed25519 private key")
        return cls(key, purpose)

    def to_pem(self) -> bytes:
        """Return the key as unencrypted PKCS#8 PEM (store it with mode 0600)."""
        return self.private.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())

    @property
    def public(self) -> Ed25519PublicKey:
        """The matching public key."""
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        """The key id carried in tokens and JWKs (16 hex digits)."""
        return _key_id(self.public).hex()


@dataclass
class KeyRing:
    """Public keys that verify tokens, by key id and purpose; the revoked token ids; and the
    retired key ids, whose tokens never verify again."""

    keys: dict[str, tuple[Ed25519PublicKey, Purpose]] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    retired: dict[str, datetime | None] = field(default_factory=dict)  # key id -> when
    active: set[str] = field(default_factory=set)  # the key ids that sign new tokens

    def add(self, public: Ed25519PublicKey, purpose: Purpose, *, active: bool = False) -> str:
        """Trust a public key for one purpose (not a retired one); return its key id."""
        kid = _key_id(public).hex()
        if kid in self.retired:
            return kid  # a retirement is final: a stale key set cannot bring the key back
        self.keys[kid] = (public, purpose)
        if active:
            self.active.add(kid)
        return kid

    def add_jwk(self, data: Mapping[str, Any]) -> str:
        """Trust a key published as a JWK by ``jwk``; return its key id."""
        public, purpose = key_from_jwk(data)
        return self.add(public, purpose, active=data.get("status") == "active")

    def add_jwks(self, data: Any) -> int:
        """Take in a JWK Set made by ``jwks``: trust its keys, honour its retirements.

        Returns how many keys it listed; raises ValueError naming the first bad entry.
        """
        keys = data.get("keys") if isinstance(data, Mapping) else None
        if not isinstance(keys, list):
            raise ValueError("a JWK Set needs a list of keys")
        retired = data.get("retired", [])
        if not isinstance(retired, list):
            raise ValueError("retired must be a list")
        for number, entry in enumerate(retired):
            if not isinstance(entry, Mapping):
                raise ValueError(f"retired {number}: not an object")
            try:
                self.retire(str(entry.get("kid", "")), _when(entry.get("retired_at")))
            except ValueError as exc:
                raise ValueError(f"retired {number}: {exc}") from exc
        for number, key in enumerate(keys):
            if not isinstance(key, Mapping):
                raise ValueError(f"key {number}: not an object")
            try:
                self.add_jwk(key)
            except ValueError as exc:
                raise ValueError(f"key {number}: {exc}") from exc
        return len(keys)

    def retire(self, kid: str, at: datetime | None = None) -> None:
        """Stop trusting a key for good: every token it signed is refused from now on."""
        if len(kid) != 16 or not set(kid) <= _KID:
            raise ValueError(f"{kid!r} is not a key id (16 lower-case hex digits)")
        self.keys.pop(kid, None)
        self.active.discard(kid)
        if self.retired.get(kid) is None:
            self.retired[kid] = at

    def revoke(self, token_ids: Iterable[str]) -> None:
        """List token ids that must no longer verify."""
        self.revoked.update(str(uuid.UUID(t)) for t in token_ids)

    def jwks(self) -> dict[str, Any]:
        """Return the ring's public keys as a JWK Set, with each key's status and the retired
        key ids (a member of the set that plain JWKS readers ignore, so they never trust it)."""
        found: dict[str, Any] = {"keys": [
            jwk(public, purpose, status="active" if kid in self.active else "rotated")
            for kid, (public, purpose) in self.keys.items()]}
        if self.retired:
            found["retired"] = [
                {"kid": kid, "status": "retired",
                 **({"retired_at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
                    if at is not None else {})}
                for kid, at in sorted(self.retired.items())]
        return found


def _when(text: Any) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"retired_at {text!r} is not an ISO 8601 time") from exc
    if moment.tzinfo is None:
        raise ValueError(f"retired_at {text!r} has no time zone")
    return moment


def jwk(public: Ed25519PublicKey, purpose: Purpose, *, status: str | None = None
        ) -> dict[str, Any]:
    """Return a public key as a JWK (RFC 8037), with its key id, token purpose and status."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    found = {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw), "kid": _key_id(public).hex(),
             "use": "sig", "alg": "EdDSA", "purpose": purpose.label}
    if status is not None:
        if status not in KEY_STATUSES:
            raise ValueError(f"a key's status is one of {', '.join(KEY_STATUSES)}")
        found["status"] = status
    return found


def key_from_jwk(data: Mapping[str, Any]) -> tuple[Ed25519PublicKey, Purpose]:
    """Read a JWK made by ``jwk``; its kid must match the key."""
    if data.get("kty") != "OKP" or data.get("crv") != "Ed25519":
        raise ValueError("the JWK is not an Ed25519 (OKP) key")
    x = data.get("x")
    if not isinstance(x, str):
        raise ValueError("the JWK has no x")
    try:
        raw = _unb64(x)
    except TokenError as exc:
        raise ValueError("the JWK's x is not canonical base64url") from exc
    if len(raw) != 32:
        raise ValueError("the JWK's x is not a 32-byte Ed25519 key")
    public = Ed25519PublicKey.from_public_bytes(raw)
    if data.get("kid") not in (None, _key_id(public).hex()):
        raise ValueError("the JWK's kid does not match its key")
    return public, Purpose.from_label(str(data.get("purpose", "")))


def _encode_fields(fields: Mapping[str, str]) -> bytes:
    out = bytearray()
    for name in sorted(fields, key=lambda n: FIELDS[n]):
        value = fields[name].encode("utf-8")
        if len(value) > 255:
            raise ValueError(f"token field {name} is longer than 255 bytes")
        out += bytes((FIELDS[name], len(value))) + value
    return bytes(out)


def _decode_fields(data: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    last = 0
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise TokenError("malformed", "has a truncated field")
        fid, size = data[i], data[i + 1]
        value = data[i + 2:i + 2 + size]
        if len(value) != size:
            raise TokenError("malformed", "has a truncated field")
        if fid <= last or fid not in _FIELD_NAMES:
            raise TokenError("non_canonical", "has fields out of order or unknown")
        try:
            fields[_FIELD_NAMES[fid]] = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TokenError("malformed", "has a field that is not UTF-8") from exc
        last = fid
        i += 2 + size
    return fields


def _seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    value = int(moment.timestamp())
    if not 0 <= value < 2**32:
        raise ValueError("time is outside the token's range (1970 to 2106)")
    return value


def mint(key: SigningKey, fields: Mapping[str, str], *, lifetime: timedelta,
         now: datetime | None = None, token_id: str | None = None) -> str:
    """Sign a token for the key's purpose; fields hold opaque identifiers only."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown token fields: {', '.join(sorted(unknown))}")
    issued = now or datetime.now(UTC)
    tid = uuid.UUID(token_id) if token_id else uuid.uuid4()
    body = _HEADER.pack(VERSION, int(key.purpose), bytes.fromhex(key.key_id),
                        _seconds(issued), _seconds(issued + lifetime), tid.bytes)
    body += _encode_fields(fields)
    token = _b64(body + key.private.sign(DOMAIN + body))
    if len(token) > MAX_TOKEN_CHARS:
        # verify() refuses anything longer, so such a token must never be issued.
        raise ValueError(f"the token would be {len(token)} characters; at most "
                         f"{MAX_TOKEN_CHARS} fit a QR code that scans easily")
    return token


def verify(token: str, ring: KeyRing, *, purpose: Purpose, now: datetime | None = None,
           leeway: timedelta = timedelta(minutes=5)) -> Token:
    """Return what a token says, or raise TokenError with the reason it does not verify.

    ``leeway`` absorbs clocks that differ between the signer and the verifier.
    """
    if not isinstance(token, str):
        raise TokenError("malformed", "is not a token")
    data = _unb64(token)
    if len(data) < _HEADER.size + _SIGNATURE_SIZE:
        raise TokenError("malformed", "is too short to be a token")
    body, signature = data[:-_SIGNATURE_SIZE], data[-_SIGNATURE_SIZE:]
    version, got_purpose, kid, issued, expires, tid = _HEADER.unpack_from(body)
    if version != VERSION:
        raise TokenError("malformed", f"has an unknown version {version}")
    if kid.hex() in ring.retired:
        raise TokenError("retired_key", "was signed with a key that has been withdrawn")
    entry = ring.keys.get(kid.hex())
    if entry is None:
        raise TokenError("unknown_key", "was signed with a key this place does not know")
    public, key_purpose = entry
    try:
        public.verify(signature, DOMAIN + body)
    except InvalidSignature as exc:
        raise TokenError("bad_signature", "has a signature that does not match: forged or "
                                          "altered") from exc
    # Only now is the content trusted enough to read further.
    if got_purpose != int(key_purpose):
        raise TokenError("wrong_purpose", "was signed with a key of another purpose")
    if got_purpose != int(purpose):
        other = Purpose(got_purpose).label if got_purpose in Purpose._value2member_map_ else "?"
        raise TokenError("wrong_purpose", f"is a {other} token, not a {purpose.label} token")
    fields = _decode_fields(body[_HEADER.size:])
    moment = now or datetime.now(UTC)
    issued_at = datetime.fromtimestamp(issued, UTC)
    expires_at = datetime.fromtimestamp(expires, UTC)
    if moment + leeway < issued_at:
        raise TokenError("not_yet_valid", "is not valid yet (check the clock)")
    if moment - leeway >= expires_at:
        raise TokenError("expired", f"expired on {expires_at:%Y-%m-%d %H:%M} UTC")
    token_id = str(uuid.UUID(bytes=tid))
    if token_id in ring.revoked:
        raise TokenError("revoked", "has been revoked")
    return Token(purpose=Purpose(got_purpose), key_id=kid.hex(), token_id=token_id,
                 issued_at=issued_at, expires_at=expires_at, fields=fields)

