"""The site's token keys at central: the first advocate link opens before any sync cycle
(issue 15 §5), and a retired key's tokens are refused there (issue 16 §6).

Each test runs a fresh onsite server (no keys yet) against a live central emulator, issues
links through the kiosk API as a kiosk does, and opens them at central as a phone does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from central_emulator import create_app as create_central
from onsite_server.app_settings import of as settings_of
from onsite_server.app_settings import override
from onsite_server.cli import main
from onsite_server.db import get_db
from onsite_server.models import Advocate
from onsite_server.services.central_keys import accepted, central_holds
from onsite_server.services.signing import KeyStore
from shared.tokens import Purpose, TokenError, verify

from ...live import serve_in_thread
from ..helpers import auth, identified_member

NAME = "Maria Lopez"  # adv-001 in the emulator's directory


@pytest.fixture
def central() -> Iterator[str]:
    """A running central emulator with its demo directory; its base URL."""
    emulator = create_central({"TESTING": True})
    with serve_in_thread(emulator) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def onsite(app: Flask, central: str) -> Flask:
    """The fresh onsite server, pointed at the emulator, with adv-001 as its one advocate."""
    override(app, CENTRAL_URL=f"{central}/fhir", CENTRAL_WEB_URL=central,
                  CENTRAL_ALLOW_INSECURE_HTTP=True)  # the local emulator
    with get_db(app).transaction() as session:
        session.add(Advocate(public_id="adv-001", name=NAME, languages=["en"], programs=[]))
    return app


def _link(app: Flask, client: FlaskClient, site: Any, kiosk: dict[str, Any]) -> str:
    _, ref = identified_member(app, site, kiosk)
    answer = client.post("/api/v1/members/advocate-link", json={"member_ref": ref},
                         headers=auth(kiosk["token"]))
    assert answer.status_code == 200, answer.get_json()
    return str(answer.get_json()["link_url"])


def _scan(url: str) -> tuple[int, str]:
    page = requests.get(url, timeout=10)
    return page.status_code, page.text


def _keys(app: Flask) -> KeyStore:
    return KeyStore(Path(app.config["SIGNING_KEY_DIR"]))


def _control(central: str, mode: str) -> None:
    assert requests.post(f"{central}/_control", json={"mode": mode}, timeout=10).ok


def test_the_first_link_opens_at_central_before_any_sync(
        onsite: Flask, client: FlaskClient, site: Any, kiosk: dict[str, Any],
        central: str) -> None:
    assert not list(Path(onsite.config["SIGNING_KEY_DIR"]).glob("advocate_link-*.pem"))
    url = _link(onsite, client, site, kiosk)
    # No sync worker has run: the link was issued only after central took the key.
    status, html = _scan(url)
    assert status == 200 and NAME in html
    assert central_holds(_keys(onsite), _keys(onsite).current(Purpose.ADVOCATE_LINK).key_id)


def test_a_central_that_is_down_delays_the_first_scan_not_the_link(
        onsite: Flask, client: FlaskClient, site: Any, kiosk: dict[str, Any],
        central: str) -> None:
    _control(central, "down")
    url = _link(onsite, client, site, kiosk)  # the member still gets their link
    _control(central, "normal")
    assert _scan(url)[0] == 403  # central has not heard of the key yet
    assert accepted(_keys(onsite)) == {}
    # The sync worker's next cycle sends the keys even with nothing in the outbox.
    result = CliRunner().invoke(main, ["sync", "--once"], obj={"app": onsite})
    assert result.exit_code == 0, result.output
    assert "keys sent to central" in result.output
    status, html = _scan(url)
    assert status == 200 and NAME in html


def test_a_retired_key_is_refused_at_central_and_here(
        onsite: Flask, client: FlaskClient, site: Any, kiosk: dict[str, Any],
        central: str) -> None:
    old_url = _link(onsite, client, site, kiosk)
    assert _scan(old_url)[0] == 200
    keys = _keys(onsite)
    old = keys.current(Purpose.ADVOCATE_LINK).key_id
    stale_jwks = keys.jwks()  # what a bundle built before the retirement carries

    result = CliRunner().invoke(main, ["keys", "retire", old, "--reason", "laptop stolen"],
                                obj={"app": onsite})
    assert result.exit_code == 0, result.output
    assert "central was told" in result.output

    status, html = _scan(old_url)
    assert status == 410 and NAME not in html and "withdrawn" in html
    # The site refuses it too, and its private key is gone.
    token = old_url.rsplit("/", 1)[1]
    with pytest.raises(TokenError) as refused:
        verify(token, keys.ring(), purpose=Purpose.ADVOCATE_LINK)
    assert refused.value.reason == "retired_key"
    assert not list(keys.folder.glob(f"*-{old}.pem"))
    # A bundle built before the retirement, arriving late, does not bring the key back.
    from onsite_server.central import client_from_config
    from onsite_server.services.central_keys import key_bundle

    client_from_config(onsite.config).transaction(key_bundle(str(onsite.config["SITE_SLUG"]),
                                                             (stale_jwks, [])))
    assert _scan(old_url)[0] == 410

    # A new link, signed with the new key, opens at once.
    new_url = _link(onsite, client, site, kiosk)
    status, html = _scan(new_url)
    assert status == 200 and NAME in html
    listed = CliRunner().invoke(main, ["keys", "list"], obj={"app": onsite}).output
    assert f"{old}  advocate_link  retired" in listed


def test_a_retirement_central_missed_goes_with_the_next_sync(
        onsite: Flask, client: FlaskClient, site: Any, kiosk: dict[str, Any],
        central: str) -> None:
    url = _link(onsite, client, site, kiosk)
    old = _keys(onsite).current(Purpose.ADVOCATE_LINK).key_id
    _control(central, "down")
    result = CliRunner().invoke(main, ["keys", "retire", old], obj={"app": onsite})
    assert result.exit_code == 2 and "central was not told yet" in result.output
    _control(central, "normal")
    assert _scan(url)[0] == 200  # central still trusts it: it has not heard
    result = CliRunner().invoke(main, ["sync", "--once"], obj={"app": onsite})
    assert result.exit_code == 0, result.output
    assert _scan(url)[0] == 410


@pytest.mark.parametrize("kid", ["0123456789abcdef", "*", "????????????????"])
def test_retiring_an_unknown_key_names_it(onsite: Flask, kid: str) -> None:
    keys = _keys(onsite)
    before = keys.current(Purpose.ADVOCATE_LINK).key_id
    result = CliRunner().invoke(main, ["keys", "retire", kid], obj={"app": onsite})
    assert result.exit_code == 2 and kid in result.output
    assert keys.retired() == {} and keys.current(Purpose.ADVOCATE_LINK).key_id == before


def test_the_first_ticket_opens_at_central_before_any_sync(
        onsite: Flask, client: FlaskClient, site: Any, kiosk: dict[str, Any]) -> None:
    from onsite_server.models import Site

    from ..helpers import gen_event, new_key

    with get_db(onsite).transaction() as session:
        site_row = session.get(Site, site.id)
        assert site_row is not None
        (slot,) = [s.public_id for s in gen_event(session, site_row).slots]
    _, ref = identified_member(onsite, site, kiosk)
    answer = client.post("/api/v1/bookings", headers=auth(kiosk["token"]), json={
        "idempotency_key": new_key(), "member_ref": ref, "slot_id": slot})
    assert answer.status_code == 201, answer.get_json()
    status, html = _scan(answer.get_json()["ticket_url"])
    # Not synced yet, so central knows no Appointment: but the ticket itself is good.
    assert status == 200, html


def test_central_fetches_a_registered_sites_keys_for_a_key_id_it_never_received(
        onsite: Flask, client: FlaskClient, site: Any, kiosk: dict[str, Any],
        central: str) -> None:
    """The other way round: the site does not push (it cannot reach central at issue time),
    but central can reach the site's published key set, and reads it on an unknown key id."""
    override(onsite, CENTRAL_KEY_PUSH_TIMEOUT_SECONDS=0)
    with serve_in_thread(onsite) as port:
        jwks_url = f"http://127.0.0.1:{port}/.well-known/jwks.json"
        assert requests.post(f"{central}/_sites", json={"site": "test-site",
                                                        "jwks_url": jwks_url},
                             timeout=10).ok
        url = _link(onsite, client, site, kiosk)
        assert accepted(_keys(onsite)) == {}  # nothing was pushed
        status, html = _scan(url)
        assert status == 200 and NAME in html


def test_as_it_happens_a_fresh_gunicorn_server_s_first_link_opens_at_central(
        central: str, database_url: str, tmp_path: Path) -> None:
    """The real processes: `onsite-server serve` (gunicorn, two workers) started for the first
    time, a kiosk paired over HTTP, the first advocate link asked for, and the QR's address
    opened at central right away. No sync worker runs at any point."""
    import os

    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from onsite_server import devserver

    from ..helpers import live_kiosk_and_member

    instance = tmp_path / "fresh-instance"
    env = {**os.environ, "ONSITE_DATABASE_URL": database_url,
           "ONSITE_INSTANCE_PATH": str(instance), "ONSITE_SECRET_KEY": "live-test-secret",
           "ONSITE_IDENTIFY_MIN_SECONDS": "0", "ONSITE_CENTRAL_URL": f"{central}/fhir",
           "ONSITE_CENTRAL_WEB_URL": central,
           "ONSITE_CENTRAL_ALLOW_INSECURE_HTTP": "true"}  # the local emulator
    engine = create_engine(database_url)
    with Session(engine) as session, session.begin():
        session.add(Advocate(public_id="adv-001", name=NAME, languages=["en"], programs=[]))
    engine.dispose()
    proc, url = devserver.start_server(env, tmp_path / "live.log", migrate=False)
    try:
        server = type("Live", (), {"url": url, "env": env})()
        token, ref = live_kiosk_and_member(server, database_url)
        assert not (instance / "keys" / "central-keys.json").exists()  # nothing pushed yet
        answer = requests.post(f"{url}/api/v1/members/advocate-link", timeout=30,
                               json={"member_ref": ref}, headers=auth(token))
        assert answer.status_code == 200, answer.text
        status, html = _scan(answer.json()["link_url"])
        assert status == 200 and NAME in html
    finally:
        devserver.kill_server(proc)


def test_after_a_failed_push_links_do_not_wait_on_central_again_for_a_minute(
        app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    from onsite_server import central
    from onsite_server.central import CentralError
    from onsite_server.services import central_keys

    calls: list[str] = []

    class Down:
        connect_timeout = read_timeout = 0.0

        def transaction(self, bundle: Any) -> Any:
            calls.append("push")
            raise CentralError("central is down")

    monkeypatch.setattr(central, "client_for", lambda settings: Down())
    clock = [1000.0]
    monkeypatch.setattr(central_keys.time, "monotonic", lambda: clock[0])
    transaction = get_db(app).transaction
    settings = settings_of(app)
    assert not central_keys.ensure_published(settings, transaction, Purpose.ADVOCATE_LINK)
    assert not central_keys.ensure_published(settings, transaction, Purpose.ADVOCATE_LINK)
    assert calls == ["push"]  # the second link did not wait on central
    clock[0] += central_keys.RETRY_AFTER_SECONDS
    assert not central_keys.ensure_published(settings, transaction, Purpose.ADVOCATE_LINK)
    assert calls == ["push", "push"]


def test_whether_central_holds_the_key_is_read_again_only_when_the_key_folder_changes(
        app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every booking asks whether central holds the ticket key (session 11): the answer is
    kept while the key folder stays as it was, and read again as soon as a key or central's
    acceptance changes it, in this process or another."""
    from onsite_server.services import central_keys

    settings = override(app, CENTRAL_KEY_PUSH_TIMEOUT_SECONDS=0)  # never pushes
    keys = KeyStore(Path(settings.signing_key_dir))
    kid = keys.current_kid(Purpose.TICKET)
    looked: list[str] = []
    current_kid = KeyStore.current_kid

    def noting(self: KeyStore, purpose: Purpose) -> str:
        looked.append(purpose.label)
        return current_kid(self, purpose)

    monkeypatch.setattr(KeyStore, "current_kid", noting)
    transaction = get_db(app).transaction
    assert not central_keys.ensure_published(settings, transaction, Purpose.TICKET)
    assert not central_keys.ensure_published(settings, transaction, Purpose.TICKET)
    assert looked == ["ticket"]
    # Central's acceptance written (by the sync worker, say): seen at the next ask.
    keys.save_json(central_keys.STATE_FILE, {"digest": "d", "kids": [kid], "at": "now"})
    assert central_keys.ensure_published(settings, transaction, Purpose.TICKET)
    assert central_keys.ensure_published(settings, transaction, Purpose.TICKET)
    assert looked == ["ticket", "ticket"]
    keys.rotate(Purpose.TICKET)  # a new key central has not accepted yet
    assert not central_keys.ensure_published(settings, transaction, Purpose.TICKET)
    assert looked == ["ticket"] * 3
