"""Version 1.1.0 of the screeners: each question's own LOINC answer codes, and the PHQ-9's
unscored difficulty question, which never changes a total, band, flag, crisis or triage."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.assessments import (
    ScoringError,
    available_versions,
    list_instruments,
    load_definition,
    score,
    unscored_items,
)
from shared.assessments.items import blocking_skips
from shared.crisis import crisis_in_partial, triggers_in_raw
from shared.paths import assets_dir
from shared.triage import triage

LOINC = "http://loinc.org"

# LOINC answer lists, in the order of the scale's values (docs/instruments.md, Sources).
# LL358-3, the PHQ frequency list.
PHQ = ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]
# 68509-9's own list: value 2 is "More days than not" (HL7 PCO IG GAD-7 Questionnaire 69737-5).
GAD_ITEM2 = ["LA6568-5", "LA6569-3", "LA18938-3", "LA6571-9"]
# LL359-1 (MII PRO IG value set, LOINC 2.82): "Very difficult" is LA6575-0, not LA6574-3.
DIFFICULTY = ["LA6572-7", "LA6573-5", "LA6575-0", "LA6574-3"]
# LL2179-1, LL2180-9, LL2181-7 (US Core AUDIT-C Questionnaire; HL7 Portugal cpe-auditcresult-vs).
AUDIT_1 = ["LA6270-8", "LA18926-8", "LA18927-6", "LA18928-4", "LA18929-2"]
AUDIT_2 = ["LA15694-5", "LA15695-2", "LA18930-0", "LA18931-8", "LA18932-6"]
AUDIT_3 = ["LA6270-8", "LA18933-4", "LA18876-5", "LA18891-4", "LA18934-2"]

# instrument -> linkId -> the option codes of the current version, by value (None: no code).
EXPECTED: dict[str, dict[str, list[str] | None]] = {
    "phq9": {**{str(i): PHQ for i in range(1, 10)}, "10": DIFFICULTY},
    "phq2": {"1": PHQ, "2": PHQ},
    "gad7": {**{str(i): PHQ for i in range(1, 8)}, "2": GAD_ITEM2},
    "gad2": {"1": PHQ, "2": GAD_ITEM2},
    "audit_c": {"1": AUDIT_1, "2": AUDIT_2, "3": AUDIT_3, "sex": None},
    # No LOINC codes for the WHO-5 items were confirmed (docs/instruments.md).
    "who5": {str(i): None for i in range(1, 6)},
}
NEW = ["audit_c", "gad2", "gad7", "phq9"]

# The published 1.0.0 files, byte for byte: items queued offline with them must still score.
PUBLISHED_1_0_0 = {
    "phq9": "183429208e4ba639240d64b53611bd242ec900387fbb2e3b22b6e7caf2aaac76",
    "gad7": "361384d15c782b93457469bbfc68f7c02b1ea4738ed68163d44cf7b05cbe235a",
    "gad2": "d7caeb20858e0fb231b825261875530e22f4fbc4396bdd0b2ff44fafd9f64924",
    "audit_c": "265f8cc251577f02096a1013a94c9012d84e78bcc2325ef7a25b903928793eec",
}


def _loinc(codings: Any) -> list[str]:
    return [c["code"] for c in codings or () if c["system"] == LOINC]


def _all_definitions() -> list[tuple[str, str]]:
    return [(iid, v) for iid, _ in list_instruments() for v in available_versions(iid)]


# --- Versions --------------------------------------------------------------------------------


@pytest.mark.parametrize("iid", NEW)
def test_new_versions_are_the_default(iid: str) -> None:
    assert available_versions(iid) == ["1.0.0", "1.1.0"]
    assert load_definition(iid)["version"] == "1.1.0"
    answers = {i["linkId"]: i["options"][0]["value"] for i in load_definition(iid)["items"]
               if i["required"]}
    assert score(iid, answers).version == "1.1.0"


@pytest.mark.parametrize(("iid", "digest"), sorted(PUBLISHED_1_0_0.items()))
def test_published_files_are_untouched(iid: str, digest: str) -> None:
    path = assets_dir() / "instruments" / iid / "1.0.0.json"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def _scale_answers(iid: str) -> st.SearchStrategy[dict[str, object]]:
    """Any complete answers to the scored items, valid in both versions."""
    items = load_definition(iid, "1.0.0")["items"]
    return st.fixed_dictionaries(
        {i["linkId"]: st.sampled_from([o["value"] for o in i["options"]]) for i in items}
    ).filter(lambda a: iid != "audit_c" or a["1"] != 0 or a["2"] == a["3"] == 0)


@pytest.mark.parametrize("iid", NEW)
def test_1_0_0_scores_as_before_and_as_1_1_0(iid: str) -> None:
    @given(_scale_answers(iid))
    def check(answers: dict[str, object]) -> None:
        old = score(iid, answers, version="1.0.0")
        new = score(iid, answers, version="1.1.0")
        assert old.version == "1.0.0"
        assert (old.total, old.band, old.flags) == (new.total, new.band, new.flags)

    check()


def test_1_0_0_phq9_has_no_difficulty_question() -> None:
    answers: dict[str, object] = {str(i): 0 for i in range(1, 11)}
    with pytest.raises(ScoringError) as exc:
        score("phq9", answers, version="1.0.0")
    assert exc.value.field == "10"


# --- Codes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("iid", sorted(EXPECTED))
def test_option_codes_come_from_each_questions_own_list(iid: str) -> None:
    definition = load_definition(iid)
    found = {}
    for item in definition["items"]:
        # Options are listed in the order of their values.
        codes = [_loinc(o.get("code")) for o in item["options"]]
        found[item["linkId"]] = [c[0] for c in codes] if any(codes) else None
        assert all(len(c) == 1 for c in codes) or not any(codes), item["linkId"]
    assert found == EXPECTED[iid]


@pytest.mark.parametrize(("iid", "version"), list_instruments())
def test_a_coded_question_codes_every_option(iid: str, version: str) -> None:
    for item in load_definition(iid, version)["items"]:
        if _loinc(item.get("code")) and item["type"] == "choice":
            # Where LOINC has the question, it has its answer list: every option is coded.
            assert all(_loinc(o.get("code")) for o in item["options"]), (iid, item["linkId"])


@pytest.mark.parametrize(("iid", "version"), _all_definitions())
def test_an_answer_code_appears_once_per_list(iid: str, version: str) -> None:
    for item in load_definition(iid, version)["items"]:
        codes = [code for o in item.get("options", []) for code in _loinc(o.get("code"))]
        assert len(codes) == len(set(codes)), (iid, version, item["linkId"])


@pytest.mark.parametrize("iid", ["gad7", "gad2"])
def test_gad_item2_keeps_its_words_and_takes_its_own_code(iid: str) -> None:
    item2 = next(i for i in load_definition(iid)["items"] if i["linkId"] == "2")
    option = next(o for o in item2["options"] if o["value"] == 2)
    assert option["text"]["en"] == "More than half the days"
    assert option["code"] == [{"system": LOINC, "code": "LA18938-3",
                               "display": "More days than not"}]


@pytest.mark.parametrize("iid", ["gad7", "gad2"])
def test_spanish_gad_is_credited_to_the_us_spanish_form(iid: str) -> None:
    citation = load_definition(iid)["source"]["citation"]
    assert "GAD-7 Spanish for the USA" in citation
    # García-Campayo's adaptation for Spain is named only to say it is not our text.
    assert "Not the adaptation for Spain by García-Campayo" in citation


@pytest.mark.parametrize("iid", NEW)
def test_every_changed_list_names_its_source(iid: str) -> None:
    for item in load_definition(iid)["items"]:
        assert isinstance(item.get("codeSource"), str) and item["codeSource"].strip()


# --- The PHQ-9 difficulty question -----------------------------------------------------------

PHQ9_ITEMS = st.fixed_dictionaries({str(i): st.integers(0, 3) for i in range(1, 10)})
DIFFICULTY_ANSWER = st.one_of(st.none(), st.integers(0, 3))


def test_difficulty_question_is_unscored_optional_and_last() -> None:
    items = load_definition("phq9")["items"]
    assert [i["linkId"] for i in items][-1] == "10"
    assert items[-1]["required"] is False and items[-1]["scored"] is False
    assert unscored_items("phq9") == {"10"}
    assert unscored_items("phq9", "1.0.0") == set()
    assert unscored_items("gad7") == set()


@given(PHQ9_ITEMS, DIFFICULTY_ANSWER)
def test_difficulty_never_changes_total_band_or_flags(
    answers: dict[str, object], difficulty: int | None
) -> None:
    plain = score("phq9", answers)
    given_ = dict(answers) if difficulty is None else {**answers, "10": difficulty}
    result = score("phq9", given_)
    assert (result.total, result.band, result.flags) == (plain.total, plain.band, plain.flags)
    assert result.details["items"] == plain.details["items"]
    assert result.details["raw_total"] == plain.details["raw_total"]
    if difficulty is not None:
        assert result.details["unscored"] == {"10": difficulty}
    # Triage reads the same proposal either way.
    assert triage({"phq9": result}) == triage({"phq9": plain})


@pytest.mark.parametrize("bad", [4, -1, True, 1.0, "1", None, [1]])
def test_difficulty_answer_is_validated_when_given(bad: Any) -> None:
    answers: dict[str, object] = {str(i): 0 for i in range(1, 10)} | {"10": bad}
    with pytest.raises(ScoringError) as exc:
        score("phq9", answers)
    assert exc.value.field == "10"


def test_difficulty_alone_is_not_a_complete_phq9() -> None:
    with pytest.raises(ScoringError) as exc:
        score("phq9", {"10": 3})
    assert exc.value.field == "1"


@pytest.mark.parametrize(
    ("skipped", "answers", "blocking"),
    [
        (["10"], {}, []),  # declining the difficulty question leaves the PHQ-9 scorable
        (["4", "10"], {}, ["4"]),
        (["10"], {"10": 1}, ["10"]),  # answered and skipped: a contradiction, refused later
        (["9"], {}, ["9"]),
    ],
)
def test_blocking_skips(skipped: list[str], answers: dict[str, object],
                        blocking: list[str]) -> None:
    assert blocking_skips("phq9", answers, skipped) == blocking


def test_blocking_skips_of_an_old_version_keep_every_skip() -> None:
    assert blocking_skips("phq9", {}, ["10"], "1.0.0") == ["10"]


@given(st.integers(0, 3), st.sampled_from([[], ["10"]]), DIFFICULTY_ANSWER)
def test_difficulty_never_raises_or_hides_a_crisis(
    item9: int, skip_difficulty: list[str], difficulty: int | None
) -> None:
    answers: dict[str, object] = {str(i): 0 for i in (1, 2, 3, 5, 6, 7, 8)} | {"9": item9}
    if difficulty is not None and not skip_difficulty:
        answers["10"] = difficulty
    found = crisis_in_partial("phq9", answers, ["4", *skip_difficulty])
    assert found == (frozenset({"item9_positive"}) if item9 >= 1 else frozenset())
    raw = {"instrument_id": "phq9", "answers": {**answers, "4": 0}}
    assert triggers_in_raw(raw) == (("phq9_item9",) if item9 >= 1 else ())


def test_only_a_skipped_difficulty_question_is_no_partial() -> None:
    # Nothing is left to fill in: the instrument is scored, and the crisis comes from the score.
    answers: dict[str, object] = {str(i): 0 for i in range(1, 9)} | {"9": 2}
    assert crisis_in_partial("phq9", answers, ["10"]) == frozenset()
    assert "item9_positive" in score("phq9", answers).flags
