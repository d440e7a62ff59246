"""Backups that restore: the encrypted file refuses tampering, a restore never lands on a site
by mistake, and a backup taken while kiosks write restores everything acknowledged before it
began, with tickets that still verify (a drill, on SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from onsite_server import devserver
from onsite_server.backup import BackupError, decrypt_file, encrypt_file
from onsite_server.models import Site, Slot, Submission
from onsite_server.services.signing import KeyStore
from shared.tokens import Purpose, verify

from ..cli_in_process import run_cli
from ..conftest import PG_URL, LiveServer, fresh_pg_database
from ..helpers import auth, gen_event, live_kiosk_and_members
from .test_drills import Load, _env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run an onsite-server command; its exit code is the test's to check."""
    return devserver.run(env, *args, timeout=300)


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    """A file of a little over two chunks of random bytes."""
    path = tmp_path / "plain.bin"
    path.write_bytes(os.urandom(2 * 1024 * 1024 + 123))
    return path


def _sealed(plain: Path, passphrase: str = "right") -> bytes:
    out = io.BytesIO()
    encrypt_file(plain, out, passphrase)
    return out.getvalue()


def test_encryption_round_trips(plain: Path, tmp_path: Path) -> None:
    sealed = _sealed(plain)
    assert plain.read_bytes()[:64] not in sealed
    decrypt_file(io.BytesIO(sealed), tmp_path / "back.bin", "right")
    assert (tmp_path / "back.bin").read_bytes() == plain.read_bytes()


@pytest.mark.parametrize(("damage", "words"), [
    (lambda b: b, "passphrase is wrong"),  # with the wrong passphrase
    (lambda b: b[:-100], "truncated"),
    (lambda b: b[: len(b) // 2] + bytes([b[len(b) // 2] ^ 1]) + b[len(b) // 2 + 1:], "altered"),
    (lambda b: b + b"x", "after its end"),
    (lambda b: b"not a backup" + b, "not an onsite-server backup"),
])
def test_a_damaged_file_or_wrong_passphrase_is_refused(
        plain: Path, tmp_path: Path, damage: Callable[[bytes], bytes], words: str) -> None:
    sealed = damage(_sealed(plain))
    passphrase = "wrong" if words == "passphrase is wrong" else "right"
    with pytest.raises(BackupError, match=words):
        decrypt_file(io.BytesIO(sealed), tmp_path / "back.bin", passphrase)


def test_backup_needs_a_passphrase(tmp_path: Path) -> None:
    env: dict[str, str | None] = {
        "ONSITE_INSTANCE_PATH": str(tmp_path / "i"),
        "ONSITE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "ONSITE_BACKUP_PASSPHRASE": None}
    assert run_cli(env, "init-db").exit_code == 0
    done = run_cli(env, "backup", "--out", str(tmp_path / "b.bak"))
    assert done.exit_code != 0 and "BACKUP_PASSPHRASE" in done.stderr
    assert not (tmp_path / "b.bak").exists()


def _other_database(database_url: str, tmp_path: Path) -> str:
    if database_url.startswith("postgresql"):
        assert PG_URL
        return fresh_pg_database()
    return f"sqlite:///{tmp_path / 'restored.sqlite'}"


def _book(url: str, token: str, ref: str, slot_id: str) -> str:
    resp = requests.post(url + "/api/v1/bookings", headers=auth(token), timeout=30,
                         json={"idempotency_key": str(uuid.uuid4()), "member_ref": ref,
                               "slot_id": slot_id})
    assert resp.status_code in (200, 201), resp.text
    ticket: str = resp.json()["ticket"]
    return ticket


@pytest.mark.slow
@pytest.mark.drill
def test_backup_while_kiosks_write_then_restore_into_a_new_instance(database_url: str,
                                                                     tmp_path: Path) -> None:
    env = _env(database_url, tmp_path, ONSITE_BACKUP_PASSPHRASE="drill passphrase")
    proc, url = devserver.start_server(env, tmp_path / "server.log")
    backup_file = tmp_path / "site.bak"
    try:
        live = LiveServer(url, env, tmp_path / "instance", tmp_path / "server.log")
        token, refs = live_kiosk_and_members(live, database_url, 6)
        engine = create_engine(database_url)
        with Session(engine) as session, session.begin():
            site = session.scalars(select(Site).where(Site.slug == "live")).one()
            slot = session.scalars(select(Slot).where(
                Slot.event_id == gen_event(session, site, capacity=5).id)).one()
            slot_id, slot_start = slot.public_id, slot.start_at
        engine.dispose()
        ticket = _book(url, token, refs[0], slot_id)

        load = Load(url, token, refs, threads=3)
        load.start()
        try:
            deadline = time.monotonic() + 30
            while len(load.acked) < 40 and time.monotonic() < deadline:
                time.sleep(0.1)
            acked_before = set(load.acked)
            done = _cli(env, "backup", "--out", str(backup_file))
            assert done.returncode == 0, done.stderr
            during = set(load.acked) - acked_before
        finally:
            load.finish()
    finally:
        devserver.stop_server(proc)
    assert len(acked_before) >= 40 and during, "the kiosks did not write through the backup"

    restored_url = _other_database(database_url, tmp_path)
    restored = tmp_path / "restored-instance"
    env2 = {**env, "ONSITE_INSTANCE_PATH": str(restored), "ONSITE_DATABASE_URL": restored_url}
    done = _cli(env2, "restore", str(backup_file))
    assert done.returncode == 0, done.stderr

    engine = create_engine(restored_url)
    try:
        with engine.connect() as conn:
            stored = set(conn.scalars(select(Submission.idempotency_key)))
            # Everything points at something that is there: the answers, referrals, bookings
            # and outbox of the restored site agree with each other.
            orphans = {
                "outbox->referral": "SELECT count(*) FROM outbox_message o LEFT JOIN referral r "
                                    "ON r.id = o.referral_id WHERE o.referral_id IS NOT NULL "
                                    "AND r.id IS NULL",
                "outbox->booking": "SELECT count(*) FROM outbox_message o LEFT JOIN booking b "
                                   "ON b.id = o.booking_id WHERE o.booking_id IS NOT NULL "
                                   "AND b.id IS NULL",
                "referral->member": "SELECT count(*) FROM referral r LEFT JOIN member m "
                                    "ON m.id = r.member_id WHERE m.id IS NULL",
                "booking->slot": "SELECT count(*) FROM booking b LEFT JOIN slot s "
                                 "ON s.id = b.slot_id WHERE s.id IS NULL",
            }
            counts = {name: conn.execute(text(sql)).scalar_one() for name, sql in orphans.items()}
            referrals = conn.execute(text("SELECT count(*) FROM referral")).scalar_one()
            booked = conn.execute(text("SELECT count(*) FROM booking")).scalar_one()
    finally:
        engine.dispose()
    assert acked_before <= stored, f"{len(acked_before - stored)} acknowledged rows lost"
    assert counts == dict.fromkeys(orphans, 0)
    assert referrals >= 1 and booked == 1

    # A ticket handed out before the backup verifies with the restored keys, at the door.
    ring = KeyStore(restored / "keys").ring()
    at_door = slot_start.replace(tzinfo=UTC) if slot_start.tzinfo is None else slot_start
    assert verify(ticket, ring, purpose=Purpose.TICKET, now=at_door).subject

    # The restored instance is not empty now: a second restore is refused, --force replaces.
    # The backup and the first restore above ran as an administrator runs them, each its own
    # process; these three check what the commands decide, in this process (a process costs
    # about 1.5 s of CPU to start: cli_in_process).
    here: dict[str, str | None] = {**env2}
    again = run_cli(here, "restore", str(backup_file))
    assert again.exit_code != 0 and "not empty" in again.stderr
    forced = run_cli(here, "restore", "--force", str(backup_file))
    assert forced.exit_code == 0, forced.stderr
    doctor = run_cli(here, "doctor", "--no-central")
    for check in ("migrations", "signing-keys"):
        assert f"ok   {check}" in doctor.stdout, doctor.stdout


def test_restore_refuses_a_site_in_use(tmp_path: Path) -> None:
    env: dict[str, str | None] = {
        "ONSITE_INSTANCE_PATH": str(tmp_path / "i"),
        "ONSITE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "ONSITE_BACKUP_PASSPHRASE": "p"}
    assert run_cli(env, "init-db").exit_code == 0
    assert run_cli(env, "backup", "--out", str(tmp_path / "b.bak")).exit_code == 0
    done = run_cli(env, "restore", str(tmp_path / "b.bak"))
    assert done.exit_code != 0
    assert "not empty" in done.stderr and "the database has tables" in done.stderr


def test_scheduled_backups_keep_the_newest(tmp_path: Path) -> None:
    env: dict[str, str | None] = {
        "ONSITE_INSTANCE_PATH": str(tmp_path / "i"),
        "ONSITE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "ONSITE_BACKUP_PASSPHRASE": "p"}
    assert run_cli(env, "init-db").exit_code == 0
    folder = tmp_path / "backups"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a backup: never removed")
    for _ in range(3):
        done = run_cli(env, "backup", "--out-dir", str(folder), "--keep", "2")
        assert done.exit_code == 0, done.output
    kept = sorted(p.name for p in folder.iterdir())
    assert len(kept) == 3 and "notes.txt" in kept
    assert "removed the older backup" in done.stdout
    refused = run_cli(env, "backup", "--keep", "2", "--out", str(tmp_path / "x.bak"))
    assert refused.exit_code != 0
