"""An existing single-hall database upgrades in place to the district schema: every row belongs to its hall.

The database is made as today's main makes it (migrations up to 0011, the
revision before halls were put on every row), filled with one of each row
through plain SQL as that schema stores them, then upgraded by the server's
own :func:`migrate`.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from server.db import MIGRATIONS, make_engine, migrate

AT = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc).isoformat()


def _upgrade_to(engine, revision: str) -> None:  # type: ignore[no-untyped-def]
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _fill_as_main_did(engine) -> None:  # type: ignore[no-untyped-def]
    rows = {
        "windows": {"id": "w01", "hall_id": "demo", "name": "1号窗口", "department": "市场监管局", "paused": False, "state": "staffed"},
        "alerts": {"id": 1, "window_id": "w01", "type": "vacant", "severity": "high", "condition_since": AT, "raised_at": AT, "live": True, "threshold_s": 300, "source": "003", "facts": "{}"},
        "ratings": {"id": 1, "msg_id": "m1", "origin": "device", "window_id": "w01", "level": 1, "ticket": "A001", "cases": "[]", "day": date(2026, 3, 2), "rated_at": AT, "historical": False, "stored_at": AT, "signals": "[]"},
        "rating_keys": {"id": 1, "key": "ticket:2026-03-02:A001", "rating_id": 1},
        "tickets": {"day": date(2026, 3, 2), "ticket": "A001", "window_id": "w01", "cases": "[]", "settled": False},
        "work_orders": {"id": 1, "rating_id": 1, "window_id": "w01", "level": 1, "rated_at": AT, "status": "open"},
        "leaves": {"id": 1, "kind": "leave", "person_id": "c01", "window_id": "w01", "start": AT, "end": AT, "note": ""},
        "makeup_requests": {"id": 1, "person_id": "c01", "claimed_at": AT, "reason": "漏签", "filed_at": AT, "deadline": date(2026, 3, 5), "state": "requested"},
        "evidence": {"id": "ev-1", "device_id": "cam-01", "window_id": "w01", "taken_at": AT, "received_at": AT, "cause": "vacancy", "size": 1, "sha256": "0" * 64},
        "rejections": {"id": 1, "received_time": AT, "topic": "hw/v1/demo/dev/x/evt/seat", "reason": "unknown device", "excerpt": ""},
        "audit_log": {"id": 1, "at": AT, "actor": "office", "role": "office", "action": "POST /api/leaves", "target": "", "result": "200"},
        "users": {"id": 1, "username": "office", "role": "office", "password_hash": "x", "disabled": False, "created_at": AT},
    }
    with engine.begin() as connection:
        for table, row in rows.items():
            columns = ", ".join(f'"{k}"' for k in row)  # quoted: "end" is a keyword in PostgreSQL
            connection.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(':' + k for k in row)})"), row)


def test_a_single_hall_database_made_by_the_previous_schema_upgrades_in_place_with_every_row_in_its_hall(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        _upgrade_to(engine, "0011")
        _fill_as_main_did(engine)
        migrate(engine)
        with engine.connect() as connection:
            for table in ("alerts", "ratings", "rating_keys", "tickets", "work_orders", "leaves", "makeup_requests", "evidence", "rejections", "audit_log"):
                assert connection.execute(text(f"SELECT hall_id FROM {table}")).scalars().all() == ["demo"], table
            assert connection.execute(text("SELECT hall_id FROM users")).scalars().all() == [None], "an existing user keeps the whole (one-hall) district"
            assert connection.execute(text("SELECT ticket FROM tickets")).scalars().all() == ["A001"]
        with engine.begin() as connection:  # ticket numbers repeat in every hall: unique per hall and day only
            connection.execute(text("INSERT INTO tickets (hall_id, day, ticket, window_id, cases, settled) VALUES ('town', :d, 'A001', 'tw01', '[]', false)"), {"d": date(2026, 3, 2)})
        try:
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO tickets (hall_id, day, ticket, window_id, cases, settled) VALUES ('demo', :d, 'A001', 'w01', '[]', false)"), {"d": date(2026, 3, 2)})
            raise AssertionError("the same hall's ticket of the same day was stored twice")
        except IntegrityError:
            pass
    finally:
        engine.dispose()
