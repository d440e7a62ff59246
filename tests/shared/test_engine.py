"""The engine: loading, versions, caching, dispatch and the definitions' shape."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from shared.assessments import (
    ScoreResult,
    ScoringError,
    available_versions,
    list_instruments,
    load_definition,
    score,
)
from shared.assessments.engine import clear_caches
from shared.assessments.scorers_base import Scored
from shared.paths import assets_dir

MINE = ["audit_c", "gad2", "gad7", "phq2", "phq9", "who5"]
# The current version of each: 1.1.0 took each question's own LOINC answer codes.
CURRENT = {"audit_c": "1.1.0", "gad2": "1.1.0", "gad7": "1.1.0", "phq2": "1.0.0",
           "phq9": "1.1.0", "who5": "1.0.0"}


@pytest.fixture
def tmp_assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private copy of the PHQ-2 definition, with the engine pointed at it."""
    folder = tmp_path / "instruments" / "phq2"
    folder.mkdir(parents=True)
    shutil.copy(assets_dir() / "instruments" / "phq2" / "1.0.0.json", folder / "1.0.0.json")
    monkeypatch.setenv("ONSITE_ASSETS_DIR", str(tmp_path))
    clear_caches()
    yield tmp_path
    monkeypatch.delenv("ONSITE_ASSETS_DIR")
    clear_caches()


def _write_version(root: Path, version: str, positive_min: int) -> None:
    """Add a PHQ-2 version whose positive cut-off is positive_min."""
    data = json.loads((root / "instruments" / "phq2" / "1.0.0.json").read_text("utf-8"))
    data["version"] = version
    bands = data["scoring"]["bands"]
    bands[0]["max"] = positive_min - 1
    bands[1]["min"] = positive_min
    data["scoring"]["flags"][0]["when"]["total_min"] = positive_min
    (root / "instruments" / "phq2" / f"{version}.json").write_text(json.dumps(data), "utf-8")


def test_list_instruments_has_the_questionnaires() -> None:
    listed = dict(list_instruments())
    for iid in MINE:
        assert listed[iid] == CURRENT[iid]
    assert list_instruments() == sorted(list_instruments())


def test_available_versions() -> None:
    assert available_versions("phq9") == ["1.0.0", "1.1.0"]


def test_versions_compare_as_numbers(tmp_assets: Path) -> None:
    _write_version(tmp_assets, "1.9.0", 4)
    _write_version(tmp_assets, "1.10.0", 5)
    assert available_versions("phq2") == ["1.0.0", "1.9.0", "1.10.0"]
    assert ("phq2", "1.10.0") in list_instruments()
    answers = {"1": 2, "2": 2}
    current = score("phq2", answers)
    assert (current.version, current.band) == ("1.10.0", "negative")
    older = score("phq2", answers, version="1.0.0")
    assert (older.version, older.band, older.flags) == ("1.0.0", "positive", {"positive_screen"})


def test_cut_offs_come_from_the_definition(tmp_assets: Path) -> None:
    _write_version(tmp_assets, "2.0.0", 5)
    result = score("phq2", {"1": 2, "2": 2})
    assert result.total == 4
    assert result.flags == frozenset()


@pytest.mark.parametrize("bad", ["nope", "PHQ9", "../phq9", "phq9/1.0.0", "", None, 9, "bmi_x"])
def test_unknown_instrument(bad: Any) -> None:
    with pytest.raises(ScoringError) as exc:
        score(bad, {"1": 0, "2": 0})
    assert exc.value.field == "instrument_id"


@pytest.mark.parametrize("bad", ["9.9.9", "1.0", "1.0.0.0", "../1.0.0", "", 1])
def test_unknown_version(bad: Any) -> None:
    with pytest.raises(ScoringError) as exc:
        score("phq2", {"1": 0, "2": 0}, version=bad)
    assert exc.value.field == "instrument_id"
    with pytest.raises(ScoringError):
        load_definition("phq2", bad)


def test_unknown_instrument_in_helpers() -> None:
    for call in (lambda: load_definition("nope"), lambda: available_versions("nope")):
        with pytest.raises(ScoringError) as exc:
            call()
        assert exc.value.field == "instrument_id"


@pytest.mark.parametrize("bad", [[0, 0], "1=0", None, 3, ("1", "2")])
def test_answers_must_be_a_mapping(bad: Any) -> None:
    with pytest.raises(ScoringError) as exc:
        score("phq2", bad)
    assert exc.value.field == "answers"


def test_answer_keys_must_be_strings() -> None:
    with pytest.raises(ScoringError) as exc:
        score("phq2", {1: 0, "2": 0})  # type: ignore[dict-item]
    assert exc.value.field == "1"


def test_scoring_error_is_a_value_error_with_field() -> None:
    with pytest.raises(ValueError) as exc:
        score("phq2", {"1": 0})
    assert isinstance(exc.value, ScoringError)
    assert exc.value.field == "2"


def test_result_shape() -> None:
    result = score("phq9", {str(i): 1 for i in range(1, 10)})
    assert isinstance(result, ScoreResult)
    assert result.as_dict() == {
        "instrument": "phq9",
        "version": "1.1.0",
        "total": 9,  # nine items at 1 (Kroenke 2001: sum of item scores)
        "band": "mild",  # 5-9 (Kroenke 2001)
        "flags": ["item9_positive"],
    }
    assert isinstance(result.flags, frozenset)
    assert result.details["raw_total"] == 9


def test_scored_contract() -> None:
    assert Scored._fields == ("total", "band", "flags", "details")


def test_load_definition_returns_a_copy() -> None:
    first = load_definition("phq9")
    first["scoring"]["bands"][0]["max"] = 99
    first["items"].clear()
    again = load_definition("phq9")
    assert again["scoring"]["bands"][0]["max"] == 4
    assert len(again["items"]) == 10  # nine scored items and the difficulty question
    assert score("phq9", {str(i): 1 for i in range(1, 10)}).band == "mild"


def test_mismatched_file_is_refused(tmp_assets: Path) -> None:
    path = tmp_assets / "instruments" / "phq2" / "3.0.0.json"
    data = json.loads((tmp_assets / "instruments" / "phq2" / "1.0.0.json").read_text("utf-8"))
    path.write_text(json.dumps(data), "utf-8")  # still says version 1.0.0 inside
    with pytest.raises(RuntimeError):
        score("phq2", {"1": 0, "2": 0})


def test_unknown_scoring_method(tmp_assets: Path) -> None:
    data = json.loads((tmp_assets / "instruments" / "phq2" / "1.0.0.json").read_text("utf-8"))
    data["version"] = "4.0.0"
    data["scoring"]["method"] = "no_such_method"
    (tmp_assets / "instruments" / "phq2" / "4.0.0.json").write_text(json.dumps(data), "utf-8")
    with pytest.raises(ScoringError) as exc:
        score("phq2", {"1": 0, "2": 0})
    assert exc.value.field == "instrument_id"


# --- The definitions themselves --------------------------------------------------------------

LOINC = "http://loinc.org"
# Codes from the LOINC database (loinc.org): panel, items in order, total score.
EXPECTED_LOINC: dict[str, tuple[str | None, list[str | None], str | None]] = {
    "phq9": (
        "44249-1",
        ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5"]
        + ["44253-3", "44260-8", "69722-7"],
        "44261-6",
    ),
    "phq2": ("55757-9", ["44250-9", "44255-8"], "55758-7"),
    "gad7": (
        "69737-5",
        ["69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"],
        "70274-6",
    ),
    "gad2": (None, ["69725-0", "68509-9"], None),
    "who5": (None, [None] * 5, None),
    "audit_c": ("72109-2", ["68518-0", "68519-8", "68520-6", None], "75626-2"),
}


def _codes(codings: Any) -> str | None:
    assert isinstance(codings, list)
    assert all(c["system"] == LOINC and c["display"] for c in codings)
    return codings[0]["code"] if codings else None


@pytest.mark.parametrize("iid", MINE)
def test_loinc_codes(iid: str) -> None:
    definition = load_definition(iid)
    panel, items, total = EXPECTED_LOINC[iid]
    assert _codes(definition["code"]) == panel
    assert [_codes(item["code"]) for item in definition["items"]] == items
    total_code = definition["scoring"]["total_code"]
    assert (total_code["code"] if total_code else None) == total


def _texts(node: Mapping[str, Any]) -> None:
    assert set(node) == {"en", "es"}
    assert all(isinstance(v, str) and v.strip() for v in node.values())


@pytest.mark.parametrize("iid", MINE)
def test_definition_shape(iid: str) -> None:
    d = load_definition(iid)
    assert d["id"] == iid and d["kind"] == "questionnaire" and d["status"] == "active"
    for key in ("title", "description"):
        _texts(d[key])
    assert d["source"]["citation"] and d["source"]["url"].startswith("https://")
    scale_keys = [i["linkId"] for i in d["items"] if i["linkId"] != "sex"]
    assert scale_keys == [str(n) for n in range(1, len(scale_keys) + 1)]
    for item in d["items"]:
        # Only an unscored item (PHQ-9's difficulty question) is optional.
        assert item["type"] == "choice" and item["required"] is item.get("scored", True)
        _texts(item["text"])
        values = [o["value"] for o in item["options"]]
        assert len(set(values)) == len(values)
        for option in item["options"]:
            _texts(option["text"])
    for entry in d["scoring"]["bands"] + d["scoring"]["flags"]:
        _texts(entry["label"])


@pytest.mark.parametrize("iid", MINE)
def test_every_total_has_exactly_one_band(iid: str) -> None:
    d = load_definition(iid)
    scoring = d["scoring"]
    items = [i for i in d["items"] if i["linkId"] != "sex" and i.get("scored", True)]
    top = sum(max(o["value"] for o in i["options"]) for i in items)
    multiplier = scoring.get("multiplier", 1)
    strata = ["female", "male"] if scoring.get("stratify_by") else [None]
    for stratum in strata:

        def limit(v: Any, s: str | None = stratum) -> Any:
            return v[s] if isinstance(v, dict) else v

        for raw in range(top + 1):
            total = raw * multiplier
            hits = [
                b["id"] for b in scoring["bands"] if limit(b["min"]) <= total <= limit(b["max"])
            ]
            assert len(hits) == 1, (iid, stratum, total, hits)
