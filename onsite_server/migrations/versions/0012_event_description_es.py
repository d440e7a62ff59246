"""events: an optional Spanish description beside the Spanish title

Revision ID: 0012_event_description_es
Revises: 0011_audit_site
Create Date: 2026-12-06 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012_event_description_es'
down_revision = '0011_audit_site'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Events made before this revision have no Spanish description: the kiosk shows the
    # English one to Spanish readers, as it does for a missing Spanish title.
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('description_es', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_column('description_es')
