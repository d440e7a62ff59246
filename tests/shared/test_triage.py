"""Tests for shared.triage: every rule, every combination, crisis, anonymity, skips and merging."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from shared.assessments.types import ScoreResult
from shared.paths import assets_dir
from shared.triage import (
    PRIORITIES,
    PROGRAMS,
    CrisisGuidance,
    ReferralProposal,
    RulesError,
    load_rules,
    merge,
    parse_rules,
    skipped_item_notice,
    triage,
)

RULES_PATH = assets_dir() / "triage" / "rules.json"


def res(instrument: str, band: str, *flags: str, total: float | None = None) -> ScoreResult:
    """Build a ScoreResult directly, without the scoring engine."""
    return ScoreResult(instrument, "1.0.0", total, band, frozenset(flags))


def session(*results: ScoreResult) -> dict[str, ScoreResult]:
    """Key results by instrument id, as the kiosk and server do."""
    return {r.instrument: r for r in results}


def codes(proposal: ReferralProposal) -> set[str]:
    return {r.code for r in proposal.reasons}


def raw_rules() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RULES_PATH.read_text(encoding="utf-8"))
    return data


# ---------------------------------------------------------------- single-instrument rules

# Band ids and flags are the engine's (issue 2 table). Expected program/priority follows
# the mapping documented in assets/triage/rules.json, whose clinical basis is cited per row.
SINGLE_RULES = [
    # PHQ-9 15-19 / 20-27: "active treatment" / "immediate initiation ... expedited referral"
    # (Kroenke & Spitzer, Psychiatr Ann 2002;32:509, proposed treatment actions).
    pytest.param(
        res("phq9", "moderately_severe", "positive_screen", total=17),
        "phq9_moderately_severe_or_severe",
        ("behavioral_health",),
        "urgent",
        id="phq9-moderately-severe",
    ),
    pytest.param(
        res("phq9", "severe", "positive_screen", total=23),
        "phq9_moderately_severe_or_severe",
        ("behavioral_health",),
        "urgent",
        id="phq9-severe",
    ),
    # PHQ-9 10-14: treatment plan, counseling (Kroenke & Spitzer 2002); positive screen >= 10.
    pytest.param(
        res("phq9", "moderate", "positive_screen", total=12),
        "phq9_moderate",
        ("behavioral_health", "eap"),
        "soon",
        id="phq9-moderate",
    ),
    # PHQ-9 5-9: watchful waiting, repeat PHQ-9 at follow-up (Kroenke & Spitzer 2002).
    pytest.param(
        res("phq9", "mild", total=7), "phq9_mild", ("health_coaching",), "routine", id="phq9-mild"
    ),
    # PHQ-2 >= 3 positive (Kroenke, Spitzer, Williams, Med Care 2003;41:1284).
    pytest.param(
        res("phq2", "positive", "positive_screen", total=4),
        "phq2_positive",
        ("behavioral_health", "eap"),
        "soon",
        id="phq2-positive",
    ),
    # GAD-7 >= 10: further evaluation recommended (Spitzer et al., Arch Intern Med 2006).
    pytest.param(
        res("gad7", "moderate", "positive_screen", total=11),
        "gad7_moderate_or_severe",
        ("behavioral_health", "eap"),
        "soon",
        id="gad7-moderate",
    ),
    pytest.param(
        res("gad7", "severe", "positive_screen", total=18),
        "gad7_moderate_or_severe",
        ("behavioral_health", "eap"),
        "soon",
        id="gad7-severe",
    ),
    # GAD-7 5-9 mild (Spitzer et al. 2006).
    pytest.param(
        res("gad7", "mild", total=6), "gad7_mild", ("health_coaching",), "routine", id="gad7-mild"
    ),
    # GAD-2 >= 3 (Kroenke et al., Ann Intern Med 2007;146:317).
    pytest.param(
        res("gad2", "positive", "positive_screen", total=3),
        "gad2_positive",
        ("behavioral_health", "eap"),
        "soon",
        id="gad2-positive",
    ),
    # WHO-5 <= 28 likely depression; both flags are set (Topp et al. 2015; issue 2).
    pytest.param(
        res("who5", "likely_depression", "poor_wellbeing", "likely_depression", total=24),
        "who5_likely_depression",
        ("behavioral_health",),
        "soon",
        id="who5-likely-depression",
    ),
    # AUDIT-C positive -> brief behavioral counseling (USPSTF 2018, unhealthy alcohol use).
    pytest.param(
        res("audit_c", "positive", "positive_screen", total=5),
        "audit_c_positive",
        ("behavioral_health", "eap"),
        "routine",
        id="audit-c-positive",
    ),
    # Stage 2 -> drug + lifestyle, reassess in 1 month (2017 ACC/AHA BP guideline, Figure 4).
    pytest.param(
        res("blood_pressure", "stage_2"),
        "bp_stage_2",
        ("disease_management",),
        "soon",
        id="bp-stage-2",
    ),
    # Stage 1 / elevated -> lifestyle, reassess in 3-6 months (2017 ACC/AHA, Figure 4).
    pytest.param(
        res("blood_pressure", "stage_1"),
        "bp_stage_1",
        ("lifestyle_management",),
        "routine",
        id="bp-stage-1",
    ),
    pytest.param(
        res("blood_pressure", "elevated"),
        "bp_elevated",
        ("lifestyle_management",),
        "routine",
        id="bp-elevated",
    ),
    # BMI >= 30 -> intensive behavioral intervention (USPSTF 2018 obesity; CDC BMI classes).
    *[
        pytest.param(
            res("bmi", band, total=bmi),
            "bmi_obesity",
            ("lifestyle_management", "health_coaching"),
            "routine",
            id=f"bmi-{band}",
        )
        for band, bmi in (
            ("obesity_class_1", 31.2),
            ("obesity_class_2", 36.0),
            ("obesity_class_3", 42.5),
        )
    ],
    # BMI < 18.5 underweight (CDC adult BMI categories).
    pytest.param(
        res("bmi", "underweight", total=17.9),
        "bmi_underweight",
        ("health_coaching",),
        "routine",
        id="bmi-underweight",
    ),
    # ADA risk test >= 5: "talk to your doctor" (ADA Diabetes Risk Test; Bang et al. 2009).
    pytest.param(
        res("ada_risk", "high_risk", "high_risk", total=6),
        "ada_high_risk",
        ("lifestyle_management", "disease_management"),
        "routine",
        id="ada-high-risk",
    ),
    # PCE >= 7.5%: clinician-patient risk discussion / statin (2019 ACC/AHA primary prevention).
    pytest.param(
        res("ascvd_pce", "intermediate", total=12.1),
        "ascvd_intermediate_or_high",
        ("disease_management",),
        "soon",
        id="ascvd-intermediate",
    ),
    pytest.param(
        res("ascvd_pce", "high", total=24.0),
        "ascvd_intermediate_or_high",
        ("disease_management",),
        "soon",
        id="ascvd-high",
    ),
    # PCE 5-<7.5% borderline: lifestyle, discuss risk enhancers (2019 ACC/AHA).
    pytest.param(
        res("ascvd_pce", "borderline", total=6.0),
        "ascvd_borderline",
        ("lifestyle_management",),
        "routine",
        id="ascvd-borderline",
    ),
]


@pytest.mark.parametrize(("result", "code", "programs", "priority"), SINGLE_RULES)
def test_single_instrument_rule(
    result: ScoreResult, code: str, programs: tuple[str, ...], priority: str
) -> None:
    proposal = triage(session(result))
    assert proposal.programs == programs
    assert proposal.priority == priority
    assert codes(proposal) == {code}
    (reason,) = proposal.reasons
    assert reason.instruments == (result.instrument,)
    assert reason.text["en"] and reason.text["es"] and reason.text["en"] != reason.text["es"]
    assert proposal.needs_referral is True
    assert proposal.crisis == ()
    assert proposal.screened == (result.instrument,)


NORMAL_RESULTS = [
    # Below every action threshold in the sources cited above.
    res("phq9", "minimal", total=3),
    res("phq2", "negative", total=2),
    res("gad7", "minimal", total=4),
    res("gad2", "negative", total=2),
    res("who5", "adequate", total=72),
    # WHO-5 29-50: offer the PHQ-9 but no program by itself (Topp et al. 2015; rules.json).
    res("who5", "poor_wellbeing", "poor_wellbeing", total=44),
    res("audit_c", "negative", total=2),
    res("ada_risk", "low_risk", total=3),
    res("bmi", "healthy_weight", total=22.0),
    # Overweight alone: USPSTF 2018 sets the intervention threshold at BMI >= 30.
    res("bmi", "overweight", total=27.0),
    res("blood_pressure", "normal"),
    res("ascvd_pce", "low", total=3.2),
]


@pytest.mark.parametrize("result", NORMAL_RESULTS, ids=lambda r: f"{r.instrument}-{r.band}")
def test_result_below_thresholds_needs_no_referral(result: ScoreResult) -> None:
    proposal = triage(session(result))
    assert proposal.programs == ()
    assert proposal.priority == "routine"
    assert proposal.reasons == ()
    assert proposal.needs_referral is False


def test_empty_session_and_all_normal_session() -> None:
    for results in ({}, session(*[r for r in NORMAL_RESULTS if r.band != "poor_wellbeing"])):
        proposal = triage(results)
        assert proposal.programs == ()
        assert proposal.priority == "routine"
        assert proposal.needs_referral is False
        assert proposal.crisis == ()
        assert proposal.next_screeners == ()


# ---------------------------------------------------------------- combinations

PHQ9_MILD = res("phq9", "mild", total=7)
PHQ9_MODERATE = res("phq9", "moderate", "positive_screen", total=12)
PHQ2_POS = res("phq2", "positive", "positive_screen", total=4)
GAD2_POS = res("gad2", "positive", "positive_screen", total=4)
GAD7_POS = res("gad7", "moderate", "positive_screen", total=12)
WHO5_DEP = res("who5", "likely_depression", "poor_wellbeing", "likely_depression", total=20)
AUDIT_POS = res("audit_c", "positive", "positive_screen", total=5)
BP_ELEVATED = res("blood_pressure", "elevated")
BP_STAGE_1 = res("blood_pressure", "stage_1")
BP_STAGE_2 = res("blood_pressure", "stage_2")
BMI_OBESE = res("bmi", "obesity_class_1", total=32.0)
BMI_OBESE_2 = res("bmi", "obesity_class_2", total=37.0)
BMI_OVER = res("bmi", "overweight", total=27.0)
ADA_HIGH = res("ada_risk", "high_risk", "high_risk", total=6)
ASCVD_HIGH = res("ascvd_pce", "high", total=22.0)

COMBINATIONS = [
    # Three programs from single findings -> one advocate coordinates (case management;
    # collaborative care, Katon et al. NEJM 2010).
    pytest.param(
        (PHQ9_MILD, BP_STAGE_1, ASCVD_HIGH),
        {"phq9_mild", "bp_stage_1", "ascvd_intermediate_or_high", "care_coordination"},
        (
            "lifestyle_management",
            "case_management",
            "disease_management",
            "health_coaching",
        ),
        "soon",
        id="three-programs-case-management",
    ),
    # Behavioral (>= soon) plus physical findings with only two programs -> case management.
    pytest.param(
        (WHO5_DEP, ASCVD_HIGH),
        {"who5_likely_depression", "ascvd_intermediate_or_high", "care_coordination"},
        ("behavioral_health", "case_management", "disease_management"),
        "soon",
        id="mind-and-body-case-management",
    ),
    # Mild symptoms plus an elevated reading: two programs, behavioral finding below 'soon'.
    pytest.param(
        (PHQ9_MILD, BP_ELEVATED),
        {"phq9_mild", "bp_elevated"},
        ("lifestyle_management", "health_coaching"),
        "routine",
        id="mild-mind-and-body-no-case-management",
    ),
    # Mood + alcohol: coping by drinking (Bolton et al., J Affect Disord 2009).
    pytest.param(
        (PHQ9_MODERATE, AUDIT_POS),
        {"phq9_moderate", "audit_c_positive", "mood_and_alcohol"},
        ("behavioral_health", "eap"),
        "soon",
        id="depression-and-alcohol",
    ),
    pytest.param(
        (GAD2_POS, AUDIT_POS),
        {"gad2_positive", "audit_c_positive", "mood_and_alcohol"},
        ("behavioral_health", "eap"),
        "soon",
        id="anxiety-and-alcohol",
    ),
    pytest.param(
        (WHO5_DEP, AUDIT_POS),
        {"who5_likely_depression", "audit_c_positive", "mood_and_alcohol"},
        ("behavioral_health", "eap"),
        "soon",
        id="low-wellbeing-and-alcohol",
    ),
    # Mild depression is not 'depression' for the combinations (PHQ-9 < 10 is a negative screen).
    pytest.param(
        (PHQ9_MILD, AUDIT_POS),
        {"phq9_mild", "audit_c_positive", "care_coordination"},
        ("behavioral_health", "case_management", "health_coaching", "eap"),
        "routine",
        id="mild-depression-and-alcohol-no-coping-reason",
    ),
    # Metabolic cluster (Alberti et al., Circulation 2009): two of raised BP, obesity,
    # diabetes risk.
    pytest.param(
        (BP_ELEVATED, BMI_OBESE),
        {"bp_elevated", "bmi_obesity", "metabolic_risk_cluster"},
        ("lifestyle_management", "disease_management", "health_coaching"),
        "routine",
        id="metabolic-bp-and-obesity",
    ),
    pytest.param(
        (BMI_OBESE, ADA_HIGH),
        {"bmi_obesity", "ada_high_risk", "metabolic_risk_cluster", "care_coordination"},
        (
            "lifestyle_management",
            "case_management",
            "disease_management",
            "health_coaching",
        ),
        "routine",
        id="metabolic-obesity-and-diabetes-risk",
    ),
    pytest.param(
        (BP_STAGE_2, ADA_HIGH),
        {"bp_stage_2", "ada_high_risk", "metabolic_risk_cluster"},
        ("lifestyle_management", "disease_management"),
        "soon",
        id="metabolic-bp-and-diabetes-risk",
    ),
    pytest.param(
        (BP_STAGE_1, BMI_OVER),
        {"bp_stage_1"},
        ("lifestyle_management",),
        "routine",
        id="overweight-is-not-part-of-the-cluster",
    ),
    # Depression as a barrier to lifestyle change (RAINBOW trial, Ma et al., JAMA 2019).
    pytest.param(
        (PHQ9_MODERATE, BMI_OBESE_2),
        {"phq9_moderate", "bmi_obesity", "mood_barrier_to_lifestyle_change", "care_coordination"},
        (
            "behavioral_health",
            "lifestyle_management",
            "case_management",
            "health_coaching",
            "eap",
        ),
        "soon",
        id="depression-and-obesity",
    ),
    pytest.param(
        (PHQ2_POS, ADA_HIGH),
        {"phq2_positive", "ada_high_risk", "mood_barrier_to_lifestyle_change", "care_coordination"},
        (
            "behavioral_health",
            "lifestyle_management",
            "case_management",
            "disease_management",
            "eap",
        ),
        "soon",
        id="depression-and-diabetes-risk",
    ),
    pytest.param(
        (WHO5_DEP, BP_STAGE_1),
        {
            "who5_likely_depression",
            "bp_stage_1",
            "mood_barrier_to_lifestyle_change",
            "care_coordination",
        },
        ("behavioral_health", "lifestyle_management", "case_management"),
        "soon",
        id="depression-and-high-bp",
    ),
    # Anxiety alone is not the depression barrier, but still spans mind and body.
    pytest.param(
        (GAD7_POS, BMI_OBESE),
        {"gad7_moderate_or_severe", "bmi_obesity", "care_coordination"},
        (
            "behavioral_health",
            "lifestyle_management",
            "case_management",
            "health_coaching",
            "eap",
        ),
        "soon",
        id="anxiety-and-obesity",
    ),
    # Alcohol raises BP; moderation is a guideline lifestyle step (2017 ACC/AHA, Table 15).
    pytest.param(
        (AUDIT_POS, BP_STAGE_1),
        {"audit_c_positive", "bp_stage_1", "alcohol_and_blood_pressure", "care_coordination"},
        ("behavioral_health", "lifestyle_management", "case_management", "eap"),
        "routine",
        id="alcohol-and-blood-pressure",
    ),
    # PHQ-9 in the same session supersedes PHQ-2 (it contains the PHQ-2 items; Kroenke 2003).
    pytest.param(
        (PHQ2_POS, res("phq9", "minimal", total=4)),
        set(),
        (),
        "routine",
        id="phq9-supersedes-phq2",
    ),
    pytest.param(
        (PHQ2_POS, PHQ9_MODERATE),
        {"phq9_moderate"},
        ("behavioral_health", "eap"),
        "soon",
        id="phq9-severity-replaces-phq2",
    ),
    pytest.param(
        (GAD2_POS, res("gad7", "minimal", total=3)),
        set(),
        (),
        "routine",
        id="gad7-supersedes-gad2",
    ),
]


@pytest.mark.parametrize(("results", "expected_codes", "programs", "priority"), COMBINATIONS)
def test_combination(
    results: tuple[ScoreResult, ...],
    expected_codes: set[str],
    programs: tuple[str, ...],
    priority: str,
) -> None:
    proposal = triage(session(*results))
    assert codes(proposal) == expected_codes
    assert proposal.programs == programs
    assert proposal.priority == priority
    assert proposal.needs_referral is bool(programs)


def test_combination_reasons_name_every_contributing_instrument() -> None:
    proposal = triage(session(PHQ9_MODERATE, AUDIT_POS, BMI_OBESE, BP_ELEVATED))
    by_code = {r.code: r for r in proposal.reasons}
    assert by_code["mood_and_alcohol"].instruments == ("audit_c", "phq9")
    assert by_code["metabolic_risk_cluster"].instruments == ("blood_pressure", "bmi")
    assert by_code["care_coordination"].instruments == (
        "audit_c",
        "blood_pressure",
        "bmi",
        "phq9",
    )
    assert "coping" in by_code["mood_and_alcohol"].text["en"]
    assert "barrier" in by_code["mood_barrier_to_lifestyle_change"].text["en"]


def test_reasons_are_ordered_most_pressing_first() -> None:
    proposal = triage(session(BMI_OBESE, res("phq9", "severe", "positive_screen", total=21)))
    ranks = [PRIORITIES.index(r.priority) for r in proposal.reasons]
    assert ranks == sorted(ranks, reverse=True)
    assert proposal.reasons[0].code == "phq9_moderately_severe_or_severe"


def test_every_rule_in_the_rules_file_is_exercised_by_these_tables() -> None:
    data = raw_rules()
    rule_ids = {r["id"] for r in data["rules"]} | {r["id"] for r in data["combinations"]}
    covered = {str(p.values[1]) for p in SINGLE_RULES}
    for p in COMBINATIONS:
        combination_codes = p.values[1]
        assert isinstance(combination_codes, set)
        covered |= combination_codes
    assert rule_ids == covered


# ---------------------------------------------------------------- crisis

ITEM9 = res("phq9", "minimal", "item9_positive", total=1)
# 2017 ACC/AHA & AHA: > 180 systolic and/or > 120 diastolic; the engine also bands it stage_2.
HTN_CRISIS = res("blood_pressure", "stage_2", "hypertensive_crisis")


def test_item9_is_a_crisis_whatever_the_total() -> None:
    # DESIGN.md 3.6: PHQ-9 item 9 >= 1 -> 988 (call or text) and 911 for immediate danger.
    proposal = triage(session(ITEM9))
    assert proposal.priority == "crisis"
    assert proposal.programs == ("behavioral_health",)
    assert proposal.crisis_triggers == ("phq9_item9",)
    (guidance,) = proposal.crisis
    assert "call or text 988" in guidance.text["en"]
    assert "911" in guidance.text["en"]
    # 988lifeline.org: Spanish-language service is "Press 2".
    assert "988 Lifeline ofrece ayuda en español: llame al 988 y oprima 2" in guidance.text["es"]
    assert "911" in guidance.text["es"]
    phones = {r.get("phone") for r in guidance.resources}
    assert {"988", "911"} <= phones
    assert any(r.get("sms") == "988" for r in guidance.resources)
    assert codes(proposal) == {"crisis_phq9_item9"}


def test_hypertensive_crisis_guidance_is_the_aha_wording() -> None:
    # AHA, "Hypertensive Crisis: When You Should Call 911 for High Blood Pressure".
    proposal = triage(session(HTN_CRISIS))
    assert proposal.priority == "crisis"
    assert proposal.programs == ("disease_management",)
    assert proposal.crisis_triggers == ("hypertensive_crisis",)
    (guidance,) = proposal.crisis
    assert (
        "call 911 now if you have chest pain, shortness of breath, back pain, numbness or "
        "weakness, a change in vision or difficulty speaking; otherwise rest 5 minutes, "
        "measure again, and contact a doctor today" in guidance.text["en"].lower()
    )
    assert "911" in guidance.text["es"] and "5 minutos" in guidance.text["es"]
    assert [r.get("phone") for r in guidance.resources] == ["911"]
    assert "988" not in guidance.text["en"]
    assert codes(proposal) == {"crisis_hypertensive_crisis", "bp_stage_2"}


def test_both_crisis_triggers_at_once() -> None:
    proposal = triage(session(HTN_CRISIS, ITEM9))
    assert proposal.priority == "crisis"
    assert proposal.crisis_triggers == ("phq9_item9", "hypertensive_crisis")
    assert proposal.crisis[0].text != proposal.crisis[1].text
    assert {"behavioral_health", "disease_management", "case_management"} <= set(proposal.programs)
    assert proposal.reasons[0].priority == proposal.reasons[1].priority == "crisis"


def test_item9_with_severe_depression_keeps_both_reasons() -> None:
    proposal = triage(session(res("phq9", "severe", "positive_screen", "item9_positive", total=24)))
    assert proposal.priority == "crisis"
    assert codes(proposal) == {"crisis_phq9_item9", "phq9_moderately_severe_or_severe"}


CRIPPLED_RULES = [
    pytest.param({"version": "x"}, id="no-rules-at-all"),
    pytest.param(
        {
            "version": "x",
            "sources": {},
            "rules": [
                {
                    "id": "phq9_item9_quiet",
                    "domain": "behavioral",
                    "when": {"instrument": "phq9", "flags": ["item9_positive"]},
                    "programs": [],
                    "priority": "routine",
                    "reason": {"en": "nothing to see", "es": "nada que ver"},
                },
                {
                    "id": "bp_quiet",
                    "domain": "physical",
                    "when": {"instrument": "blood_pressure", "flags": ["hypertensive_crisis"]},
                    "programs": ["health_coaching"],
                    "priority": "routine",
                    "reason": {"en": "relax", "es": "tranquilo"},
                },
            ],
        },
        id="rules-that-try-to-downgrade",
    ),
]


@pytest.mark.parametrize("rules", CRIPPLED_RULES)
def test_crisis_cannot_be_configured_away(rules: dict[str, Any]) -> None:
    proposal = triage(session(ITEM9, HTN_CRISIS), rules=rules)
    assert proposal.priority == "crisis"
    assert proposal.crisis_triggers == ("phq9_item9", "hypertensive_crisis")
    assert {"behavioral_health", "disease_management"} <= set(proposal.programs)
    assert {"crisis_phq9_item9", "crisis_hypertensive_crisis"} <= codes(proposal)


def test_crisis_survives_an_edited_rules_file(tmp_path: Path) -> None:
    data = raw_rules()
    data["rules"] = [r for r in data["rules"] if "phq9" not in json.dumps(r["when"])]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    proposal = triage(session(ITEM9), rules=load_rules(path))
    assert proposal.priority == "crisis"
    assert proposal.crisis_triggers == ("phq9_item9",)


def test_rules_file_cannot_claim_crisis_priority() -> None:
    data = raw_rules()
    data["rules"][0]["priority"] = "crisis"
    with pytest.raises(RulesError, match="reserved"):
        parse_rules(data)


def test_crisis_guidance_is_immutable() -> None:
    guidance = triage(session(ITEM9)).crisis[0]
    with pytest.raises(TypeError):
        guidance.text["en"] = "changed"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        guidance.trigger = "other"  # type: ignore[misc]
    assert "988" in triage(session(ITEM9)).crisis[0].text["en"]


# ---------------------------------------------------------------- anonymous members


def test_anonymous_crisis_raises_alert_but_no_referral() -> None:
    # DESIGN.md 3.6: anonymous -> no referral, guidance shown, anonymous alert raised.
    proposal = triage(session(ITEM9, BMI_OBESE), identified=False)
    assert proposal.needs_referral is False
    assert proposal.identified is False
    assert proposal.anonymous_crisis_alert is True
    assert proposal.crisis_triggers == ("phq9_item9",)
    assert "behavioral_health" in proposal.programs and "lifestyle_management" in proposal.programs
    assert proposal.as_dict()["anonymous_crisis_alert"] is True


@pytest.mark.parametrize(
    ("identified", "results", "alert", "needs_referral"),
    [
        pytest.param(False, (BMI_OBESE,), False, False, id="anonymous-no-crisis"),
        pytest.param(True, (ITEM9,), False, True, id="identified-crisis"),
        pytest.param(True, (BMI_OBESE,), False, True, id="identified-no-crisis"),
        pytest.param(False, (HTN_CRISIS,), True, False, id="anonymous-bp-crisis"),
    ],
)
def test_anonymous_alert_only_for_anonymous_crisis(
    identified: bool, results: tuple[ScoreResult, ...], alert: bool, needs_referral: bool
) -> None:
    proposal = triage(session(*results), identified=identified)
    assert proposal.anonymous_crisis_alert is alert
    assert proposal.needs_referral is needs_referral
    assert proposal.programs != ()


# ---------------------------------------------------------------- skipped answers


def test_skipping_item9_shows_988_gently_not_crisis() -> None:
    # DESIGN.md 3.6: a skipped screener is not scored; skipping item 9 shows 988, not the crisis.
    proposal = triage({}, skipped={"phq9": frozenset({"9"})})
    assert proposal.crisis == ()
    assert proposal.priority == "routine"
    assert proposal.needs_referral is False
    assert proposal.anonymous_crisis_alert is False
    assert proposal.not_scored == ("phq9",)
    assert [n.code for n in proposal.notices] == ["phq9_item9_skipped"]
    assert "988" in proposal.notices[0].text["en"]
    assert "oprima 2" in proposal.notices[0].text["es"]


@pytest.mark.parametrize(
    ("instrument", "link_id", "expected"),
    [
        ("phq9", "9", "phq9_item9_skipped"),
        ("phq9", "8", None),
        ("phq9", "1", None),
        ("gad7", "7", None),
        ("phq2", "2", None),
    ],
)
def test_skipped_item_notice(instrument: str, link_id: str, expected: str | None) -> None:
    notice = skipped_item_notice(instrument, link_id)
    assert (notice.code if notice else None) == expected


def test_skipping_other_items_gives_no_notice_and_keeps_other_findings() -> None:
    proposal = triage(session(BP_STAGE_2), skipped={"phq9": frozenset({"3"}), "gad7": {"1", "2"}})
    assert proposal.notices == ()
    assert proposal.not_scored == ("gad7", "phq9")
    assert proposal.programs == ("disease_management",)


# ---------------------------------------------------------------- next screeners

NEXT_SCREENERS = [
    # PHQ-2 >= 3 -> PHQ-9 (Kroenke 2003); GAD-2 >= 3 -> GAD-7 (Kroenke 2007);
    # WHO-5 <= 50 -> screen for depression (Topp 2015).
    pytest.param((PHQ2_POS,), None, ("phq9",), id="phq2-positive"),
    pytest.param((GAD2_POS,), None, ("gad7",), id="gad2-positive"),
    pytest.param(
        (res("who5", "poor_wellbeing", "poor_wellbeing", total=40),),
        None,
        ("phq9",),
        id="who5-poor",
    ),
    pytest.param((WHO5_DEP,), None, ("phq9",), id="who5-likely-depression"),
    pytest.param((PHQ2_POS, WHO5_DEP), None, ("phq9",), id="deduplicated"),
    pytest.param((PHQ2_POS, GAD2_POS), None, ("phq9", "gad7"), id="both"),
    pytest.param((PHQ2_POS, res("phq9", "minimal", total=2)), None, (), id="phq9-already-taken"),
    pytest.param((GAD2_POS, GAD7_POS), None, (), id="gad7-already-taken"),
    pytest.param((WHO5_DEP, PHQ9_MODERATE), None, (), id="who5-phq9-already-taken"),
    pytest.param((PHQ2_POS,), {"phq9": frozenset({"9"})}, (), id="phq9-attempted-and-skipped"),
    pytest.param((res("phq2", "negative", total=1),), None, (), id="phq2-negative"),
    pytest.param((res("gad2", "negative", total=2),), None, (), id="gad2-negative"),
    pytest.param((res("who5", "adequate", total=68),), None, (), id="who5-adequate"),
]


@pytest.mark.parametrize(("results", "skipped", "expected"), NEXT_SCREENERS)
def test_next_screeners(
    results: tuple[ScoreResult, ...],
    skipped: Mapping[str, frozenset[str]] | None,
    expected: tuple[str, ...],
) -> None:
    assert triage(session(*results), skipped=skipped).next_screeners == expected


# ---------------------------------------------------------------- merge

BY_PRIORITY = {
    "routine": (PHQ9_MILD,),
    "soon": (BP_STAGE_2,),
    "urgent": (res("phq9", "severe", "positive_screen", total=22),),
    "crisis": (HTN_CRISIS,),
}


@pytest.mark.parametrize(("first", "second"), list(itertools.product(PRIORITIES, repeat=2)))
def test_merge_priority_is_the_max_and_never_lowers(first: str, second: str) -> None:
    existing = triage(session(*BY_PRIORITY[first]))
    new = triage(session(*BY_PRIORITY[second]))
    assert (existing.priority, new.priority) == (first, second)
    merged = merge(existing, new)
    assert merged.priority == max(first, second, key=PRIORITIES.index)
    assert PRIORITIES.index(merged.priority) >= PRIORITIES.index(existing.priority)
    assert set(merged.programs) == set(existing.programs) | set(new.programs)
    assert codes(merged) == codes(existing) | codes(new)
    assert merged.crisis_triggers == tuple(
        dict.fromkeys(existing.crisis_triggers + new.crisis_triggers)
    )


def test_merge_keeps_crisis_and_unions_reasons_without_duplicates() -> None:
    existing = triage(session(ITEM9, AUDIT_POS))
    new = triage(session(res("audit_c", "positive", "positive_screen", total=7), BMI_OBESE))
    merged = merge(existing, new)
    assert merged.priority == "crisis"
    assert merged.crisis_triggers == ("phq9_item9",)
    assert [r.code for r in merged.reasons].count("audit_c_positive") == 1
    assert merged.reasons[0].code == "crisis_phq9_item9"
    assert merged.programs == tuple(p for p in PROGRAMS if p in merged.programs)
    assert merged.needs_referral is True
    assert merge(merged, triage({})).priority == "crisis"


def test_merge_drops_offered_screener_once_taken() -> None:
    first = triage(session(PHQ2_POS))
    assert first.next_screeners == ("phq9",)
    merged = merge(first, triage(session(res("phq9", "minimal", total=3))))
    assert merged.next_screeners == ()
    assert merged.screened == ("phq2", "phq9")


def test_merge_refuses_to_mix_anonymous_and_identified() -> None:
    with pytest.raises(ValueError, match="anonymous"):
        merge(triage(session(ITEM9), identified=False), triage(session(ITEM9)))


# ---------------------------------------------------------------- JSON round trip

ROUND_TRIP = [
    pytest.param(lambda: triage({}), id="empty"),
    pytest.param(lambda: triage(session(ITEM9, HTN_CRISIS, BMI_OBESE, AUDIT_POS)), id="crisis"),
    pytest.param(lambda: triage(session(ITEM9), identified=False), id="anonymous"),
    pytest.param(lambda: triage(session(PHQ2_POS), skipped={"phq9": {"9"}}), id="skipped"),
    pytest.param(
        lambda: merge(triage(session(PHQ9_MODERATE)), triage(session(BP_STAGE_2))), id="merged"
    ),
]


@pytest.mark.parametrize("build", ROUND_TRIP)
def test_as_dict_from_dict_round_trip(build: Any) -> None:
    proposal: ReferralProposal = build()
    wire = json.loads(json.dumps(proposal.as_dict()))
    again = ReferralProposal.from_dict(wire)
    assert again == proposal
    assert again.as_dict() == proposal.as_dict()
    assert again.anonymous_crisis_alert is proposal.anonymous_crisis_alert


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("priority", "whenever"),
        ("programs", ["yoga"]),
        ("needs_referral", "yes"),
    ],
)
def test_from_dict_rejects_bad_data(field: str, value: object) -> None:
    data = triage(session(BP_STAGE_2)).as_dict()
    data[field] = value
    with pytest.raises(ValueError):
        ReferralProposal.from_dict(data)


def test_proposal_with_crisis_must_have_crisis_priority() -> None:
    data = triage(session(ITEM9)).as_dict()
    data["priority"] = "soon"
    with pytest.raises(ValueError, match="crisis"):
        ReferralProposal.from_dict(data)
    assert isinstance(
        CrisisGuidance.from_dict(triage(session(ITEM9)).as_dict()["crisis"][0]), CrisisGuidance
    )


# ---------------------------------------------------------------- rules data


def test_constants() -> None:
    assert PROGRAMS == (
        "behavioral_health",
        "lifestyle_management",
        "case_management",
        "disease_management",
        "health_coaching",
        "eap",
    )
    assert PRIORITIES == ("routine", "soon", "urgent", "crisis")


def test_default_rules_load_and_cite_their_sources() -> None:
    rules = load_rules()
    assert rules.version
    for rule in (*rules.rules, *rules.combinations):
        assert rule.sources, rule.id
        assert rule.priority != "crisis"
        for source in rule.sources:
            assert rules.sources[source]["citation"], source
    assert load_rules(RULES_PATH) == rules


def _broken(mutate: Any) -> dict[str, Any]:
    data = copy.deepcopy(raw_rules())
    mutate(data)
    return data


BROKEN_RULES = [
    pytest.param(lambda d: d["rules"][0].update(programs=["yoga"]), "yoga", id="unknown-program"),
    pytest.param(lambda d: d["rules"][0]["reason"].pop("es"), "es", id="missing-spanish"),
    pytest.param(lambda d: d["rules"][0].update(when={"ref": "nope"}), "nope", id="unknown-ref"),
    pytest.param(
        lambda d: d["rules"][1].update(id=d["rules"][0]["id"]), "duplicate", id="duplicate-id"
    ),
    pytest.param(lambda d: d["rules"][0].update(sources=["nobody"]), "nobody", id="unknown-source"),
    pytest.param(
        lambda d: d["rules"][0].update(when={"instrument": "phq9"}),
        "bands",
        id="atom-without-bands-or-flags",
    ),
    pytest.param(
        lambda d: d["rules"][0].update(when={"min_programs": 2}),
        "recognised",
        id="derived-condition-in-single-rule",
    ),
    pytest.param(lambda d: d["rules"][0].pop("domain"), "domain", id="missing-domain"),
    pytest.param(
        lambda d: d["combinations"][2]["when"].update(at_least=9), "at_least", id="at-least-too-big"
    ),
]


@pytest.mark.parametrize(("mutate", "message"), BROKEN_RULES)
def test_malformed_rules_are_rejected(mutate: Any, message: str) -> None:
    with pytest.raises(RulesError, match=message):
        parse_rules(_broken(mutate))


def _atoms(node: Any) -> list[Mapping[str, Any]]:
    if isinstance(node, Mapping):
        found = [node] if "instrument" in node else []
        for value in node.values():
            found += _atoms(value)
        return found
    if isinstance(node, list):
        return [atom for item in node for atom in _atoms(item)]
    return []


def test_rules_name_only_bands_and_flags_the_instruments_define() -> None:
    # A typo in a band id would silently never match; check against the instrument definitions.
    instruments = assets_dir() / "instruments"
    data = raw_rules()
    atoms = _atoms(data)
    assert atoms
    for atom in atoms:
        versions = sorted((instruments / atom["instrument"]).glob("*.json"))
        if not versions:
            pytest.skip(f"instrument definition {atom['instrument']} not present yet")
        scoring = json.loads(versions[-1].read_text(encoding="utf-8"))["scoring"]
        assert set(atom.get("bands", ())) <= {b["id"] for b in scoring.get("bands", [])}, atom
        assert set(atom.get("flags", ())) <= {f["id"] for f in scoring.get("flags", [])}, atom
    for trigger in ("phq9", "blood_pressure"):
        assert (instruments / trigger).is_dir()


def test_end_to_end_with_the_scoring_engine() -> None:
    assessments = pytest.importorskip("shared.assessments")
    score = assessments.score
    # PHQ-9 all zero except item 9 = 1: total 1, minimal, item 9 positive (Kroenke 2001;
    # issue 2: item9_positive whatever the total). 185/100: systolic > 180 (AHA crisis).
    results = {
        "phq9": score("phq9", {**{str(i): 0 for i in range(1, 9)}, "9": 1}),
        "blood_pressure": score("blood_pressure", {"systolic": 185, "diastolic": 100}),
        "phq2": score("phq2", {"1": 2, "2": 2}),
    }
    proposal = triage(results)
    assert proposal.priority == "crisis"
    assert proposal.crisis_triggers == ("phq9_item9", "hypertensive_crisis")
    # PHQ-2 = 4 >= 3 is positive, but the PHQ-9 taken in the same session supersedes it.
    assert "phq2_positive" not in codes(proposal)
    assert proposal.next_screeners == ()
