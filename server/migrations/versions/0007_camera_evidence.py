"""Window cameras: why a device is offline (its camera lost), and the evidence snapshots it sends.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from server.db import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("reason", sa.String(200), nullable=True))
    with op.batch_alter_table("device_health") as batch:
        batch.add_column(sa.Column("reason", sa.String(200), nullable=True))
    op.create_table(
        "evidence",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("device_id", sa.String(64), nullable=False, index=True),
        sa.Column("window_id", sa.String(64), nullable=False, index=True),
        sa.Column("taken_at", UTCDateTime, nullable=False, index=True),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("cause", sa.String(16), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("evidence")
    with op.batch_alter_table("device_health") as batch:
        batch.drop_column("reason")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("reason")
