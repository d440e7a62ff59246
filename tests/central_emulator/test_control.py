"""Failure modes on command, the state counts, and the real server: a dropped reply after a
commit, the pinned advocate-link check, and the console script."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import requests
from flask.testing import FlaskClient

from .conftest import Live
from .helpers import SiteKeys, key_entries, referral, transaction


def _mode(client: FlaskClient, mode: str, delay: float = 0) -> None:
    answer = client.post("/_control", json={"mode": mode, "delay_seconds": delay})
    assert answer.status_code == 200 and answer.json["mode"] == mode


@pytest.mark.parametrize("mode, status", [("down", 503), ("error", 500)])
def test_down_and_error_answer_without_writing(client: FlaskClient, mode: str,
                                               status: int) -> None:
    _mode(client, mode)
    assert client.get("/_control").json["mode"] == mode
    answer = client.post("/fhir", json=referral())
    assert answer.status_code == status
    assert answer.json["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/metadata").status_code == status
    assert "ServiceRequest" not in client.get("/_state").json["counts"]
    # The pages for people are not part of the FHIR service.
    assert client.get("/advocates/adv-001/referrals").status_code == 200
    _mode(client, "normal")
    assert client.post("/fhir", json=referral()).status_code == 200


def test_slow_answers_after_the_delay(client: FlaskClient) -> None:
    _mode(client, "slow", 0.3)
    started = time.monotonic()
    assert client.get("/fhir/Practitioner").status_code == 200
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("body", [{"mode": "sideways"}, {"mode": "slow", "delay_seconds": -1},
                                  {"mode": "slow", "delay_seconds": 3600},
                                  {"mode": "slow", "delay_seconds": "1"}, ["down"]])
def test_bad_control_requests_are_refused(client: FlaskClient, body: object) -> None:
    assert client.post("/_control", json=body).status_code == 400
    assert client.get("/_control").json["mode"] == "normal"


def test_reset_returns_to_the_demo_directory(client: FlaskClient) -> None:
    client.post("/fhir", json=referral())
    _mode(client, "down")
    counts = client.post("/_reset").json["counts"]
    assert counts == {"CareTeam": 12, "Practitioner": 3, "PractitionerRole": 3}
    assert client.get("/_control").json["mode"] == "normal"


def test_drop_after_commit_commits_and_drops_the_reply(live: Live) -> None:
    requests.post(f"{live.url}/_control", json={"mode": "drop_after_commit"}, timeout=10)
    bundle = referral("M-1005", public_id="ref-dropped")
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{live.url}/fhir", json=bundle, timeout=10)
    counts = requests.get(f"{live.url}/_state", timeout=10).json()["counts"]
    assert (counts["Patient"], counts["ServiceRequest"], counts["Task"]) == (1, 1, 1)
    # The retry a sync worker makes finds everything there and duplicates nothing.
    requests.post(f"{live.url}/_control", json={"mode": "normal"}, timeout=10)
    again = requests.post(f"{live.url}/fhir", json=bundle, timeout=10)
    assert again.status_code == 200
    assert {e["response"]["status"] for e in again.json()["entry"]} == {"200 OK"}
    assert requests.get(f"{live.url}/_state", timeout=10).json()["counts"] == counts


def test_pinned_link_check_on_a_real_server(live: Live, keys: SiteKeys) -> None:
    sent = requests.post(f"{live.url}/fhir", json=transaction(*key_entries(keys)), timeout=10)
    assert sent.status_code == 200
    token = keys.link_token("adv-003")
    url = f"{live.url}/connect/{token}"
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and "Aisha Rahman" in page.text
    changed = url[:-7] + ("x" if url[-7] != "x" else "y") + url[-6:]
    refused = requests.get(changed, timeout=10)
    assert 400 <= refused.status_code < 500 and "Aisha Rahman" not in refused.text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_console_script_serves_fhir_at_host_port() -> None:
    port = _free_port()
    script = os.path.join(os.path.dirname(sys.executable), "central-emulator")
    proc = subprocess.Popen([script, "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/fhir" in line
        answer = requests.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=10)
        assert answer.status_code == 200
        assert answer.json()["resourceType"] == "CapabilityStatement"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_concurrent_senders_leave_one_of_each(live: Live) -> None:
    from concurrent.futures import ThreadPoolExecutor

    bundle = referral("M-1006", public_id="ref-race")
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: requests.post(f"{live.url}/fhir", json=bundle,
                                                        timeout=30).status_code, range(12)))
    assert answers == [200] * 12
    counts = requests.get(f"{live.url}/_state", timeout=10).json()["counts"]
    assert (counts["Patient"], counts["ServiceRequest"], counts["Task"]) == (1, 1, 1)
