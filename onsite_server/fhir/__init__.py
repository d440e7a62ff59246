"""FHIR R4 (R4B models) for the central advocate system: pure builders and validation."""

from .builders import (
    ADVOCATE_SYSTEM,
    JWKS_CONTENT_TYPE,
    REVOKED_CONTENT_TYPE,
    SHARE_ALL,
    SHARE_CRISIS,
    SHARE_NOTHING,
    SHARE_WITHDRAW,
    WITHOUT_CONSENT,
    AppointmentFacts,
    MemberFacts,
    MessageFacts,
    ReferralFacts,
    SubmissionFacts,
    Systems,
    add_keys,
    appointment,
    booking_entries,
    care_team,
    communication,
    observations,
    patient,
    questionnaire,
    questionnaire_response,
    referral_bundle,
    referral_entries,
    service_request,
    sharing,
    task,
)
from .entries import Entries, Held, Owned
from .instruments import code_systems
from .ownership import ONSITE_AUTHOR, merge
from .validate import FhirInvalid, validate

__all__ = [
    "ADVOCATE_SYSTEM", "care_team", "AppointmentFacts", "MessageFacts", "appointment",
    "booking_entries", "communication",
    "JWKS_CONTENT_TYPE", "REVOKED_CONTENT_TYPE", "add_keys",
    "Entries", "FhirInvalid", "MemberFacts", "ReferralFacts", "SubmissionFacts", "Systems",
    "observations", "patient", "questionnaire", "questionnaire_response", "referral_bundle",
    "referral_entries",
    "service_request", "task", "validate", "SHARE_ALL", "SHARE_CRISIS", "SHARE_NOTHING",
    "SHARE_WITHDRAW", "WITHOUT_CONSENT", "Held", "Owned", "sharing", "ONSITE_AUTHOR", "merge",
    "code_systems",
]
