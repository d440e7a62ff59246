"""Scorers for the measurement instruments: BMI, blood pressure, ADA diabetes risk and the PCE.

Every cut-off, chart and coefficient comes from the definition's ``scoring`` section; this
module only knows how to apply them. Numeric answers are checked against each item's
``min``/``max`` so that an impossible vital is refused instead of scored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from shared.assessments.scorers_base import Scored, Scorer
from shared.assessments.types import (
    ScoringError,
    reject_unknown,
    require_bool,
    require_choice,
    require_number,
)


def _items(definition: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Return the definition's items keyed by linkId."""
    return {str(item["linkId"]): item for item in definition["items"]}


def _number(answers: Mapping[str, object], item: Mapping[str, Any]) -> float:
    """Return a numeric answer checked against the item's bounds (bool and non-positive refused)."""
    return require_number(answers, str(item["linkId"]), item.get("min"), item.get("max"))


def _choice(answers: Mapping[str, object], item: Mapping[str, Any]) -> str:
    """Return a choice answer that must be one of the item's option values."""
    values = tuple(str(option["value"]) for option in item["options"])
    return require_choice(answers, str(item["linkId"]), values)


def _exact(value: float) -> Decimal:
    """Return the decimal the caller typed, so 18.45 stays 18.45 and not 18.4499999..."""
    return Decimal(repr(value))


def _round_half_up(value: Decimal, rounding: Mapping[str, Any]) -> Decimal:
    """Round as the definition says; only half-up is published for these instruments."""
    if rounding.get("mode") != "half_up":
        raise ValueError(f"unsupported rounding mode {rounding.get('mode')!r}")
    quantum = Decimal(1).scaleb(-int(rounding["decimals"]))
    return value.quantize(quantum, rounding=ROUND_HALF_UP)


def _within(value: float | Decimal, entry: Mapping[str, Any]) -> bool:
    """Tell whether value lies in [min, below), where a null bound is open."""
    low = entry.get("min")
    below = entry.get("below")
    return (low is None or value >= low) and (below is None or value < below)


def _pick(value: float | Decimal, entries: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """Return the first [min, below) entry holding value; a gap is a bug in the definition."""
    for entry in entries:
        if _within(value, entry):
            return entry
    raise ValueError(f"definition has no range holding {value}")


def _band_by_total(total: int, bands: Sequence[Mapping[str, Any]]) -> str:
    """Return the id of the band whose inclusive [min, max] holds an integer total."""
    for band in bands:
        if band["min"] <= total <= band["max"]:
            return str(band["id"])
    raise ValueError(f"definition has no band holding {total}")


# --------------------------------------------------------------------------- body size


def _body_size_form(
    answers: Mapping[str, object], forms: Sequence[Sequence[str]]
) -> tuple[str, ...]:
    """Return the one body-size form the answers use, or raise naming the offending key.

    More than one form: the error names the first key sent of the later form (so sending
    both full unit pairs names ``height_in`` when the metric pair is listed first).
    """
    described = " or ".join(" and ".join(form) for form in forms)
    present = [tuple(form) for form in forms if any(key in answers for key in form)]
    if not present:
        raise ScoringError(str(forms[0][0]), f"is missing: give {described}")
    if len(present) > 1:
        later = next(key for key in present[1] if key in answers)
        raise ScoringError(
            later, f"give only one of {described}; {' and '.join(present[0])} already given"
        )
    form = present[0]
    for key in form:
        if key not in answers:
            others = " and ".join(k for k in form if k != key)
            raise ScoringError(key, f"is missing: it must be given together with {others}")
    return form


def _computed_bmi(
    scoring: Mapping[str, Any],
    height_key: str,
    height: float,
    weight_key: str,
    weight: float,
) -> Decimal:
    """Return the unrounded BMI for a height/weight pair, refusing an implausible result."""
    h = _exact(height)
    w = _exact(weight)
    if height_key == "height_cm":
        bmi = w / (h / 100) ** 2
    elif height_key == "height_in":
        # CDC's imperial formula uses the published factor 703, not the exact conversion.
        bmi = Decimal(str(scoring["imperial_factor"])) * w / h**2
    else:
        raise ValueError(f"no BMI formula for {height_key!r}")
    limits = scoring["bmi_limits"]
    if not limits["min"] <= bmi <= limits["max"]:
        raise ScoringError(
            weight_key,
            f"with {height_key} {height:g} gives a BMI of {float(bmi):.1f}, outside the "
            f"plausible {limits['min']}-{limits['max']}: check height and weight",
        )
    return bmi


def _pair_bmi(
    answers: Mapping[str, object],
    items: Mapping[str, Mapping[str, Any]],
    scoring: Mapping[str, Any],
    form: tuple[str, ...],
) -> tuple[float, float, Decimal]:
    """Validate a height/weight pair and return (height, weight, unrounded BMI)."""
    height_key, weight_key = form
    height = _number(answers, items[height_key])
    weight = _number(answers, items[weight_key])
    return height, weight, _computed_bmi(scoring, height_key, height, weight_key, weight)


# --------------------------------------------------------------------------- BMI


def score_bmi(definition: Mapping[str, Any], answers: Mapping[str, object]) -> Scored:
    """Score adult BMI (CDC), rounded half-up to one decimal; category from the rounded value."""
    items = _items(definition)
    reject_unknown(answers, set(items))
    scoring = definition["scoring"]
    form = _body_size_form(answers, scoring["body_size"]["forms"])
    _, _, bmi = _pair_bmi(answers, items, scoring, form)
    rounded = _round_half_up(bmi, scoring["rounding"])
    band = _pick(rounded, scoring["bands"])
    details = {
        "bmi_unrounded": float(bmi),
        "units": "metric" if form[0] == "height_cm" else "imperial",
    }
    return Scored(float(rounded), str(band["id"]), frozenset(), details)


# --------------------------------------------------------------------------- blood pressure


def score_blood_pressure(definition: Mapping[str, Any], answers: Mapping[str, object]) -> Scored:
    """Classify one reading by the 2017 ACC/AHA categories, taking the higher of SBP and DBP."""
    items = _items(definition)
    reject_unknown(answers, set(items))
    scoring = definition["scoring"]
    systolic = _number(answers, items["systolic"])
    diastolic = _number(answers, items["diastolic"])
    if diastolic >= systolic:
        raise ScoringError(
            "diastolic", f"must be lower than systolic ({systolic:g}), got {diastolic:g}"
        )
    order = [str(band["id"]) for band in scoring["bands"]]
    by_systolic = str(_pick(systolic, scoring["systolic_categories"])["band"])
    by_diastolic = str(_pick(diastolic, scoring["diastolic_categories"])["band"])
    band = max(by_systolic, by_diastolic, key=order.index)
    crisis = scoring["crisis"]
    flags = set()
    if systolic > crisis["systolic_above"] or diastolic > crisis["diastolic_above"]:
        flags.add("hypertensive_crisis")
    details = {
        "systolic": systolic,
        "diastolic": diastolic,
        "systolic_category": by_systolic,
        "diastolic_category": by_diastolic,
    }
    return Scored(None, band, frozenset(flags), details)


# --------------------------------------------------------------------------- ADA risk test


def _ada_weight_points(
    answers: Mapping[str, object],
    items: Mapping[str, Mapping[str, Any]],
    scoring: Mapping[str, Any],
) -> tuple[int, dict[str, Any]]:
    """Return the weight points and how they were found (chart, BMI, or BMI off the chart)."""
    form = _body_size_form(answers, scoring["body_size"]["forms"])
    if form == ("bmi",):
        bmi = _exact(_number(answers, items["bmi"]))
        method = "bmi"
    else:
        height, weight, bmi = _pair_bmi(answers, items, scoring, form)
        method = "bmi"
        if form[0] == "height_in":
            chart = scoring["weight_chart"]
            row_height = int(_exact(height).quantize(Decimal(1), rounding=ROUND_HALF_UP))
            rows = {int(row[0]): row[1:] for row in chart["rows"]}
            if row_height in rows:
                points = 0
                for column_points, threshold in zip(
                    chart["columns_points"], rows[row_height], strict=True
                ):
                    if weight >= threshold:
                        points = int(column_points)
                shown_bmi = float(_round_half_up(bmi, scoring["bmi_rounding"]))
                return points, {
                    "weight_method": "chart",
                    "chart_height_in": row_height,
                    "bmi": shown_bmi,
                }
            method = "bmi_outside_chart"
    rounded = _round_half_up(bmi, scoring["bmi_rounding"])
    points = int(_pick(rounded, scoring["bmi_points"])["points"])
    return points, {"weight_method": method, "bmi": float(rounded)}


def score_ada_risk(definition: Mapping[str, Any], answers: Mapping[str, object]) -> Scored:
    """Score the ADA type 2 diabetes risk test (0-10; 5 or more is high risk)."""
    items = _items(definition)
    reject_unknown(answers, set(items))
    scoring = definition["scoring"]
    points: dict[str, int] = {}

    age = _number(answers, items["age"])
    points["age"] = int(_pick(age, scoring["age_points"])["points"])
    sex = _choice(answers, items["sex"])
    points["sex"] = int(scoring["sex_points"][sex])

    female_only = set(scoring["female_only"])
    for key, value in scoring["yes_points"].items():
        if key in female_only and sex != "female":
            # The test asks this of women only: omitted (or "no") counts as no for a man.
            if key in answers and require_bool(answers, key):
                raise ScoringError(key, "cannot be yes for a man")
            said_yes = False
        else:
            said_yes = require_bool(answers, key)
        points[key] = int(value) if said_yes else 0
    for key, value in scoring["no_points"].items():
        points[key] = 0 if require_bool(answers, key) else int(value)

    points["weight"], weight_details = _ada_weight_points(answers, items, scoring)
    total = sum(points.values())
    band = _band_by_total(total, scoring["bands"])
    flags = frozenset(str(flag["id"]) for flag in scoring["flags"] if total >= flag["min_total"])
    return Scored(total, band, flags, {"points": points, **weight_details})


# --------------------------------------------------------------------------- PCE


def score_ascvd_pce(definition: Mapping[str, Any], answers: Mapping[str, object]) -> Scored:
    """Score the 2013 ACC/AHA Pooled Cohort Equations: 10-year ASCVD risk in percent."""
    items = _items(definition)
    reject_unknown(answers, set(items))
    scoring = definition["scoring"]
    age = _number(answers, items["age"])
    sex = _choice(answers, items["sex"])
    race = _choice(answers, items["race"])
    total_chol = _number(answers, items["total_chol_mg_dl"])
    hdl = _number(answers, items["hdl_mg_dl"])
    systolic = _number(answers, items["systolic"])
    treated = require_bool(answers, "bp_treated")
    smoker = require_bool(answers, "smoker")
    diabetes = require_bool(answers, "diabetes")

    equation_name = f"{scoring['race_equation'][race]}_{sex}"
    equation = scoring["equations"][equation_name]
    ln_age = math.log(age)
    ln_sbp = math.log(systolic)
    values = {
        "ln_age": ln_age,
        "ln_age_sq": ln_age**2,
        "ln_tc": math.log(total_chol),
        "ln_age_ln_tc": ln_age * math.log(total_chol),
        "ln_hdl": math.log(hdl),
        "ln_age_ln_hdl": ln_age * math.log(hdl),
        "ln_treated_sbp": ln_sbp if treated else 0.0,
        "ln_age_ln_treated_sbp": ln_age * ln_sbp if treated else 0.0,
        "ln_untreated_sbp": 0.0 if treated else ln_sbp,
        "ln_age_ln_untreated_sbp": 0.0 if treated else ln_age * ln_sbp,
        "smoker": 1.0 if smoker else 0.0,
        "ln_age_smoker": ln_age if smoker else 0.0,
        "diabetes": 1.0 if diabetes else 0.0,
    }
    coefficients = equation["coefficients"]
    if set(coefficients) != set(values):
        raise ValueError(f"{equation_name}: coefficients do not match the equation's terms")
    linear = math.fsum(float(coefficients[name]) * value for name, value in values.items())
    risk = 1.0 - float(equation["baseline_survival"]) ** math.exp(linear - float(equation["mean"]))
    percent = risk * 100.0
    rounded = _round_half_up(_exact(percent), scoring["rounding"])
    band = _pick(percent, scoring["bands"])
    details = {
        "equation": equation_name,
        "risk_percent_unrounded": percent,
        "linear_predictor": linear,
    }
    return Scored(float(rounded), str(band["id"]), frozenset(), details)


SCORERS: dict[str, Scorer] = {
    "bmi": score_bmi,
    "blood_pressure": score_blood_pressure,
    "ada_risk": score_ada_risk,
    "ascvd_pce": score_ascvd_pce,
}
"""Calculator scorers by the scoring method name used in the definitions."""
