"""The demo directory: advocates as Practitioner and PractitionerRole, assignments as CareTeam.

The advocates and the member -> advocate assignment are those ``onsite-server demo-data``
seeds (a test holds the two together), so both sides agree before the first sync. A CareTeam
names its member by identifier only, not by a Patient resource: the onsite server creates the
Patient in its own identifier namespace, and a second Patient here would be a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass

from .store import ADVOCATE_SYSTEM, MEMBER_SYSTEM, Resource, Store

LANGUAGE_SYSTEM = "urn:ietf:bcp:47"
CARETEAM_SYSTEM = "urn:onsite-wellness:careteam"
ADVOCATE_ROLE = {"coding": [{"system": "urn:onsite-wellness:role", "code": "advocate",
                             "display": "Personal health advocate"}],
                 "text": "Personal health advocate"}


@dataclass(frozen=True)
class Advocate:
    """One advocate of the demo directory."""

    identifier: str
    name: str
    phone: str
    email: str
    languages: tuple[str, ...]


ADVOCATES = (
    Advocate("adv-001", "Maria Lopez", "+1-555-0101", "maria.lopez@advocates.example",
             ("en", "es")),
    Advocate("adv-002", "James Carter", "+1-555-0102", "james.carter@advocates.example",
             ("en",)),
    Advocate("adv-003", "Aisha Rahman", "+1-555-0103", "aisha.rahman@advocates.example",
             ("en",)),
)
# Member id (the roster's, as in the Patient identifier) -> advocate identifier.
ASSIGNMENTS = {
    "M-1001": "adv-001", "M-1002": "adv-002", "M-1003": "adv-003", "M-1004": "adv-001",
    "M-1005": "adv-002", "M-1006": "adv-003", "M-1007": "adv-001", "M-1008": "adv-001",
    "M-1009": "adv-003", "M-1010": "adv-001", "M-1011": "adv-002", "M-1012": "adv-001",
}


def practitioner(adv: Advocate) -> Resource:
    """Return the advocate as a Practitioner (id = identifier value, for readable URLs)."""
    given, _, family = adv.name.rpartition(" ")
    return {
        "resourceType": "Practitioner", "id": adv.identifier, "active": True,
        "identifier": [{"system": ADVOCATE_SYSTEM, "value": adv.identifier}],
        "name": [{"text": adv.name, "family": family, "given": given.split()}],
        "telecom": [{"system": "phone", "value": adv.phone, "use": "work"},
                    {"system": "email", "value": adv.email, "use": "work"}],
        "communication": [{"coding": [{"system": LANGUAGE_SYSTEM, "code": lang}]}
                          for lang in adv.languages],
    }


def practitioner_role(adv: Advocate) -> Resource:
    """Return the advocate's role: personal health advocate, with work contacts."""
    return {
        "resourceType": "PractitionerRole", "id": f"role-{adv.identifier}", "active": True,
        "identifier": [{"system": ADVOCATE_SYSTEM, "value": adv.identifier}],
        "practitioner": {"reference": f"Practitioner/{adv.identifier}", "display": adv.name,
                         "identifier": {"system": ADVOCATE_SYSTEM, "value": adv.identifier}},
        "code": [ADVOCATE_ROLE],
        "telecom": [{"system": "phone", "value": adv.phone, "use": "work"},
                    {"system": "email", "value": adv.email, "use": "work"}],
    }


def care_team(member_id: str, adv: Advocate) -> Resource:
    """Return the CareTeam that assigns a member to their advocate."""
    return {
        "resourceType": "CareTeam", "id": f"careteam-{member_id}", "status": "active",
        "identifier": [{"system": CARETEAM_SYSTEM, "value": member_id}],
        "name": "Personal health advocate",
        "subject": {"identifier": {"system": MEMBER_SYSTEM, "value": member_id}},
        "participant": [{"role": [ADVOCATE_ROLE], "member": {
            "reference": f"Practitioner/{adv.identifier}", "display": adv.name,
            "identifier": {"system": ADVOCATE_SYSTEM, "value": adv.identifier}}}],
    }


def load(store: Store) -> None:
    """Put the demo directory in the store (again: the resources keep their ids)."""
    by_id = {a.identifier: a for a in ADVOCATES}
    for adv in ADVOCATES:
        store.put(practitioner(adv))
        store.put(practitioner_role(adv))
    for member_id, advocate_id in ASSIGNMENTS.items():
        store.put(care_team(member_id, by_id[advocate_id]))
