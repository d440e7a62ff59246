"""outbox waiting_on_central: a row whose last try failed for central's sake, not its own

Revision ID: 0014_outbox_waiting_on_central
Revises: 0013_unmatched_claims
Create Date: 2026-12-06 18:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014_outbox_waiting_on_central'
down_revision = '0013_unmatched_claims'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('waiting_on_central', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_column('waiting_on_central')
