"""dashboard auth: second factor, recovery codes, session epochs, one-time links, crisis ack

Revision ID: 0007_dashboard_auth
Revises: 0005
Create Date: 2026-12-01 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from onsite_server.models.base import UTCDateTime

revision = '0007_dashboard_auth'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('user_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('expires_at', UTCDateTime(), nullable=False),
    sa.Column('used_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_user_token_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_user_token_token_hash'))
    )
    with op.batch_alter_table('user_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_token_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_secret', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
        # Existing rows get no codes and epoch 0; the models set both for new rows.
        batch_op.add_column(sa.Column('recovery_codes', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('session_epoch', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('last_login_at', UTCDateTime(), nullable=True))

    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.add_column(sa.Column('crisis_acknowledged_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('crisis_acknowledged_by', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('crisis_note', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.drop_column('crisis_note')
        batch_op.drop_column('crisis_acknowledged_by')
        batch_op.drop_column('crisis_acknowledged_at')

    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('last_login_at')
        batch_op.drop_column('session_epoch')
        batch_op.drop_column('recovery_codes')
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_secret')

    with op.batch_alter_table('user_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_token_user_id'))

    op.drop_table('user_token')
