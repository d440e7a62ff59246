"""audit log: drop the site index that the (site, time, id) index already covers

Revision ID: 0024_audit_site_index
Revises: 0023_audit_site_backfill
Create Date: 2026-12-07 16:05:00
"""

from __future__ import annotations

from alembic import op

revision = '0024_audit_site_index'
down_revision = '0023_audit_site_backfill'
branch_labels = None
depends_on = None

# ix_audit_log_site_at (0022) starts with site_id, so it answers every lookup by site that
# ix_audit_log_site_id (0011) answered, the foreign key's checks when a site is deleted
# included. The narrower one only cost every audited write one more index to update.


def upgrade() -> None:
    with op.batch_alter_table('audit_log') as batch_op:
        batch_op.drop_index('ix_audit_log_site_id')


def downgrade() -> None:
    with op.batch_alter_table('audit_log') as batch_op:
        batch_op.create_index('ix_audit_log_site_id', ['site_id'], unique=False)
