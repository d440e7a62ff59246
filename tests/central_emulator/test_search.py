"""Searches as a generic FHIR client makes them, the capability statement, and the directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from flask.testing import FlaskClient
from sqlalchemy import select

from central_emulator.directory import ADVOCATES, ASSIGNMENTS
from central_emulator.store import ADVOCATE_SYSTEM

from .helpers import SYSTEMS, referral


def _ids(answer: Any) -> list[str]:
    return sorted(e["resource"]["id"] for e in answer.json["entry"]
                  if e["search"]["mode"] == "match")


def test_metadata_is_a_valid_capability_statement(client: FlaskClient) -> None:
    answer = client.get("/fhir/metadata")
    assert answer.status_code == 200
    statement = CapabilityStatement.model_validate(answer.json)
    assert statement.kind == "instance"
    assert statement.rest[0].interaction[0].code == "transaction"


def test_searches_answer_valid_searchsets(client: FlaskClient) -> None:
    client.post("/fhir", json=referral("M-1003", public_id="ref-9"))
    for path in ("/fhir/Practitioner", "/fhir/PractitionerRole", "/fhir/CareTeam",
                 "/fhir/Patient", "/fhir/ServiceRequest?_count=1", "/fhir/Task?status=requested"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        bundle = Bundle.model_validate(answer.json)
        assert bundle.type == "searchset" and bundle.total == len(bundle.entry or []), path


def _page(answer: Any) -> tuple[list[str], str | None]:
    links = {link["relation"]: link["url"] for link in answer.json["link"]}
    return _ids(answer), links.get("next")


def test_searches_come_in_pages_with_next_links(client: FlaskClient) -> None:
    answer = client.get("/fhir/CareTeam?status=active&_count=5")
    Bundle.model_validate(answer.json)
    assert answer.json["total"] == len(ASSIGNMENTS)
    seen, following = _page(answer)
    assert len(seen) == 5
    while following is not None:
        assert "status=active" in following  # the next page keeps the search's criteria
        ids, following = _page(client.get(following.removeprefix("http://localhost")))
        assert ids and not set(ids) & set(seen)
        seen += ids
    assert len(seen) == len(ASSIGNMENTS)


def test_a_page_is_capped_whatever_count_asks(client: FlaskClient) -> None:
    client.application.config.update(SEARCH_PAGE_SIZE=3, SEARCH_MAX_PAGE_SIZE=4)
    assert len(_ids(client.get("/fhir/CareTeam"))) == 3
    ids, following = _page(client.get("/fhir/CareTeam?_count=1000"))
    assert len(ids) == 4 and following is not None and "_count=4" in following


@pytest.mark.parametrize("query", ["_count=many", "_count=-1", "_getpagesoffset=x"])
def test_bad_paging_parameters_are_refused(client: FlaskClient, query: str) -> None:
    answer = client.get(f"/fhir/CareTeam?{query}")
    assert answer.status_code == 400
    assert answer.json["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("query, expected", [
    ("identifier=adv-002", ["adv-002"]),
    (f"identifier={ADVOCATE_SYSTEM}|adv-002", ["adv-002"]),
    # Another system, the same advocate: each onsite server names advocates its own way.
    (f"identifier={SYSTEMS('advocate')}|adv-002", ["adv-002"]),
    ("identifier=adv-001,adv-003", ["adv-001", "adv-003"]),
    ("identifier=adv-404", []),
    ("_id=adv-003", ["adv-003"]),
])
def test_practitioners_by_identifier(client: FlaskClient, query: str,
                                     expected: list[str]) -> None:
    assert _ids(client.get(f"/fhir/Practitioner?{query}")) == expected


def test_identifier_systems_count_for_other_types(client: FlaskClient) -> None:
    client.post("/fhir", json=referral("M-1004", public_id="ref-5"))
    system = SYSTEMS("member")
    assert client.get(f"/fhir/Patient?identifier={system}|M-1004").json["total"] == 1
    assert client.get("/fhir/Patient?identifier=M-1004").json["total"] == 1
    assert client.get("/fhir/Patient?identifier=urn:other|M-1004").json["total"] == 0
    assert client.get(f"/fhir/Patient?identifier={system}|").json["total"] == 1


@pytest.mark.parametrize("param", ["subject:identifier", "patient:identifier",
                                   "patient.identifier", "subject.identifier"])
def test_care_teams_by_member(client: FlaskClient, param: str) -> None:
    answer = client.get(f"/fhir/CareTeam?{param}={SYSTEMS('member')}|M-1002").json
    assert answer["total"] == 1
    member = answer["entry"][0]["resource"]["participant"][0]["member"]
    assert member["identifier"]["value"] == ASSIGNMENTS["M-1002"]
    assert client.get(f"/fhir/{member['reference']}").json["name"][0]["text"] == "James Carter"


def test_care_teams_and_roles_by_practitioner(client: FlaskClient) -> None:
    by_adv = client.get("/fhir/CareTeam?participant:identifier=adv-002").json
    assert by_adv["total"] == sum(1 for a in ASSIGNMENTS.values() if a == "adv-002")
    assert client.get("/fhir/CareTeam?participant=Practitioner/adv-002").json["total"] == \
        by_adv["total"]
    roles = client.get("/fhir/PractitionerRole?practitioner=Practitioner/adv-003").json
    assert roles["total"] == 1
    assert client.get("/fhir/PractitionerRole?practitioner.identifier=adv-003").json[
        "total"] == 1


def test_read_and_unknowns(client: FlaskClient) -> None:
    answer = client.get("/fhir/Practitioner/adv-001")
    assert answer.status_code == 200 and answer.headers["ETag"] == 'W/"1"'
    assert client.get("/fhir/Practitioner/nobody").status_code == 404
    assert client.get("/fhir/Nonsense").status_code == 404
    answer = client.get("/fhir/Practitioner?unheard-of=1").json
    # Lenient, as FHIR servers are by default: the unknown parameter is named, not applied.
    assert answer["total"] == len(ADVOCATES)
    assert "unheard-of" in answer["entry"][-1]["resource"]["issue"][0]["diagnostics"]


def test_the_directory_matches_the_onsite_demo(tmp_path: Path) -> None:
    from onsite_server import create_app as create_onsite
    from onsite_server.db import get_db
    from onsite_server.demo import ADVOCATES as ONSITE_ADVOCATES
    from onsite_server.demo import load_demo_data
    from onsite_server.migrate import upgrade
    from onsite_server.models import Advocate, Member

    assert [(a.identifier, a.name, a.phone, a.email, list(a.languages))
            for a in ADVOCATES] == [tuple(a) for a in ONSITE_ADVOCATES]
    onsite = create_onsite({"TESTING": True, "SECRET_KEY": "test",
                            "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite'}",
                            "INSTANCE_PATH": str(tmp_path / "instance")})
    db = get_db(onsite)
    upgrade(db)
    try:
        with db.transaction() as session:
            load_demo_data(session, onsite.config)
        with db.transaction() as session:
            rows = session.execute(select(Member.member_id, Advocate.public_id).join(
                Advocate, Member.advocate_id == Advocate.id)).all()
    finally:
        db.dispose()
    assert dict(rows) == ASSIGNMENTS
