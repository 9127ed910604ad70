"""Every row carries its hall: one database serves a district of halls.

Events, devices, windows and patrol rows had their hall already.  Alerts,
ratings (and their transaction keys), tickets, work orders, leave, make-up
requests, evidence, rejections and the audit log get ``hall_id``; a user gets
a scope (``hall_id`` NULL: the whole district).  An existing single-hall
database upgrades in place: a row with a window takes its window's hall, the
rest the one hall the database holds.  Queue tickets are numbered per hall
(A001 in every hall), so a ticket is unique per (hall, day, ticket).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BY_WINDOW = ("alerts", "ratings", "tickets", "work_orders", "leaves", "evidence")
BY_HALL = ("makeup_requests", "rejections", "audit_log")


def upgrade() -> None:
    for table in (*BY_WINDOW, *BY_HALL, "rating_keys"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("hall_id", sa.String(64), nullable=False, server_default=""))
            batch.create_index(f"ix_{table}_hall_id", ["hall_id"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("hall_id", sa.String(64), nullable=True))
    the_hall = "(SELECT MIN(hall_id) FROM windows)"
    for table in BY_WINDOW:
        op.execute(f"UPDATE {table} SET hall_id = COALESCE((SELECT windows.hall_id FROM windows WHERE windows.id = {table}.window_id), {the_hall}, '')")
    for table in BY_HALL:
        op.execute(f"UPDATE {table} SET hall_id = COALESCE({the_hall}, '')")
    op.execute("UPDATE rating_keys SET hall_id = COALESCE((SELECT ratings.hall_id FROM ratings WHERE ratings.id = rating_keys.rating_id), '')")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_constraint("uq_tickets_day_ticket", type_="unique")
        batch.create_unique_constraint("uq_tickets_hall_day_ticket", ["hall_id", "day", "ticket"])


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_constraint("uq_tickets_hall_day_ticket", type_="unique")
        batch.create_unique_constraint("uq_tickets_day_ticket", ["day", "ticket"])
    with op.batch_alter_table("users") as batch:
        batch.drop_column("hall_id")
    for table in (*BY_WINDOW, *BY_HALL, "rating_keys"):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_hall_id")
            batch.drop_column("hall_id")
