"""What the builders are given: identifier systems, and the facts read from our rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Resource = dict[str, Any]


ADVOCATE_SYSTEM = "urn:onsite-wellness:advocate"
PUBLIC_ID_SYSTEM = "urn:onsite-wellness:member-public-id"


@dataclass(frozen=True)
class Systems:
    """Identifier system URIs: ours under one configurable base (one per installation); the
    member's and the advocate's are the payer's, so each can be set on its own."""

    base: str
    member: str | None = None  # the payer's member-number system; None: <base>/member
    public_id: str = PUBLIC_ID_SYSTEM  # our public member id, as our QR tokens name members
    advocate: str = ADVOCATE_SYSTEM  # the payer's advocate (Practitioner) identifiers

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Systems:
        """Build from FHIR_IDENTIFIER_BASE and FHIR_*_SYSTEM (docs/configuration.md)."""
        return cls(base=str(config["FHIR_IDENTIFIER_BASE"]),
                   member=config.get("FHIR_MEMBER_SYSTEM") or None,
                   public_id=str(config.get("FHIR_MEMBER_PUBLIC_ID_SYSTEM") or PUBLIC_ID_SYSTEM),
                   advocate=str(config.get("FHIR_ADVOCATE_SYSTEM") or ADVOCATE_SYSTEM))

    def __call__(self, kind: str) -> str:
        """Return the identifier system of a kind ("member", "submission", "referral"...)."""
        if kind == "member" and self.member:
            return self.member
        return f"{self.base.rstrip('/')}/{kind}"

    def code_system(self, name: str) -> str:
        """Return the canonical URL of one of our local CodeSystems."""
        return f"{self.base.rstrip('/')}/CodeSystem/{name}"

    def questionnaire(self, instrument_id: str, version: str) -> str:
        """Return the canonical URL of an instrument's Questionnaire, with its version."""
        return f"{self.base.rstrip('/')}/Questionnaire/{instrument_id}|{version}"


@dataclass(frozen=True)
class MemberFacts:
    """Who the upload is about: the roster's member id (central's) and our public id."""

    member_id: str
    public_id: str


@dataclass(frozen=True)
class SubmissionFacts:
    """One stored submission: answers and the server's own result."""

    key: str
    instrument_id: str
    version: str
    answers: Mapping[str, Any]
    skipped: Sequence[str]
    result: Mapping[str, Any] | None
    taken_at: datetime
    devices: Sequence[Mapping[str, Any]] = ()  # the cuffs and scales behind some answers


@dataclass(frozen=True)
class ReferralFacts:
    """The member's consolidated referral at one version."""

    public_id: str
    version: int
    status: str
    priority: str
    programs: Sequence[str]
    reasons: Sequence[Mapping[str, Any]] = ()
    crisis_triggers: Sequence[str] = ()
    consent: bool | None = None
    contact_method: str | None = None
    contact_time: str | None = None
    advocate_id: str | None = None
    authored_at: datetime | None = None
    forwarded: bool = False  # a version of it reached central already
    site: str | None = None  # the site that asks (ServiceRequest.requester)
    contact_phone: str | None = None  # what the member typed, else the roster's
    contact_email: str | None = None


# What a referral may send (docs/privacy.md).
SHARE_ALL = "all"  # the member consented to be contacted: findings and referral
SHARE_CRISIS = "crisis"  # no consent, but a crisis: the referral and its triggering answers
SHARE_WITHDRAW = "withdraw"  # no consent any more: cancel what central holds, send nothing new
SHARE_NOTHING = "nothing"  # no consent (declined, or never answered): nothing leaves the site


def sharing(ref: ReferralFacts) -> str:
    """Return what a referral may send: consent decides, except for a crisis (for safety)."""
    if ref.consent is True:
        return SHARE_ALL
    if ref.priority == "crisis":
        return SHARE_CRISIS
    return SHARE_WITHDRAW if ref.forwarded else SHARE_NOTHING


@dataclass(frozen=True)
class AppointmentFacts:
    """A member's booking as it stands: its seat, its event and its status."""

    public_id: str
    status: str  # ours: booked, waitlisted, cancelled, checked_in, no_show
    start: datetime
    end: datetime
    event_title: str
    event_kind: str
    location: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class MessageFacts:
    """A message to the member about a booking, rendered in their language when queued."""

    key: str
    kind: str
    language: str
    category: str
    topic: str
    text: str


def when(moment: datetime) -> str:
    """Return a FHIR dateTime."""
    return moment.isoformat()
