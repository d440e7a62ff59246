"""The sync never sends central's token over plain http:// unless a setting names the risk."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask, request

from onsite_server.app_settings import override
from onsite_server.central import check_transport, client_from_config
from onsite_server.cli import main
from onsite_server.config import ConfigError
from onsite_server.settings import CentralSettings

from ...live import serve_in_thread


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """A plain-http central stand-in that writes down the Authorization header of each call."""
    seen: list[str] = []
    stub = Flask("plain-http-central")

    @stub.route("/fhir/<path:rest>", methods=["GET", "POST"])
    @stub.route("/fhir", methods=["POST"])
    def anything(rest: str = "") -> Any:
        seen.append(request.headers.get("Authorization", ""))
        return {"resourceType": "Bundle", "type": "searchset", "entry": []}

    with serve_in_thread(stub, threaded=False) as port:
        yield f"http://127.0.0.1:{port}", seen


@pytest.mark.sqlite_only
def test_sync_refuses_a_plain_http_central_and_sends_nothing(
        app: Flask, listener: tuple[str, list[str]]) -> None:
    url, seen = listener
    override(app, CENTRAL_URL=f"{url}/fhir", CENTRAL_TOKEN="secret-bearer",
             CENTRAL_ALLOW_INSECURE_HTTP=False)
    result = CliRunner().invoke(main, ["sync", "--once"], obj={"app": app})
    assert result.exit_code != 0
    assert "CENTRAL_URL is plain http://" in result.output
    assert "CENTRAL_ALLOW_INSECURE_HTTP" in result.output
    assert seen == []  # the token never left in clear


def test_the_setting_lets_the_local_emulator_be_reached(
        app: Flask, listener: tuple[str, list[str]]) -> None:
    url, seen = listener
    override(app, CENTRAL_URL=f"{url}/fhir", CENTRAL_TOKEN="secret-bearer",
             CENTRAL_ALLOW_INSECURE_HTTP=True)
    result = CliRunner().invoke(main, ["sync", "--once"], obj={"app": app})
    assert result.exit_code == 0, result.output
    assert "Bearer secret-bearer" in seen


@pytest.mark.parametrize(("config", "named"), [
    ({"CENTRAL_URL": "http://central.example/fhir"}, "CENTRAL_URL"),
    ({"CENTRAL_URL": "https://central.example/fhir",
      "CENTRAL_TOKEN_URL": "http://central.example/token"}, "CENTRAL_TOKEN_URL"),
    ({"CENTRAL_URL": "ftp://central.example/fhir", "CENTRAL_ALLOW_INSECURE_HTTP": True},
     "CENTRAL_URL"),
    ({"CENTRAL_URL": "central.example/fhir"}, "CENTRAL_URL"),
])
def test_insecure_or_unusable_addresses_are_refused_by_name(config: dict[str, Any],
                                                            named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        client_from_config(config)


def test_https_needs_no_setting() -> None:
    check_transport(CentralSettings.from_config({
        "CENTRAL_URL": "https://central.example/fhir",
        "CENTRAL_TOKEN_URL": "https://central.example/auth/token"}))
    assert client_from_config({"CENTRAL_URL": "https://central.example/fhir"}).base_url


def test_sync_once_with_nothing_due_starts_no_preparing_process(
        app: Flask, listener: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker warms its preparing child at start; ``sync --once`` leaves it to the first
    rows to prepare ahead, so a cycle with nothing due costs no second Python process."""
    from onsite_server import sync_preparer

    made: list[Any] = []

    class Noted(sync_preparer.ProcessPreparer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

        def warm(self) -> None:
            raise AssertionError("sync --once warmed its preparing process")

        def close(self) -> None:
            self.started = self.children()
            super().close()

    monkeypatch.setattr(sync_preparer, "ProcessPreparer", Noted)
    url, _seen = listener
    override(app, CENTRAL_URL=f"{url}/fhir", CENTRAL_TOKEN="secret-bearer",
             CENTRAL_ALLOW_INSECURE_HTTP=True)
    result = CliRunner().invoke(main, ["sync", "--once"], obj={"app": app})
    assert result.exit_code == 0, result.output
    assert "did not start" not in result.output
    assert len(made) == 1 and made[0].started == []
