"""Scoring of the measurement instruments (BMI, blood pressure, ADA risk test, PCE) against
their published formulas, charts and cut-offs, through the public ``score()``."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from shared.assessments import ScoringError, load_definition, score

# Sources cited below:
#   [CDC-BMI]  CDC, "About Adult BMI" and "Adult BMI Categories": BMI = kg / m^2 = 703 x lb / in^2;
#              underweight <18.5, healthy weight 18.5 to <25, overweight 25 to <30, obesity class 1
#              30 to <35, class 2 35 to <40, class 3 40 or greater. Worked examples on the page:
#              150 lb at 5'5" (65 in) -> 24.96; 68 kg at 165 cm -> 24.98.
#   [ACC-AHA-BP] Whelton PK et al. 2017 ACC/AHA high blood pressure guideline, Hypertension
#              2018;71:e13-e115, Table 6: normal <120 and <80; elevated 120-129 and <80; stage 1
#              130-139 or 80-89; stage 2 >=140 or >=90; SBP and DBP in two categories -> the higher.
#   [AHA-CRISIS] American Heart Association, Understanding Blood Pressure Readings: hypertensive
#              crisis is systolic higher than 180 and/or diastolic higher than 120.
#   [ADA]      American Diabetes Association paper risk test "Are you at risk for type 2 diabetes?"
#              (adapted from Bang H et al., Ann Intern Med 2009;151:775-783): age <40 0, 40-49 1,
#              50-59 2, >=60 3; man 1; gestational diabetes 1; family history 1; high blood
#              pressure 1; not physically active 1; weight 1/2/3 points from the height/weight
#              chart; 5 or higher is increased risk.
#   [PCE]      Goff DC Jr et al. 2013 ACC/AHA Guideline on the Assessment of Cardiovascular Risk,
#              Circulation 2014;129(25 Suppl 2):S49-S73, Table A and its worked example (age 55,
#              TC 213, HDL 50, untreated SBP 120, non-smoker, no diabetes).


def rank(band: str, instrument: str) -> int:
    """Position of a band in the definition's order (lowest first)."""
    bands = load_definition(instrument)["scoring"]["bands"]
    return [b["id"] for b in bands].index(band)


def rejects(instrument: str, answers: dict[str, object], field: str) -> ScoringError:
    """Assert that scoring raises a ScoringError naming field, and return it."""
    with pytest.raises(ScoringError) as caught:
        score(instrument, answers)
    assert caught.value.field == field, str(caught.value)
    return caught.value


# --- BMI -----------------------------------------------------------------------------------


def test_bmi_cdc_worked_example_imperial() -> None:
    # [CDC-BMI]: 150 lb at 65 in is 703 x 150 / 65^2 = 24.96, which rounds to 25.0: overweight.
    result = score("bmi", {"height_in": 65, "weight_lb": 150})
    assert result.total == 25.0
    assert result.band == "overweight"
    assert result.flags == frozenset()
    assert result.details["bmi_unrounded"] == pytest.approx(24.96, abs=0.005)


def test_bmi_cdc_worked_example_metric() -> None:
    # [CDC-BMI]: 68 kg at 165 cm is 68 / 1.65^2 = 24.98, which rounds to 25.0: overweight.
    result = score("bmi", {"height_cm": 165, "weight_kg": 68})
    assert result.total == 25.0
    assert result.band == "overweight"
    assert result.details["bmi_unrounded"] == pytest.approx(24.98, abs=0.005)


# At 200 cm, BMI is exactly weight / 4, so each weight below lands on a chosen BMI.
# Cut-offs from [CDC-BMI]; the category is read from the value rounded half-up to one decimal.
BMI_BOUNDARIES = [
    (73.76, 18.4, "underweight"),  # 18.44 -> 18.4
    (73.8, 18.5, "healthy_weight"),  # 18.45 -> 18.5 (float round() would give 18.4)
    (99.76, 24.9, "healthy_weight"),  # 24.94 -> 24.9
    (99.8, 25.0, "overweight"),  # 24.95 -> 25.0
    (119.76, 29.9, "overweight"),  # 29.94 -> 29.9
    (119.8, 30.0, "obesity_class_1"),  # 29.95 -> 30.0
    (139.76, 34.9, "obesity_class_1"),  # 34.94 -> 34.9
    (139.8, 35.0, "obesity_class_2"),  # 34.95 -> 35.0
    (159.76, 39.9, "obesity_class_2"),  # 39.94 -> 39.9
    (159.8, 40.0, "obesity_class_3"),  # 39.95 -> 40.0
]


@pytest.mark.parametrize(("weight_kg", "total", "band"), BMI_BOUNDARIES)
def test_bmi_band_boundaries(weight_kg: float, total: float, band: str) -> None:
    result = score("bmi", {"height_cm": 200, "weight_kg": weight_kg})
    assert result.total == total
    assert result.band == band


def test_bmi_rounds_half_up_where_float_round_would_not() -> None:
    # 18.45 has no exact binary form; round(18.45, 1) == 18.4 in Python, CDC's half-up gives 18.5.
    assert round(73.8 / 4, 1) == 18.4
    assert score("bmi", {"height_cm": 200, "weight_kg": 73.8}).total == 18.5


def test_bmi_float_and_int_inputs_agree() -> None:
    assert score("bmi", {"height_cm": 180, "weight_kg": 81}) == score(
        "bmi", {"height_cm": 180.0, "weight_kg": 81.0}
    )


BMI_REJECTIONS: list[tuple[dict[str, object], str]] = [
    ({}, "height_cm"),  # no body size at all: the first form's first key
    ({"height_cm": 170}, "weight_kg"),  # half pair names the missing key
    ({"weight_kg": 70}, "height_cm"),
    ({"height_in": 66}, "weight_lb"),
    ({"weight_lb": 150}, "height_in"),
    # Both unit pairs: the error names the first key of the second (imperial) pair.
    ({"height_cm": 170, "weight_kg": 70, "height_in": 66, "weight_lb": 150}, "height_in"),
    ({"height_cm": 170, "weight_kg": 70, "weight_lb": 150}, "weight_lb"),
    ({"height_cm": 170, "weight_lb": 150}, "weight_lb"),  # mixed units
    ({"height_cm": 170, "weight_kg": True}, "weight_kg"),  # bool is not a number
    ({"height_cm": False, "weight_kg": 70}, "height_cm"),
    ({"height_cm": "170", "weight_kg": 70}, "height_cm"),
    ({"height_cm": 170, "weight_kg": None}, "weight_kg"),
    ({"height_cm": 0, "weight_kg": 70}, "height_cm"),  # non-positive vitals
    ({"height_cm": 170, "weight_kg": -70}, "weight_kg"),
    ({"height_in": -66, "weight_lb": 150}, "height_in"),
    ({"height_in": 66, "weight_lb": 0}, "weight_lb"),
    ({"height_cm": math.nan, "weight_kg": 70}, "height_cm"),
    ({"height_cm": 170, "weight_kg": math.inf}, "weight_kg"),
    ({"height_cm": 17, "weight_kg": 70}, "height_cm"),  # metres-vs-cm slip: not an adult height
    ({"height_cm": 170, "weight_kg": 7000}, "weight_kg"),
    ({"height_in": 660, "weight_lb": 150}, "height_in"),
    # Each value plausible, the pair is not (BMI 3.2): named on the weight.
    ({"height_cm": 250, "weight_kg": 20}, "weight_kg"),
    ({"height_cm": 170, "weight_kg": 70, "waist_cm": 80}, "waist_cm"),  # unknown key
]


@pytest.mark.parametrize(("answers", "field"), BMI_REJECTIONS)
def test_bmi_rejections(answers: dict[str, object], field: str) -> None:
    rejects("bmi", answers, field)


@given(
    # Kept to BMIs of about 11 to 97, inside the definition's plausible 10-100.
    height=st.floats(min_value=140, max_value=200),
    weight=st.floats(min_value=45, max_value=150),
    extra=st.floats(min_value=0, max_value=40),
)
def test_bmi_properties(height: float, weight: float, extra: float) -> None:
    low = score("bmi", {"height_cm": height, "weight_kg": weight})
    high = score("bmi", {"height_cm": height, "weight_kg": weight + extra})
    assert isinstance(low.total, float)
    assert isinstance(high.total, float)
    # BMI is reported with one decimal and its category comes from that value [CDC-BMI].
    assert low.total == round(low.total, 1)
    cutoffs = [18.5, 25, 30, 35, 40]
    assert rank(low.band, "bmi") == sum(low.total >= c for c in cutoffs)
    # More weight at the same height never gives a lower BMI or category.
    assert high.total >= low.total
    assert rank(high.band, "bmi") >= rank(low.band, "bmi")


# --- Blood pressure ------------------------------------------------------------------------

BP_BANDS = [
    # [ACC-AHA-BP] Table 6, every boundary from both sides.
    (119, 79, "normal"),
    (120, 79, "elevated"),
    (129, 79, "elevated"),
    (130, 79, "stage_1"),
    (139, 79, "stage_1"),
    (140, 79, "stage_2"),
    (119, 80, "stage_1"),
    (119, 89, "stage_1"),
    (119, 90, "stage_2"),
    (129.9, 79.9, "elevated"),
    # Readings in two categories take the higher one [ACC-AHA-BP].
    (125, 85, "stage_1"),  # elevated SBP, stage-1 DBP
    (135, 95, "stage_2"),  # stage-1 SBP, stage-2 DBP
    (145, 70, "stage_2"),  # stage-2 SBP, normal DBP
    (110, 95, "stage_2"),  # normal SBP, stage-2 DBP
    (128, 80, "stage_1"),  # "elevated" requires DBP <80
]


@pytest.mark.parametrize(("systolic", "diastolic", "band"), BP_BANDS)
def test_blood_pressure_bands(systolic: float, diastolic: float, band: str) -> None:
    result = score("blood_pressure", {"systolic": systolic, "diastolic": diastolic})
    assert result.band == band
    assert result.total is None


BP_CRISIS = [
    # [AHA-CRISIS]: systolic > 180 and/or diastolic > 120; the limits themselves are not a crisis.
    (180, 100, False),
    (181, 100, True),
    (170, 120, False),
    (170, 121, True),
    (190, 125, True),
    (180, 120, False),
]


@pytest.mark.parametrize(("systolic", "diastolic", "crisis"), BP_CRISIS)
def test_blood_pressure_crisis_flag(systolic: float, diastolic: float, crisis: bool) -> None:
    result = score("blood_pressure", {"systolic": systolic, "diastolic": diastolic})
    assert ("hypertensive_crisis" in result.flags) is crisis
    # Every reading at or over 180 or 120 is stage 2 [ACC-AHA-BP].
    assert result.band == "stage_2"


def test_blood_pressure_normal_has_no_flags() -> None:
    assert score("blood_pressure", {"systolic": 112, "diastolic": 72}).flags == frozenset()


BP_REJECTIONS: list[tuple[dict[str, object], str]] = [
    ({"systolic": 120, "diastolic": 120}, "diastolic"),  # diastolic >= systolic
    ({"systolic": 80, "diastolic": 90}, "diastolic"),
    ({"diastolic": 80}, "systolic"),
    ({"systolic": 120}, "diastolic"),
    ({"systolic": True, "diastolic": 80}, "systolic"),
    ({"systolic": 120, "diastolic": False}, "diastolic"),
    ({"systolic": "120", "diastolic": 80}, "systolic"),
    ({"systolic": 0, "diastolic": 80}, "systolic"),
    ({"systolic": 120, "diastolic": -5}, "diastolic"),
    ({"systolic": 400, "diastolic": 80}, "systolic"),
    ({"systolic": 120, "diastolic": math.nan}, "diastolic"),
    ({"systolic": 120, "diastolic": 80, "pulse": 70}, "pulse"),
]


@pytest.mark.parametrize(("answers", "field"), BP_REJECTIONS)
def test_blood_pressure_rejections(answers: dict[str, object], field: str) -> None:
    rejects("blood_pressure", answers, field)


@given(
    systolic=st.integers(min_value=70, max_value=250),
    diastolic=st.integers(min_value=40, max_value=150),
    up_s=st.integers(min_value=0, max_value=40),
    up_d=st.integers(min_value=0, max_value=40),
)
def test_blood_pressure_properties(systolic: int, diastolic: int, up_s: int, up_d: int) -> None:
    assume(diastolic + up_d < systolic)
    low = score("blood_pressure", {"systolic": systolic, "diastolic": diastolic})
    high = score("blood_pressure", {"systolic": systolic + up_s, "diastolic": diastolic + up_d})
    assert low.total is None
    # A higher reading never gives a lower category, and the crisis flag follows [AHA-CRISIS].
    assert rank(high.band, "blood_pressure") >= rank(low.band, "blood_pressure")
    assert ("hypertensive_crisis" in low.flags) is (systolic > 180 or diastolic > 120)


# --- ADA type 2 diabetes risk test ---------------------------------------------------------


def ada(**overrides: object) -> dict[str, object]:
    """A 30-year-old active woman with no risk factors and a 0-point weight (0 points in all)."""
    answers: dict[str, object] = {
        "age": 30,
        "sex": "female",
        "gestational_diabetes": False,
        "family_history": False,
        "high_blood_pressure": False,
        "physically_active": True,
        "height_in": 66,
        "weight_lb": 140,
    }
    answers.update(overrides)
    return {k: v for k, v in answers.items() if v is not None}


def test_ada_baseline_is_zero() -> None:
    result = score("ada_risk", ada())
    assert result.total == 0
    assert result.band == "low_risk"
    assert result.flags == frozenset()


@pytest.mark.parametrize(
    ("age", "points"),
    # [ADA]: younger than 40: 0; 40-49: 1; 50-59: 2; 60 or older: 3.
    [(18, 0), (39, 0), (39.9, 0), (40, 1), (49, 1), (50, 2), (59, 2), (60, 3), (120, 3)],
)
def test_ada_age_points(age: float, points: int) -> None:
    assert score("ada_risk", ada(age=age)).total == points


@pytest.mark.parametrize(
    ("overrides", "points"),
    [
        ({"sex": "male", "gestational_diabetes": None}, 1),  # [ADA] man: 1 point
        ({"gestational_diabetes": True}, 1),  # [ADA] gestational diabetes: 1
        ({"family_history": True}, 1),  # [ADA] parent or sibling with diabetes: 1
        ({"high_blood_pressure": True}, 1),  # [ADA] diagnosed high blood pressure: 1
        ({"physically_active": False}, 1),  # [ADA] not physically active: 1
    ],
)
def test_ada_single_factor_points(overrides: dict[str, object], points: int) -> None:
    assert score("ada_risk", ada(**overrides)).total == points


def test_ada_male_gestational_diabetes_false_is_accepted() -> None:
    with_false = score("ada_risk", ada(sex="male", gestational_diabetes=False))
    omitted = score("ada_risk", ada(sex="male", gestational_diabetes=None))
    assert with_false.total == omitted.total == 1  # [ADA] man: 1 point


# The paper test's chart, [ADA]: height in inches -> lowest weight (lb) for 1, 2 and 3 points;
# "If you weigh less than the amount in the left column: 0 points".
ADA_CHART = {
    58: (119, 143, 191),  # 4'10"
    59: (124, 148, 198),
    60: (128, 153, 204),  # 5'0"
    61: (132, 158, 211),
    62: (136, 164, 218),
    63: (141, 169, 225),
    64: (145, 174, 232),
    65: (150, 180, 240),
    66: (155, 186, 247),
    67: (159, 191, 255),
    68: (164, 197, 262),
    69: (169, 203, 270),
    70: (174, 209, 278),
    71: (179, 215, 286),
    72: (184, 221, 294),  # 6'0"
    73: (189, 227, 302),
    74: (194, 233, 311),
    75: (200, 240, 319),
    76: (205, 246, 328),  # 6'4"
}
ADA_CHART_CASES = [
    (height, lowest - below, points - (1 if below else 0))
    for height, row in ADA_CHART.items()
    for points, lowest in enumerate(row, start=1)
    for below in (0, 1)
]


@pytest.mark.parametrize(("height_in", "weight_lb", "points"), ADA_CHART_CASES)
def test_ada_weight_chart_every_cell_edge(height_in: int, weight_lb: int, points: int) -> None:
    result = score("ada_risk", ada(height_in=height_in, weight_lb=weight_lb))
    assert result.total == points
    assert result.details["weight_method"] == "chart"


def test_ada_chart_row_is_the_nearest_whole_inch() -> None:
    # 65.5 in uses the 5'6" row (155 lb = 1 point); 65.4 in uses 5'5" (150 lb = 1 point) [ADA].
    assert score("ada_risk", ada(height_in=65.5, weight_lb=152)).total == 0
    assert score("ada_risk", ada(height_in=65.4, weight_lb=152)).total == 1
    assert score("ada_risk", ada(height_in=65.5, weight_lb=152)).details["chart_height_in"] == 66


@pytest.mark.parametrize(
    ("height_in", "weight_lb", "points"),
    [
        # Off the chart (4'10" to 6'4"), BMI = 703 x lb / in^2 [CDC-BMI], rounded half-up to
        # one decimal, scores 25 / 30 / 40 -> 1 / 2 / 3 as the BMI form does.
        (57, 115, 0),  # 24.88 -> 24.9
        (57, 116, 1),  # 25.10
        (57, 138, 1),  # 29.86 -> 29.9
        (57, 139, 2),  # 30.08
        (57, 184, 2),  # 39.81 -> 39.8
        (57, 185, 3),  # 40.03
        (77, 210, 0),  # 24.90
        (77, 211, 1),  # 25.02
    ],
)
def test_ada_height_outside_chart_uses_bmi(height_in: int, weight_lb: int, points: int) -> None:
    result = score("ada_risk", ada(height_in=height_in, weight_lb=weight_lb))
    bmi = 703 * weight_lb / height_in**2
    assert result.details["weight_method"] == "bmi_outside_chart"
    assert result.details["bmi"] == pytest.approx(bmi, abs=0.05)
    assert result.total == points


@pytest.mark.parametrize(
    ("weight_kg", "points"),
    [
        # At 200 cm BMI = kg / 4, rounded half-up to one decimal [CDC-BMI]; points by 25/30/40.
        (99.76, 0),  # 24.9
        (99.8, 1),  # 25.0
        (119.76, 1),  # 29.9
        (119.8, 2),  # 30.0
        (159.76, 2),  # 39.9
        (159.8, 3),  # 40.0
    ],
)
def test_ada_metric_pair_scored_by_bmi(weight_kg: float, points: int) -> None:
    answers = ada(height_in=None, weight_lb=None, height_cm=200, weight_kg=weight_kg)
    result = score("ada_risk", answers)
    assert result.total == points
    assert result.details["weight_method"] == "bmi"


@pytest.mark.parametrize(
    ("bmi", "points"),
    # BMI form: 25 to <30 -> 1, 30 to <40 -> 2, 40 or more -> 3 (the BMI cut-offs behind the [ADA]
    # chart, Bang 2009), after rounding half-up to one decimal as [CDC-BMI] does: 24.95 is 25.0.
    [(18, 0), (24.9, 0), (24.95, 1), (25, 1), (29.9, 1), (30, 2), (39.9, 2), (40, 3), (55, 3)],
)
def test_ada_bmi_answer(bmi: float, points: int) -> None:
    result = score("ada_risk", ada(height_in=None, weight_lb=None, bmi=bmi))
    assert result.total == points


@pytest.mark.parametrize(
    ("overrides", "total", "band"),
    [
        # [ADA]: 5 or higher is increased risk. 60+ (3) + family history + high BP = 5.
        ({"age": 60, "family_history": True}, 4, "low_risk"),
        ({"age": 60, "family_history": True, "high_blood_pressure": True}, 5, "high_risk"),
    ],
)
def test_ada_band_boundary(overrides: dict[str, object], total: int, band: str) -> None:
    result = score("ada_risk", ada(**overrides))
    assert result.total == total
    assert result.band == band
    assert ("high_risk" in result.flags) is (band == "high_risk")


def test_ada_worked_profile() -> None:
    # [ADA]: a 45-year-old man (1 + 1), family history (1), not active (1), 5'6" and 190 lb
    # (186-246 column: 2 points) scores 6: increased risk.
    result = score(
        "ada_risk",
        ada(age=45, sex="male", gestational_diabetes=None, family_history=True)
        | {"physically_active": False, "weight_lb": 190},
    )
    assert result.total == 6
    assert result.band == "high_risk"
    assert result.flags == frozenset({"high_risk"})


@pytest.mark.parametrize("sex", ["female", "male"])
def test_ada_maximum_is_ten(sex: str) -> None:
    # [ADA]: the largest possible score is 10 (man and gestational diabetes exclude each other).
    answers = ada(
        age=70,
        sex=sex,
        gestational_diabetes=(sex == "female"),
        family_history=True,
        high_blood_pressure=True,
        physically_active=False,
        weight_lb=300,
    )
    assert score("ada_risk", answers).total == 10


ADA_REJECTIONS: list[tuple[dict[str, object], str]] = [
    (ada(age=None), "age"),
    (ada(sex=None), "sex"),
    (ada(family_history=None), "family_history"),
    (ada(high_blood_pressure=None), "high_blood_pressure"),
    (ada(physically_active=None), "physically_active"),
    (ada(gestational_diabetes=None), "gestational_diabetes"),  # required for a woman
    (ada(sex="male", gestational_diabetes=True), "gestational_diabetes"),
    (ada(gestational_diabetes="no"), "gestational_diabetes"),
    (ada(gestational_diabetes=0), "gestational_diabetes"),
    (ada(family_history=1), "family_history"),
    (ada(age=True), "age"),
    (ada(age="45"), "age"),
    (ada(age=17), "age"),
    (ada(age=121), "age"),
    (ada(age=0), "age"),
    (ada(sex="other"), "sex"),
    (ada(sex="Female"), "sex"),
    (ada(height_in=None, weight_lb=None), "height_cm"),  # no body size at all
    (ada(weight_lb=None), "weight_lb"),
    (ada(height_in=None), "height_in"),
    (ada(bmi=30), "bmi"),  # two body-size forms: names the later one
    (ada(height_cm=170, weight_kg=70), "height_in"),  # both unit pairs
    (ada(height_in=None, weight_lb=None, bmi=True), "bmi"),
    (ada(height_in=None, weight_lb=None, bmi=0), "bmi"),
    (ada(height_in=None, weight_lb=None, bmi=250), "bmi"),
    (ada(weight_lb=-140), "weight_lb"),
    (ada(height_in=True), "height_in"),
    (ada(height_in=30, weight_lb=140), "height_in"),
    (ada(ethnicity="hispanic"), "ethnicity"),  # unknown key
]


@pytest.mark.parametrize(("answers", "field"), ADA_REJECTIONS)
def test_ada_rejections(answers: dict[str, object], field: str) -> None:
    rejects("ada_risk", answers, field)


ada_answers = st.fixed_dictionaries(
    {
        "age": st.integers(min_value=18, max_value=110),
        "sex": st.sampled_from(["female", "male"]),
        "gestational_diabetes": st.booleans(),
        "family_history": st.booleans(),
        "high_blood_pressure": st.booleans(),
        "physically_active": st.booleans(),
        "height_in": st.integers(min_value=55, max_value=80),
        "weight_lb": st.integers(min_value=100, max_value=400),
    }
)

RAISES = [
    ("age", lambda a: {**a, "age": min(120, a["age"] + 7)}),
    ("sex", lambda a: {**a, "sex": "male", "gestational_diabetes": False}),
    ("gestational_diabetes", lambda a: {**a, "gestational_diabetes": a["sex"] == "female"}),
    ("family_history", lambda a: {**a, "family_history": True}),
    ("high_blood_pressure", lambda a: {**a, "high_blood_pressure": True}),
    ("physically_active", lambda a: {**a, "physically_active": False}),
    ("weight_lb", lambda a: {**a, "weight_lb": a["weight_lb"] + 25}),
]


def _valid_ada(answers: dict[str, Any]) -> dict[str, Any]:
    """Drop the answer a man may not give as yes."""
    if answers["sex"] == "male":
        answers = {**answers, "gestational_diabetes": False}
    return answers


@given(answers=ada_answers, which=st.sampled_from(RAISES))
def test_ada_raising_one_factor_never_lowers_total(answers: dict[str, Any], which: Any) -> None:
    base = _valid_ada(answers)
    _, raise_it = which
    before = score("ada_risk", base)
    after = score("ada_risk", raise_it(base))
    assert isinstance(before.total, int)
    assert isinstance(after.total, int)
    assert 0 <= before.total <= 10
    assert 0 <= after.total <= 10
    assert after.total >= before.total
    assert (before.band == "high_risk") is (before.total >= 5)


# --- ASCVD Pooled Cohort Equations ---------------------------------------------------------


def pce(**overrides: object) -> dict[str, object]:
    """The guideline's worked-example profile [PCE], white woman unless overridden."""
    answers: dict[str, object] = {
        "age": 55,
        "sex": "female",
        "race": "white",
        "total_chol_mg_dl": 213,
        "hdl_mg_dl": 50,
        "systolic": 120,
        "bp_treated": False,
        "smoker": False,
        "diabetes": False,
    }
    answers.update(overrides)
    return {k: v for k, v in answers.items() if v is not None}


@pytest.mark.parametrize(
    ("sex", "race", "total", "individual_sum"),
    [
        # [PCE] Table A worked example: estimated 10-year risk and "Individual Sum".
        ("female", "white", 2.1, -29.67),
        ("female", "african_american", 3.0, 86.16),
        ("male", "african_american", 6.1, 18.97),
    ],
)
def test_pce_guideline_worked_example(
    sex: str, race: str, total: float, individual_sum: float
) -> None:
    result = score("ascvd_pce", pce(sex=sex, race=race))
    assert result.total == total
    assert result.details["linear_predictor"] == pytest.approx(individual_sum, abs=0.01)


def test_pce_guideline_worked_example_white_male() -> None:
    # [PCE] Table A gives 5.3% (Individual Sum 60.69) for white men. The table computes with
    # natural logs rounded to two decimals (it states Ln[Age] = 4.01); with full precision the
    # same equation gives a sum of 60.6995 and a risk of 5.385%, which rounds half-up to 5.4.
    result = score("ascvd_pce", pce(sex="male"))
    assert result.details["linear_predictor"] == pytest.approx(60.69, abs=0.01)
    assert result.details["risk_percent_unrounded"] == pytest.approx(5.3, abs=0.1)
    assert result.total == 5.4
    assert result.band == "borderline"


def test_pce_other_race_uses_white_equations() -> None:
    # [PCE]: for "other" races the guideline advises the equations for white individuals.
    for sex in ("female", "male"):
        other = score("ascvd_pce", pce(sex=sex, race="other"))
        white = score("ascvd_pce", pce(sex=sex, race="white"))
        assert other.total == white.total
        assert other.details["equation"] == f"white_{sex}"


# Table A of [PCE], transcribed here independently of the JSON definition:
# (ln age, ln age^2, ln TC, ln age x ln TC, ln HDL, ln age x ln HDL, ln treated SBP,
#  ln age x ln treated SBP, ln untreated SBP, ln age x ln untreated SBP, smoker,
#  ln age x smoker, diabetes, mean sum, baseline survival)
TABLE_A = {
    ("white", "female"): (
        -29.799, 4.884, 13.540, -3.114, -13.578, 3.149, 2.019, 0, 1.957, 0,
        7.574, -1.665, 0.661, -29.18, 0.9665,
    ),
    ("african_american", "female"): (
        17.114, 0, 0.940, 0, -18.920, 4.475, 29.291, -6.432, 27.820, -6.087,
        0.691, 0, 0.874, 86.61, 0.9533,
    ),
    ("white", "male"): (
        12.344, 0, 11.853, -2.664, -7.990, 1.769, 1.797, 0, 1.764, 0,
        7.837, -1.795, 0.658, 61.18, 0.9144,
    ),
    ("african_american", "male"): (
        2.469, 0, 0.302, 0, -0.307, 0, 1.916, 0, 1.809, 0,
        0.549, 0, 0.645, 19.54, 0.8954,
    ),
}  # fmt: skip


def table_a_risk(a: dict[str, Any]) -> float:
    """10-year risk in percent by the guideline's formula 1 - S10^exp(sum - mean)."""
    c = TABLE_A[("white" if a["race"] == "other" else a["race"], a["sex"])]
    la, tc, hdl, sbp = (
        math.log(a[k]) for k in ("age", "total_chol_mg_dl", "hdl_mg_dl", "systolic")
    )
    t, s, d = a["bp_treated"], a["smoker"], a["diabetes"]
    x = [la, la * la, tc, la * tc, hdl, la * hdl, sbp * t, la * sbp * t]
    x += [sbp * (not t), la * sbp * (not t), s, la * s, d]
    total = sum(ci * xi for ci, xi in zip(c[:13], x, strict=True))
    return float(100 * (1 - c[14] ** math.exp(total - c[13])))


pce_answers = st.fixed_dictionaries(
    {
        "age": st.integers(min_value=40, max_value=79),
        "sex": st.sampled_from(["female", "male"]),
        "race": st.sampled_from(["white", "african_american", "other"]),
        "total_chol_mg_dl": st.integers(min_value=130, max_value=320),
        "hdl_mg_dl": st.integers(min_value=20, max_value=100),
        "systolic": st.integers(min_value=90, max_value=200),
        "bp_treated": st.booleans(),
        "smoker": st.booleans(),
        "diabetes": st.booleans(),
    }
)


@given(answers=pce_answers)
def test_pce_matches_table_a_formula(answers: dict[str, Any]) -> None:
    result = score("ascvd_pce", answers)
    expected = table_a_risk(answers)
    assert result.details["risk_percent_unrounded"] == pytest.approx(expected, rel=1e-9)
    assert isinstance(result.total, float)
    assert 0 <= result.total <= 100
    assert abs(result.total - expected) <= 0.05 + 1e-9


@given(answers=pce_answers, raise_by=st.integers(min_value=1, max_value=110))
def test_pce_higher_systolic_never_lowers_risk(answers: dict[str, Any], raise_by: int) -> None:
    higher = {**answers, "systolic": min(200, answers["systolic"] + raise_by)}
    low = score("ascvd_pce", answers)
    high = score("ascvd_pce", higher)
    assert high.details["risk_percent_unrounded"] >= low.details["risk_percent_unrounded"]
    assert rank(high.band, "ascvd_pce") >= rank(low.band, "ascvd_pce")


def _age_at_risk(target: float, **profile: object) -> float:
    """Bisect the (continuous) age at which the profile's unrounded risk reaches target."""
    lo, hi = 40.0, 79.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if score("ascvd_pce", pce(age=mid, **profile)).details["risk_percent_unrounded"] < target:
            lo = mid
        else:
            hi = mid
    return hi


@pytest.mark.parametrize(
    ("cut", "below", "above", "profile"),
    [
        # [PCE] / 2018 AHA/ACC cholesterol guideline risk categories: <5 low, 5 to <7.5
        # borderline, 7.5 to <20 intermediate, >=20 high; the band uses the unrounded risk.
        (5.0, "low", "borderline", {"sex": "male"}),
        (7.5, "borderline", "intermediate", {"sex": "male"}),
        (20.0, "intermediate", "high", {"sex": "male", "smoker": True}),
    ],
)
def test_pce_band_boundaries(
    cut: float, below: str, above: str, profile: dict[str, object]
) -> None:
    age = _age_at_risk(cut, **profile)
    under = score("ascvd_pce", pce(age=age - 1e-6, **profile))
    over = score("ascvd_pce", pce(age=age, **profile))
    assert under.details["risk_percent_unrounded"] < cut <= over.details["risk_percent_unrounded"]
    assert under.band == below
    assert over.band == above
    # Just under the cut the rounded total already shows the cut value, the band does not.
    assert under.total == cut


PCE_REJECTIONS: list[tuple[dict[str, object], str]] = [
    # Outside the ranges the equations were derived on [PCE]: age 40-79, TC 130-320,
    # HDL 20-100, SBP 90-200.
    (pce(age=39), "age"),
    (pce(age=39.9), "age"),
    (pce(age=80), "age"),
    (pce(total_chol_mg_dl=129), "total_chol_mg_dl"),
    (pce(total_chol_mg_dl=321), "total_chol_mg_dl"),
    (pce(hdl_mg_dl=19), "hdl_mg_dl"),
    (pce(hdl_mg_dl=101), "hdl_mg_dl"),
    (pce(systolic=89), "systolic"),
    (pce(systolic=201), "systolic"),
    (pce(systolic=0), "systolic"),
    (pce(hdl_mg_dl=-50), "hdl_mg_dl"),
    (pce(age=True), "age"),
    (pce(total_chol_mg_dl="213"), "total_chol_mg_dl"),
    (pce(hdl_mg_dl=math.nan), "hdl_mg_dl"),
    (pce(race="asian"), "race"),
    (pce(race=None), "race"),
    (pce(sex="f"), "sex"),
    (pce(bp_treated=0), "bp_treated"),
    (pce(smoker="no"), "smoker"),
    (pce(diabetes=None), "diabetes"),
    (pce(age=None), "age"),
    (pce(systolic=None), "systolic"),
    (pce(ldl_mg_dl=130), "ldl_mg_dl"),
]


@pytest.mark.parametrize(("answers", "field"), PCE_REJECTIONS)
def test_pce_rejections(answers: dict[str, object], field: str) -> None:
    rejects("ascvd_pce", answers, field)


@pytest.mark.parametrize(
    ("answers", "total"),
    [
        # The edges of each valid range are accepted [PCE].
        (pce(age=40, total_chol_mg_dl=130, hdl_mg_dl=100, systolic=90), None),
        (pce(age=79, total_chol_mg_dl=320, hdl_mg_dl=20, systolic=200), None),
    ],
)
def test_pce_range_edges_accepted(answers: dict[str, object], total: None) -> None:
    result = score("ascvd_pce", answers)
    assert isinstance(result.total, float)
    assert result.total == pytest.approx(table_a_risk(answers), abs=0.05 + 1e-9)


# --- Definitions ---------------------------------------------------------------------------


@pytest.mark.parametrize("instrument", ["bmi", "blood_pressure", "ada_risk", "ascvd_pce"])
def test_definitions_are_bilingual_and_cited(instrument: str) -> None:
    definition = load_definition(instrument)
    assert definition["kind"] == "measurement"
    assert definition["source"]["citation"]
    for item in definition["items"]:
        assert item["text"]["en"] and item["text"]["es"], item["linkId"]
        for option in item.get("options", []):
            assert option["text"]["en"] and option["text"]["es"]
    for band in definition["scoring"]["bands"]:
        assert band["label"]["en"] and band["label"]["es"], band["id"]
    for flag in definition["scoring"]["flags"]:
        assert flag["label"]["en"] and flag["label"]["es"], flag["id"]


def test_ada_chart_in_definition_is_the_published_chart() -> None:
    rows = load_definition("ada_risk")["scoring"]["weight_chart"]["rows"]
    assert {row[0]: tuple(row[1:]) for row in rows} == ADA_CHART
