"""indexes so that nothing slows down as history grows (issue 20)

Revision ID: 0022_history_indexes
Revises: 0016_reading_devices
Create Date: 2026-12-06 19:20:00
"""

from __future__ import annotations

from alembic import op

revision = '0022_history_indexes'
down_revision = '0016_reading_devices'
branch_labels = None
depends_on = None

# Each one turns a read of a table's whole history into a range (bench/history.py's plans).
INDEXES = (
    ('ix_submission_kiosk_taken', 'submission', ['kiosk_id', 'taken_at']),
    ('ix_submission_received', 'submission', ['received_at']),
    ('ix_outbox_sent', 'outbox_message', ['status', 'sent_at']),
    ('ix_audit_log_site_at', 'audit_log', ['site_id', 'at', 'id']),
    ('ix_member_advocate_id', 'member', ['advocate_id']),
    ('ix_user_session_ended_at', 'user_session', ['ended_at']),
    ('ix_booking_status', 'booking', ['status']),
    ('ix_booking_checked_in', 'booking', ['checked_in_at']),
    ('ix_idempotent_request_created_at', 'idempotent_request', ['created_at']),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
