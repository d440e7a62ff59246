"""unmatched claims: offline sign-ins that matched no member, with their contact fallback

Revision ID: 0013_unmatched_claims
Revises: 0012_event_description_es
Create Date: 2026-12-06 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import onsite_server.models.base

revision = '0013_unmatched_claims'
down_revision = '0012_event_description_es'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'unmatched_claim',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('public_id', sa.String(length=36), nullable=False),
        sa.Column('site_id', sa.Integer(), nullable=False),
        sa.Column('kiosk_id', sa.Integer(), nullable=False),
        sa.Column('typed_id', sa.String(length=64), nullable=False),
        sa.Column('birth_date', sa.Date(), nullable=False),
        sa.Column('phone', sa.String(length=32), nullable=True),
        sa.Column('email', sa.String(length=254), nullable=True),
        sa.Column('first_seen_at', onsite_server.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', onsite_server.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column('resolved_at', onsite_server.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('resolved_by', sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(['kiosk_id'], ['kiosk.id'], name=op.f('fk_unmatched_claim_kiosk_id_kiosk')),
        sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_unmatched_claim_site_id_site')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_unmatched_claim')),
        sa.UniqueConstraint('public_id', name=op.f('uq_unmatched_claim_public_id')),
    )
    with op.batch_alter_table('unmatched_claim', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_unmatched_claim_site_id'), ['site_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('unmatched_claim', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_unmatched_claim_site_id'))
    op.drop_table('unmatched_claim')
