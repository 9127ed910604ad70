"""Ratings (好差评), their transaction keys, queue tickets, bad-rating work orders and their steps.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from server.db import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("msg_id", sa.String(36), nullable=True, unique=True),
        sa.Column("origin", sa.String(8), nullable=False),
        sa.Column("window_id", sa.String(64), nullable=False, index=True),
        sa.Column("clerk_id", sa.String(64), nullable=True, index=True),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("ticket", sa.String(64), nullable=True),
        sa.Column("cases", sa.JSON, nullable=False),
        sa.Column("day", sa.Date, nullable=False, index=True),
        sa.Column("rated_at", UTCDateTime, nullable=False, index=True),
        sa.Column("device_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("boot", sa.Integer, nullable=False, server_default="0"),
        sa.Column("seq", sa.Integer, nullable=False, server_default="0"),
        sa.Column("historical", sa.Boolean, nullable=False),
        sa.Column("stored_at", UTCDateTime, nullable=False),
        sa.Column("duplicate_of", sa.Integer, sa.ForeignKey("ratings.id"), nullable=True, index=True),
        sa.Column("signals", sa.JSON, nullable=False),
    )
    op.create_table(
        "rating_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(160), nullable=False, index=True),
        sa.Column("rating_id", sa.Integer, sa.ForeignKey("ratings.id"), nullable=False, index=True),
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("day", sa.Date, nullable=False, index=True),
        sa.Column("ticket", sa.String(64), nullable=False),
        sa.Column("window_id", sa.String(64), nullable=False, index=True),
        sa.Column("clerk_id", sa.String(64), nullable=True),
        sa.Column("cases", sa.JSON, nullable=False),
        sa.Column("called_at", UTCDateTime, nullable=True),
        sa.Column("finished_at", UTCDateTime, nullable=True, index=True),
        sa.Column("settled", sa.Boolean, nullable=False, server_default=sa.false(), index=True),
        sa.UniqueConstraint("day", "ticket", name="uq_tickets_day_ticket"),
    )
    op.create_table(
        "work_orders",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rating_id", sa.Integer, sa.ForeignKey("ratings.id"), nullable=False, unique=True),
        sa.Column("window_id", sa.String(64), nullable=False, index=True),
        sa.Column("clerk_id", sa.String(64), nullable=True),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("rated_at", UTCDateTime, nullable=False, index=True),
        sa.Column("callback_due", sa.Date, nullable=True),
        sa.Column("rectify_due", sa.Date, nullable=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("final_at", UTCDateTime, nullable=True, index=True),
    )
    op.create_table(
        "work_order_steps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.Integer, sa.ForeignKey("work_orders.id"), nullable=False, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("work_order_steps")
    op.drop_table("work_orders")
    op.drop_table("tickets")
    op.drop_table("rating_keys")
    op.drop_table("ratings")
