"""Seat heartbeats that only repeat the known seat fact are flagged, and a
window's day is found through one index.

A camera sends a heartbeat every second; the supervision core needs one only
when it changes what is known.  Flagging the others at ingest lets replay and
the live adapter read a window's day without them, while the rows stay (every
(device, boot, seq) is kept: nothing lost).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("repeat", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_index("ix_events_window_day", "events", ["window_id", "repeat", "event_time"])


def downgrade() -> None:
    op.drop_index("ix_events_window_day", "events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("repeat")
