"""audit site, again: entries written by Core INSERTs before they carried their site

Revision ID: 0023_audit_site_backfill
Revises: 0022_history_indexes
Create Date: 2026-12-07 01:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0023_audit_site_backfill'
down_revision = '0022_history_indexes'
branch_labels = None
depends_on = None

# Until 2026-12-06 these were written by Core INSERTs, which pass by the ORM listener that
# fills in an entry's site (models/site_of.py), so they were stored server-wide and a site's
# own admins never saw them. Newer rows carry their site as they are written.
ACTIONS = ('submission.received', 'submission.batch_received', 'crisis.raised',
           'referral.updated', 'member.assigned', 'member.reassigned')
# The references models/site_of.py can place at a site (as in 0011_audit_site).
KINDS = ('user', 'crisis_alert', 'alert', 'kiosk', 'site', 'event', 'slot', 'booking',
         'referral', 'outbox')


def upgrade() -> None:
    # The same rule as the listener's (subject, then the entry's event, then the actor), so
    # an old entry lands where a new one would; one naming no site stays server-wide.
    from onsite_server.models.site_of import site_of_reference

    audit = sa.table('audit_log', sa.column('site_id', sa.Integer),
                     sa.column('subject', sa.String), sa.column('actor', sa.String),
                     sa.column('action', sa.String), sa.column('detail', sa.JSON))

    def site_of(column: sa.ColumnElement[str]) -> sa.ColumnElement[int]:
        return sa.case(*[(column.like(f'{kind}:%'),
                          site_of_reference(kind, sa.func.substr(column, len(kind) + 2)))
                         for kind in KINDS], else_=sa.null())

    event_site = site_of_reference('event', audit.c.detail['event'].as_string())
    op.get_bind().execute(audit.update().where(
        audit.c.site_id.is_(None), audit.c.action.in_(ACTIONS),
    ).values(site_id=sa.func.coalesce(site_of(audit.c.subject), event_site,
                                      site_of(audit.c.actor))))


def downgrade() -> None:
    # Nothing to undo: the column stays, and a filled-in site is what the rule gives anyway.
    pass
