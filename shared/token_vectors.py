"""Test vectors for the QR token format (docs/tokens.md): keys, good tokens and bad ones.

Everything is derived from fixed seeds, times and token ids, and Ed25519 signatures are
deterministic, so the same vectors come out every time; ``tests/shared/test_token_vectors.py``
checks that docs/tokens.md holds exactly these, that ``shared.tokens.verify`` gives each the
stated result, and that an independent verifier written from the document agrees. The keys
are public test keys: never use them to sign anything real.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .tokens import _HEADER, DOMAIN, FIELDS, VERSION, KeyRing, Purpose, SigningKey, mint

__all__ = ["vectors"]

ISSUED = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
CHECKED = datetime(2026, 12, 8, 9, 30, tzinfo=UTC)  # when the vectors are verified


def _key(name: str, purpose: Purpose) -> SigningKey:
    seed = hashlib.sha256(f"onsite-wellness token test vector key {name}".encode()).digest()
    return SigningKey(Ed25519PrivateKey.from_private_bytes(seed), purpose)


def _seed(key: SigningKey) -> str:
    return key.private.private_bytes(serialization.Encoding.Raw,
                                     serialization.PrivateFormat.Raw,
                                     serialization.NoEncryption()).hex()


def _tid(n: int) -> str:
    return str(uuid.UUID(int=0x7E57_0000_0000_4000_8000_0000_0000_0000 + n))


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _signed(key: SigningKey, body: bytes) -> str:
    """Sign a hand-made body: for bodies ``mint`` would never make."""
    return _b64(body + key.private.sign(DOMAIN + body))


def _body(key: SigningKey, *, version: int = VERSION, purpose: int | None = None,
          tid: str, fields: bytes) -> bytes:
    issued = int(ISSUED.timestamp())
    return _HEADER.pack(version, int(key.purpose) if purpose is None else purpose,
                        bytes.fromhex(key.key_id), issued, issued + 30 * 86400,
                        uuid.UUID(tid).bytes) + fields


def _field(name: str, value: str) -> bytes:
    data = value.encode("utf-8")
    return bytes((FIELDS[name], len(data))) + data


def vectors() -> dict[str, Any]:
    """Return the test vectors as the JSON document docs/tokens.md holds."""
    link = _key("link-1", Purpose.ADVOCATE_LINK)
    link_old = _key("link-0", Purpose.ADVOCATE_LINK)
    ticket = _key("ticket-1", Purpose.TICKET)
    retired = _key("link-retired", Purpose.ADVOCATE_LINK)
    stranger = _key("stranger", Purpose.ADVOCATE_LINK)

    ring = KeyRing()
    ring.add(link_old.public, link_old.purpose)
    ring.add(link.public, link.purpose, active=True)
    ring.add(ticket.public, ticket.purpose, active=True)
    ring.retire(retired.key_id, datetime(2026, 12, 8, 8, 0, tzinfo=UTC))
    revoked = _tid(9)

    member = "4b7e2c1a-5f0d-4c8e-9a51-0d2f6e3b7a10"
    link_fields = {"subject": member, "advocate": "adv-001"}
    year = timedelta(days=365)

    def minted(key: SigningKey, fields: dict[str, str], n: int, *,
               lifetime: timedelta = year, issued: datetime = ISSUED) -> str:
        return mint(key, fields, lifetime=lifetime, now=issued, token_id=_tid(n))

    good_link = minted(link, link_fields, 1)
    good_ticket = minted(ticket, {"subject": "b-20261207-0042", "slot": "s-17"}, 2,
                         lifetime=timedelta(days=2))
    flip = good_link[:-3] + ("A" if good_link[-3] != "A" else "B") + good_link[-2:]
    body_flip = good_link[:20] + ("A" if good_link[20] != "A" else "B") + good_link[21:]
    out_of_order = _signed(link, _body(link, tid=_tid(10), fields=_field("advocate", "adv-001")
                                       + _field("subject", member)))
    version_2 = _signed(link, _body(link, version=2, tid=_tid(11),
                                    fields=_field("subject", member)))
    ticket_purpose_by_link_key = _signed(link, _body(link, purpose=int(Purpose.TICKET),
                                                     tid=_tid(12),
                                                     fields=_field("subject", "b-1")))
    tokens: list[dict[str, Any]] = [
        {"name": "advocate link, signed by the active key", "token": good_link,
         "purpose": "advocate_link", "result": "ok",
         "claims": {"kid": link.key_id, "token_id": _tid(1), "issued_at": _time(ISSUED),
                    "expires_at": _time(ISSUED + year), "fields": link_fields}},
        {"name": "ticket", "token": good_ticket, "purpose": "ticket", "result": "ok",
         "claims": {"kid": ticket.key_id, "token_id": _tid(2), "issued_at": _time(ISSUED),
                    "expires_at": _time(ISSUED + timedelta(days=2)),
                    "fields": {"subject": "b-20261207-0042", "slot": "s-17"}}},
        {"name": "advocate link, signed by a rotated key (still verifies)",
         "token": minted(link_old, link_fields, 3), "purpose": "advocate_link",
         "result": "ok",
         "claims": {"kid": link_old.key_id, "token_id": _tid(3), "issued_at": _time(ISSUED),
                    "expires_at": _time(ISSUED + year), "fields": link_fields}},
        {"name": "one character of the signature changed", "token": flip,
         "purpose": "advocate_link", "result": "bad_signature"},
        {"name": "one character of the body changed", "token": body_flip,
         "purpose": "advocate_link", "result": "bad_signature"},
        {"name": "signed by a key the set does not hold",
         "token": minted(stranger, link_fields, 4), "purpose": "advocate_link",
         "result": "unknown_key"},
        {"name": "signed by a retired key", "token": minted(retired, link_fields, 5),
         "purpose": "advocate_link", "result": "retired_key"},
        {"name": "a ticket shown where an advocate link is expected", "token": good_ticket,
         "purpose": "advocate_link", "result": "wrong_purpose"},
        {"name": "says ticket, but signed by an advocate-link key",
         "token": ticket_purpose_by_link_key, "purpose": "ticket", "result": "wrong_purpose"},
        {"name": "expired (a day's lifetime, two weeks ago)",
         "token": minted(link, link_fields, 6, lifetime=timedelta(days=1),
                         issued=ISSUED - timedelta(days=14)),
         "purpose": "advocate_link", "result": "expired"},
        {"name": "issued an hour after the time it is checked",
         "token": minted(link, link_fields, 7, issued=CHECKED + timedelta(hours=1)),
         "purpose": "advocate_link", "result": "not_yet_valid"},
        {"name": "its token id is on the revocation list",
         "token": mint(link, link_fields, lifetime=year, now=ISSUED, token_id=revoked),
         "purpose": "advocate_link", "result": "revoked"},
        {"name": "padded with '='", "token": good_link + "=", "purpose": "advocate_link",
         "result": "non_canonical"},
        {"name": "in the '+/' alphabet", "token": _plus_slash(good_link),
         "purpose": "advocate_link", "result": "non_canonical"},
        {"name": "fields out of order (validly signed)", "token": out_of_order,
         "purpose": "advocate_link", "result": "non_canonical"},
        {"name": "version 2 (validly signed)", "token": version_2,
         "purpose": "advocate_link", "result": "malformed"},
        {"name": "too short to hold a header and a signature", "token": good_link[:100],
         "purpose": "advocate_link", "result": "malformed"},
        {"name": "not base64url", "token": "not a token!", "purpose": "advocate_link",
         "result": "malformed"},
    ]
    return {
        "domain_hex": DOMAIN.hex(),
        "checked_at": _time(CHECKED),
        "leeway_seconds": 300,
        "keys": [{"name": name, "purpose": key.purpose.label, "seed_hex": _seed(key),
                  "kid": key.key_id}
                 for name, key in (("link-1", link), ("link-0", link_old),
                                   ("ticket-1", ticket), ("link-retired", retired),
                                   ("stranger", stranger))],
        "key_set": ring.jwks(),
        "revoked": [revoked],
        "tokens": tokens,
    }


def _plus_slash(token: str) -> str:
    """The same bytes in the standard alphabet, where they differ (a vector needs a '-' or
    '_' in the token; the good link has one)."""
    swapped = token.replace("-", "+").replace("_", "/")
    if swapped == token:
        raise ValueError("the token has no '-' or '_' to swap")
    return swapped
