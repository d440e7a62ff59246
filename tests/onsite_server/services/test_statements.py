"""Statements compiled once and run by the driver (``services.statements.Prepared``, issue 20
P2 and P7): they store and read exactly what the same statement run through the session
does, on both databases, and refuse up front what they cannot hand the driver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from sqlalchemy import Table, bindparam, func, insert, select
from sqlalchemy.orm import Session

from onsite_server.models import AuditLog, OutboxMessage
from onsite_server.services.statements import AUDIT_ROW, INSERT_AUDIT, Prepared

from ..helpers import gen_site

_OUTBOX = cast(Table, OutboxMessage.__table__)


def _audit(at: datetime, subject: str, site_id: int | None) -> dict[str, Any]:
    return {"at": at, "actor": "user:1", "action": "booking.checked_in", "subject": subject,
            "site_id": site_id, "detail": {"booking": "b-1", "n": 2, "late": None,
                                           "names": ["Ana", "José"]}}


def test_a_prepared_insert_stores_what_the_session_would(session: Session) -> None:
    """A timezone-aware time, a JSON detail with non-ASCII text, a foreign key and a column
    left out (``note``) are stored alike by the prepared INSERT and by the session's."""
    site = gen_site(session, "prep")
    session.flush()
    # Not UTC on purpose: both paths must store the same instant, read back as UTC.
    at = datetime(2026, 12, 7, 9, 30, 15, 123456, tzinfo=UTC).astimezone(
        timezone(timedelta(hours=-5)))
    AUDIT_ROW.run(session, _audit(at, "member:prepared", site.id))
    session.execute(INSERT_AUDIT, _audit(at, "member:session", site.id))
    rows = {r.subject: r for r in session.scalars(select(AuditLog).where(
        AuditLog.subject.in_(["member:prepared", "member:session"])))}
    prepared, plain = rows["member:prepared"], rows["member:session"]
    assert (prepared.at, prepared.detail, prepared.site_id, prepared.note, prepared.actor) == \
        (plain.at, plain.detail, plain.site_id, plain.note, plain.actor)
    assert prepared.at == at and prepared.at.utcoffset() == timedelta(0)
    assert prepared.detail["names"] == ["Ana", "José"] and prepared.note is None


def test_a_prepared_update_counts_its_rows_and_a_built_in_value_is_kept(
        session: Session) -> None:
    """``rowcount`` is the driver's; a value written into the statement (``status ==
    'pending'``) needs no parameter; a column's scalar default the statement leaves out is
    filled in as SQLAlchemy would (``waiting_on_central``)."""
    now = datetime.now(UTC)
    add = Prepared(insert(_OUTBOX).values(
        {name: bindparam(name, type_=_OUTBOX.c[name].type)
         for name in ("kind", "key", "priority", "payload", "status", "attempts",
                      "next_attempt_at", "created_at")}))
    for key in ("prep-1", "prep-2"):
        add.run(session, {"kind": "referral", "key": key, "priority": 1, "payload": {"k": key},
                          "status": "pending", "attempts": 0, "next_attempt_at": now,
                          "created_at": now})
    bump = Prepared(_OUTBOX.update().where(_OUTBOX.c.status == "pending",
                                           _OUTBOX.c.key.like(bindparam("prefix")))
                    .values(attempts=_OUTBOX.c.attempts + 1))
    assert bump.run(session, {"prefix": "prep-%"}).rowcount == 2
    assert bump.run(session, {"prefix": "nothing-%"}).rowcount == 0
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.key.like("prep-%"))
                           .order_by(OutboxMessage.key)).all()
    assert [(r.attempts, r.waiting_on_central, r.payload) for r in rows] == [
        (1, False, {"k": "prep-1"}), (1, False, {"k": "prep-2"})]


def test_a_prepared_select_flushes_first_when_asked(session: Session) -> None:
    """``flush=True`` is session.execute's autoflush for a statement naming mapped classes:
    what the session holds but has not written is counted."""
    count = Prepared(select(func.count()).select_from(AuditLog).where(
        AuditLog.subject == bindparam("subject")), flush=True)
    session.add(AuditLog(actor="cli", action="test.pending", subject="member:pending",
                         detail={}))
    assert count.run(session, {"subject": "member:pending"}).scalar() == 1


def test_a_missing_parameter_is_an_error_not_a_null(session: Session) -> None:
    with pytest.raises(KeyError, match="site_id"):
        AUDIT_ROW.run(session, {k: v for k, v in _audit(datetime.now(UTC), "member:x", None)
                                .items() if k != "site_id"})


@pytest.mark.parametrize("statement", [
    # An expanding IN list is rendered per execution.
    select(AuditLog.id).where(AuditLog.id.in_(bindparam("ids", expanding=True))),
    # ``at`` is left out, and its default is a callable SQLAlchemy would call each time.
    insert(cast(Table, AuditLog.__table__)).values(actor=bindparam("actor"),
                                                   action=bindparam("action"),
                                                   detail=bindparam("detail")),
], ids=["expanding", "callable-default"])
def test_what_the_driver_cannot_be_handed_is_refused_before_it_runs(
        session: Session, statement: Any) -> None:
    prepared = Prepared(statement)
    with pytest.raises(ValueError, match="cannot prepare"):
        prepared.run(session, {"ids": [1], "actor": "cli", "action": "x", "detail": {}})
