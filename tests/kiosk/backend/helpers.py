"""A live onsite server over TLS for the kiosk's backend tests, and its roster helpers."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from onsite_server.devserver import Process, cli, free_port, kill_server, spawn, stop_server
from onsite_server.models import Advocate, Member, Site, Submission


@dataclass
class TlsServer:
    """`onsite-server serve` with its self-signed certificate, stoppable and restartable."""

    env: dict[str, str]
    instance: Path
    database_url: str
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: Process | None = None

    @property
    def url(self) -> str:
        """The https base URL."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def cert(self) -> Path:
        """The server's self-signed certificate (made at its first start)."""
        return self.instance / "tls_cert.pem"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run an onsite-server CLI command against the same database."""
        return cli(self.env, *args, timeout=120)

    def start(self, timeout: float = 60) -> None:
        """Start gunicorn (2 workers) over TLS on self.port and wait until it answers."""
        with self.log_path.open("ab") as log:
            self.proc = spawn(["serve", "--host", "127.0.0.1", "--port", str(self.port),
                               "--workers", "2"], self.env, stdout=log, stderr=log,
                              new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.cert.exists() and requests.get(self.url + "/healthz", verify=str(self.cert),
                                                       timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not start: "
                                   + self.log_path.read_text(errors="replace")[-2000:])
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server (the kiosk sees it as down)."""
        if self.proc is not None:
            stop_server(self.proc)
            self.proc = None

    def kill(self) -> None:
        """kill -9 the server's processes."""
        if self.proc is not None:
            kill_server(self.proc)
            self.proc = None

    def pairing_code(self, site: str) -> str:
        """Issue a pairing code for a site (what `onsite-server pairing-code` does, in-process:
        a CLI process per code cost seconds of each test)."""
        from onsite_server.services.pairing import issue_pairing_code

        with self.session() as session, session.begin():
            return issue_pairing_code(
                session, session.scalars(select(Site).where(Site.slug == site)).one())

    def session(self) -> Session:
        """A SQLAlchemy session on the server's database (the caller closes it)."""
        return Session(create_engine(self.database_url))

    def add_member(self, site_slug: str, employee_id: str,
                   birth_date: date = date(1980, 1, 15)) -> str:
        """Add a roster member of the site's employer; return their public id."""
        with self.session() as session, session.begin():
            site = session.scalars(select(Site).where(Site.slug == site_slug)).one()
            member = Member(employer_id=site.employer_id, member_id=f"M-{employee_id}",
                            employee_id=employee_id, first_name="Alex", last_name="Tester",
                            birth_date=birth_date)
            session.add(member)
            session.flush()
            return member.public_id

    def add_advocate(self, name: str = "Pat Advocate") -> None:
        """Add an active advocate (advocate links need one)."""
        with self.session() as session, session.begin():
            session.add(Advocate(public_id=f"adv-{name.split()[0].lower()}", name=name,
                                 phone="+1-555-0100", email="pat@advocates.example",
                                 languages=["en"], programs=[]))

    def submission_keys(self) -> list[str]:
        """Every stored submission's idempotency key."""
        with self.session() as session:
            return list(session.scalars(select(Submission.idempotency_key)))

    def submissions(self) -> list[Submission]:
        """Every stored submission (detached)."""
        with self.session() as session:
            rows = list(session.scalars(select(Submission)))
            session.expunge_all()
            return rows


def start_tls_server(tmp_path: Path, site: str = "kiosk-site",
                     extra_env: dict[str, str] | None = None) -> TlsServer:
    """Create a database with one site, then start the server over TLS."""
    instance = tmp_path / "instance"
    db_url = f"sqlite:///{tmp_path / 'server.sqlite'}"
    env = {**os.environ, "ONSITE_DATABASE_URL": db_url, "ONSITE_INSTANCE_PATH": str(instance),
           "ONSITE_SECRET_KEY": "kiosk-live-test-secret", "ONSITE_IDENTIFY_MIN_SECONDS": "0",
           **(extra_env or {})}
    server = TlsServer(env=env, instance=instance, database_url=db_url,
                       log_path=tmp_path / "server.log")
    # What `onsite-server init-db` and `create-site` do, in-process rather than in two CLI
    # processes (test_cli.py runs the commands themselves).
    from onsite_server.db import Database
    from onsite_server.migrate import upgrade
    from onsite_server.services.sites import create_site

    tmp_path.mkdir(parents=True, exist_ok=True)  # the CLI made it, with the instance folder
    database = Database()
    database.configure(db_url)
    try:
        upgrade(database)
        with database.transaction() as session:
            create_site(session, employer_slug="emp-kiosk", employer_name=None, slug=site,
                        name="Kiosk site")
    finally:
        database.dispose()
    server.start()
    return server


def phq9(item9: int = 0, key: str | None = None) -> dict[str, Any]:
    """A complete PHQ-9 item (all zeros but item 9) as the screens hand it to submit()."""
    answers: dict[str, Any] = {str(i): 0 for i in range(1, 10)}
    answers["9"] = item9
    out: dict[str, Any] = {"instrument_id": "phq9", "instrument_version": "1.0.0",
                           "answers": answers}
    if key:
        out["idempotency_key"] = key
    return out
