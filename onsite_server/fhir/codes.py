"""The FHIR R4 codes we send, checked by us: fhir.resources does not check code values.

Sources: FHIR R4 value sets request-priority, request-status, request-intent, task-status,
observation-status, appointmentstatus, event-status, questionnaire-answers-status,
observation-category, participationstatus, communication-category
(http://hl7.org/fhir/R4/valueset-*.html); LOINC for the codes named in
DESIGN.md §5 (PHQ-9 panel 44249-1, total 44261-6; PHQ-2 panel 55757-9, total 55758-7; GAD-7
panel 69737-5, total 70274-6; BP panel 85354-9 with 8480-6 and 8462-4; BMI 39156-5; weight
29463-7; height 8302-2).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

# Our referral priority -> FHIR request-priority (issue 7: soon -> urgent, urgent -> asap).
PRIORITY: Mapping[str, str] = MappingProxyType({
    "routine": "routine", "soon": "urgent", "urgent": "asap", "crisis": "stat"})

# Bound value sets of the elements we fill.
ALLOWED: Mapping[tuple[str, str], frozenset[str]] = MappingProxyType({
    ("ServiceRequest", "status"): frozenset({"draft", "active", "on-hold", "revoked",
                                            "completed", "entered-in-error", "unknown"}),
    ("ServiceRequest", "intent"): frozenset({"proposal", "plan", "directive", "order",
                                            "original-order", "reflex-order", "filler-order",
                                            "instance-order", "option"}),
    ("ServiceRequest", "priority"): frozenset(PRIORITY.values()),
    ("Task", "status"): frozenset({"draft", "requested", "received", "accepted", "rejected",
                                  "ready", "cancelled", "in-progress", "on-hold", "failed",
                                  "completed", "entered-in-error"}),
    ("Task", "intent"): frozenset({"unknown", "proposal", "plan", "order", "original-order",
                                  "reflex-order", "filler-order", "instance-order", "option"}),
    ("Task", "priority"): frozenset(PRIORITY.values()),
    ("Observation", "status"): frozenset({"registered", "preliminary", "final", "amended",
                                         "corrected", "cancelled", "entered-in-error",
                                         "unknown"}),
    ("QuestionnaireResponse", "status"): frozenset({"in-progress", "completed", "amended",
                                                   "entered-in-error", "stopped"}),
    ("Appointment", "status"): frozenset({"proposed", "pending", "booked", "arrived",
                                         "fulfilled", "cancelled", "noshow",
                                         "entered-in-error", "checked-in", "waitlist"}),
    ("Communication", "status"): frozenset({"preparation", "in-progress", "not-done",
                                           "on-hold", "stopped", "completed",
                                           "entered-in-error", "unknown"}),
    ("Communication", "priority"): frozenset(PRIORITY.values()),
    ("Communication", "category"): frozenset({"alert", "notification", "reminder",
                                             "instruction"}),
    ("Appointment", "participant.status"): frozenset({"accepted", "declined", "tentative",
                                                     "needs-action"}),
    ("CareTeam", "status"): frozenset({"proposed", "active", "suspended", "inactive",
                                      "entered-in-error"}),
    ("Questionnaire", "status"): frozenset({"draft", "active", "retired", "unknown"}),
})

# Our booking statuses -> FHIR appointmentstatus.
APPOINTMENT_STATUS: Mapping[str, str] = MappingProxyType({
    "booked": "booked", "waitlisted": "waitlist", "cancelled": "cancelled",
    "checked_in": "checked-in", "no_show": "noshow"})

# Our booking statuses -> the member's participation in the Appointment (participationstatus).
PARTICIPANT_STATUS: Mapping[str, str] = MappingProxyType({
    "booked": "accepted", "waitlisted": "tentative", "cancelled": "declined",
    "checked_in": "accepted", "no_show": "accepted"})

COMMUNICATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/communication-category"

# Our referral statuses -> the Task that tracks the ServiceRequest (and back, for status
# flowing from central: only forward moves are taken, see services).
TASK_STATUS: Mapping[str, str] = MappingProxyType({
    "new": "requested", "sent": "requested", "acknowledged": "accepted",
    "contacted": "in-progress", "closed": "completed"})

SURVEY = {"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}
VITAL_SIGNS = {"system": OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}

BP_PANEL = {"system": LOINC, "code": "85354-9",
            "display": "Blood pressure panel with all children optional"}
SYSTOLIC = {"system": LOINC, "code": "8480-6", "display": "Systolic blood pressure"}
DIASTOLIC = {"system": LOINC, "code": "8462-4", "display": "Diastolic blood pressure"}
MM_HG = {"unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}

# Result interpretation: our result bands -> HL7 v3 ObservationInterpretation
# (http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation: N normal, A abnormal,
# H high, HH critical high, L low, POS positive, NEG negative), with the band itself as the
# text. A screener's cut-off is POS/NEG; a severity scale above its lowest band is A; a
# measurement above its healthy range is H (a hypertensive crisis HH), below it L.
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
INTERPRETATION_DISPLAY: Mapping[str, str] = MappingProxyType({
    "N": "Normal", "A": "Abnormal", "H": "High", "HH": "Critical high", "L": "Low",
    "POS": "Positive", "NEG": "Negative"})
INTERPRETATION: Mapping[str, str] = MappingProxyType({
    "minimal": "N", "normal": "N", "adequate": "N", "healthy_weight": "N", "low": "N",
    "low_risk": "N", "negative": "NEG", "positive": "POS",
    "mild": "A", "moderate": "A", "moderately_severe": "A", "severe": "A",
    "poor_wellbeing": "A", "likely_depression": "A",
    "elevated": "H", "stage_1": "H", "stage_2": "H", "borderline": "H", "intermediate": "H",
    "high": "H", "high_risk": "H", "overweight": "H", "obesity_class_1": "H",
    "obesity_class_2": "H", "obesity_class_3": "H", "underweight": "L"})
