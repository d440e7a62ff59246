"""FHIR R4 (R4B models) for the central advocate system: pure builders and validation."""

from .build import (
    Entries,
    MemberFacts,
    ReferralFacts,
    SubmissionFacts,
    Systems,
    observations,
    patient,
    questionnaire,
    questionnaire_response,
    referral_bundle,
    service_request,
    task,
)
from .validate import FhirInvalid, validate

__all__ = [
    "Entries", "FhirInvalid", "MemberFacts", "ReferralFacts", "SubmissionFacts", "Systems",
    "observations", "patient", "questionnaire", "questionnaire_response", "referral_bundle",
    "service_request", "task", "validate",
]
