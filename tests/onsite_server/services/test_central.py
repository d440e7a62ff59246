"""SMART Backend Services assertions (ES384, RS384) and the cached access token."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from flask import Flask, Response, request

from onsite_server.central import CentralClient, SmartAuth

from ...live import serve_in_thread


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _pem(key: Any) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.mark.parametrize("kind", ["ES384", "RS384"])
def test_assertion_is_a_jwt_signed_by_the_client_key(kind: str) -> None:
    key: Any = ec.generate_private_key(ec.SECP384R1()) if kind == "ES384" else \
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
    auth = SmartAuth(client_id="onsite-demo", token_url="https://central.example/token",
                     private_key_pem=_pem(key), key_id="k1")
    header_b64, claims_b64, signature_b64 = auth.assertion(now=1_800_000_000).split(".")
    header, claims = json.loads(_unb64(header_b64)), json.loads(_unb64(claims_b64))
    assert header == {"alg": kind, "typ": "JWT", "kid": "k1"}
    assert claims["iss"] == claims["sub"] == "onsite-demo"
    assert claims["aud"] == "https://central.example/token"
    assert claims["exp"] - claims["iat"] == 300 and claims["jti"]
    signed = f"{header_b64}.{claims_b64}".encode()
    signature = _unb64(signature_b64)
    if kind == "ES384":
        assert len(signature) == 96  # raw r || s, as JWS requires (not DER)
        der = encode_dss_signature(int.from_bytes(signature[:48], "big"),
                                   int.from_bytes(signature[48:], "big"))
        key.public_key().verify(der, signed, ec.ECDSA(hashes.SHA384()))
    else:
        key.public_key().verify(signature, signed, padding.PKCS1v15(), hashes.SHA384())


@pytest.fixture
def smart_server() -> Iterator[tuple[str, dict[str, Any]]]:
    state: dict[str, Any] = {"tokens": 0, "auth": []}
    app = Flask("smart")

    @app.post("/auth/token")
    def token() -> Response:
        assert request.form["grant_type"] == "client_credentials"
        assert request.form["client_assertion_type"].endswith("jwt-bearer")
        state["tokens"] += 1
        return Response(json.dumps({"access_token": f"tok-{state['tokens']}",
                                    "expires_in": 300, "token_type": "bearer"}),
                        mimetype="application/json")

    @app.post("/fhir")
    def fhir() -> Response:
        state["auth"].append(request.headers.get("Authorization"))
        return Response(json.dumps({"resourceType": "Bundle", "type": "transaction-response"}),
                        mimetype="application/fhir+json")

    with serve_in_thread(app) as port:
        yield f"http://127.0.0.1:{port}", state


def test_the_access_token_is_fetched_once_and_reused(
        smart_server: tuple[str, dict[str, Any]]) -> None:
    base, state = smart_server
    key = ec.generate_private_key(ec.SECP384R1())
    client = CentralClient(base + "/fhir", smart=SmartAuth(
        client_id="onsite", token_url=base + "/auth/token", private_key_pem=_pem(key)))
    for _ in range(3):
        client.transaction({"resourceType": "Bundle", "type": "transaction"})
    assert state["tokens"] == 1
    assert state["auth"] == ["Bearer tok-1"] * 3


@pytest.fixture
def proxy() -> Iterator[tuple[str, list[str]]]:
    """A plain-HTTP forward proxy stand-in that answers every request itself and notes the
    address each one asked for."""
    asked: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        asked.append(f"{environ['HTTP_HOST']}{environ['PATH_INFO']}")
        start_response("200 OK", [("Content-Type", "application/fhir+json")])
        return [json.dumps({"resourceType": "Bundle", "type": "transaction-response"}).encode()]

    with serve_in_thread(app) as port:
        yield f"http://127.0.0.1:{port}", asked


def test_the_proxy_environment_is_read_once_per_address_and_still_obeyed(
        proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    import requests.sessions

    url, asked = proxy
    monkeypatch.setenv("HTTP_PROXY", url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    reads: list[str] = []
    environ_proxies = requests.sessions.get_environ_proxies

    def counting(target: str, no_proxy: Any = None) -> dict[str, str]:
        reads.append(target)
        return environ_proxies(target, no_proxy)

    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counting)
    netrc_reads: list[str] = []
    netrc = requests.utils.get_netrc_auth

    def netrc_counting(target: str, raise_errors: bool = False) -> Any:
        netrc_reads.append(target)
        return netrc(target, raise_errors)

    monkeypatch.setattr(requests.utils, "get_netrc_auth", netrc_counting)
    monkeypatch.setattr(requests.sessions, "get_netrc_auth", netrc_counting)
    client = CentralClient("http://central.invalid/fhir", bearer="t")
    for _ in range(3):
        client.transaction({"resourceType": "Bundle", "type": "transaction"})
    assert asked == ["central.invalid/fhir"] * 3  # every request went through the proxy
    # The environment and ~/.netrc were read for the first request only.
    assert len(reads) == 1 and len(netrc_reads) == 1


def test_the_ca_bundle_is_looked_at_once_per_address_not_on_every_request(
        proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Any) -> None:
    import requests.adapters

    url, asked = proxy
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    looked: list[str] = []
    isdir = requests.adapters.os.path.isdir

    def counting(path: Any) -> bool:
        looked.append(str(path))
        return isdir(path)

    monkeypatch.setattr(requests.adapters.os.path, "isdir", counting)
    client = CentralClient(f"{url}/fhir", bearer="t")
    for _ in range(3):
        client.transaction({"resourceType": "Bundle", "type": "transaction"})
    assert len(asked) == 3
    # requests asks whether the CA bundle is a directory; once for the address, not 3 times.
    assert looked.count(str(bundle)) == 1


def test_a_transaction_goes_straight_to_the_kept_alive_connection_not_through_requests(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With no proxy and no ~/.netrc entry, a transaction skips requests' per-request work
    (preparing, merging settings, building a Response) and goes to the pool requests made
    for the address: one connection for every request, the session's headers and ours."""
    import requests

    from onsite_server.central import CentralError
    from onsite_server.devserver import free_port

    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    seen: list[tuple[str, str | None, str | None, bytes]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        seen.append((environ["PATH_INFO"], environ.get("HTTP_AUTHORIZATION"),
                     environ.get("HTTP_USER_AGENT"), body))
        start_response("200 OK", [("Content-Type", "application/fhir+json")])
        # One reply per entry sent, as FHIR answers a transaction.
        replies = [{"response": {"status": "201 Created"}}
                   for _ in (json.loads(body).get("entry") or [])]
        return [json.dumps({"resourceType": "Bundle", "type": "transaction-response",
                            **({"entry": replies} if replies else {})}).encode()]

    through_requests: list[str] = []
    request = requests.Session.request

    def noting(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        through_requests.append(url)
        return request(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", noting)
    with serve_in_thread(app) as port:
        client = CentralClient(f"http://127.0.0.1:{port}/fhir", bearer="t")
        answers = [client.transaction({"resourceType": "Bundle", "type": "transaction",
                                       "entry": [{"n": n}]}) for n in range(3)]
        made = client.http.get_adapter(client.base_url).poolmanager.pools
        pools = [made[key] for key in made.keys()]
    assert answers == [{"resourceType": "Bundle", "type": "transaction-response",
                        "entry": [{"response": {"status": "201 Created"}}]}] * 3
    assert through_requests == []
    assert [(path, auth) for path, auth, _agent, _body in seen] == [("/fhir", "Bearer t")] * 3
    assert all(agent and agent.startswith("python-requests/") for _p, _a, agent, _b in seen)
    assert [json.loads(body)["entry"] for *_rest, body in seen] == [[{"n": n}] for n in range(3)]
    assert len(pools) == 1 and pools[0].num_connections == 1  # kept alive
    # A redirect is followed as requests follows it.
    def moved(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/old":
            start_response("307 Temporary Redirect", [("Location", "/fhir")])
            return [b""]
        return app(environ, start_response)

    with serve_in_thread(moved) as port:
        client = CentralClient(f"http://127.0.0.1:{port}/old", bearer="t")
        assert client.transaction({"resourceType": "Bundle", "type": "transaction"}) == \
            {"resourceType": "Bundle", "type": "transaction-response"}
    assert seen[-1][0] == "/fhir"
    # Nobody listening: an answer that did not come, to retry later, as through requests.
    gone = CentralClient(f"http://127.0.0.1:{free_port()}/fhir", bearer="t",
                         connect_timeout=1.0)
    with pytest.raises(CentralError) as failed:
        gone.transaction({"resourceType": "Bundle", "type": "transaction"})
    assert failed.value.retryable and failed.value.status is None
