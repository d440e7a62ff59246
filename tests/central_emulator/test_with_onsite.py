"""The onsite server's own sync worker and central client against a running emulator: the demo
check-ups arrive once, with SMART Backend Services; the advocate link opens; Task status flows
back; a replay sends nothing new."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from sqlalchemy import select

from onsite_server import create_app as create_onsite
from onsite_server.central import client_from_config
from onsite_server.db import get_db
from onsite_server.demo import load_demo_data
from onsite_server.fhir import Systems
from onsite_server.migrate import upgrade
from onsite_server.models import Member, Referral
from onsite_server.services.advocates import advocate_link
from onsite_server.services.signing import KeyStore
from onsite_server.services.sync import SyncSettings, pull_statuses, run_cycle

from .conftest import Live
from .test_smart import _jwk


@pytest.fixture
def onsite(tmp_path: Path) -> Iterator[Flask]:
    """An onsite server on SQLite with the demo data (and its check-ups waiting to go)."""
    app = create_onsite({"TESTING": True, "SECRET_KEY": "test-secret",
                         "DATABASE_URL": f"sqlite:///{tmp_path / 'onsite.sqlite'}",
                         "INSTANCE_PATH": str(tmp_path / "instance")})
    upgrade(get_db(app))
    with get_db(app).transaction() as session:
        load_demo_data(session, app.config)
    yield app
    get_db(app).dispose()


def _smart_client(live: Live, onsite: Flask, tmp_path: Path) -> Any:
    key = ec.generate_private_key(ec.SECP384R1())
    pem = tmp_path / "smart.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    assert requests.post(f"{live.url}/_clients", timeout=10, json={
        "client_id": "demo-hq", "jwks": {"keys": [_jwk(key, "site-1")]}}).status_code == 200
    return client_from_config({**onsite.config, "CENTRAL_URL": f"{live.url}/fhir",
                               "CENTRAL_ALLOW_INSECURE_HTTP": True,  # the local emulator
                               "CENTRAL_CLIENT_ID": "demo-hq", "CENTRAL_KEY_ID": "site-1",
                               "CENTRAL_PRIVATE_KEY_PATH": str(pem)})


def test_the_onsite_sync_lands_once_and_the_link_opens(live: Live, onsite: Flask,
                                                       tmp_path: Path) -> None:
    config = onsite.config
    keys = KeyStore(Path(config["SIGNING_KEY_DIR"]))
    with get_db(onsite).transaction() as session:
        member = session.scalars(select(Member).where(Member.member_id == "M-1003")).one()
        link = advocate_link(session, member, keys=keys, web_url=live.url,
                             lifetime=timedelta(days=365), actor="test")
        name = link.advocate.name
    client = _smart_client(live, onsite, tmp_path)
    assert requests.get(f"{live.url}/fhir/Patient", timeout=10).status_code == 401
    settings = SyncSettings(systems=Systems(str(config["FHIR_IDENTIFIER_BASE"])),
                            site=str(config["SITE_SLUG"]), keys=keys, worker_id="test")
    report = run_cycle(get_db(onsite).transaction, client, settings)
    assert report.sent > 0 and report.dead == 0, report
    state = requests.get(f"{live.url}/_state", timeout=10).json()
    assert state["keys"] >= 2
    with get_db(onsite).transaction() as session:
        referrals = list(session.scalars(select(Referral)))
    assert state["counts"]["ServiceRequest"] == len(referrals) > 0
    assert state["counts"]["Task"] == len(referrals)

    # The pinned check, end to end: the link from the onsite server opens at the emulator.
    page = requests.get(link.link_url, timeout=10)
    assert page.status_code == 200 and name in page.text
    token_at = link.link_url.rindex("/") + 5
    changed = (link.link_url[:token_at] + ("A" if link.link_url[token_at] != "A" else "B")
               + link.link_url[token_at + 1:])
    refused = requests.get(changed, timeout=10)
    assert 400 <= refused.status_code < 500 and name not in refused.text

    # Each advocate sees their demo members' referrals.
    seen = sum(len(requests.get(f"{live.url}/api/advocates/{a}/referrals", timeout=10
                                ).json()["referrals"]) for a in ("adv-001", "adv-002", "adv-003"))
    assert seen == len(referrals)

    # Central acknowledges one referral; the status pull brings it back.
    task = requests.get(f"{live.url}/fhir/Task", timeout=10,
                        headers=client._headers()).json()["entry"][0]["resource"]
    task["status"] = "accepted"
    assert requests.put(f"{live.url}/fhir/Task/{task['id']}", json=task, timeout=10,
                        headers=client._headers()).status_code == 200
    assert pull_statuses(get_db(onsite).transaction, client, settings) == 1

    # Nothing is due any more, and central holds what it held.
    assert run_cycle(get_db(onsite).transaction, client, settings).sent == 0
    assert requests.get(f"{live.url}/_state", timeout=10).json()["counts"] == state["counts"]
