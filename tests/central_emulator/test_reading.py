"""Reading from central as a real server answers: searches in pages, followed by their next
links, and the CareTeam pull limited to this site's own members (issue 16 §6)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from central_emulator import create_app, get_store
from central_emulator.directory import ASSIGNMENTS, CARETEAM_SYSTEM
from central_emulator.store import ADVOCATE_SYSTEM, MEMBER_SYSTEM
from onsite_server import create_app as create_onsite
from onsite_server.central import CentralClient, CentralError
from onsite_server.db import get_db
from onsite_server.demo import load_demo_data
from onsite_server.fhir import Systems
from onsite_server.migrate import upgrade
from onsite_server.models import Advocate, Member
from onsite_server.services.directory import pull_directory

from ..live import serve_in_thread
from .conftest import Live


@pytest.fixture
def small_pages() -> Iterator[Live]:
    """The emulator, served, giving at most two resources a page whatever _count asks."""
    app = create_app({"TESTING": True, "SEARCH_PAGE_SIZE": 2, "SEARCH_MAX_PAGE_SIZE": 2})
    with serve_in_thread(app) as port:
        yield Live(app=app, url=f"http://127.0.0.1:{port}")


@pytest.fixture
def onsite(tmp_path: Path) -> Iterator[Flask]:
    """An onsite server on SQLite with the demo roster (members M-1001..M-1012), naming
    members in the payer's system as the emulator's directory does."""
    app = create_onsite({"TESTING": True, "SECRET_KEY": "test-secret",
                         "FHIR_MEMBER_SYSTEM": MEMBER_SYSTEM,
                         "DATABASE_URL": f"sqlite:///{tmp_path / 'onsite.sqlite'}",
                         "INSTANCE_PATH": str(tmp_path / "instance")})
    upgrade(get_db(app))
    with get_db(app).transaction() as session:
        load_demo_data(session, app.config)
    yield app
    get_db(app).dispose()


class Recording(CentralClient):
    """The real client, writing down every search it is asked for."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url=base_url)
        self.searches: list[tuple[str, dict[str, str]]] = []
        self.found: dict[str, list[dict[str, Any]]] = {}

    def search(self, resource_type: str, params: Any) -> list[dict[str, Any]]:
        self.searches.append((resource_type, dict(params)))
        found = super().search(resource_type, params)
        self.found.setdefault(resource_type, []).extend(found)
        return found


def test_a_search_reads_every_page(small_pages: Live) -> None:
    client = CentralClient(base_url=f"{small_pages.url}/fhir")
    teams = client.search("CareTeam", {"status": "active", "_count": "1000"})
    assert len(teams) == len(ASSIGNMENTS) > 2
    assert len({t["id"] for t in teams}) == len(teams)  # no page read twice


def _foreign_team(n: int) -> dict[str, Any]:
    """A CareTeam of the payer's for someone who is not on this site's roster."""
    return {"resourceType": "CareTeam", "id": f"careteam-X-{n}", "status": "active",
            "identifier": [{"system": CARETEAM_SYSTEM, "value": f"X-{n}"}],
            "subject": {"identifier": {"system": MEMBER_SYSTEM, "value": f"X-{n:04d}"}},
            "participant": [{"member": {"reference": "Practitioner/adv-002",
                                        "identifier": {"system": ADVOCATE_SYSTEM,
                                                       "value": "adv-002"}}}]}


def test_the_directory_pull_reads_every_page_and_only_this_sites_members(
        small_pages: Live, onsite: Flask) -> None:
    store = get_store(small_pages.app)
    for n in range(25):
        store.put(_foreign_team(n))
    # A fourth advocate (on a later page), and central moving the site's last member to them.
    store.put({"resourceType": "Practitioner", "id": "adv-004", "active": True,
               "identifier": [{"system": ADVOCATE_SYSTEM, "value": "adv-004"}],
               "name": [{"text": "Noor Haddad"}]})
    team = store.read("CareTeam", "careteam-M-1012")
    assert team is not None
    team["participant"] = [{"member": {"reference": "Practitioner/adv-004"}}]
    store.put(team)

    client = Recording(f"{small_pages.url}/fhir")
    systems = Systems.from_config(onsite.config)
    report = pull_directory(get_db(onsite).transaction, client, systems)

    assert report.advocates_added == 1 and report.reassigned == 1, report
    with get_db(onsite).transaction(write=False) as session:
        member = session.scalars(select(Member).where(Member.member_id == "M-1012")).one()
        advocate = session.get(Advocate, member.advocate_id)
        assert advocate is not None and advocate.public_id == "adv-004"
        roster = set(session.scalars(select(Member.member_id)))
    # Every CareTeam asked for names this site's members; none of the payer's others came.
    care_team_searches = [p for kind, p in client.searches if kind == "CareTeam"]
    assert care_team_searches and all("subject:identifier" in p for p in care_team_searches)
    subjects = {t["subject"]["identifier"]["value"] for t in client.found["CareTeam"]}
    assert subjects == roster & set(ASSIGNMENTS)


class _Answer:
    status_code = 200

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def json(self) -> dict[str, Any]:
        return self.body


class _Pages:
    """A stand-in HTTP session whose first page points elsewhere for the next one."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url
        self.urls: list[str] = []

    def request(self, method: str, url: str, **_: Any) -> _Answer:
        self.urls.append(url)
        return _Answer({"resourceType": "Bundle", "type": "searchset",
                        "link": [{"relation": "next", "url": self.next_url}],
                        "entry": [{"resource": {"resourceType": "Practitioner", "id": "a"},
                                   "search": {"mode": "match"}}]})


@pytest.mark.parametrize("next_url, says", [
    ("https://elsewhere.example/fhir/Practitioner?page=2", "another address"),
    ("https://central.example/fhir/Practitioner", "repeats"),
])
def test_a_next_link_off_central_or_in_a_loop_is_not_followed(next_url: str,
                                                               says: str) -> None:
    pages = _Pages(next_url)
    client = CentralClient(base_url="https://central.example/fhir", bearer="secret",
                           http=pages)  # type: ignore[arg-type]
    with pytest.raises(CentralError, match=says):
        client.search("Practitioner", {})
    # Our bearer token never went to another host.
    assert all(u.startswith("https://central.example/") for u in pages.urls)
