"""FHIR R4 (R4B models) for the central advocate system: pure builders and validation."""

from .build import (
    ADVOCATE_SYSTEM,
    JWKS_CONTENT_TYPE,
    REVOKED_CONTENT_TYPE,
    Entries,
    MemberFacts,
    ReferralFacts,
    SubmissionFacts,
    Systems,
    add_keys,
    care_team,
    observations,
    patient,
    questionnaire,
    questionnaire_response,
    referral_bundle,
    referral_entries,
    service_request,
    task,
)
from .validate import FhirInvalid, validate

__all__ = [
    "ADVOCATE_SYSTEM", "care_team",
    "JWKS_CONTENT_TYPE", "REVOKED_CONTENT_TYPE", "add_keys",
    "Entries", "FhirInvalid", "MemberFacts", "ReferralFacts", "SubmissionFacts", "Systems",
    "observations", "patient", "questionnaire", "questionnaire_response", "referral_bundle",
    "referral_entries",
    "service_request", "task", "validate",
]
