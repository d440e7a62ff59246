"""Offline-first: a server that is down then back, and a kiosk killed with -9 mid-drain.

Both end with exactly the submitted set on the server: nothing lost, nothing twice.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from kiosk.backend import Identity
from kiosk.service import KioskService
from kiosk.settings import KioskSettings
from onsite_server.models import CrisisAlert, Referral, Submission

from .conftest import SITE
from .helpers import TlsServer, phq9


def _visit(service: KioskService, who: Identity | None, n: int) -> list[str]:
    keys = [str(uuid.uuid4()) for _ in range(n)]
    service.submit(who, [phq9(key=k) for k in keys], crisis=False)
    return keys


def test_server_down_then_back_ends_with_exactly_the_submitted_set(
        own_server: TlsServer, kiosk_settings: KioskSettings) -> None:
    server = own_server
    service = KioskService(kiosk_settings, batch_size=4, timeout=(1.0, 5.0))
    service.pair(server.url, server.pairing_code(SITE))
    server.add_member(SITE, "E9001", date(1970, 2, 3))
    server.stop()

    offline_member = service.identify("E9001", "1970-02-03")
    assert offline_member.pending  # the server cannot check it now
    stranger = service.identify("E0000", "1970-02-03")
    sent = _visit(service, None, 5) + _visit(service, offline_member, 3)
    sent += _visit(service, stranger, 2)
    crisis_key = str(uuid.uuid4())
    service.submit(offline_member, [phq9(item9=2, key=crisis_key)], crisis=True)
    sent.append(crisis_key)
    service.crisis_alert("hypertensive_crisis")
    service.consent(offline_member, consent=True, contact_method="email",
                    contact_time="any", email="e9001@example.com")
    depth = service.status().outbox_depth
    assert depth == len(sent) + 2

    service.worker.run_once()  # the server is down: nothing leaves, nothing is lost
    status = service.status()
    assert not status.online and status.outbox_depth == depth and status.last_errors

    server.start()
    service.worker.run_once()
    status = service.status()
    assert status.online and status.outbox_depth == 0
    stored = server.submissions()
    assert sorted(s.idempotency_key for s in stored) == sorted(sent)
    by_key = {s.idempotency_key: s for s in stored}
    # Crisis first: the crisis item was the first submission the server stored.
    assert min(stored, key=lambda s: s.id).idempotency_key == crisis_key
    matched = {by_key[k].member_id for k in sent[5:8] + [crisis_key]}
    assert len(matched) == 1 and None not in matched
    assert all(by_key[k].member_id is None for k in sent[:5] + sent[8:10])
    with server.session() as session:
        referral = session.scalars(select(Referral)).one()
        assert referral.priority == "crisis" and referral.consent is True
        assert [a.trigger for a in session.scalars(select(CrisisAlert))] == \
            ["hypertensive_crisis"]

    # A lost acknowledgement: the kiosk sends rows the server already has. They are answered
    # as replays and stored once.
    first = by_key[sent[0]]
    service.submit(None, [phq9(key=first.idempotency_key) | {
        "session_id": first.session_id, "taken_at": first.taken_at.isoformat(),
        "answers": first.answers}], crisis=False)
    service.worker.run_once()
    assert service.status().outbox_depth == 0
    assert len(server.submission_keys()) == len(sent)
    service.close()


def test_kill_9_between_writing_and_sending_loses_and_doubles_nothing(
        own_server: TlsServer, kiosk_settings: KioskSettings) -> None:
    server = own_server
    service = KioskService(kiosk_settings)
    service.pair(server.url, server.pairing_code(SITE))
    service.close()
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("kiosk_child.py")),
         str(kiosk_settings.data_dir), str(kiosk_settings.key_path.parent), "40"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[3])
    assert child.stdout is not None
    queued: list[str] = []
    for line in child.stdout:
        if line.startswith("queued "):
            queued.append(line.split()[1])
        if line.startswith("draining"):
            break
    # Killed while draining: some rows sent and acknowledged, maybe one sent but not acked.
    deadline = time.monotonic() + 60
    while len(server.submission_keys()) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    child.kill()
    child.wait(timeout=10)
    child.stdout.close()
    assert 0 < len(server.submission_keys()) < len(queued)

    restarted = KioskService(kiosk_settings)
    assert restarted.status().outbox_depth + len(server.submission_keys()) >= len(queued)
    restarted.worker.run_once()
    assert restarted.status().outbox_depth == 0
    keys = server.submission_keys()
    assert sorted(keys) == sorted(queued) and len(keys) == len(set(keys))
    with server.session() as session:
        assert session.scalar(select(func.count()).select_from(Submission)) == len(queued)
    restarted.close()
