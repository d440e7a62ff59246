"""Referral consent and contact preference, and anonymous crisis alerts raised by a kiosk."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from .common import EMAIL_PATTERN, IdempotencyKey, KioskTime, Out, Strict
from .submissions import OfflineIdentity

CONTACT_METHODS = ("phone", "text", "email")
CONTACT_TIMES = ("morning", "afternoon", "evening", "any")
CRISIS_TRIGGERS = ("phq9_item9", "hypertensive_crisis")


class ConsentRequest(Strict):
    """The member's answer to 'may your advocate contact you?', and how and when.

    With ``consent: true`` and no open referral, one is opened: the member asked to be
    contacted. With ``consent: false`` and no open referral there is nothing to attach and
    nothing is stored. ``phone`` / ``email`` are needed only when the roster has none for the
    chosen method.

    A member who signed in while the kiosk was offline is named by ``offline_identity``
    instead of ``member_ref`` (exactly one of the two): the server matches it when the consent
    arrives and answers the same whether or not it matched, with no referral details. Send
    the phone or email with such a consent: the kiosk cannot know what the roster holds.
    """

    idempotency_key: IdempotencyKey
    member_ref: str | None = Field(default=None, min_length=1, max_length=512)
    offline_identity: OfflineIdentity | None = Field(
        default=None, description="Typed while the kiosk was offline; matched on arrival.")
    consent: bool
    contact_method: Literal["phone", "text", "email"] | None = None
    contact_time: Literal["morning", "afternoon", "evening", "any"] | None = None
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9][0-9 ().\-]{6,24}$",
                              max_length=32)
    email: str | None = Field(default=None, pattern=EMAIL_PATTERN, max_length=254)

    def who_problem(self) -> str | None:
        """Return why member_ref/offline_identity do not name exactly one member, or None."""
        if self.member_ref is not None and self.offline_identity is not None:
            return "give either member_ref or offline_identity, not both"
        if self.member_ref is None and self.offline_identity is None:
            return "is required unless offline_identity is given"
        return None


class ConsentResponse(Out):
    """The referral the consent was attached to (null when declined with nothing open)."""

    referral_id: str | None = None
    consent: bool
    contact_method: str | None = None
    contact_time: str | None = None
    priority: str | None = None
    version: int | None = None


class CrisisAlertRequest(Strict):
    """An anonymous crisis seen at the kiosk: the trigger and the time, nothing else."""

    idempotency_key: IdempotencyKey
    trigger: Literal["phq9_item9", "hypertensive_crisis"]
    raised_at: KioskTime


class CrisisAlertResponse(Out):
    """The alert staff will see on the dashboard."""

    alert_id: str
    trigger: str
    raised_at: datetime
