"""A durable SQLite outbox: the reason no punch or rating is ever lost.

The broker keeps little across a restart and paho keeps nothing, so the
device itself must hold every event until the broker has acknowledged it
(QoS 1 PUBACK).  Each event is committed here *before* it is published and
removed only when acknowledged.  The outbox also owns the boot counter and
the per-boot sequence numbers, so a restarted agent resumes with a new boot
and the server can tell a replay from a fresh run.

The outbox is bounded.  When full, the oldest heartbeats are dropped first,
then the oldest state changes; punches, ratings and acknowledgements are
never dropped (the outbox grows past its bound rather than lose one).  Every
drop is counted and reported in the device heartbeat.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from broker.protocol import BODY_TYPES, DROP_CLASS, NEVER_DROPPED, Body, Event, decode_event, make_event

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS boots (boot INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    drop_class INTEGER NOT NULL,
    link_epoch TEXT,
    event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_drop ON outbox (drop_class, id);
"""
_DROP_COUNTERS = {0: "dropped_heartbeats", 1: "dropped_states"}


@dataclass(frozen=True)
class Pending:
    """One stored event waiting for its broker acknowledgement."""

    row_id: int
    event: Event
    link_epoch: str | None


@dataclass(frozen=True)
class OutboxCounts:
    pending: int
    dropped_heartbeats: int
    dropped_states: int


class Outbox:
    """The device's store-and-forward queue (one SQLite file per device)."""

    def __init__(self, path: Path, *, hall_id: str, device_id: str, max_events: int) -> None:
        self._hall_id = hall_id
        self._device_id = device_id
        self._max_events = max_events
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed punch survives power loss, not only a crash.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._boot = self._start_boot()

    @property
    def boot(self) -> int:
        """This agent run's boot counter (1 on the first start ever)."""
        return self._boot

    def _meta_int(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _set_meta(self, key: str, value: object) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, str(value)),
        )

    def _start_boot(self) -> int:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            boot = self._meta_int("boot") + 1
            self._set_meta("boot", boot)
            self._db.execute("INSERT INTO boots (boot, last_seq) VALUES (?, 0)", (boot,))
            self._db.execute("COMMIT")
        return boot

    def add(self, body: Body, event_time: datetime, link_epoch: str | None) -> Event | None:
        """Assign the next sequence number and commit the event durably.

        ``link_epoch`` names the live link (connected, server online) the
        event was created under, or None when the link was down; an event
        sent under another epoch is marked historical.  Returns None when
        the outbox is full and the new event was the one to drop (counted).
        """
        event_type = BODY_TYPES[type(body)]
        drop_class = DROP_CLASS[event_type]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if not self._make_room(drop_class):
                    self._db.execute("COMMIT")
                    return None
                seq = self._db.execute(
                    "UPDATE boots SET last_seq = last_seq + 1 WHERE boot = ? RETURNING last_seq",
                    (self._boot,),
                ).fetchone()[0]
                event = make_event(
                    hall_id=self._hall_id,
                    device_id=self._device_id,
                    boot=self._boot,
                    seq=seq,
                    event_time=event_time,
                    body=body,
                    msg_id=uuid.uuid4(),
                )
                self._db.execute(
                    "INSERT INTO outbox (drop_class, link_epoch, event) VALUES (?, ?, ?)",
                    (drop_class, link_epoch, event.model_dump_json()),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return event

    def _make_room(self, incoming_class: int) -> bool:
        """Make room for one more event; False when the newcomer must go.

        Oldest first, least important class first, never an event more
        important than the newcomer; caller holds the lock and a transaction.
        """
        (count,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        if count < self._max_events:
            return True
        for drop_class in (0, 1):
            if drop_class > incoming_class:
                break
            row = self._db.execute(
                "SELECT id FROM outbox WHERE drop_class = ? ORDER BY id LIMIT 1", (drop_class,)
            ).fetchone()
            if row:
                self._db.execute("DELETE FROM outbox WHERE id = ?", row)
                self._count_drop(drop_class)
                return True
        if incoming_class == NEVER_DROPPED:
            return True  # grow past the bound: a punch or rating is never lost
        self._count_drop(incoming_class)
        return False

    def _count_drop(self, drop_class: int) -> None:
        counter = _DROP_COUNTERS[drop_class]
        self._set_meta(counter, self._meta_int(counter) + 1)

    def pending(self, after_row: int, limit: int) -> list[Pending]:
        """Events not yet acknowledged, oldest first, after a row id."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, link_epoch, event FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                (after_row, limit),
            ).fetchall()
        return [Pending(row_id, decode_event(raw.encode()), epoch) for row_id, epoch, raw in rows]

    def acknowledge(self, row_ids: list[int]) -> None:
        """The broker has these events: forget them (one transaction)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(r,) for r in row_ids])
            self._db.execute("COMMIT")

    def counts(self) -> OutboxCounts:
        with self._lock:
            (pending,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
            return OutboxCounts(
                pending=pending,
                dropped_heartbeats=self._meta_int("dropped_heartbeats"),
                dropped_states=self._meta_int("dropped_states"),
            )

    def boots(self) -> dict[int, int]:
        """Every boot of this device and the last sequence number it used."""
        with self._lock:
            return dict(self._db.execute("SELECT boot, last_seq FROM boots").fetchall())

    def saved(self, key: str) -> object | None:
        """A JSON value the agent keeps across restarts (e.g. last good config)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (f"saved:{key}",)).fetchone()
        return json.loads(row[0]) if row else None

    def save(self, key: str, value: object) -> None:
        with self._lock:
            self._set_meta(f"saved:{key}", json.dumps(value))

    def close(self) -> None:
        with self._lock:
            self._db.close()
