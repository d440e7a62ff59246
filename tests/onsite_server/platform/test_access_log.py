"""Link tokens and check-in searches stay out of the access log, in its real format."""

from __future__ import annotations

import logging
import re
import time

import pytest
import requests
from flask import Flask

from onsite_server.accesslog import redact_target

from ...live import serve_in_thread
from ..conftest import LiveServer

TOKEN = "inv1te-T0ken-that-must-not-leak_0123456789abcdef"
NAME = "Zebulon"


def _visit(base: str) -> None:
    """What staff do: open an emailed link; search the check-in desk for a member."""
    requests.get(f"{base}/healthz", timeout=10, headers={"User-Agent": "probe/1"})
    requests.get(f"{base}/account/link/{TOKEN}", timeout=10, allow_redirects=False)
    requests.get(f"{base}/dashboard/checkin?q={NAME}+Quixote&page=2", timeout=10,
                 allow_redirects=False,
                 headers={"Referer": f"{base}/account/link/{TOKEN}?q={NAME}"})


def _log_once_written(live_server: LiveServer, *needles: str) -> str:
    """The server's log once gunicorn has written every needle (it logs after answering).

    The live server has two workers: the requests may be answered by different workers,
    each writing its line when it has answered, so the last request's line can come first.
    """
    deadline = time.monotonic() + 30
    log = live_server.log_path.read_text()
    while not all(n in log for n in needles) and time.monotonic() < deadline:
        time.sleep(0.1)
        log = live_server.log_path.read_text()
    return log


@pytest.mark.sqlite_only
def test_gunicorn_access_log_has_neither_token_nor_name(live_server: LiveServer) -> None:
    _visit(live_server.url)
    log = _log_once_written(live_server, '"GET /dashboard/checkin?', '"GET /account/link/',
                            '"probe/1"')
    lines = [line for line in log.splitlines() if '"GET /' in line]
    # gunicorn's own default format: host - - [time] "GET /path HTTP/1.1" status size "ref" "ua"
    assert any('"GET /account/link/[redacted] HTTP/1.1"' in line for line in lines), lines
    assert any('"GET /dashboard/checkin?q=[redacted]&page=[redacted] HTTP/1.1" 302' in line
               and '/account/link/[redacted]?q=[redacted]"' in line for line in lines), lines
    assert TOKEN not in log and NAME not in log
    # The rest of the line is kept: address, time, status, size, Referer, user agent.
    assert re.search(r'127\.0\.0\.1 - - \[[^]]+\] "GET /healthz HTTP/1\.1" 200 \d+ "-" '
                     r'"probe/1"', log), log[-1500:]


@pytest.mark.sqlite_only
def test_werkzeug_request_log_has_neither_token_nor_name(
        app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    with serve_in_thread(app, threaded=False) as port, \
            caplog.at_level(logging.INFO, logger="werkzeug"):
        _visit(f"http://127.0.0.1:{port}")
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("GET /account/link/[redacted] HTTP/1.1" in line for line in lines), lines
    assert any("GET /dashboard/checkin?q=[redacted]&page=[redacted]" in line for line in lines)
    assert not [line for line in lines if TOKEN in line or NAME in line]


@pytest.mark.parametrize(("target", "expected"), [
    ("/account/link/abc.def-ghi", "/account/link/[redacted]"),
    ("/account/link/abc?next=/x", "/account/link/[redacted]?next=[redacted]"),
    ("/dashboard/checkin?q=Ana%20Ruiz", "/dashboard/checkin?q=[redacted]"),
    ("/dashboard/checkin?flag&q=", "/dashboard/checkin?flag&q=[redacted]"),
    ("https://h:8700/account/link/tok", "https://h:8700/account/link/[redacted]"),
    ("/dashboard/events/e-1", "/dashboard/events/e-1"),
    ("-", "-"),
])
def test_redact_target(target: str, expected: str) -> None:
    assert redact_target(target) == expected

