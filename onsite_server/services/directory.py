"""The advocate directory and member assignments, pulled from central (the source of truth).

Standard FHIR searches only (Practitioner, PractitionerRole, CareTeam), so any R4 server
works, every page of each (the client follows ``Bundle.link[next]``): advocates are
Practitioners identified by value (``urn:onsite-wellness:advocate`` preferred), their
programs come from their roles' specialties, and a member's advocate from the active CareTeam
whose subject is the member; only this site's members' CareTeams are asked for. Central
wins: a member assigned differently onsite is reassigned (revoking their old links). A server
that returns nothing leaves the onsite directory and the onsite assignment rules in charge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from shared.triage import LANGUAGES, PROGRAMS

from ..fhir import Systems
from ..models import Advocate, Member
from .advocates import reassign

log = logging.getLogger("onsite_server.directory")


class Searcher(Protocol):
    """What the pull needs of the central client."""

    def search(self, resource_type: str, params: Any) -> list[dict[str, Any]]:
        """Run a FHIR search."""


@dataclass
class DirectoryReport:
    """What one pull changed."""

    advocates_added: int = 0
    advocates_updated: int = 0
    reassigned: int = 0
    assigned: int = 0
    skipped: list[str] = field(default_factory=list)


def _identifier(resource: Mapping[str, Any], preferred: str) -> str | None:
    idents = [i for i in resource.get("identifier", []) if i.get("value")]
    for ident in idents:
        if ident.get("system") == preferred:
            return str(ident["value"])
    return str(idents[0]["value"]) if idents else None


def _name(resource: Mapping[str, Any]) -> str | None:
    for name in resource.get("name", []):
        if name.get("text"):
            return str(name["text"])
        parts = [*name.get("given", []), name.get("family", "")]
        joined = " ".join(p for p in parts if p).strip()
        if joined:
            return joined
    return None


def _telecom(resource: Mapping[str, Any], system: str) -> str | None:
    for telecom in resource.get("telecom", []):
        if telecom.get("system") == system and telecom.get("value"):
            return str(telecom["value"])
    return None


def _languages(resource: Mapping[str, Any]) -> list[str]:
    found = []
    for comm in resource.get("communication", []):
        for coding in comm.get("coding", []):
            code = str(coding.get("code", "")).split("-")[0].lower()
            if code in LANGUAGES and code not in found:
                found.append(code)
    return found


def _ref_id(reference: Mapping[str, Any] | None, kind: str) -> str | None:
    ref = str((reference or {}).get("reference", ""))
    return ref.split("/", 1)[1] if ref.startswith(f"{kind}/") else None


# An arbitrary constant naming the directory merge among PostgreSQL advisory locks.
_MERGE_LOCK = 0x6F6E_5369_7465_4469


def site_care_teams(transaction: Callable[[], Any], client: Searcher, systems: Systems, *,
                    chunk: int = 50) -> list[dict[str, Any]]:
    """Return the active CareTeams of this site's members only, never the payer's whole list.

    One search per chunk of members (``subject:identifier=system|a,system|b``), every page:
    a payer holds CareTeams for people this site never sees, and those are not ours to read.
    """
    member_system = systems("member")
    with transaction() as session:
        member_ids = sorted(set(session.scalars(select(Member.member_id))))
    teams: list[dict[str, Any]] = []
    for start in range(0, len(member_ids), chunk):
        part = member_ids[start:start + chunk]
        teams += client.search("CareTeam", {
            "status": "active",
            "subject:identifier": ",".join(f"{member_system}|{m}" for m in part),
            "_count": str(_PAGE)})
    return teams


# What each search asks per page; the server may give fewer, and the client follows "next".
_PAGE = 100


def pull_directory(transaction: Callable[[], Any], client: Searcher, systems: Systems, *,
                   actor: str = "central") -> DirectoryReport:
    """Bring the onsite directory and assignments in line with central's."""
    report = DirectoryReport()
    practitioners = client.search("Practitioner", {"_count": str(_PAGE)})
    if not practitioners:
        return report  # nothing to learn: the onsite directory and rules stay in charge
    roles = client.search("PractitionerRole", {"_count": str(_PAGE)})
    teams = site_care_teams(transaction, client, systems)
    with transaction() as session:
        if session.get_bind().dialect.name == "postgresql":
            # Two sync workers merging the same new advocates would both insert them; the
            # second waits here and then finds the first's rows. (SQLite's writers are serial.)
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MERGE_LOCK})
        by_fhir_id = _merge_practitioners(session, practitioners, systems, report)
        session.flush()
        _merge_roles(session, roles, by_fhir_id, report)
        _merge_care_teams(session, teams, by_fhir_id, systems, report, actor)
    if report.skipped:
        log.warning("directory pull skipped %d entries: %s", len(report.skipped),
                    "; ".join(report.skipped[:5]))
    return report


def _find_advocate(session: Session, public_id: str) -> Advocate | None:
    return session.scalars(select(Advocate).where(Advocate.public_id == public_id)).first()


def _merge_practitioners(session: Session, practitioners: list[dict[str, Any]],
                         systems: Systems, report: DirectoryReport) -> dict[str, str]:
    """Add or update an advocate per Practitioner; return their ids: FHIR id -> public id."""
    by_fhir_id: dict[str, str] = {}
    for resource in practitioners:
        public_id = _identifier(resource, systems.advocate)
        name = _name(resource)
        if public_id is None or name is None:
            report.skipped.append(f"Practitioner/{resource.get('id')}: no identifier or name")
            continue
        if resource.get("id"):
            by_fhir_id[str(resource["id"])] = public_id
        _merge_practitioner(session, resource, public_id, name, report)
    return by_fhir_id


def _merge_practitioner(session: Session, resource: Mapping[str, Any], public_id: str,
                        name: str, report: DirectoryReport) -> None:
    advocate = _find_advocate(session, public_id)
    fields: dict[str, Any] = {"name": name, "phone": _telecom(resource, "phone"),
                              "email": _telecom(resource, "email"),
                              "active": resource.get("active", True) is not False}
    languages = _languages(resource)
    if languages:
        fields["languages"] = languages
    if advocate is None:
        session.add(Advocate(public_id=public_id, programs=[], **{
            "languages": ["en"], **fields}))
        report.advocates_added += 1
    elif any(getattr(advocate, k) != v for k, v in fields.items()):
        for key, value in fields.items():
            setattr(advocate, key, value)
        report.advocates_updated += 1


def _role_programs(roles: list[dict[str, Any]], by_fhir_id: Mapping[str, str]
                   ) -> dict[str, set[str]]:
    """Return each advocate's programs (public id -> codes) from their roles' specialties."""
    programs: dict[str, set[str]] = {}
    for role in roles:
        ref = role.get("practitioner") or {}
        public_id = by_fhir_id.get(_ref_id(ref, "Practitioner") or "") or \
            (ref.get("identifier") or {}).get("value")
        if public_id is None:
            continue
        for concept in [*role.get("specialty", []), *role.get("code", [])]:
            for coding in concept.get("coding", []):
                if coding.get("code") in PROGRAMS:
                    programs.setdefault(public_id, set()).add(str(coding["code"]))
    return programs


def _merge_roles(session: Session, roles: list[dict[str, Any]], by_fhir_id: Mapping[str, str],
                 report: DirectoryReport) -> None:
    """Set each advocate's programs to those of their PractitionerRoles."""
    for public_id, codes in _role_programs(roles, by_fhir_id).items():
        advocate = _find_advocate(session, public_id)
        ordered = [p for p in PROGRAMS if p in codes]
        if advocate is not None and list(advocate.programs or []) != ordered:
            advocate.programs = ordered
            report.advocates_updated += 1


def _team_assignment(team: Mapping[str, Any], by_fhir_id: Mapping[str, str],
                     member_system: str) -> tuple[Any, Any]:
    """Return (member id, advocate public id) a CareTeam names; either may be missing."""
    subject = team.get("subject", {})
    ident = subject.get("identifier") or {}
    member_id = ident.get("value") if ident.get("system") in (member_system, None) else None
    first: dict[str, Any] = next(iter(team.get("participant", [])), {})
    participant: dict[str, Any] = first.get("member") or {}
    advocate_public = by_fhir_id.get(_ref_id(participant, "Practitioner") or "") or \
        (participant.get("identifier") or {}).get("value")
    return member_id, advocate_public


def _merge_care_teams(session: Session, teams: list[dict[str, Any]],
                      by_fhir_id: Mapping[str, str], systems: Systems,
                      report: DirectoryReport, actor: str) -> None:
    """Assign (or reassign) each member to the advocate of their active CareTeam."""
    member_system = systems("member")
    for team in teams:
        member_id, advocate_public = _team_assignment(team, by_fhir_id, member_system)
        if not member_id or not advocate_public:
            continue
        member = session.scalars(select(Member).where(
            Member.member_id == str(member_id))).first()
        advocate = _find_advocate(session, str(advocate_public))
        if member is None or advocate is None or member.advocate_id == advocate.id:
            continue
        if member.advocate_id is None:
            member.advocate_id = advocate.id
            report.assigned += 1
        else:
            reassign(session, member, advocate, actor=actor, reason="central assignment")
            report.reassigned += 1
