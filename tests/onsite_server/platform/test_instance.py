"""The instance folder is 0700 and every file the server makes in it is 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from onsite_server import create_app
from onsite_server.db import get_db
from onsite_server.instance import ensure_private_dir, touch_private, write_private
from onsite_server.migrate import upgrade
from onsite_server.tls import ensure_self_signed

from ..helpers import gen_site, pair_kiosk


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """Run with the common umask 022, under which files would otherwise be made 0644."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("loose_umask")
def test_instance_folder_and_its_files_are_private(tmp_path: Path) -> None:
    instance = tmp_path / "deep" / "instance"
    # No DATABASE_URL and no SECRET_KEY: the database and the secret live in the instance.
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(instance),
                      "IDENTIFY_MIN_SECONDS": 0.0})
    try:
        upgrade(get_db(app))
        with get_db(app).transaction() as session:
            gen_site(session, "modes-site")
        client = app.test_client()
        # Writes through the API: WAL, shared memory and the write-queue lock file all exist.
        pair_kiosk(app, client, "modes-site")
        pair_kiosk(app, client, "modes-site")
        ensure_self_signed(instance)
        # The public keys make the signing keys (keys/ in the instance).
        assert client.get("/.well-known/jwks.json").status_code == 200
        made = {str(p.relative_to(instance)): (p.is_dir(), _mode(p)) for p in instance.rglob("*")}
    finally:
        get_db(app).dispose()
    assert _mode(instance) == 0o700
    expected = {"onsite.sqlite", "onsite.sqlite-wal", "onsite.sqlite-shm",
                "onsite.sqlite.writelock", "secret_key", "tls_key.pem", "tls_cert.pem"}
    assert expected <= set(made), made
    loose = {name: oct(mode) for name, (is_dir, mode) in made.items()
             if mode != (0o700 if is_dir else 0o600)}
    assert loose == {}


@pytest.mark.usefixtures("loose_umask")
def test_database_outside_the_instance_is_private_too(tmp_path: Path) -> None:
    db_file = tmp_path / "elsewhere.sqlite"
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "inst"),
                      "SECRET_KEY": "k" * 32, "DATABASE_URL": f"sqlite:///{db_file}"})
    try:
        upgrade(get_db(app))
        made = [p for p in tmp_path.iterdir() if p.name.startswith("elsewhere.sqlite")]
        assert {p.name for p in made} >= {"elsewhere.sqlite", "elsewhere.sqlite-wal"}
        assert {p.name: _mode(p) for p in made if _mode(p) != 0o600} == {}
    finally:
        get_db(app).dispose()


def test_an_existing_open_instance_folder_is_closed(tmp_path: Path) -> None:
    folder = tmp_path / "old-instance"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    ensure_private_dir(folder)
    assert _mode(folder) == 0o700


@pytest.mark.usefixtures("loose_umask")
def test_private_file_helpers(tmp_path: Path) -> None:
    write_private(tmp_path / "key.pem", b"secret")
    touch_private(tmp_path / "empty")
    assert _mode(tmp_path / "key.pem") == 0o600 and _mode(tmp_path / "empty") == 0o600
    # touch_private never opens an existing file (closing it would drop SQLite's locks).
    (tmp_path / "key.pem").chmod(0o640)
    touch_private(tmp_path / "key.pem")
    assert (tmp_path / "key.pem").read_bytes() == b"secret"
