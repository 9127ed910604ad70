"""Fewer indexes on events: every stored event paid for five index trees, three of which no query needs.

``ix_events_window_id`` repeats the first column of ``ix_events_window_day``;
the reads by type (a day's punches, ratings and tickets) and by time go
through one ``(type, event_time)`` index instead of one on each.  Measured
with bench/ingest.py (PostgreSQL): each index tree is work on every insert.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_type_time", "events", ["type", "event_time"])
    for name in ("ix_events_type", "ix_events_window_id", "ix_events_event_time"):
        op.drop_index(name, "events")


def downgrade() -> None:
    op.create_index("ix_events_type", "events", ["type"])
    op.create_index("ix_events_window_id", "events", ["window_id"])
    op.create_index("ix_events_event_time", "events", ["event_time"])
    op.drop_index("ix_events_type_time", "events")
