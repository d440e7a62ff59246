"""reports: tallies also count distinct people, the unit employer reports publish

Revision ID: 0009_reports
Revises: 0007_dashboard_auth (0005 before the dashboard scaffolding was merged)
Create Date: 2026-12-01 06:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009_reports'
down_revision = '0007_dashboard_auth'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Cells tallied before this revision have no person count; reports show them as 0 people
    # rather than guess (answers already deleted cannot be recounted).
    with op.batch_alter_table('submission_tally', schema=None) as batch_op:
        batch_op.add_column(sa.Column('members', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('submission_tally', schema=None) as batch_op:
        batch_op.drop_column('members')
