"""audit site: each audit entry names the site it belongs to, so admins see only their own

Revision ID: 0011_audit_site
Revises: 0010_user_sessions
Create Date: 2026-12-06 15:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011_audit_site'
down_revision = '0010_user_sessions'
branch_labels = None
depends_on = None

# The references services/scope.py can place at a site, as audit entries write them.
KINDS = ('user', 'crisis_alert', 'alert', 'kiosk', 'site', 'event', 'slot', 'booking',
         'referral', 'outbox')


def upgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('site_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_audit_log_site_id'), ['site_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_audit_log_site_id_site'), 'site',
                                    ['site_id'], ['id'])
    _backfill()


def _backfill() -> None:
    # Entries written before this revision get their site by the same rule as new ones
    # (subject, then the booking's event, then actor); those naming none stay server-wide.
    from onsite_server.services.scope import site_of_reference

    audit = sa.table('audit_log', sa.column('site_id', sa.Integer),
                     sa.column('subject', sa.String), sa.column('actor', sa.String),
                     sa.column('detail', sa.JSON))

    def site_of(column: sa.ColumnElement[str]) -> sa.ColumnElement[int]:
        return sa.case(*[(column.like(f'{kind}:%'),
                          site_of_reference(kind, sa.func.substr(column, len(kind) + 2)))
                         for kind in KINDS], else_=sa.null())

    event_site = site_of_reference('event', audit.c.detail['event'].as_string())
    op.get_bind().execute(audit.update().where(audit.c.site_id.is_(None)).values(
        site_id=sa.func.coalesce(site_of(audit.c.subject), event_site, site_of(audit.c.actor))))


def downgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_audit_log_site_id_site'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_audit_log_site_id'))
        batch_op.drop_column('site_id')
