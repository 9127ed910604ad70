"""Supervision: device health history, leave register, alerts.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from server.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_health",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.String(64), nullable=False, index=True),
        sa.Column("time", UTCDateTime, nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False),
    )
    op.create_table(
        "leaves",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False, index=True),
        sa.Column("window_id", sa.String(64), nullable=False, index=True),
        sa.Column("start", UTCDateTime, nullable=False),
        sa.Column("end", UTCDateTime, nullable=False),
        sa.Column("note", sa.String(200), nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("window_id", sa.String(64), nullable=False, index=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("condition_since", UTCDateTime, nullable=False),
        sa.Column("raised_at", UTCDateTime, nullable=False, index=True),
        sa.Column("cleared_at", UTCDateTime, nullable=True),
        sa.Column("acknowledged_at", UTCDateTime, nullable=True),
        sa.Column("acknowledged_by", sa.String(64), nullable=True),
        sa.Column("live", sa.Boolean, nullable=False),
        sa.Column("rule", sa.String(64), nullable=True),
        sa.Column("threshold_s", sa.Integer, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("facts", sa.JSON, nullable=False),
        sa.Column("evidence", sa.String(128), nullable=True),
        sa.UniqueConstraint("window_id", "type", "raised_at", name="uq_alerts_episode"),
    )


def downgrade() -> None:
    for table in ("alerts", "leaves", "device_health"):
        op.drop_table(table)
