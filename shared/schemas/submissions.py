"""Kiosk submissions: a batch of instrument answers, and the server's per-item answers.

The batch envelope holds raw objects; the server validates each item on its own against
``SubmissionItem`` so that one bad item is reported with its field path and does not sink the
rest of the batch.

Who answered: an identified member sends ``member_ref`` (the opaque reference from identify)
and leaves ``anonymous`` false; an anonymous member sends ``anonymous: true`` and no
``member_ref``. A member who signed in while the kiosk was offline sends ``offline_identity``
(the id and birth date they typed): the server matches it when the item arrives, and answers
the same whether or not it matched. Exactly one of the three must be given.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, WithJsonSchema

from .common import EMAIL_PATTERN, IdempotencyKey, KioskTime, Out, Problem, Strict
from .identify import BirthDate

MAX_BATCH_CEILING = 500
MAX_ANSWERS = 64
MAX_ANSWER_TEXT = 200
MAX_MEMBER_REF = 512

ITEM_STATUSES = ("accepted", "replayed", "rejected", "conflict")


def _answer_value(value: object) -> bool | int | float | str:
    """Accept one JSON scalar answer: true/false, a whole or finite number, or short text."""
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value
    if isinstance(value, str):
        if len(value) > MAX_ANSWER_TEXT:
            raise ValueError(f"must be at most {MAX_ANSWER_TEXT} characters")
        return value
    raise ValueError("must be true/false, a number or text")


AnswerValue = Annotated[
    bool | int | float | str,
    PlainValidator(_answer_value),
    WithJsonSchema({
        "anyOf": [
            {"type": "boolean"},
            {"type": "integer"},
            {"type": "number"},
            {"type": "string", "maxLength": MAX_ANSWER_TEXT},
        ]
    }),
]
LinkId = Annotated[str, Field(min_length=1, max_length=64)]
Uuid = Annotated[
    str,
    Field(pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"),
]


class KioskResult(Strict):
    """The score the kiosk computed; the server recomputes it and its own result wins."""

    # Bounded: no instrument scores beyond this, and an unbounded int overflows float maths.
    total: float | int | None = Field(default=None, ge=-1_000_000, le=1_000_000)
    band: str = Field(max_length=64)
    flags: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list,
                                                               max_length=32)


DEVICE_KINDS = ("blood_pressure", "weight")
# A Device Information string as the kiosk read it (shared/devices/info.py checks the same).
DeviceText = Annotated[str, Field(max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")]


class DeviceOrigin(Strict):
    """The Bluetooth device behind some of an item's answers (issue 19); the rest were typed."""

    kind: Literal["blood_pressure", "weight"] = Field(
        description="What the device measures: a blood-pressure cuff or a weight scale.")
    manufacturer: DeviceText = Field(default="", description="Manufacturer Name String (0x2A29)")
    model: DeviceText = Field(default="", description="Model Number String (0x2A24)")
    serial: DeviceText = Field(default="", description="Serial Number String (0x2A25)")
    link_ids: list[LinkId] = Field(min_length=1, max_length=8,
                                   description="The answers this device gave.")


class OfflineIdentity(Strict):
    """What a member typed to sign in while the kiosk could not reach the server."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$",
                    description="The employee id or badge id, as typed or scanned.")
    birth_date: BirthDate = Field(description="YYYY-MM-DD")
    # A way to reach the member should the id not match: staff see it with the unmatched claim.
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9][0-9 ().\-]{6,24}$",
                              description="Typed as a contact fallback (digits).")
    email: str | None = Field(default=None, pattern=EMAIL_PATTERN, max_length=254,
                              description="Typed as a contact fallback.")


class SubmissionItem(Strict):
    """One instrument's answers from one kiosk session."""

    idempotency_key: IdempotencyKey
    member_ref: str | None = Field(default=None, min_length=1, max_length=MAX_MEMBER_REF,
                                   description="From POST /identify; omit when anonymous.")
    anonymous: bool = Field(default=False, description="True for a member who did not sign in.")
    offline_identity: OfflineIdentity | None = Field(
        default=None,
        description="Typed while the kiosk was offline; matched on arrival. An id that does not "
                    "match files the item as anonymous, and the answer is the same either way "
                    "(no referral, alert or next-screener detail is returned for such items).",
    )
    session_id: Uuid = Field(description="The kiosk session: its results are triaged together.")
    instrument_id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    instrument_version: str = Field(pattern=r"^\d{1,4}\.\d{1,4}\.\d{1,4}$")
    answers: dict[LinkId, AnswerValue] = Field(max_length=MAX_ANSWERS)
    skipped: list[LinkId] = Field(
        default_factory=list, max_length=MAX_ANSWERS,
        description="linkIds the member chose 'Prefer not to answer'; such items are not scored.",
    )
    kiosk_result: KioskResult | None = None
    taken_at: KioskTime
    devices: list[DeviceOrigin] = Field(
        default_factory=list, max_length=4,
        description="Answers read from a Bluetooth cuff or scale and confirmed by the member, "
                    "with the device; answers not listed here were typed (self-reported).")

    def devices_problem(self) -> tuple[str, str] | None:
        """Return (field, message) when a device names an answer the item does not have."""
        seen: set[str] = set()
        for index, device in enumerate(self.devices):
            for link in device.link_ids:
                if link not in self.answers:
                    return (f"devices.{index}.link_ids",
                            f"{link!r} is not among the answers")
                if link in seen:
                    return (f"devices.{index}.link_ids", f"{link!r} is given by two devices")
                seen.add(link)
        return None

    def who_problem(self) -> str | None:
        """Return why member_ref/anonymous/offline_identity do not name exactly one, or None."""
        given = sum((self.anonymous, self.member_ref is not None,
                     self.offline_identity is not None))
        if given > 1:
            return "give exactly one of member_ref, offline_identity or anonymous=true"
        if given == 0:
            return "is required unless offline_identity is given or anonymous is true"
        return None


RawItem = Annotated[
    Any,
    WithJsonSchema({
        "description": "A SubmissionItem (see components.schemas.SubmissionItem). Each entry is "
                       "validated on its own: an entry that is not a valid item gets its own "
                       "rejected answer, and a crisis its answers show is still recorded.",
    }),
]


class SubmissionBatch(Strict):
    """Items to file; each is validated and answered on its own.

    The server stores at most its batch limit (MAX_BATCH, at most 500) per request: entries
    beyond it are answered ``rejected`` (send them again), but a crisis in them is recorded now.
    """

    items: list[RawItem] = Field(min_length=1)


class ScoreOut(Out):
    """The server's score of one instrument."""

    instrument: str
    version: str
    total: float | int | None = None
    band: str
    flags: list[str] = Field(default_factory=list)


class CrisisResource(Out):
    """A number or link to show with crisis guidance."""

    label: dict[str, str]
    phone: str | None = None
    sms: str | None = None
    url: str | None = None


class CrisisGuidanceOut(Out):
    """What the kiosk must show for a crisis trigger, in every language."""

    trigger: str
    severity: str
    title: dict[str, str]
    text: dict[str, str]
    resources: list[CrisisResource] = Field(default_factory=list)


class NoticeOut(Out):
    """A gentle information message (e.g. 988 after a skipped PHQ-9 item 9)."""

    code: str
    text: dict[str, str]


class ReferralSummary(Out):
    """The member's open referral after this item was folded in."""

    referral_id: str
    priority: Literal["routine", "soon", "urgent", "crisis"]
    programs: list[str] = Field(default_factory=list)
    version: int
    forward_now: bool = False


class ItemOutcome(Out):
    """What the server made of one accepted item."""

    instrument_id: str
    instrument_version: str
    scored: bool
    score: ScoreOut | None = None
    score_mismatch: bool = False
    crisis: list[CrisisGuidanceOut] = Field(default_factory=list)
    notices: list[NoticeOut] = Field(default_factory=list)
    next_screeners: list[str] = Field(default_factory=list)
    referral: ReferralSummary | None = None
    crisis_alert: bool = Field(default=False,
                               description="An anonymous crisis alert was raised for staff.")


class ItemAnswer(Out):
    """The answer for one item: a result when accepted or replayed, else a problem.

    ``crisis`` and ``crisis_recorded`` are set whatever the status: a crisis read from the
    answers of an item the server refused is still recorded (the member's crisis referral, or
    an anonymous alert for staff), and its guidance must still be shown.
    """

    key: str | None = None
    status: Literal["accepted", "replayed", "rejected", "conflict"]
    result: ItemOutcome | None = None
    problem: Problem | None = None
    crisis: list[CrisisGuidanceOut] = Field(
        default_factory=list, description="Guidance for each crisis trigger the answers show.")
    crisis_recorded: bool = Field(
        default=False, description="True when the server stored every crisis in this item.")


class SubmissionBatchResponse(Out):
    """One answer per item, in the order sent."""

    results: list[ItemAnswer]
