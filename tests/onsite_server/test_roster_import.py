"""Roster import: per-row validation report, all-or-nothing by default, upsert by employee id."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from onsite_server.cli import main
from onsite_server.db import get_db
from onsite_server.models import Advocate, AuditLog, Member

from .helpers import auth, gen_member, gen_site, pair_kiosk

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
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
    with errors_out.open(newline="") as fh:
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
def test_unusable_file_is_refused(app: Any, runner: Any, tmp_path: Path,
                                  employer: dict[str, Any], text: str, message: str) -> None:
    path = tmp_path / "r.csv"
    path.write_text(text, encoding="utf-8")
    result = _run(app, runner, str(path), "--employer", employer["slug"])
    assert result.exit_code == 1
    assert message in result.stderr


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
