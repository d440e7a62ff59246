"""The web edge: trusted Host names, and the security headers on every kind of answer."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from onsite_server import create_app
from onsite_server.db import get_db
from onsite_server.security import (
    CSP_HTML,
    CSP_NONE,
    certificate_hosts,
    default_trusted_hosts,
    trusted_hosts,
)
from onsite_server.tls import ensure_self_signed

from ..conftest import LiveServer
from ..helpers import auth

# Host names and headers: no SQL behaviour that differs between databases,
# so these run on SQLite only (conftest.py, sqlite_only).
pytestmark = pytest.mark.sqlite_only

# Every kind of answer: JSON, problem+json, HTML, redirects, errors, health.
ANSWERS = [
    ("/healthz", 200, "application/json"),
    ("/api/v1/openapi.json", 200, "application/json"),
    ("/api/v1/catalog", 401, "application/problem+json"),
    ("/api/v1/no-such-thing", 404, "application/problem+json"),
    ("/login", 200, "text/html"),
    ("/dashboard/", 302, "text/html"),
    ("/no-such-page", 404, "text/html"),
    ("/", 302, None),
]


@pytest.fixture
def make_app(app_config: dict[str, Any]) -> Iterator[Callable[..., Flask]]:
    """Build apps over the test configuration plus overrides; their pools are closed after."""
    made: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        made.append(create_app({**app_config, **overrides}))
        return made[-1]

    yield build
    for application in made:
        get_db(application).dispose()


def _assert_edge_headers(resp: Any) -> None:
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "strict-origin"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]


@pytest.mark.parametrize(("path", "status", "mimetype"), ANSWERS)
def test_security_headers_on_every_answer(client: Any, path: str, status: int,
                                          mimetype: str | None) -> None:
    resp = client.get(path, headers={"Accept": "text/html"})
    assert resp.status_code == status
    if mimetype is not None:
        assert resp.mimetype == mimetype
    _assert_edge_headers(resp)
    html = resp.mimetype == "text/html"
    assert resp.headers["Content-Security-Policy"] == (CSP_HTML if html else CSP_NONE)
    assert resp.headers["Cache-Control"] == "no-store"
    # Plain HTTP with no certificate configured: no HSTS (browsers would ignore it anyway).
    assert "Strict-Transport-Security" not in resp.headers


def test_security_headers_on_an_unexpected_error(app: Flask) -> None:
    def boom() -> str:
        raise RuntimeError("unexpected")

    app.add_url_rule("/api/v1/_boom", "boom", boom)
    resp = app.test_client().get("/api/v1/_boom")
    assert resp.status_code == 500
    _assert_edge_headers(resp)
    assert resp.headers["Cache-Control"] == "no-store"


def test_member_data_is_never_cached_but_the_catalog_revalidates(
        client: Any, kiosk: dict[str, Any]) -> None:
    headers = auth(kiosk["token"])
    catalog = client.get("/api/v1/catalog", headers=headers)
    assert catalog.status_code == 200
    assert catalog.headers["Cache-Control"] == "no-cache" and catalog.headers["ETag"]
    again = client.get("/api/v1/catalog",
                       headers={**headers, "If-None-Match": catalog.headers["ETag"]})
    assert again.status_code == 304 and again.headers["Cache-Control"] == "no-cache"
    _assert_edge_headers(again)
    # An identify answer carries a member reference: no-store.
    miss = client.post("/api/v1/identify", headers=headers,
                       json={"id": "E-NOBODY", "birth_date": "1980-01-01"})
    assert miss.status_code == 404 and miss.headers["Cache-Control"] == "no-store"
    paired = client.post("/api/v1/pair", json={"pairing_code": "WRNG-CODE"})
    assert paired.headers["Cache-Control"] == "no-store"


def test_public_keys_keep_their_own_caching(client: Any) -> None:
    resp = client.get("/.well-known/jwks.json")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "public, max-age=300"
    _assert_edge_headers(resp)
    revoked = client.get("/.well-known/revoked-tokens.json")
    assert revoked.headers["Cache-Control"] == "no-store"


def test_hsts_when_the_request_is_secure(client: Any) -> None:
    resp = client.get("/healthz", base_url="https://localhost")
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")


def test_hsts_when_tls_is_configured(tmp_path: Path, make_app: Callable[..., Flask]) -> None:
    cert, key = ensure_self_signed(tmp_path)
    app = make_app(TLS_CERT=str(cert), TLS_KEY=str(key))
    # gunicorn terminates TLS; the header must not depend on a proxy setting the scheme.
    resp = app.test_client().get("/healthz")
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")


# --- Trusted hosts ----------------------------------------------------------------------------

def test_forged_host_cannot_steer_a_redirect(client: Any) -> None:
    # Werkzeug's slash redirect is absolute, built from the Host header.
    assert client.get("/dashboard", headers={"Host": "localhost"}).headers["Location"] == \
        "http://localhost/dashboard/"
    resp = client.get("/dashboard", headers={"Host": "evil.example"})
    assert resp.status_code == 400
    assert "evil.example" not in resp.headers.get("Location", "")
    _assert_edge_headers(resp)


def test_forged_host_on_the_api_is_a_problem_naming_the_header(client: Any) -> None:
    resp = client.get("/api/v1/openapi.json", headers={"Host": "evil.example:8700"})
    assert resp.status_code == 400
    assert resp.content_type == "application/problem+json"
    assert resp.get_json()["errors"] == [{"field": "Host", "message": "is not a trusted host"}]
    assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("host", ["localhost", "localhost:8700", "127.0.0.1:8700"])
def test_loopback_hosts_are_answered(client: Any, host: str) -> None:
    assert client.get("/healthz", headers={"Host": host}).status_code == 200


def test_default_lets_kiosks_use_the_machines_name_and_lan_address(client: Any) -> None:
    hosts = default_trusted_hosts()
    assert socket.gethostname().lower() in hosts
    lan = [h for h in hosts if h[0].isdigit() and not h.startswith("127.")]
    for host in [socket.gethostname(), *lan]:
        resp = client.get("/healthz", headers={"Host": f"{host}:8700"})
        assert resp.status_code == 200, host


DOC = "/api/v1/openapi.json"


def test_setting_replaces_the_machines_names(make_app: Callable[..., Flask],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONSITE_TRUSTED_HOSTS", "wellness.example.org, 10.20.0.5")
    app = make_app()
    assert app.config["TRUSTED_HOSTS"] == ["localhost", "127.0.0.1", "wellness.example.org",
                                           "10.20.0.5"]
    client = app.test_client()
    # A route that needs no database: these apps are not migrated, and /healthz checks writes.
    assert client.get(DOC, headers={"Host": "wellness.example.org"}).status_code == 200
    assert client.get(DOC, headers={"Host": "10.20.0.5:8700"}).status_code == 200
    assert client.get(DOC, headers={"Host": "other.example.org"}).status_code == 400
    if socket.gethostname() != "localhost":
        # The machine's own name is no longer answered: the setting replaces the default.
        assert client.get(DOC, headers={"Host": socket.gethostname()}).status_code == 400


def test_star_answers_every_host(make_app: Callable[..., Flask]) -> None:
    app = make_app(TRUSTED_HOSTS=["*"])
    assert app.config["TRUSTED_HOSTS"] is None
    assert app.test_client().get(DOC, headers={"Host": "any.example"}).status_code == 200


def test_certificate_names_are_trusted(tmp_path: Path) -> None:
    cert, _key = ensure_self_signed(tmp_path)
    names = certificate_hosts(cert)
    assert "localhost" in names and socket.gethostname() in names and "127.0.0.1" in names
    assert set(names) <= set(trusted_hosts((), str(cert)) or [])
    assert certificate_hosts(tmp_path / "missing.pem") == []


def test_live_server_refuses_a_forged_host(live_server: LiveServer) -> None:
    ok = requests.get(live_server.url + "/healthz", timeout=10)
    assert ok.status_code == 200 and ok.headers["X-Content-Type-Options"] == "nosniff"
    forged = requests.get(live_server.url + "/dashboard", headers={"Host": "evil.example"},
                          timeout=10, allow_redirects=False)
    assert forged.status_code == 400
    port = live_server.url.rsplit(":", 1)[1]
    by_name = requests.get(live_server.url + "/healthz",
                           headers={"Host": f"{socket.gethostname()}:{port}"}, timeout=10)
    assert by_name.status_code == 200
