"""FHIR R4 (R4B models) for the central advocate system: pure builders and validation."""

from .build import (
    JWKS_CONTENT_TYPE,
    REVOKED_CONTENT_TYPE,
    Entries,
    MemberFacts,
    ReferralFacts,
    SubmissionFacts,
    Systems,
    add_keys,
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
    "JWKS_CONTENT_TYPE", "REVOKED_CONTENT_TYPE", "add_keys",
    "Entries", "FhirInvalid", "MemberFacts", "ReferralFacts", "SubmissionFacts", "Systems",
    "observations", "patient", "questionnaire", "questionnaire_response", "referral_bundle",
    "referral_entries",
    "service_request", "task", "validate",
]
