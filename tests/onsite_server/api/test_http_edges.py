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
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from onsite_server.api import registry
from onsite_server.db import get_db
from onsite_server.models import CrisisAlert, Submission

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


# --------------------------------------------------------------------------- keys named twice


def _raw(client: FlaskClient, kiosk: dict[str, Any], path: str, text: str) -> Any:
    return client.post("/api/v1" + path, data=text, content_type="application/json",
                       headers=auth(kiosk["token"]))


def _item_text(answers: str, **fields: str) -> str:
    item = submission_item("phq9", {}, **fields)
    head = json.dumps({k: v for k, v in item.items() if k != "answers"})[1:-1]
    return "{" + head + ', "answers": {' + answers + "}}"


ZEROS = ", ".join(f'"{i}": 0' for i in range(1, 9))


def test_an_answer_named_twice_is_refused_by_name_and_its_crisis_still_read(
        app: Flask, client: FlaskClient, kiosk: dict[str, Any]) -> None:
    """Parsed last-wins, {"9": 2, "9": 0} was a calm PHQ-9: accepted, no crisis recorded."""
    good = json.dumps(submission_item("phq9", dict.fromkeys(map(str, range(1, 10)), 0)))
    text = '{"items": [' + good + ", " + _item_text(f'"9": 2, {ZEROS}, "9": 0') + "]}"
    resp = _raw(client, kiosk, "/submissions", text)
    assert resp.status_code == 200
    first, second = resp.get_json()["results"]
    assert first["status"] == "accepted"  # its neighbour is filed as usual
    assert second["status"] == "rejected" and second["crisis_recorded"] is True
    assert [e["field"] for e in second["problem"]["errors"]] == ["items.1.answers.9"]
    assert second["problem"]["errors"][0]["message"] == "is named more than once in its object"
    with get_db(app).transaction(write=False) as session:
        assert [a.trigger for a in session.scalars(select(CrisisAlert))] == ["phq9_item9"]


def test_items_named_twice_in_the_envelope_are_refused_after_the_crises_in_both(
        app: Flask, client: FlaskClient, kiosk: dict[str, Any]) -> None:
    crisis = _item_text(f'{ZEROS}, "9": 3')
    calm = _item_text(f'{ZEROS}, "9": 0')
    resp = _raw(client, kiosk, "/submissions", '{"items": [' + crisis + '], "items": [' + calm
                + "]}")
    assert resp.status_code == 422
    assert [e["field"] for e in resp.get_json()["errors"]] == ["items"]
    assert resp.get_json()["crisis_recorded"] is True
    with get_db(app).transaction(write=False) as session:
        assert [a.trigger for a in session.scalars(select(CrisisAlert))] == ["phq9_item9"]
        assert session.scalars(select(Submission)).all() == []


@pytest.mark.parametrize(("path", "text", "field"), [
    ("/heartbeat", '{"app_version": "1.0", "outbox_depth": 0, "outbox_depth": 5, '
                   '"free_disk_bytes": 1}', "outbox_depth"),
    ("/identify", '{"id": "E1", "birth_date": "1980-01-01", "id": "E2"}', "id"),
])
@pytest.mark.sqlite_only
def test_a_key_named_twice_is_a_422_naming_it(client: FlaskClient, kiosk: dict[str, Any],
                                              path: str, text: str, field: str) -> None:
    resp = _raw(client, kiosk, path, text)
    assert resp.status_code == 422
    assert [e["field"] for e in resp.get_json()["errors"]] == [field]


def test_a_crisis_alert_whose_trigger_is_named_twice_is_still_raised(
        app: Flask, client: FlaskClient, kiosk: dict[str, Any]) -> None:
    text = (f'{{"idempotency_key": "{new_key()}", "trigger": "phq9_item9", "trigger": "other", '
            '"raised_at": "2026-12-08T01:00:00+00:00"}')
    resp = _raw(client, kiosk, "/crisis-alerts", text)
    assert resp.status_code == 422 and resp.get_json()["crisis_recorded"] is True
    assert [e["field"] for e in resp.get_json()["errors"]] == ["trigger"]
    with get_db(app).transaction(write=False) as session:
        assert [a.trigger for a in session.scalars(select(CrisisAlert))] == ["phq9_item9"]
