"""reading devices: the Bluetooth cuff or scale behind a submission's answers

Revision ID: 0016_reading_devices
Revises: 0014_outbox_waiting_on_central
Create Date: 2026-12-06 19:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016_reading_devices'
down_revision = '0014_outbox_waiting_on_central'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows were all typed: an empty list says so.
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.add_column(sa.Column('devices', sa.JSON(), nullable=False,
                                      server_default=sa.text("'[]'")))
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.alter_column('devices', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('submission', schema=None) as batch_op:
        batch_op.drop_column('devices')
