"""What a real network does to a kiosk's request: cut bodies, content codings, odd methods.

Each gets a 4xx problem naming what was wrong, never a 5xx, and nothing of a body that did
not arrive whole is acted on.
"""

from __future__ import annotations

import gzip
import json
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from onsite_server.api import registry

from ..helpers import auth, live_kiosk_and_member, new_key, submission_item

PHQ9_ITEM9 = {str(i): 0 for i in range(1, 9)} | {"9": 1}
POSTS = sorted(op.path.replace("{booking_id}", new_key()) for op in registry.operations
               if op.method == "POST")
ROUTES = sorted({op.path.replace("{booking_id}", new_key()) for op in registry.operations})


def _raw_post(url: str, path: str, token: str, body: bytes, announced: int) -> tuple[int, Any]:
    """POST body while announcing another Content-Length, then end the sending side."""
    parts = urlsplit(url)
    head = (f"POST /api/v1{path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {announced}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR)  # what a proxy or a dropped link leaves the server
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


def test_a_body_shorter_than_its_content_length_is_refused_not_acted_on(
        live_server: Any, database_url: str) -> None:
    """Under gunicorn the app read what came as if it were the whole body."""
    token, ref = live_kiosk_and_member(live_server, database_url)
    heartbeat = json.dumps({"app_version": "1.0", "outbox_depth": 0,
                            "free_disk_bytes": 1}).encode()
    status, problem = _raw_post(live_server.url, "/heartbeat", token, heartbeat,
                                len(heartbeat) + 40)
    assert status == 400
    assert [e["field"] for e in problem["errors"]] == ["body"]
    assert f"ended after {len(heartbeat)} of the {len(heartbeat) + 40} bytes" in problem["detail"]
    item = submission_item("phq9", PHQ9_ITEM9, member_ref=ref)
    batch = json.dumps({"items": [item]}).encode()
    status, problem = _raw_post(live_server.url, "/submissions", token, batch, len(batch) + 1)
    assert status == 400 and [e["field"] for e in problem["errors"]] == ["body"]
    # Nothing of it was stored: the kiosk's resend under the same key is the first arrival.
    status, answer = _raw_post(live_server.url, "/submissions", token, batch, len(batch))
    assert status == 200 and answer["results"][0]["status"] == "accepted"


@pytest.mark.parametrize("coding", ["gzip", "br", "deflate"])
@pytest.mark.parametrize("path", POSTS)
@pytest.mark.sqlite_only
def test_a_content_coding_is_refused_naming_the_header(client: FlaskClient,
                                                       kiosk: dict[str, Any], path: str,
                                                       coding: str) -> None:
    """A gzip body was refused as "not valid JSON"; a plain one labelled "br" was taken."""
    plain = json.dumps({"app_version": "1.0", "outbox_depth": 0, "free_disk_bytes": 1})
    body = gzip.compress(plain.encode()) if coding == "gzip" else plain.encode()
    resp = client.post("/api/v1" + path, data=body, content_type="application/json",
                       headers={**auth(kiosk["token"]), "Content-Encoding": coding})
    assert resp.status_code == 415
    assert resp.mimetype == "application/problem+json"
    assert [e["field"] for e in resp.get_json()["errors"]] == ["Content-Encoding"]
    assert resp.headers["Accept-Encoding"] == "identity"


@pytest.mark.sqlite_only
def test_identity_coding_and_a_byte_order_mark_are_read(client: FlaskClient,
                                                           kiosk: dict[str, Any]) -> None:
    plain = json.dumps({"app_version": "1.0", "outbox_depth": 0, "free_disk_bytes": 1})
    for body, headers in ((plain.encode(), {"Content-Encoding": "identity"}),
                          (b"\xef\xbb\xbf" + plain.encode(), {})):
        resp = client.post("/api/v1/heartbeat", data=body, content_type="application/json",
                           headers={**auth(kiosk["token"]), **headers})
        assert resp.status_code == 200, resp.get_json()


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "GET", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.sqlite_only
def test_any_method_on_any_route_with_or_without_a_slash_is_never_a_5xx(
        client: FlaskClient, kiosk: dict[str, Any], path: str, method: str) -> None:
    for url in ("/api/v1" + path, "/api/v1" + path + "/"):
        resp = client.open(url, method=method, headers=auth(kiosk["token"]))
        assert resp.status_code < 500, (method, url)
        if resp.status_code >= 400 and method != "HEAD":
            assert resp.mimetype == "application/problem+json", (method, url)
