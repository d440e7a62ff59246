"""What the emulator's store is made of: resource shapes, search rules, refusals, the control.

No Flask here; the views parse HTTP and call the store (core.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Resource = dict[str, Any]

ADVOCATE_SYSTEM = "urn:onsite-wellness:advocate"
MEMBER_SYSTEM = "urn:onsite-wellness:member"
KEYS_CONTENT_TYPE = "application/jwk-set+json"
REVOKED_CONTENT_TYPE = "application/vnd.onsite-revoked+json"

_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_TYPE = re.compile(r"^[A-Z][A-Za-z]+$")
# Result parameters a generic client adds (paging is the views' business, not the store's).
_RESULT_PARAMS = frozenset({"_count", "_format", "_summary", "_elements", "_sort", "_total",
                            "_pretty", "_getpagesoffset"})
# Reference search parameters: (type, parameter) -> the Reference elements it searches.
_REFERENCES: dict[tuple[str, str], tuple[str, ...]] = {
    ("CareTeam", "subject"): ("subject",), ("CareTeam", "patient"): ("subject",),
    ("CareTeam", "participant"): ("participant.member",),
    ("PractitionerRole", "practitioner"): ("practitioner",),
    ("ServiceRequest", "subject"): ("subject",), ("ServiceRequest", "patient"): ("subject",),
    ("ServiceRequest", "performer"): ("performer",),
    ("Task", "focus"): ("focus",), ("Task", "subject"): ("for",), ("Task", "patient"): ("for",),
    ("Observation", "subject"): ("subject",), ("Observation", "patient"): ("subject",),
    ("QuestionnaireResponse", "subject"): ("subject",),
    ("QuestionnaireResponse", "patient"): ("subject",),
    ("Appointment", "patient"): ("participant.actor",),
    ("Appointment", "actor"): ("participant.actor",),
    ("Communication", "subject"): ("subject",), ("Communication", "patient"): ("subject",),
    ("Communication", "recipient"): ("recipient",),
}
# Identifiers compared by value alone, whatever system a client sends: each onsite server
# names advocates in its own configurable namespace, the demo directory in ours. A CareTeam's
# identifier is compared with its system, as a real server does, so a client's CareTeam under
# its own identifier is a second CareTeam, never central's.
_BY_VALUE = {"Practitioner", "PractitionerRole"}
_WITH_STATUS = {"ServiceRequest", "Task", "Appointment", "CareTeam", "Communication",
                "CommunicationRequest"}


class FhirError(Exception):
    """A request the store refuses: an HTTP status and an OperationOutcome issue."""

    def __init__(self, status: int, code: str, message: str,
                 expression: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.expression = expression

    def outcome(self) -> Resource:
        """Return the OperationOutcome that explains the refusal."""
        issue: Resource = {"severity": "error", "code": self.code, "diagnostics": str(self)}
        if self.expression:
            issue["expression"] = [self.expression]
        return {"resourceType": "OperationOutcome", "issue": [issue]}


def now_iso() -> str:
    """Return the current instant as a FHIR instant (UTC, milliseconds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def identifiers(resource: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Return a resource's identifiers (a list in most types, one object in a few)."""
    found = resource.get("identifier")
    if isinstance(found, dict):
        return [found]
    if isinstance(found, list):
        return [i for i in found if isinstance(i, dict)]
    return []


def _walk(value: Any, path: str) -> Iterator[Any]:
    """Yield the values at a dotted path, descending into lists."""
    head, _, rest = path.partition(".")
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, dict) or head not in item:
            continue
        child = item[head]
        if rest:
            yield from _walk(child, rest)
        elif isinstance(child, list):
            yield from child
        else:
            yield child


def _token_match(query: str, idents: Iterable[Mapping[str, Any]], by_value: bool) -> bool:
    """Match a FHIR token search value (``system|value``, ``|value``, ``value``)."""
    for alternative in query.split(","):
        system, bar, value = alternative.rpartition("|")
        for ident in idents:
            if value and ident.get("value") != value:
                continue
            if not bar or by_value:
                return True
            if (system or None) == ident.get("system"):
                return True
    return False


@dataclass
class Control:
    """How the FHIR endpoints behave now (set through ``POST /_control``)."""

    mode: str = "normal"
    delay_seconds: float = 0.0

    MODES = ("normal", "down", "slow", "error", "drop_after_commit")


@dataclass
class _Plan:
    """One transaction entry once its target is known."""

    index: int
    kind: str
    rid: str
    method: str
    resource: Resource | None  # None: ifNoneExist matched, nothing is written
    created: bool


def _identifier_values(params: Iterable[tuple[str, str]]) -> set[str] | None:
    """Return the identifier values a search needs (all of them must match), or None."""
    for name, value in params:
        if name == "identifier":
            values = {alt.rpartition("|")[2] for alt in value.split(",")}
            if all(values):
                return values
    return None


def _reference_match(query: str, reference: Any) -> bool:
    """Match a reference search value: ``Type/id``, or a bare id of any type."""
    literal = reference.get("reference") if isinstance(reference, dict) else None
    if not isinstance(literal, str):
        return False
    return any(literal == v or ("/" not in v and literal.endswith(f"/{v}"))
               for v in query.split(","))


def _content(resource: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in ("meta", "id")}
