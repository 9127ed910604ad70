"""Initial schema: devices, windows, events, rejections.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from server.db import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("hall_id", sa.String(64), nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("windows", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("boot", sa.Integer, nullable=True),
        sa.Column("heartbeat_s", sa.Float, nullable=True),
        sa.Column("software", sa.String(64), nullable=True),
        sa.Column("last_seen", UTCDateTime, nullable=True),
    )
    op.create_table(
        "windows",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("hall_id", sa.String(64), nullable=False, index=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("department", sa.String(100), nullable=False),
        sa.Column("camera_device", sa.String(64), nullable=True),
        sa.Column("seat_state", sa.String(16), nullable=True),
        sa.Column("seat_time", UTCDateTime, nullable=True),
        sa.Column("occupant", sa.String(64), nullable=True),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("pause_reason", sa.String(200), nullable=True),
        sa.Column("pause_time", UTCDateTime, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_since", UTCDateTime, nullable=True),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("msg_id", sa.String(36), nullable=False, unique=True),
        sa.Column("hall_id", sa.String(64), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("boot", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("type", sa.String(32), nullable=False, index=True),
        sa.Column("window_id", sa.String(64), nullable=True, index=True),
        sa.Column("event_time", UTCDateTime, nullable=False, index=True),
        sa.Column("sent_time", UTCDateTime, nullable=True),
        sa.Column("received_time", UTCDateTime, nullable=False),
        sa.Column("historical", sa.Boolean, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.UniqueConstraint("device_id", "boot", "seq", name="uq_events_device_boot_seq"),
    )
    op.create_table(
        "rejections",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("received_time", UTCDateTime, nullable=False, index=True),
        sa.Column("topic", sa.String(300), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("excerpt", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("rejections", "events", "windows", "devices"):
        op.drop_table(table)
