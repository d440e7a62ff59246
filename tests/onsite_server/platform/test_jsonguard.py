"""The nesting check run on every JSON body before it is parsed (onsite_server/jsonguard.py)."""

from __future__ import annotations

import json

import pytest

from onsite_server import jsonguard
from onsite_server.jsonguard import MAX_DEPTH, too_deep


def _depth(value: object) -> int:
    """The nesting depth of parsed JSON: what the check must tell without parsing."""
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _nested(depth: int, leaf: object) -> object:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


# Strings that hold what could be mistaken for structure: brackets, quotes and backslashes,
# raw or escaped (\\u005b is "["), and a backslash as a string's last character.
TRICKY = ["[[[[", "]]]}}", '"[{', '\\', '\\"', 'a\\"[b', "\\u005b", "x\\", "{\"k\": [1]}",
          "ñandú [ü]", ""]


@pytest.mark.parametrize("text", TRICKY)
@pytest.mark.parametrize("depth", [2, 3, MAX_DEPTH, 2 * MAX_DEPTH + 1, 5 * MAX_DEPTH])
def test_the_check_tells_the_depth_whatever_the_strings_hold(text: str, depth: int) -> None:
    # Within the limit passes; beyond twice the limit is refused (a round of the check may
    # take off a level of arrays and one of objects, so between the two either may happen).
    value = _nested(depth - 2, [text, {text: text}, 1])
    for ensure_ascii in (True, False):
        body = json.dumps(value, ensure_ascii=ensure_ascii).encode()
        assert _depth(json.loads(body)) == depth
        assert too_deep(body) == (depth > MAX_DEPTH), (text, depth, ensure_ascii)


def test_strings_full_of_brackets_do_not_count_as_nesting() -> None:
    body = json.dumps({"items": ["[" * 5000, "{" * 5000, '\\"' + "[" * 100]}).encode()
    assert too_deep(body) is False


def test_a_kiosk_batch_is_checked_without_a_pass_for_escapes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A batch of 250 items has more brackets than the limit, so the check runs in full; its
    # strings hold no backslash, so no regular expression goes over its 85 kB.
    item = {"idempotency_key": "6c1f0d53-0d1c-4b3e-9a57-8f1c2ab7c001", "answers": {"1": 2},
            "skipped": [], "taken_at": "2026-12-07T09:00:00+00:00", "anonymous": True}
    body = json.dumps({"items": [item] * 250}).encode()

    class Refused:
        def sub(self, *_args: object) -> bytes:
            raise AssertionError("a regular expression went over the whole body")

    # Every pattern the module has, or had, for going over strings or escapes.
    monkeypatch.setattr(jsonguard, "_STRING", Refused(), raising=False)
    monkeypatch.setattr(jsonguard, "_ESCAPE", Refused(), raising=False)
    assert too_deep(body) is False
