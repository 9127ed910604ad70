"""Make-up punch requests (补卡): who, the claimed time, why, and the decision.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from server.db import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "makeup_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("person_id", sa.String(64), nullable=False, index=True),
        sa.Column("claimed_at", UTCDateTime, nullable=False, index=True),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("filed_at", UTCDateTime, nullable=False),
        sa.Column("deadline", sa.Date, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=False, server_default=""),
        sa.Column("decided_at", UTCDateTime, nullable=True),
        sa.Column("note", sa.String(200), nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.drop_table("makeup_requests")
