"""A member's booking and the messages about it: Appointment and Communication."""

from __future__ import annotations

from .. import codes
from ..entries import Entries
from .facts import AppointmentFacts, MemberFacts, MessageFacts, Resource, Systems
from .facts import when as _when
from .findings import patient


def appointment(facts: AppointmentFacts, subject: str, systems: Systems) -> Resource:
    """Return the member's Appointment: a conditional update, so each change replaces it."""
    resource: Resource = {
        "resourceType": "Appointment", "status": codes.APPOINTMENT_STATUS[facts.status],
        "identifier": [{"system": systems("booking"), "value": facts.public_id}],
        "serviceType": [{"coding": [{"system": systems("event-kind"),
                                     "code": facts.event_kind}], "text": facts.event_title}],
        "description": facts.event_title,
        "start": _when(facts.start), "end": _when(facts.end),
        "participant": [{"actor": {"reference": subject}, "required": "required",
                         "status": codes.PARTICIPANT_STATUS[facts.status]}],
    }
    if facts.location:
        resource["comment"] = f"Location: {facts.location}"
    if facts.created_at is not None:
        resource["created"] = _when(facts.created_at)
    return resource


def communication(message: MessageFacts, subject: str, about: str,
                  systems: Systems) -> Resource:
    """Return a message to the member for central to deliver (status preparation: not sent yet).

    Central owns the member's contact channels, so it chooses the medium and moves the
    Communication to completed once delivered.
    """
    resource: Resource = {
        "resourceType": "Communication", "status": "preparation", "language": message.language,
        "identifier": [{"system": systems("message"), "value": message.key}],
        "category": [{"coding": [{"system": codes.COMMUNICATION_CATEGORY,
                                  "code": message.category}]}],
        "priority": "routine", "subject": {"reference": subject},
        "recipient": [{"reference": subject}], "about": [{"reference": about}],
        "topic": {"text": message.topic}, "payload": [{"contentString": message.text}],
    }
    return resource


def booking_entries(member: MemberFacts, booking: AppointmentFacts,
                    message: MessageFacts | None, systems: Systems) -> Entries:
    """Return the entries that send one booking's Appointment, and a message about it."""
    entries = Entries()
    subject = entries.create(patient(member, systems), systems("member"), member.member_id)
    about = entries.update(appointment(booking, subject, systems), systems("booking"),
                           booking.public_id)
    if message is not None:
        entries.create(communication(message, subject, about, systems), systems("message"),
                       message.key)
    return entries

