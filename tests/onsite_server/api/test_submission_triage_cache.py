"""A session's triage is worked out once per distinct set of findings (submissions/triaged).

Clinical expectations: PHQ-9 10-14 is moderate (Kroenke 2001), PHQ-2 >= 3 offers the PHQ-9
next (Kroenke 2003); the answers each submission gets must be what triage gives, cached or not.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

import shared.triage as triage_mod
from onsite_server.services.submissions import triaged
from shared.paths import assets_dir

from ..helpers import auth, submission_item

URL = "/api/v1/submissions"
PHQ9_MODERATE = {"1": 2, "2": 2, "3": 2, "4": 1, "5": 1, "6": 1, "7": 1, "8": 2, "9": 0}  # 12
PHQ2_POSITIVE = {"1": 2, "2": 2}  # 4 >= 3


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """An empty triage cache, and every evaluation of the rules counted."""
    calls: list[int] = []
    real = triage_mod.triage

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(triaged, "_CACHE", {})
    monkeypatch.setattr(triage_mod, "triage", counting)
    return calls


def _answer(client: FlaskClient, token: str, item: dict[str, Any]) -> dict[str, Any]:
    resp = client.post(URL, json={"items": [item]}, headers=auth(token))
    assert resp.status_code == 200, resp.get_json()
    answer: dict[str, Any] = resp.get_json()["results"][0]
    assert answer["status"] == "accepted"
    return answer


@pytest.mark.sqlite_only
def test_sessions_with_the_same_findings_are_triaged_once(
        client: FlaskClient, kiosk: dict[str, Any], counted: list[int]) -> None:
    first = _answer(client, kiosk["token"], submission_item("phq2", PHQ2_POSITIVE))
    again = _answer(client, kiosk["token"], submission_item("phq2", PHQ2_POSITIVE))
    assert len(counted) == 1
    assert first["result"]["next_screeners"] == again["result"]["next_screeners"] == ["phq9"]
    other = _answer(client, kiosk["token"], submission_item("phq9", PHQ9_MODERATE))
    assert len(counted) == 2  # other findings: the rules are evaluated again
    assert other["result"]["score"]["band"] == "moderate"


@pytest.mark.sqlite_only
def test_new_rules_are_not_answered_from_the_cache(
        client: FlaskClient, kiosk: dict[str, Any], counted: list[int],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _answer(client, kiosk["token"], submission_item("phq2", PHQ2_POSITIVE))
    # The same file read again: another rules object, as after a reload.
    reloaded = triage_mod.load_rules(assets_dir() / "triage" / "rules.json")
    monkeypatch.setattr(triaged, "default_rules", lambda: reloaded)
    _answer(client, kiosk["token"], submission_item("phq2", PHQ2_POSITIVE))
    assert len(counted) == 2
