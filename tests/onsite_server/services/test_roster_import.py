"""Roster import: per-row validation report, all-or-nothing by default, upsert by employee id."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, func, select, text

from onsite_server.app_settings import override
from onsite_server.cli import main
from onsite_server.db import get_db
from onsite_server.models import Advocate, AuditLog, Employer, Member, Site
from onsite_server.services.roster import STAGING_SLUG_PREFIX, RosterImportError, import_roster

from ..helpers import (
    auth,
    gen_member,
    gen_site,
    live_kiosk_and_member,
    pair_kiosk,
    submission_item,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
HEADER = "member_id,employee_id,badge_id,first_name,last_name,birth_date,language,phone,email," \
         "advocate_id\n"


@pytest.fixture
def employer(app: Any) -> dict[str, Any]:
    """An employer with a site, and the advocate the fixture files name."""
    with get_db(app).transaction() as session:
        site = gen_site(session, "roster-site")
        session.add(Advocate(public_id="adv-roster-1", name="Rae Advocate"))
        return {"slug": f"emp-{site.slug}", "id": site.employer_id, "site": site.slug}


def _run(app: Any, runner: Any, *args: str) -> Any:
    return runner.invoke(main, ["import-roster", *args], obj={"app": app})


def _members(app: Any, employer_id: int) -> dict[str, Member]:
    with get_db(app).transaction() as session:
        rows = session.scalars(select(Member).where(Member.employer_id == employer_id)).all()
        for row in rows:
            session.expunge(row)
    return {m.employee_id: m for m in rows}


def test_good_file_imports_every_row(app: Any, runner: Any, employer: dict[str, Any]) -> None:
    result = _run(app, runner, str(FIXTURES / "roster_good.csv"), "--employer", employer["slug"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["created"] == 3 and summary["errors"] == 0 and summary["imported"] is True
    members = _members(app, employer["id"])
    assert set(members) == {"E2001", "E2002", "E2003"}
    rosa = members["E2001"]
    # The BOM did not leak into the first column name, so member_id was read.
    assert rosa.member_id == "M-2001" and rosa.badge_id == "B-9001"
    assert rosa.birth_date == date(1984, 2, 29) and rosa.language == "es"
    assert rosa.advocate_id is not None
    tom = members["E2002"]
    assert tom.language == "en" and tom.badge_id is None and tom.advocate_id is None
    assert members["E2003"].first_name == "Mary Ann"


def test_imported_member_can_identify(app: Any, client: Any, runner: Any,
                                      employer: dict[str, Any]) -> None:
    _run(app, runner, str(FIXTURES / "roster_good.csv"), "--employer", employer["slug"])
    kiosk = pair_kiosk(app, client, employer["site"])
    resp = client.post("/api/v1/identify", json={"id": "B-9001", "birth_date": "1984-02-29"},
                       headers=auth(kiosk["token"]))
    assert resp.status_code == 200
    assert resp.get_json()["first_name"] == "Rosa"


def test_bad_rows_reported_and_nothing_imported(app: Any, runner: Any, tmp_path: Path,
                                                employer: dict[str, Any]) -> None:
    errors_out = tmp_path / "errors.csv"
    result = _run(app, runner, str(FIXTURES / "roster_bad.csv"), "--employer", employer["slug"],
                  "--errors-out", str(errors_out))
    assert result.exit_code == 1
    err = result.stderr
    assert "row 3, birth_date:" in err
    assert "row 4, employee_id: duplicate of row 2" in err
    assert "row 5, advocate_id: unknown advocate 'adv-missing'" in err
    assert "row 6, first_name: is required" in err
    assert "row 6, language:" in err and "row 6, email:" in err
    assert "nothing imported" in err
    assert "row 2," not in err and "row 7," not in err
    assert _members(app, employer["id"]) == {}
    with errors_out.open(newline="", encoding="utf-8-sig") as fh:
        report = list(csv.DictReader(fh))
    assert {(r["row"], r["column"]) for r in report} == {
        ("3", "birth_date"), ("4", "employee_id"), ("5", "advocate_id"),
        ("6", "first_name"), ("6", "language"), ("6", "email"),
    }
    # The report names rows and columns, never the members' data.
    assert "1980-02-30" not in errors_out.read_text()


def test_partial_imports_the_good_rows(app: Any, runner: Any, employer: dict[str, Any]) -> None:
    result = _run(app, runner, str(FIXTURES / "roster_bad.csv"), "--employer", employer["slug"],
                  "--partial")
    assert result.exit_code == 0, result.output
    assert "row 3, birth_date:" in result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["created"] == 2 and summary["bad_rows"] == 4
    assert set(_members(app, employer["id"])) == {"E3001", "E3006"}


def test_dry_run_writes_nothing(app: Any, runner: Any, employer: dict[str, Any]) -> None:
    result = _run(app, runner, str(FIXTURES / "roster_good.csv"), "--employer", employer["slug"],
                  "--dry-run")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["created"] == 3 and summary["dry_run"] is True and summary["imported"] is False
    assert _members(app, employer["id"]) == {}
    with get_db(app).transaction() as session:
        audits = session.scalar(select(func.count()).select_from(AuditLog)
                                .where(AuditLog.action == "roster.import"))
    assert audits == 0


def test_dry_run_of_bad_file_fails(app: Any, runner: Any, employer: dict[str, Any]) -> None:
    result = _run(app, runner, str(FIXTURES / "roster_bad.csv"), "--employer", employer["slug"],
                  "--dry-run")
    assert result.exit_code == 1
    assert _members(app, employer["id"]) == {}


def test_reimport_updates_by_employee_id(app: Any, runner: Any, tmp_path: Path,
                                         employer: dict[str, Any]) -> None:
    assert _run(app, runner, str(FIXTURES / "roster_good.csv"), "--employer",
                employer["slug"]).exit_code == 0
    before = _members(app, employer["id"])
    changed = tmp_path / "changed.csv"
    changed.write_text(
        HEADER
        + "M-2001,E2001,B-9001,Rosa,Delgado-Ruiz,1984-02-29,es,+1-555-0201,"
          "rosa.delgado@example.com,adv-roster-1\n"
        + "M-2002,E2002,,Tom,Baker,1970-12-31,,,,\n"
        + "M-2004,E2004,,New,Person,1999-09-09,en,,,\n",
        encoding="utf-8",
    )
    result = _run(app, runner, str(changed), "--employer", employer["slug"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["created"], summary["updated"], summary["unchanged"]) == (1, 1, 1)
    after = _members(app, employer["id"])
    assert after["E2001"].last_name == "Delgado-Ruiz"
    assert after["E2001"].public_id == before["E2001"].public_id  # updated, not replaced
    assert "E2003" in after  # members missing from the file are left alone


def test_badge_of_another_existing_member_is_a_row_error(app: Any, runner: Any, tmp_path: Path,
                                                         employer: dict[str, Any]) -> None:
    with get_db(app).transaction() as session:
        from onsite_server.models import Site

        site = session.scalars(select(Site).where(Site.slug == employer["site"])).one()
        gen_member(session, site, "E0001", badge_id="B-TAKEN")
    path = tmp_path / "clash.csv"
    path.write_text(HEADER + "M-5,E0005,B-TAKEN,Sam,Lee,1980-01-01,en,,,\n", encoding="utf-8")
    result = _run(app, runner, str(path), "--employer", employer["slug"])
    assert result.exit_code == 1
    assert "row 2, badge_id: already belongs to employee E0001" in result.stderr


@pytest.mark.parametrize(("text", "message"), [
    ("member_id,employee_id,first_name,last_name\nM,E,A,B\n", "missing column(s) birth_date"),
    (HEADER.replace("phone", "fone"), "unknown column(s) fone"),
    ("", "empty"),
])
@pytest.mark.sqlite_only
def test_unusable_file_is_refused(app: Any, runner: Any, tmp_path: Path,
                                  employer: dict[str, Any], text: str, message: str) -> None:
    path = tmp_path / "r.csv"
    path.write_text(text, encoding="utf-8")
    result = _run(app, runner, str(path), "--employer", employer["slug"])
    assert result.exit_code == 1
    assert message in result.stderr


@pytest.mark.sqlite_only
def test_non_utf8_file_is_refused(app: Any, runner: Any, tmp_path: Path,
                                  employer: dict[str, Any]) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEADER + "M-1,E1,,José,Pérez,1980-01-01,es,,,\n").encode("latin-1"))
    result = _run(app, runner, str(path), "--employer", employer["slug"])
    assert result.exit_code == 1
    assert "not UTF-8" in result.stderr


def test_too_many_cells_is_a_row_error(app: Any, runner: Any, tmp_path: Path,
                                       employer: dict[str, Any]) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(HEADER + "M-1,E1,,A,B,1980-01-01,en,,,,extra\n", encoding="utf-8")
    result = _run(app, runner, str(path), "--employer", employer["slug"])
    assert result.exit_code == 1
    assert "row 2, *: 1 more cell(s) than columns" in result.stderr


@pytest.mark.sqlite_only
def test_a_cell_beyond_the_csv_field_limit_is_refused_by_name(
        app: Any, runner: Any, tmp_path: Path, employer: dict[str, Any]) -> None:
    """A 131,073-character cell (the csv module's limit) is a clear refusal, not a crash."""
    path = tmp_path / "huge.csv"
    path.write_text(HEADER + "M-1,E1,,A,B,1980-01-01,en,,,\n"
                    f"M-2,E2,,{'x' * (csv.field_size_limit() + 1)},B,1980-01-01,en,,,\n",
                    encoding="utf-8")
    result = _run(app, runner, str(path), "--employer", employer["slug"], "--dry-run")
    assert result.exit_code == 1, result.output
    assert "row 3: a cell is longer than 131072 characters" in result.stderr
    assert not isinstance(result.exception, csv.Error)


def test_rows_beyond_the_configured_cap_are_refused(
        app: Any, runner: Any, tmp_path: Path, employer: dict[str, Any]) -> None:
    """ROSTER_MAX_ROWS data rows are taken; one more refuses the file before it is checked."""
    override(app, ROSTER_MAX_ROWS=3)
    rows = [f"M-{i},E{i},,A,B,1980-01-01,en,,,\n" for i in range(4)]
    path = tmp_path / "long.csv"
    path.write_text(HEADER + "".join(rows[:3]), encoding="utf-8")
    assert _run(app, runner, str(path), "--employer", employer["slug"]).exit_code == 0
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    result = _run(app, runner, str(path), "--employer", employer["slug"], "--dry-run")
    assert result.exit_code == 1
    assert "row 5: the file has more than 3 rows" in result.stderr
    assert "ROSTER_MAX_ROWS" in result.stderr


def test_unknown_employer_named(app: Any, runner: Any, employer: dict[str, Any]) -> None:
    result = _run(app, runner, str(FIXTURES / "roster_good.csv"), "--employer", "nope")
    assert result.exit_code == 2
    assert "--employer" in result.stderr


def test_audit_row_of_successful_import_says_imported(app: Any, runner: Any,
                                                      employer: dict[str, Any]) -> None:
    result = _run(app, runner, str(FIXTURES / "roster_good.csv"), "--employer", employer["slug"])
    assert result.exit_code == 0, result.output
    with get_db(app).transaction() as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "roster.import")).one()
    assert audit.detail["imported"] is True and audit.detail["created"] == 3


def _roster_text(rows: int, *, prefix: str = "E", start: int = 0) -> str:
    return HEADER + "".join(
        f"M-{prefix}{i},{prefix}{i},,First{i},Last,1980-01-01,en,,,\n"
        for i in range(start, start + rows))


def _staging_left(app: Any) -> tuple[int, int]:
    """Return (staging employers, members under them) still in the database."""
    with get_db(app).transaction(write=False) as session:
        ids = session.scalars(select(Employer.id).where(
            Employer.slug.startswith(STAGING_SLUG_PREFIX))).all()
        members = session.scalar(select(func.count()).select_from(Member)
                                 .where(Member.employer_id.in_(ids))) if ids else 0
    return len(ids), int(members or 0)


def test_chunked_import_creates_and_updates_all_at_once(app: Any, tmp_path: Path,
                                                        employer: dict[str, Any]) -> None:
    db = get_db(app)
    first = import_roster(db, employer["id"], io.StringIO(_roster_text(7)), chunk_rows=2)
    assert (first.created, first.imported) == (7, True)
    text = _roster_text(7).replace("First3,", "Changed3,") + "M-E7,E7,,New,Last,1990-01-01,,,,\n"
    second = import_roster(db, employer["id"], io.StringIO(text), chunk_rows=3)
    assert (second.created, second.updated, second.unchanged) == (1, 1, 6)
    members = _members(app, employer["id"])
    assert len(members) == 8 and members["E3"].first_name == "Changed3"
    assert members["E7"].first_name == "New"
    assert _staging_left(app) == (0, 0)


def test_import_that_fails_at_the_swap_leaves_nothing_behind(
        app: Any, employer: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    db = get_db(app)
    with db.transaction() as session:
        site = session.scalars(select(Site).where(Site.slug == employer["site"])).one()
        gen_member(session, site, "E1", first_name="Before")
    calls = 0

    def late_clash(_n: int) -> None:
        # Someone adds E5 after the rows were checked, before the swap: the swap must fail
        # whole, not import the other rows.
        nonlocal calls
        calls += 1
        if calls == 10:
            with db.transaction() as other:
                gen_member(other, other.get(Site, site.id), "E5")  # type: ignore[arg-type]

    text = _roster_text(10).replace("First1,", "After1,")
    with pytest.raises(RosterImportError, match="nothing was imported"):
        import_roster(db, employer["id"], io.StringIO(text), chunk_rows=3, progress=late_clash)
    members = _members(app, employer["id"])
    assert set(members) == {"E1", "E5"} and members["E1"].first_name == "Before"
    assert _staging_left(app) == (0, 0)
    with db.transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(AuditLog)
                              .where(AuditLog.action == "roster.import")) == 0


def test_import_that_dies_while_staging_leaves_nothing_behind(
        app: Any, employer: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import onsite_server.services.roster as roster

    seen: list[tuple[int, int]] = []

    def broken_swap(*_args: Any) -> None:
        seen.append(_staging_left(app))
        raise OSError("disk gone")

    monkeypatch.setattr(roster, "_swap", broken_swap)
    with pytest.raises(OSError):
        import_roster(get_db(app), employer["id"], io.StringIO(_roster_text(9)), chunk_rows=4)
    assert seen == [(1, 9)]  # it was staged, invisibly...
    assert _members(app, employer["id"]) == {}
    assert _staging_left(app) == (0, 0)  # ...and removed


def test_stale_staging_from_a_dead_import_is_removed(app: Any,
                                                     employer: dict[str, Any]) -> None:
    with get_db(app).transaction() as session:
        dead = Employer(slug=STAGING_SLUG_PREFIX + "dead", name="dead",
                        created_at=datetime.now(UTC) - timedelta(days=1))
        session.add(dead)
        session.flush()
        session.add(Member(employer_id=dead.id, member_id="M", employee_id="E", first_name="A",
                           last_name="B", birth_date=date(1980, 1, 1)))
    import_roster(get_db(app), employer["id"], io.StringIO(_roster_text(1)))
    assert _staging_left(app) == (0, 0)


@pytest.mark.slow
def test_large_import_does_not_stop_kiosk_writes(live_server: Any, database_url: str,
                                                 tmp_path: Path) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time; PostgreSQL never blocked here")
    token, ref = live_kiosk_and_member(live_server, database_url)
    path = tmp_path / "big.csv"
    rows = 60_000
    path.write_text(_roster_text(rows, prefix="B"), encoding="utf-8")
    importer = subprocess.Popen(
        [sys.executable, "-m", "onsite_server.cli", "import-roster", str(path),
         "--employer", "emp-live"],
        env=live_server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    latencies: list[float] = []
    statuses: set[int] = set()
    http = requests.Session()
    http.headers.update(auth(token))
    try:
        while importer.poll() is None:
            started = time.monotonic()
            if len(latencies) % 2:
                resp = http.post(live_server.url + "/api/v1/submissions", timeout=60, json={
                    "items": [submission_item("phq2", {"1": 1, "2": 0}, member_ref=ref)]})
                assert resp.json()["results"][0]["status"] == "accepted"
            else:
                resp = http.post(live_server.url + "/api/v1/heartbeat", timeout=60, json={
                    "app_version": "1", "outbox_depth": len(latencies), "free_disk_bytes": 1})
            latencies.append(time.monotonic() - started)
            statuses.add(resp.status_code)
            time.sleep(0.02)
    finally:
        out, err = importer.communicate(timeout=300)
    assert importer.returncode == 0, err[-2000:]
    assert json.loads(out.strip().splitlines()[-1])["created"] == rows
    assert statuses == {200}
    # Before, the import held the write lock for its whole length (6.6 s for 60,000 rows);
    # now a heartbeat waits for one chunk or the final swap. Generous: bounded, not hung.
    assert len(latencies) > 10 and max(latencies) < 3.0, max(latencies)
    with create_engine(database_url).connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM member WHERE employee_id LIKE 'B%'"))
        assert count.scalar() == rows
