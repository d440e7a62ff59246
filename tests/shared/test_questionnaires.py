"""Scoring of the questionnaires against their published scoring rules."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from shared.assessments import ScoringError, load_definition, score

# instrument -> (scored item keys, lowest and highest option value, max total)
SCALES: dict[str, tuple[list[str], int, int, int]] = {
    # PHQ-9: nine items scored 0-3, total 0-27 (Kroenke 2001, J Gen Intern Med 16:606).
    "phq9": ([str(i) for i in range(1, 10)], 0, 3, 27),
    # PHQ-2: items 1-2 of the PHQ-9, total 0-6 (Kroenke 2003, Med Care 41:1284).
    "phq2": (["1", "2"], 0, 3, 6),
    # GAD-7: seven items scored 0-3, total 0-21 (Spitzer 2006, Arch Intern Med 166:1092).
    "gad7": ([str(i) for i in range(1, 8)], 0, 3, 21),
    # GAD-2: items 1-2 of the GAD-7, total 0-6 (Kroenke 2007, Ann Intern Med 146:317).
    "gad2": (["1", "2"], 0, 3, 6),
    # WHO-5: five items scored 0-5, raw 0-25, percentage = raw x 4, 0-100
    # (WHO 1998 / Psychiatric Research Unit; Topp 2015, Psychother Psychosom 84:167).
    "who5": ([str(i) for i in range(1, 6)], 0, 5, 100),
    # AUDIT-C: three items scored 0-4, total 0-12 (Bush 1998, Arch Intern Med 158:1789).
    "audit_c": (["1", "2", "3"], 0, 4, 12),
}


def spread(total: int, keys: list[str], hi: int) -> dict[str, object]:
    """Answers that add up to total, filling items from the first."""
    out: dict[str, object] = {}
    left = total
    for key in keys:
        value = min(hi, left)
        out[key] = value
        left -= value
    assert left == 0, "total not reachable"
    return out


def full(instrument: str, value: int = 0) -> dict[str, object]:
    """Complete, valid answers with every scored item set to value."""
    keys, _, _, _ = SCALES[instrument]
    answers: dict[str, object] = {k: value for k in keys}
    if instrument == "audit_c":
        answers["sex"] = "male"
    return answers


# --- PHQ-9 ---------------------------------------------------------------------------------

# Severity bands 0-4 / 5-9 / 10-14 / 15-19 / 20-27: Kroenke 2001, Table 3 and text.
PHQ9_BANDS = [
    (0, "minimal"),
    (4, "minimal"),
    (5, "mild"),
    (9, "mild"),
    (10, "moderate"),
    (14, "moderate"),
    (15, "moderately_severe"),
    (19, "moderately_severe"),
    (20, "severe"),
    (27, "severe"),
]


@pytest.mark.parametrize(("total", "band"), PHQ9_BANDS)
def test_phq9_band_boundaries(total: int, band: str) -> None:
    result = score("phq9", spread(total, [str(i) for i in range(1, 10)], 3))
    assert result.total == total
    assert result.band == band


@pytest.mark.parametrize(("total", "positive"), [(9, False), (10, True)])
def test_phq9_positive_screen_at_10(total: int, positive: bool) -> None:
    # A PHQ-9 score >= 10 had 88% sensitivity and 88% specificity for major depression
    # (Kroenke 2001).
    answers = spread(total, [str(i) for i in range(1, 9)] + ["9"], 3)
    assert answers["9"] == 0
    result = score("phq9", answers)
    assert ("positive_screen" in result.flags) is positive
    assert "item9_positive" not in result.flags


@pytest.mark.parametrize("item9", [1, 2, 3])
def test_phq9_item9_flag_whatever_the_total(item9: int) -> None:
    # Any answer above "not at all" to item 9 needs follow-up whatever the total (PHQ-9
    # instructions, Pfizer PHQ Screeners; DESIGN.md section 3 crisis rule).
    answers = full("phq9")
    answers["9"] = item9
    result = score("phq9", answers)
    assert result.total == item9
    assert result.band == "minimal"
    assert result.flags == frozenset({"item9_positive"})


def test_phq9_item9_zero_sets_no_flag_even_when_severe() -> None:
    answers = spread(24, [str(i) for i in range(1, 9)], 3)
    answers["9"] = 0
    result = score("phq9", answers)
    assert result.band == "severe"  # 24 is in 20-27 (Kroenke 2001)
    assert result.flags == frozenset({"positive_screen"})


# --- PHQ-2 and GAD-2 -----------------------------------------------------------------------


@pytest.mark.parametrize("instrument", ["phq2", "gad2"])
@pytest.mark.parametrize(
    ("total", "band", "flags"),
    [
        # Cut-off >= 3: PHQ-2, Kroenke 2003 (sensitivity 83%, specificity 92% for major
        # depression); GAD-2, Kroenke 2007 (sensitivity 86%, specificity 83% for GAD).
        (0, "negative", frozenset()),
        (2, "negative", frozenset()),
        (3, "positive", frozenset({"positive_screen"})),
        (6, "positive", frozenset({"positive_screen"})),
    ],
)
def test_two_item_screens(instrument: str, total: int, band: str, flags: frozenset[str]) -> None:
    result = score(instrument, spread(total, ["1", "2"], 3))
    assert (result.total, result.band, result.flags) == (total, band, flags)


# --- GAD-7 ---------------------------------------------------------------------------------

# Severity bands 0-4 / 5-9 / 10-14 / 15-21 and the >= 10 cut-off: Spitzer 2006.
GAD7_BANDS = [
    (0, "minimal", False),
    (4, "minimal", False),
    (5, "mild", False),
    (9, "mild", False),
    (10, "moderate", True),
    (14, "moderate", True),
    (15, "severe", True),
    (21, "severe", True),
]


@pytest.mark.parametrize(("total", "band", "positive"), GAD7_BANDS)
def test_gad7_band_boundaries(total: int, band: str, positive: bool) -> None:
    result = score("gad7", spread(total, [str(i) for i in range(1, 8)], 3))
    assert result.total == total
    assert result.band == band
    assert result.flags == (frozenset({"positive_screen"}) if positive else frozenset())


# --- WHO-5 ---------------------------------------------------------------------------------

# Percentage = raw x 4. <= 50 indicates poor wellbeing and calls for depression screening,
# <= 28 indicates likely depression (Topp 2015, Psychother Psychosom 84:167, section
# "Screening for depression"; WHO-5 scoring notes, Psychiatric Research Unit).
WHO5_CASES = [
    (0, 0, "likely_depression", {"poor_wellbeing", "likely_depression"}),
    (7, 28, "likely_depression", {"poor_wellbeing", "likely_depression"}),
    (8, 32, "poor_wellbeing", {"poor_wellbeing"}),
    (12, 48, "poor_wellbeing", {"poor_wellbeing"}),
    (13, 52, "adequate", set()),
    (25, 100, "adequate", set()),
]


@pytest.mark.parametrize(("raw", "percent", "band", "flags"), WHO5_CASES)
def test_who5_percentage_bands_and_flags(
    raw: int, percent: int, band: str, flags: set[str]
) -> None:
    result = score("who5", spread(raw, [str(i) for i in range(1, 6)], 5))
    assert result.total == percent
    assert result.band == band
    assert result.flags == frozenset(flags)


# --- AUDIT-C -------------------------------------------------------------------------------

# Positive at >= 4 for men and >= 3 for women (Bradley 2007, Alcohol Clin Exp Res 31:1208;
# US VA scoring of the AUDIT-C; US Core AUDIT-C example note, PMID 12695273).
AUDIT_CASES = [
    ("male", 3, "negative", False),
    ("male", 4, "positive", True),
    ("female", 2, "negative", False),
    ("female", 3, "positive", True),
    ("male", 12, "positive", True),
    ("female", 12, "positive", True),
]


@pytest.mark.parametrize(("sex", "total", "band", "positive"), AUDIT_CASES)
def test_audit_c_sex_specific_cutoffs(sex: str, total: int, band: str, positive: bool) -> None:
    answers = spread(total, ["1", "2", "3"], 4)
    answers["sex"] = sex
    result = score("audit_c", answers)
    assert (result.total, result.band) == (total, band)
    assert ("positive_screen" in result.flags) is positive


@pytest.mark.parametrize("sex", ["female", "male"])
def test_audit_c_never_drinks_skips_items_2_and_3(sex: str) -> None:
    # The AUDIT skips the quantity questions when question 1 is "Never" (WHO AUDIT manual,
    # Babor 2001, interview version); they then contribute 0.
    result = score("audit_c", {"1": 0, "sex": sex})
    assert (result.total, result.band, result.flags) == (0, "negative", frozenset())


def test_audit_c_explicit_zeros_when_never() -> None:
    result = score("audit_c", {"1": 0, "2": 0, "3": 0, "sex": "female"})
    assert result.total == 0


@pytest.mark.parametrize("key", ["2", "3"])
def test_audit_c_drinks_reported_after_never_is_rejected(key: str) -> None:
    answers: dict[str, object] = {"1": 0, "sex": "male", key: 1}
    with pytest.raises(ScoringError) as exc:
        score("audit_c", answers)
    assert exc.value.field == key


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ({"1": 1, "sex": "male"}, "2"),
        ({"1": 1, "2": 0, "sex": "male"}, "3"),
        ({"1": 4, "3": 0, "sex": "female"}, "2"),
    ],
)
def test_audit_c_items_required_once_drinking(answers: dict[str, object], field: str) -> None:
    with pytest.raises(ScoringError) as exc:
        score("audit_c", answers)
    assert exc.value.field == field


@pytest.mark.parametrize("sex", [None, "other", "Female", True, 1])
def test_audit_c_sex_must_be_female_or_male(sex: object) -> None:
    answers = full("audit_c")
    answers["sex"] = sex
    with pytest.raises(ScoringError) as exc:
        score("audit_c", answers)
    assert exc.value.field == "sex"


def test_audit_c_sex_is_required() -> None:
    answers = full("audit_c")
    del answers["sex"]
    with pytest.raises(ScoringError) as exc:
        score("audit_c", answers)
    assert exc.value.field == "sex"


# --- Rejections, for every instrument -------------------------------------------------------


def _cases() -> list[tuple[str, str]]:
    return [(iid, key) for iid, (keys, _, _, _) in SCALES.items() for key in keys]


@pytest.mark.parametrize(("instrument", "key"), _cases())
def test_missing_item_raises(instrument: str, key: str) -> None:
    answers = full(instrument, 1)
    del answers[key]
    with pytest.raises(ScoringError) as exc:
        score(instrument, answers)
    assert exc.value.field == key


@pytest.mark.parametrize(("instrument", "key"), _cases())
@pytest.mark.parametrize("which", ["below", "above"])
def test_out_of_range_raises(instrument: str, key: str, which: str) -> None:
    _, lo, hi, _ = SCALES[instrument]
    answers = full(instrument, 1)
    answers[key] = lo - 1 if which == "below" else hi + 1
    with pytest.raises(ScoringError) as exc:
        score(instrument, answers)
    assert exc.value.field == key
    assert isinstance(exc.value, ValueError)


@pytest.mark.parametrize(("instrument", "key"), _cases())
@pytest.mark.parametrize("bad", [True, False, 1.0, 2.5, "1", None, [1], float("nan")])
def test_wrong_type_raises(instrument: str, key: str, bad: Any) -> None:
    answers = full(instrument, 1)
    answers[key] = bad
    with pytest.raises(ScoringError) as exc:
        score(instrument, answers)
    assert exc.value.field == key


@pytest.mark.parametrize("instrument", sorted(SCALES))
@pytest.mark.parametrize("extra", ["0", "11", "extra", "item1", " 1"])
def test_unknown_key_raises(instrument: str, extra: str) -> None:
    answers = full(instrument)
    answers[extra] = 0
    with pytest.raises(ScoringError) as exc:
        score(instrument, answers)
    assert exc.value.field == extra


@pytest.mark.parametrize("instrument", sorted(SCALES))
def test_empty_answers_raise_on_first_item(instrument: str) -> None:
    with pytest.raises(ScoringError) as exc:
        score(instrument, {})
    assert exc.value.field == "1"


# --- Properties ------------------------------------------------------------------------------


@st.composite
def valid_answers(draw: st.DrawFn, instrument: str) -> dict[str, object]:
    """Any complete, valid set of answers for the instrument."""
    keys, lo, hi, _ = SCALES[instrument]
    answers: dict[str, object] = {k: draw(st.integers(lo, hi)) for k in keys}
    if instrument == "audit_c":
        answers["sex"] = draw(st.sampled_from(["female", "male"]))
        if answers["1"] == 0:
            # Skip rule: items 2 and 3 are left out or 0 when item 1 is "Never".
            for key in ("2", "3"):
                if draw(st.booleans()):
                    del answers[key]
                else:
                    answers[key] = 0
    return answers


@pytest.mark.parametrize("instrument", sorted(SCALES))
def test_totals_stay_in_range(instrument: str) -> None:
    @given(valid_answers(instrument))
    def check(answers: dict[str, object]) -> None:
        result = score(instrument, answers)
        assert isinstance(result.total, int)
        assert 0 <= result.total <= SCALES[instrument][3]
        assert result.band in {b["id"] for b in load_definition(instrument)["scoring"]["bands"]}

    check()


@pytest.mark.parametrize("instrument", sorted(SCALES))
def test_raising_one_answer_never_lowers_the_total(instrument: str) -> None:
    keys, _, hi, _ = SCALES[instrument]

    @given(valid_answers(instrument), st.sampled_from(keys), st.integers(1, hi))
    def check(answers: dict[str, object], key: str, step: int) -> None:
        before = score(instrument, answers)
        raised = dict(answers)
        if instrument == "audit_c":
            # Items 2-3 may only rise once item 1 is above "Never"; leaving item 1 "Never"
            # makes them inconsistent, not lower.
            assume(key == "1" or answers["1"] != 0)
            raised.setdefault("2", 0)
            raised.setdefault("3", 0)
        current = raised[key]
        assert isinstance(current, int)
        assume(current + step <= hi)
        raised[key] = current + step
        after = score(instrument, raised)
        assert after.total is not None and before.total is not None
        assert after.total >= before.total
        # A positive screen can only appear, never disappear, as answers rise.
        if "positive_screen" in before.flags:
            assert "positive_screen" in after.flags

    check()


# Issue 20 (P6), session 11: a server re-scoring a kiosk's backlog scores thousands of items
# against one cached definition; what the definition says is read once per definition.
def test_a_definition_is_read_once_however_many_items_are_scored(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.assessments import engine, questionnaires, unscored_items

    first = score("phq9", spread(7, SCALES["phq9"][0], 3), "1.0.0")
    assert unscored_items("phq9", "1.0.0") == set()
    reads: list[object] = []

    def counted(item: Any) -> bool:
        reads.append(item)
        return bool(item.get("scored", True) is not False)

    monkeypatch.setattr(questionnaires, "is_scored", counted)
    monkeypatch.setattr(engine, "is_scored", counted)
    for total in (0, 7, 12, 27):
        again = score("phq9", spread(total, SCALES["phq9"][0], 3), "1.0.0")
        assert again.total == total
        assert unscored_items("phq9", "1.0.0") == set()
    assert reads == []
    assert first.band == "mild"


@pytest.mark.parametrize("bad", [True, 1.0, "1", None, -1, 4])
def test_an_answer_the_plan_does_not_take_as_it_is_gets_the_usual_message(bad: object) -> None:
    # Only a whole number among a scale item's options skips the full check; True == 1 and
    # 1.0 == 1 in Python, but neither is a PHQ-9 answer.
    answers = {**spread(0, SCALES["phq9"][0], 3), "4": bad}
    with pytest.raises(ScoringError) as caught:
        score("phq9", answers, "1.0.0")
    assert caught.value.field == "4"
