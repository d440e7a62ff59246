"""Import the member roster from CSV: validate every row, then upsert by employee id.

All-or-nothing by default: one bad row and nothing is written. With ``partial`` the good rows
are imported and the bad ones reported. Members absent from the file are left as they are.
Rows are numbered as a spreadsheet shows them (the header is row 1); reading the file, its
encodings and delimiters, is ``roster_file``'s.

A large file must not stop kiosks writing (SQLite has one writer at a time): rows are checked
without the write lock, staged in short chunks under a placeholder employer that nothing can
see, and made the employer's in one set-based step. A failed import removes what it staged.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol, TextIO

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.triage import LANGUAGES

from ..models import Advocate, AuditLog, Employer, Member, utcnow
from ..models.base import new_uuid
from .errors import N_, Msg, ServiceError
from .roster_file import COLUMNS, REQUIRED, read_rows

_MAX = {"member_id": 64, "employee_id": 64, "badge_id": 64, "first_name": 100,
        "last_name": 100, "phone": 32, "email": 255, "advocate_id": 64}
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PHONE_RE = re.compile(r"^\+?[0-9(][0-9 ()./-]{2,30}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# What Excel makes of cells it took for numbers and dates: 123456789012 saved as 1.23457E+11,
# 1980-01-02 saved as 1/2/1980 (or 02.01.1980 in Europe).
_IDS = ("member_id", "employee_id", "badge_id", "advocate_id")
_SCIENTIFIC_RE = re.compile(r"^[0-9](?:[.,][0-9]+)?E\+[0-9]+$", re.IGNORECASE)
# A regex, not a loop over ord(): the loop was a third of the CPU of checking 60,000 rows.
_CONTROL_RE = re.compile(r"[\x00-\x1f]")
_LOCAL_DATE_RE = re.compile(r"^[0-9]{1,2}[./-][0-9]{1,2}[./-][0-9]{2,4}$")
_UPDATABLE = ("member_id", "badge_id", "first_name", "last_name", "birth_date", "language",
              "phone", "email", "advocate_id")


@dataclass(frozen=True)
class RowError:
    """One problem: the file line, the column and what is wrong."""

    row: int
    column: str
    message: Msg

    def __str__(self) -> str:
        return f"row {self.row}, {self.column}: {self.message}"


@dataclass
class RosterRow:
    """One validated row, ready to upsert."""

    row: int
    values: dict[str, Any]


@dataclass
class ImportReport:
    """What an import did (or, for a dry run or a refused import, would have done)."""

    rows: int = 0
    valid: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    imported: bool = False
    dry_run: bool = False
    errors: list[RowError] = field(default_factory=list)

    @property
    def bad_rows(self) -> int:
        """Number of distinct rows with at least one error."""
        return len({e.row for e in self.errors})

    def as_dict(self) -> dict[str, Any]:
        """Return the summary as JSON-friendly data (no member data)."""
        return {"rows": self.rows, "valid": self.valid, "created": self.created,
                "updated": self.updated, "unchanged": self.unchanged,
                "bad_rows": self.bad_rows, "errors": len(self.errors),
                "imported": self.imported, "dry_run": self.dry_run}


def validate_row(line: int, raw: dict[str, str], today: date) -> tuple[dict[str, Any],
                                                                      list[RowError]]:
    """Check one row's cells; return the cleaned values and every error found."""
    errors: list[RowError] = []
    if "__extra__" in raw:
        return {}, [RowError(line, "*", N_("%(n)s more cell(s) than columns",
                                                  n=raw["__extra__"]))]
    if "__unnamed__" in raw:
        return {}, [RowError(line, "*", N_("column %(n)s has no name in the header row but "
                                           "holds a value", n=raw["__unnamed__"]))]
    values: dict[str, Any] = {}
    for column in COLUMNS:
        text = raw.get(column, "")
        problem = _cell_problem(column, text)
        if problem is not None:
            errors.append(RowError(line, column, problem))
            continue
        values[column] = text or None
    born = values.get("birth_date")
    if born is not None:
        parsed = _parse_date(born)
        if parsed is None and _LOCAL_DATE_RE.match(born):
            errors.append(RowError(line, "birth_date", N_(
                "is written as a spreadsheet's local date (such as 1/2/1980, which can be "
                "January 2 or February 1); format the column as yyyy-mm-dd (Format Cells > "
                "Custom) and save the file again")))
        elif parsed is None:
            errors.append(RowError(line, "birth_date",
                                   N_("is not a real date written as YYYY-MM-DD")))
        elif not date(1900, 1, 1) <= parsed <= today:
            errors.append(RowError(line, "birth_date",
                                   N_("must be between 1900-01-01 and today")))
        values["birth_date"] = parsed
    lang = (values.get("language") or "en").lower()
    if lang not in LANGUAGES:
        errors.append(RowError(line, "language", N_("must be one of %(choices)s",
                                                          choices=", ".join(LANGUAGES))))
    values["language"] = lang
    phone = values.get("phone")
    if phone is not None and not _PHONE_RE.match(phone):
        errors.append(RowError(line, "phone", N_("is not a phone number")))
    email = values.get("email")
    if email is not None and not _EMAIL_RE.match(email):
        errors.append(RowError(line, "email", N_("is not an email address")))
    return values, errors


def _cell_problem(column: str, text: str) -> Msg | None:
    """What is wrong with one cell on its own, or None."""
    if column in REQUIRED and not text:
        return N_("is required")
    limit = _MAX.get(column, 32)
    if len(text) > limit:
        return N_("is longer than %(n)d characters", n=limit)
    if _CONTROL_RE.search(text):
        return N_("contains control characters")
    if _garbled(text):
        # Not the text itself: the report names rows and columns, never member data.
        return N_("looks garbled, as when José becomes JosÃ© (a UTF-8 file opened in the wrong "
                  "encoding and saved again); export it again from its source as CSV UTF-8")
    if column in _IDS and _SCIENTIFIC_RE.match(text):
        return N_("is a long number a spreadsheet rounded (such as 1.23457E+11), so its "
                  "digits are lost; format the column as Text and export the file again from "
                  "its source")
    return None


def _garbled(text: str) -> bool:
    """Whether the text looks like UTF-8 read as Windows-1252 (mojibake).

    A UTF-8 file opened as Windows-1252 (Excel does this to a CSV without a byte-order mark)
    and saved again turns José into JosÃ©. Such text is encodable in cp1252 and its bytes are
    UTF-8 for something else; a real name almost never is (Ã followed by ©).
    """
    if text.isascii():
        return False
    try:
        text.encode("cp1252").decode("utf-8")
    except UnicodeError:
        return False
    return True


def _parse_date(text: str) -> date | None:
    if not _DATE_RE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


class Database(Protocol):
    """What the import needs of the database: transactions of its own (db.Database has them).

    A protocol, not db.Database itself: services stay free of Flask, which db.py imports.
    """

    def transaction(self, *, write: bool = True) -> AbstractContextManager[Session]:
        """Yield a session that commits on success and rolls back on error."""
        ...


class RosterImportError(ServiceError):
    """The import could not be applied (the roster changed meanwhile); nothing was imported."""

    def __init__(self, message: str) -> None:
        super().__init__("conflict", "Roster refused", [{"field": "file", "message": message}],
                         message, reason="roster_changed")


# Staged rows belong to a placeholder employer that no site points at, so no lookup (identify,
# member references, reports: all go through a site's employer) can see them before the swap.
STAGING_SLUG_PREFIX = "~roster-import-"
# About 20-40 ms of SQLite's write lock per chunk here: kiosk writes queue between chunks.
DEFAULT_CHUNK_ROWS = 500
# A staging employer older than this is left over from an import that died; the next import
# removes it.
_STALE_STAGING = timedelta(hours=1)

_MEMBER: Table = Member.__table__  # type: ignore[assignment]  # a Table at runtime
_PLAN_COLUMNS = ("id", "employee_id", *_UPDATABLE)


def import_roster(
    db: Database,
    employer_id: int,
    stream: TextIO,
    *,
    partial: bool = False,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    actor: str = "cli",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    max_rows: int | None = None,
) -> ImportReport:
    """Validate the CSV in stream and upsert its members for the employer, all or nothing.

    Rows are checked in a read transaction, staged in short write transactions of chunk_rows
    rows, then made visible in one set-based step, so kiosk writes wait at most for one chunk
    or that step, never for the whole import. Nothing is written when any row is bad (unless
    partial) or when dry_run. Raises RosterFileError when the file as a whole is unusable (or
    longer than max_rows data rows) and RosterImportError when the roster changed under the
    import (then nothing is imported).
    """
    raw_rows = read_rows(stream, max_rows=max_rows)
    report = ImportReport(rows=len(raw_rows), dry_run=dry_run)
    with db.transaction(write=False) as session:
        employer = session.get(Employer, employer_id)
        if employer is None:
            raise RosterImportError(f"no employer with id {employer_id}")
        slug = employer.slug
        creates, updates = _plan(session, employer_id, raw_rows, report, progress)
    if dry_run or (report.errors and not partial):
        return report
    _discard_stale_staging(db, chunk_rows)
    staging_id = _new_staging_employer(db, slug)
    staged = creates + updates
    try:
        for start in range(0, len(staged), chunk_rows):
            chunk = staged[start:start + chunk_rows]
            with db.transaction() as session:
                session.execute(insert(_MEMBER), [{**row.values, "employer_id": staging_id}
                                                  for row in chunk])
        report.imported = True
        with db.transaction() as session:
            _swap(session, employer_id, staging_id, len(creates), len(updates))
            session.add(AuditLog(actor=actor, action="roster.import",
                                 subject=f"employer:{slug}", detail=report.as_dict()))
    except IntegrityError as exc:
        report.imported = False
        raise RosterImportError(N_("the roster changed while it was imported (a member was "
                                   "added with the same employee id); nothing was imported, "
                                   "run the import again")) from exc
    except BaseException:
        report.imported = False
        raise
    finally:
        _discard_staging(db, staging_id, chunk_rows)
    return report


def _plan(session: Session, employer_id: int, raw_rows: list[tuple[int, dict[str, str]]],
          report: ImportReport, progress: Callable[[int], None] | None,
          ) -> tuple[list[RosterRow], list[RosterRow]]:
    """Check every row against the file and the database; return (to create, to update)."""
    existing = {row.employee_id: row for row in session.execute(
        select(*(_MEMBER.c[name] for name in _PLAN_COLUMNS))
        .where(_MEMBER.c.employer_id == employer_id))}
    badge_owner = {row.badge_id: row.employee_id for row in existing.values() if row.badge_id}
    advocates = dict(session.execute(select(Advocate.public_id, Advocate.id)).tuples().all())
    today = utcnow().date()
    seen_employee: dict[str, int] = {}
    seen_badge: dict[str, int] = {}
    creates: list[RosterRow] = []
    updates: list[RosterRow] = []
    for line, raw in raw_rows:
        values, errors = validate_row(line, raw, today)
        emp = values.get("employee_id")
        if emp is not None:
            if emp in seen_employee:
                errors.append(RowError(line, "employee_id",
                                       N_("duplicate of row %(n)d", n=seen_employee[emp])))
            else:
                seen_employee[emp] = line
        badge = values.get("badge_id")
        if badge is not None:
            owner = badge_owner.get(badge)
            if badge in seen_badge:
                errors.append(RowError(line, "badge_id",
                                       N_("duplicate of row %(n)d", n=seen_badge[badge])))
            elif owner is not None and owner != emp:
                errors.append(RowError(line, "badge_id",
                                       N_("already belongs to employee %(id)s", id=owner)))
            seen_badge.setdefault(badge, line)
        adv = values.get("advocate_id")
        if adv is not None:
            if adv in advocates:
                values["advocate_id"] = advocates[adv]
            else:
                errors.append(RowError(line, "advocate_id", N_("unknown advocate %(id)r", id=adv)))
        if progress is not None:
            progress(1)
        if errors:
            report.errors.extend(errors)
            continue
        report.valid += 1
        row = RosterRow(line, {k: values[k] for k in ("employee_id", *_UPDATABLE)})
        current = existing.get(values["employee_id"])
        if current is None:
            report.created += 1
            creates.append(row)
        elif any(getattr(current, k) != values[k] for k in _UPDATABLE):
            report.updated += 1
            updates.append(row)
        else:
            report.unchanged += 1
    return creates, updates


def _new_staging_employer(db: Database, slug: str) -> int:
    with db.transaction() as session:
        staging = Employer(slug=f"{STAGING_SLUG_PREFIX}{new_uuid()}",
                           name=f"(roster import for {slug} in progress)")
        session.add(staging)
        session.flush()
        return staging.id


def _swap(session: Session, employer_id: int, staging_id: int, creates: int,
          updates: int) -> None:
    """Make the staged rows the employer's, in one transaction of set-based statements."""
    staged = _MEMBER.alias("staged")
    member = _MEMBER
    if updates:
        changed = session.execute(
            update(member)
            .where(member.c.employer_id == employer_id, staged.c.employer_id == staging_id,
                   staged.c.employee_id == member.c.employee_id)
            .values({name: staged.c[name] for name in _UPDATABLE} | {"updated_at": utcnow()}))
        _expect(changed, updates)
        session.execute(delete(member).where(
            member.c.employer_id == staging_id,
            member.c.employee_id.in_(select(staged.c.employee_id)
                                     .where(staged.c.employer_id == employer_id))))
    moved = session.execute(update(member).where(member.c.employer_id == staging_id)
                            .values(employer_id=employer_id))
    _expect(moved, creates)


def _expect(result: Any, rows: int) -> None:
    # A member deleted or re-keyed since the plan would make the counts differ: refuse the
    # swap rather than import part of the file.
    if result.rowcount != rows:
        raise RosterImportError(N_("the roster changed while it was imported (%(matched)d rows "
                                   "matched, %(expected)d expected); nothing was imported, run "
                                   "the import again", matched=result.rowcount, expected=rows))


def _discard_staging(db: Database, staging_id: int, chunk_rows: int) -> None:
    """Delete a staging employer and whatever is still staged under it, a chunk at a time."""
    while True:
        with db.transaction() as session:
            ids = session.scalars(select(_MEMBER.c.id).where(_MEMBER.c.employer_id == staging_id)
                                  .limit(chunk_rows)).all()
            if ids:
                session.execute(delete(_MEMBER).where(_MEMBER.c.id.in_(ids)))
                continue
            session.execute(delete(Employer).where(Employer.id == staging_id))
            return


def _discard_stale_staging(db: Database, chunk_rows: int) -> None:
    with db.transaction(write=False) as session:
        stale = session.scalars(select(Employer.id).where(
            Employer.slug.startswith(STAGING_SLUG_PREFIX, autoescape=True),
            Employer.created_at < utcnow() - _STALE_STAGING)).all()
    for staging_id in stale:
        _discard_staging(db, staging_id, chunk_rows)
