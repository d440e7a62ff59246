"""shared.tokens: signed QR tokens that verify offline and refuse every altered form."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.tokens import (
    KeyRing,
    Purpose,
    SigningKey,
    TokenError,
    jwk,
    key_from_jwk,
    mint,
    verify,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LINK_KEY = SigningKey.generate(Purpose.ADVOCATE_LINK)
TICKET_KEY = SigningKey.generate(Purpose.TICKET)
FIELDS = {"subject": "0f6b3c1e-5d2a-4f7b-9a1c-2e3d4f5a6b7c", "advocate": "adv-7d2e"}


def ring(*keys: SigningKey) -> KeyRing:
    keyring = KeyRing()
    for key in keys or (LINK_KEY, TICKET_KEY):
        keyring.add(key.public, key.purpose)
    return keyring


def link_token(**kwargs: object) -> str:
    return mint(LINK_KEY, FIELDS, lifetime=timedelta(days=365), now=NOW, **kwargs)  # type: ignore[arg-type]


def reason(token: str, keyring: KeyRing | None = None, *,
           purpose: Purpose = Purpose.ADVOCATE_LINK, now: datetime = NOW) -> str:
    with pytest.raises(TokenError) as caught:
        verify(token, keyring or ring(), purpose=purpose, now=now)
    assert str(caught.value), "every refusal says why in words"
    return caught.value.reason


def test_round_trip() -> None:
    token = link_token()
    got = verify(token, ring(), purpose=Purpose.ADVOCATE_LINK, now=NOW)
    assert dict(got.fields) == FIELDS and got.subject == FIELDS["subject"]
    assert got.purpose is Purpose.ADVOCATE_LINK and got.key_id == LINK_KEY.key_id
    assert got.issued_at == NOW and got.expires_at == NOW + timedelta(days=365)


def test_token_is_compact_and_url_safe() -> None:
    token = link_token()
    assert len(token) < 200
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_no_name_or_health_data_can_be_put_in() -> None:
    with pytest.raises(ValueError, match="unknown token fields"):
        mint(LINK_KEY, {"name": "Alex Tester"}, lifetime=timedelta(days=1), now=NOW)


@pytest.mark.parametrize(("when", "expected"), [
    (NOW + timedelta(days=366), "expired"),
    (NOW - timedelta(hours=1), "not_yet_valid"),
])
def test_time_window(when: datetime, expected: str) -> None:
    assert reason(link_token(), now=when) == expected


def test_leeway_absorbs_a_small_clock_difference() -> None:
    verify(link_token(), ring(), purpose=Purpose.ADVOCATE_LINK, now=NOW - timedelta(minutes=2))


def test_revoked() -> None:
    token = link_token()
    token_id = verify(token, ring(), purpose=Purpose.ADVOCATE_LINK, now=NOW).token_id
    keyring = ring()
    keyring.revoke([token_id.upper()])
    assert reason(token, keyring) == "revoked"


def test_wrong_purpose() -> None:
    ticket = mint(TICKET_KEY, {"subject": "b-1"}, lifetime=timedelta(days=30), now=NOW)
    assert reason(ticket, purpose=Purpose.ADVOCATE_LINK) == "wrong_purpose"
    verify(ticket, ring(), purpose=Purpose.TICKET, now=NOW)


def test_a_key_of_one_purpose_cannot_vouch_for_another() -> None:
    """A link key registered for links does not make a 'ticket' it signed valid."""
    rogue = SigningKey(LINK_KEY.private, Purpose.TICKET)  # same key, claims the ticket purpose
    forged = mint(rogue, {"subject": "b-1"}, lifetime=timedelta(days=1), now=NOW)
    assert reason(forged, purpose=Purpose.TICKET) == "wrong_purpose"


def test_unknown_key_and_forgery() -> None:
    stranger = SigningKey.generate(Purpose.ADVOCATE_LINK)
    token = mint(stranger, FIELDS, lifetime=timedelta(days=1), now=NOW)
    assert reason(token) == "unknown_key"
    # Re-signed under our key id with another key: the signature fails.
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[2:10] = bytes.fromhex(LINK_KEY.key_id)
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert reason(forged) == "bad_signature"


@pytest.mark.parametrize("spoil", [
    lambda t: t + "=",  # padding
    lambda t: t.replace("-", "+").replace("_", "/") if ("-" in t or "_" in t) else t + "+",
    lambda t: " " + t,
    lambda t: t + "\n",
    lambda t: t[:-1],
    lambda t: "",
    lambda t: "A" * 500,
    lambda t: t + "AA",
])
def test_non_canonical_or_malformed_spellings_never_verify(spoil: object) -> None:
    token = link_token()
    spoiled = spoil(token)  # type: ignore[operator]
    assert spoiled != token
    assert reason(spoiled) in {"malformed", "non_canonical", "bad_signature"}


def test_spare_bits_make_a_different_string_that_is_refused() -> None:
    """Two strings that decode to the same bytes: only the canonical one verifies."""
    token = link_token()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spare = len(token) % 4  # 2 or 3 trailing chars carry unused low bits
    assert spare in (2, 3)
    last = alphabet.index(token[-1])
    twin = token[:-1] + alphabet[last ^ 1]
    assert base64.urlsafe_b64decode(twin + "=" * (-len(twin) % 4)) == \
        base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert reason(twin) == "non_canonical"


@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_a_flipped_bit_never_verifies(position: int, bit: int) -> None:
    token = link_token()
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[position % len(raw)] ^= 1 << bit
    flipped = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(TokenError):
        verify(flipped, ring(), purpose=Purpose.ADVOCATE_LINK, now=NOW)


# Any text round-trips as long as the token fits MAX_TOKEN_CHARS (400): with 4 fields of 15
# characters of up to 3 UTF-8 bytes each, the worst case is 38 + 4 * 47 + 64 bytes, 387 chars.
identifier = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FFF,
                                   exclude_categories=("Cs",)), min_size=0, max_size=15)


@settings(max_examples=200, deadline=None)
@given(fields=st.fixed_dictionaries({}, optional={"subject": identifier, "advocate": identifier,
                                                  "site": identifier, "slot": identifier}),
       days=st.integers(min_value=1, max_value=3650))
def test_payload_round_trips(fields: dict[str, str], days: int) -> None:
    token = mint(TICKET_KEY, fields, lifetime=timedelta(days=days), now=NOW)
    got = verify(token, ring(), purpose=Purpose.TICKET, now=NOW)
    assert dict(got.fields) == fields
    assert got.expires_at - got.issued_at == timedelta(days=days)


def test_a_token_too_long_to_verify_is_never_minted() -> None:
    with pytest.raises(ValueError, match="characters"):
        mint(LINK_KEY, {f: "\u2fff" * 80 for f in ("subject", "advocate", "site", "slot")},
             lifetime=timedelta(days=1), now=NOW)


def test_jwk_round_trip_and_ring_from_published_keys() -> None:
    published = ring().jwks()
    assert {k["kty"] for k in published["keys"]} == {"OKP"}
    assert {k["crv"] for k in published["keys"]} == {"Ed25519"}
    offline = KeyRing()
    for key in published["keys"]:
        offline.add_jwk(key)
    verify(link_token(), offline, purpose=Purpose.ADVOCATE_LINK, now=NOW)
    public, purpose = key_from_jwk(jwk(TICKET_KEY.public, Purpose.TICKET))
    assert purpose is Purpose.TICKET


def test_jwk_with_a_mismatched_kid_is_refused() -> None:
    data = jwk(LINK_KEY.public, Purpose.ADVOCATE_LINK) | {"kid": "0" * 16}
    with pytest.raises(ValueError, match="kid"):
        key_from_jwk(data)


def test_rotation_keeps_old_tokens_valid_while_the_old_key_is_listed() -> None:
    old_token = link_token()
    new_key = SigningKey.generate(Purpose.ADVOCATE_LINK)
    keyring = ring(LINK_KEY, new_key)
    new_token = mint(new_key, FIELDS, lifetime=timedelta(days=1), now=NOW)
    for token in (old_token, new_token):
        verify(token, keyring, purpose=Purpose.ADVOCATE_LINK, now=NOW)
    assert reason(old_token, ring(new_key)) == "unknown_key"


def test_pem_round_trip() -> None:
    again = SigningKey.from_pem(LINK_KEY.to_pem(), Purpose.ADVOCATE_LINK)
    assert again.key_id == LINK_KEY.key_id


def test_a_published_set_says_which_key_signs_and_which_are_retired() -> None:
    keyring = KeyRing()
    keyring.add(LINK_KEY.public, Purpose.ADVOCATE_LINK, active=True)
    keyring.add(TICKET_KEY.public, Purpose.TICKET)
    keyring.retire("00" * 8, datetime(2026, 12, 1, 8, tzinfo=UTC))
    published = keyring.jwks()
    assert {k["kid"]: k["status"] for k in published["keys"]} == {
        LINK_KEY.key_id: "active", TICKET_KEY.key_id: "rotated"}
    assert published["retired"] == [{"kid": "00" * 8, "status": "retired",
                                     "retired_at": "2026-12-01T08:00:00Z"}]


def test_a_retirement_is_final_whatever_set_comes_later() -> None:
    keyring = ring()
    token = link_token()
    stale = keyring.jwks()
    keyring.retire(LINK_KEY.key_id)
    assert reason(token, keyring) == "retired_key"
    keyring.add_jwks(stale)  # a set built before the retirement, arriving late
    keyring.add(LINK_KEY.public, Purpose.ADVOCATE_LINK)
    assert reason(token, keyring) == "retired_key"
    verify(mint(TICKET_KEY, {"subject": "b-1"}, lifetime=timedelta(days=1), now=NOW), keyring,
           purpose=Purpose.TICKET, now=NOW)


@pytest.mark.parametrize("data, says", [
    ({"keys": "no"}, "list of keys"),
    ({"keys": [], "retired": {}}, "retired must be a list"),
    ({"keys": [], "retired": [{"kid": "ZZ"}]}, "retired 0"),
    ({"keys": [], "retired": [{"kid": "00" * 8, "retired_at": "yesterday"}]}, "retired_at"),
    ({"keys": [{"kty": "RSA"}]}, "key 0"),
    ([], "list of keys"),
])
def test_a_bad_key_set_is_refused_naming_the_entry(data: object, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        KeyRing().add_jwks(data)
