"""App factory, configuration layers, health, errors and migrations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from onsite_server import config as config_module
from onsite_server import create_app
from onsite_server.db import Database, get_db
from onsite_server.migrate import current_revision, head_revision, upgrade
from onsite_server.models import Base

# The app factory and error answers: no SQL behaviour that differs between databases, so
# these run on SQLite only (conftest.py, sqlite_only); the migrations test runs on both.
pytestmark = pytest.mark.sqlite_only


def test_healthz(client: Any) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "ok"
    assert resp.get_json()["database"] == "ok"


def test_config_layers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    instance = tmp_path / "inst"
    instance.mkdir()
    (instance / "config.py").write_text("MIN_CELL = 15\nBRANDING_NAME = 'From file'\n")
    monkeypatch.setenv("ONSITE_BRANDING_NAME", "From env")
    monkeypatch.setenv("ONSITE_KIOSK_IDLE_TIMEOUT_SECONDS", "120")
    app = create_app({"INSTANCE_PATH": str(instance), "KIOSK_SYNC_SECONDS": 5,
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite'}"})
    assert app.config["MIN_CELL"] == 15  # instance file over defaults
    assert app.config["BRANDING_NAME"] == "From env"  # environment over instance file
    assert app.config["KIOSK_IDLE_TIMEOUT_SECONDS"] == 120  # converted to int
    assert app.config["KIOSK_SYNC_SECONDS"] == 5  # test config last


def test_min_cell_cannot_go_below_five(tmp_path: Path) -> None:
    with pytest.raises(config_module.ConfigError, match="MIN_CELL"):
        create_app({"INSTANCE_PATH": str(tmp_path), "MIN_CELL": 4})


def test_unknown_enabled_instrument_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(config_module.ConfigError, match="ENABLED_INSTRUMENTS: .*'phq99'"):
        create_app({"INSTANCE_PATH": str(tmp_path), "ENABLED_INSTRUMENTS": ["phq9", "phq99"]})


def test_bad_number_in_environment_names_the_variable() -> None:
    with pytest.raises(config_module.ConfigError, match="ONSITE_MIN_CELL"):
        config_module.from_environment({"ONSITE_MIN_CELL": "eleven"})


def test_default_database_is_sqlite_in_instance(tmp_path: Path) -> None:
    app = create_app({"INSTANCE_PATH": str(tmp_path / "i")})
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'i' / 'onsite.sqlite'}"


def test_sqlite_runs_in_wal_with_foreign_keys(app: Any) -> None:
    db = get_db(app)
    if not db.is_sqlite:
        pytest.skip("SQLite pragmas")
    with db.engine.connect() as conn:  # type: ignore[union-attr]
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_migrations_match_models(empty_database_url: str) -> None:
    """The Alembic head, run on an empty database, builds exactly the models' schema.

    Every other test copies a template migrated once per session; this one runs the
    migrations itself, on each database.
    """
    db = Database()
    db.configure(empty_database_url)
    try:
        assert current_revision(db) is None
        upgrade(db)
        assert current_revision(db) == head_revision()
        with db.engine.connect() as conn:  # type: ignore[union-attr]
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        db.dispose()
    assert diff == []


def test_unknown_api_path_is_problem_json(client: Any) -> None:
    resp = client.get("/api/v1/nope")
    assert resp.status_code == 404
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json()["status"] == 404


def test_body_too_large_is_413_problem(client: Any) -> None:
    resp = client.post("/api/v1/pair", data=b"{" + b" " * (3 * 1024 * 1024) + b"}",
                       content_type="application/json")
    assert resp.status_code == 413
    assert resp.mimetype == "application/problem+json"


def test_failed_commit_is_a_503_and_stores_nothing(app: Any, client: Any, kiosk: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A lock timeout at commit answers 503 (retry), never a 500 or a false success."""
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    def refuse(self: Session) -> None:
        raise OperationalError("COMMIT", {}, Exception("database is locked"))

    monkeypatch.setattr(Session, "commit", refuse)
    resp = client.post("/api/v1/heartbeat", headers={"Authorization": f"Bearer {kiosk['token']}"},
                       json={"app_version": "t", "outbox_depth": 0, "last_sync_at": None,
                             "free_disk_bytes": 1})
    assert resp.status_code == 503
    assert resp.mimetype == "application/problem+json"
    assert resp.headers["Retry-After"] == "2"


def test_a_server_process_builds_its_app_without_the_pdf_and_qr_libraries(
        tmp_path: Path) -> None:
    """fpdf2 (the report's PDF) and qrcode with Pillow (a page's QR code) load when used.

    Every `onsite-server` process builds the app (each CLI command, gunicorn worker and sync
    worker): the two cost its start-up about 0.2 and 0.075 s of CPU. The PDF and the codes
    still come out whole where they are asked for (the reports' and pages' own tests).
    """
    code = ("import sys\nfrom onsite_server import create_app\n"
            f"create_app({{'DATABASE_URL': 'sqlite:///{tmp_path / 'db.sqlite'}', "
            f"'INSTANCE_PATH': '{tmp_path / 'instance'}', 'SECRET_KEY': 'x' * 32}})\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120, cwd=Path(__file__).resolve().parents[3])
    loaded = set(done.stdout.split())
    assert {"flask", "sqlalchemy", "onsite_server"} <= loaded  # the app was really built
    assert not loaded & {"fpdf", "qrcode", "PIL"}
