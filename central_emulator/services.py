"""What the emulator's pages show, read from the store: advocates, referrals, appointments.

Views stay thin: they verify a token, call one of these and render the result.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.tokens import Token

from .store import ADVOCATE_SYSTEM, Resource, Store

# Crisis first (issue 7): FHIR request-priority from the most to the least pressing.
PRIORITY_RANK = {"stat": 0, "asap": 1, "urgent": 2, "routine": 3}
# A referral the advocate must not act on any more: consent withdrawn, or sent in error.
HIDDEN_STATUSES = frozenset({"revoked", "entered-in-error"})
CALL_REQUEST_SYSTEM = "urn:onsite-wellness:call-request"
MEMBER_PUBLIC_SYSTEM = "urn:onsite-wellness:member-public-id"


@dataclass(frozen=True)
class AdvocateCard:
    """An advocate's public details, as the connect page shows them."""

    identifier: str
    practitioner_id: str
    name: str
    phone: str | None
    email: str | None
    languages: tuple[str, ...]

    @property
    def initials(self) -> str:
        """The initials drawn in the photo placeholder."""
        parts = self.name.split()
        return "".join(p[0] for p in parts[:1] + parts[1:][-1:]).upper() or "?"


def _values(idents: list[Mapping[str, Any]]) -> set[str]:
    return {str(i["value"]) for i in idents if i.get("value")}


def _name(practitioner: Mapping[str, Any]) -> str:
    for name in practitioner.get("name", []):
        if name.get("text"):
            return str(name["text"])
        joined = " ".join([*name.get("given", []), name.get("family", "")]).strip()
        if joined:
            return joined
    return "Your advocate"


def find_advocate(store: Store, identifier: str) -> AdvocateCard | None:
    """Return the advocate whose Practitioner carries this identifier value, or None."""
    matches, _ = store.search("Practitioner", [("identifier", f"{ADVOCATE_SYSTEM}|{identifier}")])
    if not matches:
        return None
    found = matches[0]
    telecom = {t.get("system"): t.get("value") for t in reversed(found.get("telecom", []))}
    languages = tuple(str(c.get("code")) for lang in found.get("communication", [])
                      for c in lang.get("coding", [])[:1])
    return AdvocateCard(identifier=identifier, practitioner_id=str(found["id"]),
                        name=_name(found), phone=telecom.get("phone"),
                        email=telecom.get("email"), languages=languages)


def _members_of(store: Store, advocate: AdvocateCard) -> set[str]:
    """Return the identifier values of the members whose CareTeam names the advocate."""
    teams, _ = store.search("CareTeam", [("participant:identifier", advocate.identifier)])
    more, _ = store.search("CareTeam", [("participant",
                                         f"Practitioner/{advocate.practitioner_id}")])
    members: set[str] = set()
    for team in teams + more:
        if team.get("status") in ("active", "proposed", None):
            members |= _values(store.reference_identifiers(team.get("subject")))
    return members


def _member_number(idents: list[Mapping[str, Any]]) -> str | None:
    """Return the member number among a Patient's identifiers (type MB), else the first."""
    for ident in idents:
        codings = (ident.get("type") or {}).get("coding", [])
        if any(c.get("code") == "MB" for c in codings) and ident.get("value"):
            return str(ident["value"])
    return next((str(i["value"]) for i in idents if i.get("value")), None)


def _moment(text: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def referrals_for(store: Store, advocate: AdvocateCard) -> list[dict[str, Any]]:
    """Return the referrals an advocate would see, crisis (stat) first, then newest first."""
    members = _members_of(store, advocate)
    tasks: dict[str, Resource] = {}
    for task in store.all("Task"):
        focus = (task.get("focus") or {}).get("reference")
        if isinstance(focus, str):
            tasks[focus] = task
    found = []
    for request in store.all("ServiceRequest"):
        if request.get("status") in HIDDEN_STATUSES:
            continue
        performers = set().union(*(_values(store.reference_identifiers(p))
                                   for p in request.get("performer", [])))
        named = store.reference_identifiers(request.get("subject"))
        patient = _values(named)
        if advocate.identifier not in performers and not patient & members:
            continue
        task = tasks.get(f"ServiceRequest/{request['id']}", {})
        authored = request.get("authoredOn") or request["meta"]["lastUpdated"]
        found.append({
            "id": request["id"],
            "identifier": next(iter(_values(request.get("identifier", []))), None),
            "member": _member_number(named),
            "priority": request.get("priority", "routine"),
            "status": request.get("status"),
            "task_status": task.get("status"),
            "authored": authored,
            "programs": [c.get("code") for cat in request.get("category", [])
                         for c in cat.get("coding", [])],
            "reasons": [r.get("text") or r.get("coding", [{}])[0].get("code")
                        for r in request.get("reasonCode", [])],
            "notes": [n.get("text") for n in request.get("note", [])],
            "supporting": len(request.get("supportingInfo", [])),
        })
    found.sort(key=lambda r: _moment(r["authored"]), reverse=True)
    found.sort(key=lambda r: PRIORITY_RANK.get(str(r["priority"]), len(PRIORITY_RANK)))
    return found


def calls_for(store: Store, advocate: AdvocateCard) -> list[dict[str, Any]]:
    """Return the open call requests members made to this advocate, newest first.

    A member's own request reaches the advocate whatever the member said about being
    contacted at the kiosk (docs/privacy.md): it names the member by the public id in the
    link, and no health information.
    """
    found = []
    for asked in store.all("CommunicationRequest"):
        if asked.get("status") != "active":
            continue
        recipients = {r.get("reference") for r in asked.get("recipient", [])}
        if f"Practitioner/{advocate.practitioner_id}" not in recipients:
            continue
        subject = (asked.get("subject") or {}).get("identifier") or {}
        found.append({"id": asked["id"], "member": subject.get("value"),
                      "member_system": subject.get("system"),
                      "authored": asked.get("authoredOn") or asked["meta"]["lastUpdated"]})
    found.sort(key=lambda c: _moment(c["authored"]), reverse=True)
    return found


def request_call(store: Store, token: Token, advocate: AdvocateCard) -> bool:
    """Record a member's "request a call" once per link; return False if already recorded."""
    matches, _ = store.search("CommunicationRequest",
                              [("identifier", f"{CALL_REQUEST_SYSTEM}|{token.token_id}")])
    if matches:
        return False
    store.put({
        "resourceType": "CommunicationRequest", "id": str(uuid.uuid4()), "status": "active",
        "identifier": [{"system": CALL_REQUEST_SYSTEM, "value": token.token_id}],
        "category": [{"text": "Call request from the advocate-link page"}],
        "medium": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode",
            "code": "PHONE", "display": "telephone"}]}],
        "subject": {"identifier": {"system": MEMBER_PUBLIC_SYSTEM, "value": token.subject}},
        "recipient": [{"reference": f"Practitioner/{advocate.practitioner_id}",
                       "display": advocate.name}],
        "authoredOn": datetime.now(UTC).isoformat(timespec="seconds"),
    })
    return True


@dataclass(frozen=True)
class Appointment:
    """What a ticket page shows of a synced Appointment."""

    booking_id: str
    title: str
    status: str
    start: datetime
    end: datetime
    places: tuple[str, ...]


def appointment_for(store: Store, booking_id: str) -> Appointment | None:
    """Return the Appointment whose identifier value is the booking id, when it has times."""
    matches, _ = store.search("Appointment", [("identifier", booking_id)])
    for found in matches:
        if not found.get("start") or not found.get("end"):
            continue
        title = found.get("description") or next(
            (c.get("text") for c in found.get("serviceType", []) if c.get("text")),
            "Your appointment")
        places = tuple(str(p["actor"].get("display")) for p in found.get("participant", [])
                       if str((p.get("actor") or {}).get("reference", "")).startswith(
                           "Location") and p["actor"].get("display"))
        return Appointment(booking_id=booking_id, title=str(title),
                           status=str(found.get("status", "")), start=_moment(found["start"]),
                           end=_moment(found["end"]), places=places)
    return None


def _ics_text(value: str) -> str:
    """Escape an iCalendar TEXT value (RFC 5545 §3.3.11)."""
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n"))


def _fold(line: str) -> str:
    """Fold a content line at 75 octets (RFC 5545 §3.1), never inside a UTF-8 character."""
    out: list[str] = []
    current = ""
    for char in line:
        limit = 75 if not out else 74  # continuation lines start with one space
        if len((current + char).encode("utf-8")) > limit:
            out.append(current)
            current = char
        else:
            current += char
    out.append(current)
    return "\r\n ".join(out)


def ics(appointment: Appointment, url: str, now: datetime | None = None) -> str:
    """Return a one-event iCalendar file for the appointment, times in UTC."""
    def utc(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Onsite Wellness//Central emulator//EN",
             "CALSCALE:GREGORIAN", "METHOD:PUBLISH", "BEGIN:VEVENT",
             f"UID:{appointment.booking_id}", f"DTSTAMP:{utc(now or datetime.now(UTC))}",
             f"DTSTART:{utc(appointment.start)}", f"DTEND:{utc(appointment.end)}",
             f"SUMMARY:{_ics_text(appointment.title)}"]
    if appointment.places:
        lines.append(f"LOCATION:{_ics_text(', '.join(appointment.places))}")
    lines += [f"URL:{url}", "END:VEVENT", "END:VCALENDAR"]
    return "".join(_fold(line) + "\r\n" for line in lines)
