"""Directory and assignments pulled from central with standard FHIR searches; central wins."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select

from onsite_server.db import get_db
from onsite_server.fhir import ADVOCATE_SYSTEM, Systems
from onsite_server.models import Advocate, IssuedToken, Member
from onsite_server.services.directory import pull_directory

from ..helpers import identified_member

SYSTEMS = Systems("https://fhir.example/id")


class Directory:
    """Answers searches from fixed resources, the way a FHIR server would."""

    def __init__(self, resources: dict[str, list[dict[str, Any]]]) -> None:
        self.resources = resources

    def search(self, resource_type: str, params: Any) -> list[dict[str, Any]]:
        return list(self.resources.get(resource_type, []))


def _practitioner(fhir_id: str, value: str, given: str, family: str, *,
                  languages: tuple[str, ...] = ("en",), active: bool = True) -> dict[str, Any]:
    return {"resourceType": "Practitioner", "id": fhir_id, "active": active,
            "identifier": [{"system": ADVOCATE_SYSTEM, "value": value}],
            "name": [{"given": [given], "family": family}],
            "telecom": [{"system": "phone", "value": "+1-555-0199"},
                        {"system": "email", "value": f"{value}@central.example"}],
            "communication": [{"coding": [{"system": "urn:ietf:bcp:47", "code": lang}]}
                              for lang in languages]}


def _role(fhir_id: str, *programs: str) -> dict[str, Any]:
    return {"resourceType": "PractitionerRole",
            "practitioner": {"reference": f"Practitioner/{fhir_id}"},
            "specialty": [{"coding": [{"code": p}]} for p in programs]}


def _team(member_id: str, fhir_id: str) -> dict[str, Any]:
    return {"resourceType": "CareTeam", "status": "active",
            "subject": {"identifier": {"system": SYSTEMS("member"), "value": member_id}},
            "participant": [{"member": {"reference": f"Practitioner/{fhir_id}"}}]}


def _member(app: Flask, public_id: str) -> Member:
    with get_db(app).transaction(write=False) as session:
        member = session.scalars(select(Member).where(Member.public_id == public_id)).one()
        session.expunge(member)
        return member


def test_advocates_and_programs_come_from_central(app: Flask) -> None:
    central = Directory({
        "Practitioner": [_practitioner("p1", "adv-001", "Maria", "Lopez",
                                       languages=("en", "es-US")),
                         _practitioner("p2", "adv-002", "James", "Carter")],
        "PractitionerRole": [_role("p1", "behavioral_health", "eap"), _role("p2", "unknown")],
    })
    report = pull_directory(get_db(app).transaction, central, SYSTEMS)
    assert report.advocates_added == 2
    with get_db(app).transaction(write=False) as session:
        maria = session.scalars(select(Advocate).where(Advocate.public_id == "adv-001")).one()
        assert maria.name == "Maria Lopez" and maria.languages == ["en", "es"]
        assert maria.programs == ["behavioral_health", "eap"]
        assert maria.email == "adv-001@central.example"
    again = pull_directory(get_db(app).transaction, central, SYSTEMS)
    assert again.advocates_added == 0 and again.advocates_updated == 0


def test_central_assignment_wins_and_revokes_old_links(app: Flask, client: Any, site: Any,
                                                       kiosk: dict[str, Any]) -> None:
    from ..helpers import auth

    with get_db(app).transaction() as session:
        session.add(Advocate(public_id="adv-local", name="Local Advocate", languages=["en"],
                             programs=[]))
    member_public, ref = identified_member(app, site, kiosk)
    link = client.post("/api/v1/members/advocate-link", json={"member_ref": ref},
                       headers=auth(kiosk["token"])).get_json()
    assert link["advocate"]["name"] == "Local Advocate"
    member = _member(app, member_public)
    central = Directory({"Practitioner": [_practitioner("p9", "adv-009", "Ada", "Central")],
                         "CareTeam": [_team(member.member_id, "p9")]})
    report = pull_directory(get_db(app).transaction, central, SYSTEMS)
    assert report.reassigned == 1
    with get_db(app).transaction(write=False) as session:
        advocate = session.scalars(select(Advocate).where(
            Advocate.public_id == "adv-009")).one()
        assert _member(app, member_public).advocate_id == advocate.id
        revoked = session.scalars(select(IssuedToken.revoked_reason)).all()
        assert revoked == ["reassigned"]
    relinked = client.post("/api/v1/members/advocate-link", json={"member_ref": ref},
                           headers=auth(kiosk["token"])).get_json()
    assert relinked["advocate"]["name"] == "Ada Central"


def test_an_empty_directory_leaves_the_onsite_rules_in_charge(app: Flask) -> None:
    with get_db(app).transaction() as session:
        session.add(Advocate(public_id="adv-local", name="Local Advocate", languages=["en"],
                             programs=[]))
    report = pull_directory(get_db(app).transaction, Directory({}), SYSTEMS)
    assert report.advocates_added == 0
    with get_db(app).transaction(write=False) as session:
        assert session.scalars(select(Advocate.active)).all() == [True]


def test_an_inactive_practitioner_is_not_assigned_new_members(app: Flask) -> None:
    central = Directory({"Practitioner": [_practitioner("p1", "adv-001", "On", "Leave",
                                                        active=False)]})
    pull_directory(get_db(app).transaction, central, SYSTEMS)
    with get_db(app).transaction(write=False) as session:
        assert session.scalars(select(Advocate.active)).all() == [False]


def test_two_workers_merging_the_same_new_advocates_at_once(app: Flask) -> None:
    import threading

    both_searched = threading.Barrier(2, timeout=30)

    class Together(Directory):
        """Releases both workers into their write transactions at the same moment."""

        def search(self, resource_type: str, params: Any) -> list[dict[str, Any]]:
            if resource_type == "CareTeam":
                both_searched.wait()
            return super().search(resource_type, params)

    central = Together({"Practitioner": [_practitioner(f"p{i}", f"adv-new-{i}", "Ana", f"N{i}")
                                         for i in range(20)]})
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            pull_directory(get_db(app).transaction, central, SYSTEMS)
        except BaseException as exc:  # noqa: BLE001 - the test reports what a worker raised
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with get_db(app).transaction(write=False) as session:
        added = session.scalars(select(Advocate.public_id).where(
            Advocate.public_id.like("adv-new-%"))).all()
    assert sorted(added) == sorted(f"adv-new-{i}" for i in range(20))
