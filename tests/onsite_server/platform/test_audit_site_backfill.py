"""Migration 0023: audit entries that Core INSERTs stored server-wide get their site.

Before 2026-12-06, ``submission.received``, ``crisis.raised``, ``referral.updated`` and the
member assignment entries were written past the listener that fills in a site, so a site's
own admins never saw them. The migration places them by the listener's rule, and touches no
other entry. On SQLite and PostgreSQL, from a database at the previous revision.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from onsite_server.db import Database
from onsite_server.migrate import upgrade
from tests.onsite_server.platform.test_upgrade import _fill

BEFORE = "0022_history_indexes"
AT = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def _entry(actor: str, action: str, subject: str | None,
           site_id: int | None = None) -> dict[str, object]:
    return {"at": AT, "actor": actor, "action": action, "subject": subject, "detail": {},
            "note": None, "site_id": site_id}


def test_core_written_entries_get_their_site(empty_database_url: str) -> None:
    """Each listed kind of entry naming a kiosk lands at its site; the rest stay as they were."""
    database = Database()
    database.configure(empty_database_url)
    try:
        upgrade(database, BEFORE)
        engine = database.engine
        assert engine is not None
        written = _fill(engine)  # one row in every table: site 1, its kiosk, its event...
        kiosk = f"kiosk:{written['kiosk']['public_id']}"
        meta = sa.MetaData()
        meta.reflect(engine, only=["audit_log"])
        audit = meta.tables["audit_log"]
        entries = {
            "received": _entry(kiosk, "submission.received", "member:m-1"),
            "batch": _entry(kiosk, "submission.batch_received", None),
            "crisis": _entry(kiosk, "crisis.raised", None),
            "assigned": _entry(kiosk, "member.assigned", "member:m-1"),
            "other action": _entry(kiosk, "member.viewed", "member:m-1"),
            "no site named": _entry("cli", "referral.updated", "referral:nowhere"),
        }
        ids = {}
        with engine.begin() as conn:
            # Explicit ids: the generated row took id 1 without advancing PostgreSQL's sequence.
            for n, (name, row) in enumerate(entries.items(), start=100):
                conn.execute(audit.insert().values(id=n, **row))
                ids[name] = n
        upgrade(database)
        with engine.connect() as conn:
            sites = {name: conn.execute(sa.select(audit.c.site_id)
                                        .where(audit.c.id == id_)).scalar_one()
                     for name, id_ in ids.items()}
            generated = conn.execute(sa.select(audit.c.site_id, audit.c.action)
                                     .where(audit.c.id == written["audit_log"]["id"])).one()
    finally:
        database.dispose()
    assert sites == {"received": 1, "batch": 1, "crisis": 1, "assigned": 1,
                     "other action": None, "no site named": None}
    assert tuple(generated) == (written["audit_log"]["site_id"], written["audit_log"]["action"])
