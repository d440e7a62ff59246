"""Pure builders from our facts to FHIR R4 resources (plain dicts) and transaction Bundles.

No IO, no Flask, no database: the sync worker turns rows into the facts below and sends what
these return, after ``validate``. Facts that never change (Patient, QuestionnaireResponse,
Observation) are conditional creates on our business identifier (``ifNoneExist``). The
ServiceRequest and Task are shared with central's advocates (``ownership``): created
conditionally the first time, and afterwards merged into central's copy and written back with
``If-Match``, so a retry never duplicates, an escalation lands and central's work stays.

What leaves at all follows the member's consent (``sharing``, docs/privacy.md).
"""

from .bookings import appointment, booking_entries, communication
from .bundles import (
    JWKS_CONTENT_TYPE,
    REVOKED_CONTENT_TYPE,
    add_keys,
    referral_bundle,
    referral_entries,
)
from .facts import (
    ADVOCATE_SYSTEM,
    PUBLIC_ID_SYSTEM,
    SHARE_ALL,
    SHARE_CRISIS,
    SHARE_NOTHING,
    SHARE_WITHDRAW,
    AppointmentFacts,
    MemberFacts,
    MessageFacts,
    ReferralFacts,
    Resource,
    SubmissionFacts,
    Systems,
    sharing,
)
from .findings import (
    MEMBER_NUMBER,
    interpretation,
    observations,
    patient,
    questionnaire,
    questionnaire_response,
)
from .referral import (
    PARTICIPATION_MODE,
    REFERRAL_CODE,
    WITHOUT_CONSENT,
    WITHOUT_CONSENT_NOTE,
    care_team,
    contact_point,
    contact_preference,
    service_request,
    task,
)

__all__ = [
    "ADVOCATE_SYSTEM", "JWKS_CONTENT_TYPE", "MEMBER_NUMBER", "PARTICIPATION_MODE",
    "PUBLIC_ID_SYSTEM", "REFERRAL_CODE", "REVOKED_CONTENT_TYPE", "SHARE_ALL", "SHARE_CRISIS",
    "SHARE_NOTHING", "SHARE_WITHDRAW", "WITHOUT_CONSENT", "WITHOUT_CONSENT_NOTE",
    "AppointmentFacts", "MemberFacts", "MessageFacts", "ReferralFacts", "Resource",
    "SubmissionFacts", "Systems", "add_keys", "appointment", "booking_entries", "care_team",
    "communication", "contact_point", "contact_preference", "interpretation", "observations",
    "patient", "questionnaire", "questionnaire_response", "referral_bundle",
    "referral_entries", "service_request", "sharing", "task",
]
