"""Patrols: rounds, findings and every transition of a finding.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from server.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patrol_rounds",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("hall_id", sa.String(64), nullable=False, index=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(20), nullable=True),
        sa.Column("day", sa.Date, nullable=False, index=True),
        sa.Column("scheduled_at", UTCDateTime, nullable=True),
        sa.Column("period_start", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False, index=True),
        sa.Column("started_by", sa.String(64), nullable=False),
        sa.Column("ended_at", UTCDateTime, nullable=True),
        sa.Column("ended_by", sa.String(64), nullable=True),
        sa.Column("window_states", sa.JSON, nullable=False),
        sa.UniqueConstraint("hall_id", "day", "name", name="uq_patrol_rounds_scheduled"),
    )
    op.create_table(
        "patrol_findings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("hall_id", sa.String(64), nullable=False, index=True),
        sa.Column("round_id", sa.Integer, sa.ForeignKey("patrol_rounds.id"), nullable=True, index=True),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id"), nullable=True, unique=True),
        sa.Column("window_id", sa.String(64), nullable=False, index=True),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("origin", sa.String(8), nullable=False),
        sa.Column("observed_at", UTCDateTime, nullable=False),
        sa.Column("observed_until", UTCDateTime, nullable=True),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("facts", sa.JSON, nullable=False),
        sa.Column("rule", sa.String(64), nullable=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("evidence", sa.String(128), nullable=True),
        sa.Column("alert_type", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("confirmed_at", UTCDateTime, nullable=True, index=True),
        sa.Column("resolved_at", UTCDateTime, nullable=True, index=True),
    )
    op.create_table(
        "patrol_finding_steps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("finding_id", sa.Integer, sa.ForeignKey("patrol_findings.id"), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("patrol_finding_steps", "patrol_findings", "patrol_rounds"):
        op.drop_table(table)
