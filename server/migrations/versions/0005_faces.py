"""Faces: the staff register, encrypted face templates (and photos, only if a
hall keeps them), and the gallery versions published to the terminals.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from server.db import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(100), nullable=True),
        sa.Column("staff_no", sa.String(32), nullable=True, unique=True),
        sa.Column("pin_hash", sa.String(200), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "face_templates",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("person_id", sa.String(64), sa.ForeignKey("staff.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("quality", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "face_photos",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("person_id", sa.String(64), sa.ForeignKey("staff.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "gallery_versions",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("people", sa.Integer, nullable=False),
        sa.Column("templates", sa.Integer, nullable=False),
        sa.Column("calibration", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    for table in ("gallery_versions", "face_photos", "face_templates", "staff"):
        op.drop_table(table)
