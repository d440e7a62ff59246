"""shared.crisis: a generous reading of crisis triggers in raw, possibly malformed, items.

Thresholds: PHQ-9 item 9 >= 1 (Kroenke 2001, flag item9_positive); systolic > 180 and/or
diastolic > 120 (AHA hypertensive crisis). Both come from the definitions in assets/.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.crisis import read_number, triggers_in_raw


@pytest.mark.parametrize(("raw", "expected"), [
    ({"instrument_id": "phq9", "answers": {"9": 1}}, ("phq9_item9",)),
    ({"instrument_id": "phq9", "answers": {"9": "3"}}, ("phq9_item9",)),
    ({"instrument_id": "phq9", "answers": {"9": 3.0}}, ("phq9_item9",)),
    ({"instrument_id": "phq9", "answers": {"9": " 2 "}}, ("phq9_item9",)),
    ({"instrument_id": "PHQ-9", "answers": {"item9": 2}}, ("phq9_item9",)),
    ({"instrument_id": "phq9", "answers": {"q_09": 1}}, ("phq9_item9",)),
    ({"instrument_id": "phq9", "answers": [{"linkId": "9", "valueInteger": 1}]}, ("phq9_item9",)),
    ({"instrument_id": "phq9", "answers": {"9": 0}}, ()),
    ({"instrument_id": "phq9", "answers": {"9": 0.5}}, ()),
    # A yes sent as a boolean is read as a crisis, like "2" and 1.0 (issue 14 §6); a no is not.
    ({"instrument_id": "phq9", "answers": {"9": True}}, ("phq9_item9",)),
    ({"instrument_id": "phq9", "answers": {"item9": {"value": True}}}, ("phq9_item9",)),
    ({"instrument_id": "phq9", "answers": [{"linkId": "9", "valueBoolean": True}]},
     ("phq9_item9",)),
    ({"instrument_id": "phq9", "answers": {"9": False}}, ()),
    ({"instrument_id": "blood_pressure", "answers": {"systolic": True}}, ()),
    ({"instrument_id": "phq9", "answers": {"19": 3}}, ()),
    ({"instrument_id": "phq9", "answers": {"8": 3}}, ()),
    ({"instrument_id": "gad7", "answers": {"9": 3}}, ()),  # item 9 means nothing elsewhere
    ({"instrument_id": "phq9", "answers": {"9": "NaN"}}, ()),
    ({"instrument_id": "blood_pressure", "answers": {"systolic": 181, "diastolic": 80}},
     ("hypertensive_crisis",)),
    ({"instrument_id": "blood_pressure", "answers": {"systolic": 180, "diastolic": 120}}, ()),
    ({"instrument_id": "blood_pressure", "answers": {"diastolic": 121}}, ("hypertensive_crisis",)),
    ({"instrument_id": "blood_pressure", "answers": {"systolic": "190"}}, ("hypertensive_crisis",)),
    ({"instrument_id": "bp", "answers": {"SBP": 200}}, ("hypertensive_crisis",)),
    ({"answers": {"systolic": 200}}, ("hypertensive_crisis",)),  # no instrument id at all
    ({"instrument_id": "ascvd_pce", "answers": {"systolic": 200}}, ()),  # a risk input
    ({"instrument_id": "phq9", "answers": {"9": 1, "systolic": 200}}, ("phq9_item9",)),
    ("not an object", ()),
    (None, ()),
    ({"instrument_id": 7, "answers": "lots"}, ()),
])
def test_triggers_in_raw(raw: Any, expected: tuple[str, ...]) -> None:
    assert triggers_in_raw(raw) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (3, 3.0), (3.5, 3.5), ("4", 4.0), (" 4.0 ", 4.0), ({"value": 2}, 2.0),
    (True, None), (None, None), ("high", None), (float("inf"), None), ([3], None),
])
def test_read_number(value: Any, expected: float | None) -> None:
    assert read_number(value) == expected


def test_a_backlog_of_like_items_reads_each_answer_key_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20 (P6), session 11: a server reads every item of a backlog this way; the
    thousands of items share a few keys, so each key's reading is worked out once."""
    from shared.crisis import raw as raw_module

    matched: list[str] = []
    pattern = raw_module._ITEM_KEY

    class Counting:
        def match(self, key: str) -> Any:
            matched.append(key)
            return pattern.match(key)

    monkeypatch.setattr(raw_module, "_ITEM_KEY", Counting())
    if hasattr(raw_module, "_item_number"):
        raw_module._item_number.cache_clear()
    keys = [f"question_{i}" for i in range(1, 10)]
    for n in range(50):
        answers: dict[str, Any] = {key: n % 4 for key in keys[:-1]} | {keys[-1]: 0}
        assert triggers_in_raw({"instrument_id": "phq9", "answers": answers}) == ()
    crisis = {"instrument_id": "phq9", "answers": {"question_9": 2}}
    assert triggers_in_raw(crisis) == ("phq9_item9",)
    assert sorted(matched) == keys
