"""Import the member roster from CSV: validate every row, then upsert by employee id.

All-or-nothing by default: one bad row and nothing is written. With ``partial`` the good rows
are imported and the bad ones reported. Members absent from the file are left as they are.
Rows are numbered by their line in the file (the header is line 1).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.triage import LANGUAGES

from ..models import Advocate, AuditLog, Employer, Member, utcnow

REQUIRED = ("member_id", "employee_id", "first_name", "last_name", "birth_date")
OPTIONAL = ("badge_id", "language", "phone", "email", "advocate_id")
COLUMNS = REQUIRED + OPTIONAL
_MAX = {"member_id": 64, "employee_id": 64, "badge_id": 64, "first_name": 100,
        "last_name": 100, "phone": 32, "email": 255, "advocate_id": 64}
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PHONE_RE = re.compile(r"^\+?[0-9(][0-9 ()./-]{2,30}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_UPDATABLE = ("member_id", "badge_id", "first_name", "last_name", "birth_date", "language",
              "phone", "email", "advocate_id")


class RosterFileError(ValueError):
    """The file as a whole cannot be read (encoding, missing or unknown columns)."""


@dataclass(frozen=True)
class RowError:
    """One problem: the file line, the column and what is wrong."""

    row: int
    column: str
    message: str

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


def read_rows(stream: TextIO) -> list[tuple[int, dict[str, str]]]:
    """Read CSV rows as (line number, {column: stripped text}), skipping blank lines."""
    reader = csv.reader(stream)
    header: list[str] | None = None
    out: list[tuple[int, dict[str, str]]] = []
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        if header is None:
            header = [c.strip().lower().lstrip("\ufeff") for c in cells]
            _check_header(header, reader.line_num)
            continue
        line = reader.line_num
        if len(cells) > len(header):
            out.append((line, {"__extra__": str(len(cells) - len(header))}))
            continue
        padded = cells + [""] * (len(header) - len(cells))
        cleaned = {name: value.strip() for name, value in zip(header, padded, strict=True)}
        out.append((line, cleaned))
    if header is None:
        raise RosterFileError("row 1: the file is empty (no header row)")
    return out


def _check_header(header: list[str], line: int) -> None:
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise RosterFileError(f"row {line}: unknown column(s) {', '.join(unknown)}; "
                              f"expected {', '.join(COLUMNS)}")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise RosterFileError(f"row {line}: missing column(s) {', '.join(missing)}")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise RosterFileError(f"row {line}: column(s) repeated: {', '.join(dupes)}")


def validate_row(line: int, raw: dict[str, str], today: date) -> tuple[dict[str, Any],
                                                                      list[RowError]]:
    """Check one row's cells; return the cleaned values and every error found."""
    errors: list[RowError] = []
    if "__extra__" in raw:
        return {}, [RowError(line, "*", f"{raw['__extra__']} more cell(s) than columns")]
    values: dict[str, Any] = {}
    for column in COLUMNS:
        text = raw.get(column, "")
        if column in REQUIRED and not text:
            errors.append(RowError(line, column, "is required"))
            continue
        limit = _MAX.get(column, 32)
        if len(text) > limit:
            errors.append(RowError(line, column, f"is longer than {limit} characters"))
            continue
        if any(ord(ch) < 32 for ch in text):
            errors.append(RowError(line, column, "contains control characters"))
            continue
        values[column] = text or None
    born = values.get("birth_date")
    if born is not None:
        parsed = _parse_date(born)
        if parsed is None:
            errors.append(RowError(line, "birth_date", "is not a real date written as YYYY-MM-DD"))
        elif not date(1900, 1, 1) <= parsed <= today:
            errors.append(RowError(line, "birth_date", "must be between 1900-01-01 and today"))
        values["birth_date"] = parsed
    lang = (values.get("language") or "en").lower()
    if lang not in LANGUAGES:
        errors.append(RowError(line, "language", f"must be one of {', '.join(LANGUAGES)}"))
    values["language"] = lang
    phone = values.get("phone")
    if phone is not None and not _PHONE_RE.match(phone):
        errors.append(RowError(line, "phone", "is not a phone number"))
    email = values.get("email")
    if email is not None and not _EMAIL_RE.match(email):
        errors.append(RowError(line, "email", "is not an email address"))
    return values, errors


def _parse_date(text: str) -> date | None:
    if not _DATE_RE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def import_roster(
    session: Session,
    employer: Employer,
    stream: TextIO,
    *,
    partial: bool = False,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    actor: str = "cli",
) -> ImportReport:
    """Validate the CSV in stream and upsert its members for employer into session.

    Nothing is added to the session when any row is bad (unless partial) or when dry_run.
    The caller commits. Raises RosterFileError when the file as a whole is unusable.
    """
    raw_rows = read_rows(stream)
    report = ImportReport(rows=len(raw_rows), dry_run=dry_run)
    existing = {m.employee_id: m for m in session.scalars(
        select(Member).where(Member.employer_id == employer.id))}
    badge_owner = {m.badge_id: m.employee_id for m in existing.values() if m.badge_id}
    advocates = dict(session.execute(select(Advocate.public_id, Advocate.id)).tuples().all())
    today = utcnow().date()
    seen_employee: dict[str, int] = {}
    seen_badge: dict[str, int] = {}
    good: list[RosterRow] = []
    for line, raw in raw_rows:
        values, errors = validate_row(line, raw, today)
        emp = values.get("employee_id")
        if emp is not None:
            if emp in seen_employee:
                errors.append(RowError(line, "employee_id",
                                       f"duplicate of row {seen_employee[emp]}"))
            else:
                seen_employee[emp] = line
        badge = values.get("badge_id")
        if badge is not None:
            owner = badge_owner.get(badge)
            if badge in seen_badge:
                errors.append(RowError(line, "badge_id", f"duplicate of row {seen_badge[badge]}"))
            elif owner is not None and owner != emp:
                errors.append(RowError(line, "badge_id",
                                       f"already belongs to employee {owner}"))
            seen_badge.setdefault(badge, line)
        adv = values.get("advocate_id")
        if adv is not None:
            if adv in advocates:
                values["advocate_id"] = advocates[adv]
            else:
                errors.append(RowError(line, "advocate_id", f"unknown advocate {adv!r}"))
        if errors:
            report.errors.extend(errors)
        else:
            good.append(RosterRow(line, values))
        if progress is not None:
            progress(1)
    report.valid = len(good)
    if report.errors and not partial:
        return report
    _upsert(session, employer, good, existing, report)
    if dry_run:
        # Nothing was added to the session: _upsert counted only.
        return report
    report.imported = True  # before as_dict(), or the audit row would say it was not
    session.add(AuditLog(actor=actor, action="roster.import", subject=f"employer:{employer.slug}",
                         detail=report.as_dict()))
    return report


def _upsert(session: Session, employer: Employer, rows: Iterable[RosterRow],
            existing: dict[str, Member], report: ImportReport) -> None:
    for item in rows:
        values = item.values
        member = existing.get(values["employee_id"])
        if member is None:
            report.created += 1
            if not report.dry_run:
                session.add(Member(employer_id=employer.id, employee_id=values["employee_id"],
                                   **{k: values[k] for k in _UPDATABLE}))
            continue
        changed = {k: values[k] for k in _UPDATABLE if getattr(member, k) != values[k]}
        if not changed:
            report.unchanged += 1
            continue
        report.updated += 1
        if not report.dry_run:
            for name, value in changed.items():
                setattr(member, name, value)


def open_roster(path: str | Path) -> TextIO:
    """Open a roster file as text, accepting a UTF-8 byte-order mark."""
    try:
        data = Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RosterFileError(f"the file is not UTF-8 text ({exc.reason} at byte "
                              f"{exc.start})") from exc
    return io.StringIO(data, newline="")
