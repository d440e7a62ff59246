"""What one batch's items share: settings, context, the item's states and its refusals."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from shared import triage as triage_mod
from shared.assessments import ScoreResult
from shared.schemas.submissions import SubmissionItem

from ...models import Kiosk, Member, Submission
from ..clock import ClockPolicy
from ..errors import problem_document
from ..idempotency import parse_uuid

log = logging.getLogger("onsite_server.submissions")


# Statements built once: constructing a select() per call costs more than running it on SQLite.
_FIND = select(Submission).where(Submission.idempotency_key == bindparam("key"))


class ItemProblem(Exception):
    """One item cannot be accepted; errors name fields relative to the item."""

    def __init__(self, errors: list[dict[str, str]], status: int = 422,
                 title: str = "Invalid item") -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors
        self.status = status
        self.title = title


@dataclass(frozen=True)
class BatchSettings:
    """The server settings a batch is checked against."""

    secret: str
    ref_max_age: int
    max_batch: int
    offered: tuple[str, ...]
    clock: ClockPolicy
    offline_per_day: int = 300
    secret_fallbacks: tuple[str, ...] = ()  # SECRET_KEY_FALLBACKS: earlier secrets' refs

    @classmethod
    def from_config(cls, config: Mapping[str, Any], offered: Sequence[str]) -> BatchSettings:
        """Read the settings from the app config, with the site's offered instruments."""
        return cls(secret=str(config["SECRET_KEY"]),
                   ref_max_age=int(config["MEMBER_REF_TTL_SECONDS"]),
                   max_batch=int(config["MAX_BATCH"]), offered=tuple(offered),
                   clock=ClockPolicy.from_config(config),
                   offline_per_day=int(config.get("OFFLINE_IDENTIFY_PER_DAY", 300)),
                   secret_fallbacks=tuple(config.get("SECRET_KEY_FALLBACKS") or ()))


@dataclass
class BatchContext:
    """What every item of one batch needs; the sessions are opened only when needed."""

    session_factory: Callable[[], Session]
    read_session_factory: Callable[[], Session]
    kiosk: Kiosk
    settings: BatchSettings
    members: dict[str, tuple[Member, str | None]] = field(default_factory=dict)
    # Offline-typed identities already matched in this batch: (spelling, birth date) -> member.
    offline: dict[tuple[str, str], Member | None] = field(default_factory=dict)
    # Keys of the batch's offline-typed entries already stored, when read ahead (a replay is
    # not matched again); None: look each one up.
    stored_keys: set[str] | None = None
    # Whether anything is already in the transaction (writes or row locks): later items then
    # need a SAVEPOINT, since rolling the transaction back would undo that too.
    wrote: bool = False

    @property
    def session(self) -> Session:
        """The request's write session."""
        return self.session_factory()

    @property
    def read_session(self) -> Session:
        """The request's read session (the write session once that is open)."""
        return self.read_session_factory()


@dataclass
class Prepared:
    """One item after the checks and scoring that need no database."""

    prefix: str
    item: SubmissionItem
    digest: str
    result: ScoreResult | None = None
    triage_result: ScoreResult | None = None
    problem: ItemProblem | None = None
    member: Member | None = None
    late: str | None = None  # why a genuine member reference was honoured late, if it was
    diffs: list[str] = field(default_factory=list)
    crisis: list[triage_mod.CrisisGuidance] = field(default_factory=list)
    notices: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Entry:
    """One entry of the batch as sent, with what the server made of it."""

    index: int
    raw: object
    triggers: tuple[str, ...]  # the generous reading (shared.crisis)
    prepared: Prepared | None = None
    answer: dict[str, Any] | None = None  # set when it is refused before the database
    crisis_member: Member | None = None  # who a crisis in it is filed for, when verified


def _raw_key(raw: object) -> str | None:
    """Return the entry's idempotency key when it is a well-formed UUID (lower case)."""
    return parse_uuid(raw.get("idempotency_key")) if isinstance(raw, dict) else None


def _prefixed(errors: list[dict[str, str]], prefix: str) -> list[dict[str, str]]:
    return [{"field": f"{prefix}.{e['field']}", "message": e["message"]} for e in errors]


def _rejected(key: str | None, errors: list[dict[str, str]], status: int = 422,
              title: str = "Invalid item") -> dict[str, Any]:
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return {"key": key, "status": "rejected",
            "problem": problem_document(status, title, detail, errors)}


def _find(session: Session, key: str) -> Submission | None:
    return session.scalars(_FIND, {"key": key}).first()
