"""The event store and the hall's current state, in one transaction per batch.

Exactly-once storage rests on two unique keys, ``msg_id`` and
``(device_id, boot, seq)``, and ``INSERT … ON CONFLICT DO NOTHING``: a
redelivered or replayed message is counted as a duplicate and nothing else
happens, whichever of the two keys it repeats.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from broker.protocol import TOPIC_ROOT, DeviceStatus, Event
from broker.timeutil import Clock, shanghai_now
from server.db import DeviceHealthRow, DeviceRow, EventRow, RejectionRow, WindowRow
from server.config.hall import HallConfig
from server.devices.register import put_device
from server.ingest.batch import Changes, Inbound
from server.ingest.validation import KnownDevice, Rejection
from server.ingest.window_facts import WindowFacts, apply_event

EXCERPT_BYTES = 300


SeatFact = tuple[bool, bool]
"""(occupied, live) — all a seat heartbeat can say; it names nobody."""


class SeatFacts:
    """Which seat heartbeats repeat their window's last stored seat fact.

    A camera sends a heartbeat every second, 31,000 a working day per window;
    the supervision core learns from one only when it changes (occupied, live)
    — e.g. it turns a replayed fact into a live one — since a heartbeat keeps
    the seated person.  Deciding this once, at ingest and in arrival order (the
    order the live supervisor sees), lets replay and reloads read a window's
    day without the repeats instead of reducing millions of rows in Python.
    The flag is the only state; losing it (a restart) only keeps one more row.
    """

    def __init__(self) -> None:
        self._last: dict[str, SeatFact] = {}

    def flags(self, events: list[Event]) -> tuple[list[bool], dict[str, SeatFact]]:
        """Each event's repeat flag, and the facts after them (not yet taken)."""
        last = dict(self._last)
        flags = []
        for event in events:
            window_id = getattr(event.body, "window_id", None)
            if event.type not in ("seat", "seat_heartbeat") or window_id is None:
                flags.append(False)
                continue
            fact = (event.body.state == "occupied", not event.historical)
            flags.append(event.type == "seat_heartbeat" and last.get(window_id) == fact)
            last[window_id] = fact
        return flags, last

    def take(self, last: dict[str, SeatFact]) -> None:
        self._last = last


def _facts(row: WindowRow) -> WindowFacts:
    return WindowFacts(
        seat_state=row.seat_state,
        seat_time=row.seat_time,
        occupant=row.occupant,
        paused=row.paused,
        pause_reason=row.pause_reason,
        pause_time=row.pause_time,
    )


class Store:
    """All database work of the server; one instance per process."""

    def __init__(self, engine: Engine, stale_factor: float = 3.0, clock: Clock = shanghai_now) -> None:
        self.engine = engine
        self.stale_factor = stale_factor
        self.clock = clock
        """Hall time, for the device-health history the rules replay (the
        simulator's clock in the demo); staleness itself uses the wall clock."""
        dialect = engine.dialect.name
        self._insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect]
        self._seat_facts = SeatFacts()

    # --------------------------------------------------------- registry

    def seed(self, hall: HallConfig) -> None:
        """Make the hall file's windows and devices known (keeps their live state)."""
        with Session(self.engine) as session, session.begin():
            for spec in hall.windows:
                row = session.get(WindowRow, spec.id) or WindowRow(id=spec.id, paused=False, state="unknown")
                row.hall_id, row.name, row.department = hall.hall.id, spec.name, spec.department
                row.camera_device = hall.camera_of(spec.id)
                session.add(row)
            for spec in hall.devices:
                put_device(session, hall.hall.id, spec.id, spec.kind, spec.windows)

    def device_statuses(self) -> dict[str, str]:
        """Every device's health, for the windows' camera status."""
        with Session(self.engine) as session:
            return {device_id: status for device_id, status in session.execute(select(DeviceRow.id, DeviceRow.status))}

    def registry(self) -> dict[str, KnownDevice]:
        with Session(self.engine) as session:
            return {
                row.id: KnownDevice(row.hall_id, row.kind, frozenset(row.windows))
                for row in session.scalars(select(DeviceRow))
            }

    # ----------------------------------------------------------- ingest

    def ingest(self, batch: list[Inbound]) -> Changes:
        """Store one batch atomically: rejections, new events, device and window state."""
        changes = Changes()
        with Session(self.engine, expire_on_commit=False) as session, session.begin(), session.no_autoflush:
            # The batch's devices and windows, loaded once (not one query per event).
            checked_items = [item.checked for item in batch if not isinstance(item.checked, Rejection)]
            device_ids = {c.device_id for c in checked_items}
            window_ids = {w for c in checked_items if (w := getattr(getattr(c, "body", None), "window_id", None))}
            devices = {r.id: r for r in session.scalars(select(DeviceRow).where(DeviceRow.id.in_(device_ids)))}
            windows = {r.id: r for r in session.scalars(select(WindowRow).where(WindowRow.id.in_(window_ids)))}
            events: list[tuple[Event, datetime]] = []
            seen: set[Any] = set()
            for item in batch:
                checked = item.checked
                if isinstance(checked, Rejection):
                    row = RejectionRow(
                        hall_id=_topic_hall(item.topic),
                        received_time=item.received,
                        topic=item.topic[:300],
                        device_id=checked.device_id[:64] if checked.device_id else None,
                        reason=checked.reason[:500].replace("\x00", "\ufffd"),
                        excerpt=item.payload[:EXCERPT_BYTES].decode("utf-8", "replace").replace("\x00", "\ufffd"),
                    )
                    session.add(row)
                    changes.rejections.append(row)
                elif isinstance(checked, DeviceStatus):
                    self._apply_status(session, devices.get(checked.device_id), checked, item.received, changes)
                else:
                    keys = (checked.msg_id, (checked.device_id, checked.boot, checked.seq))
                    if keys[0] in seen or keys[1] in seen:
                        changes.duplicates += 1
                        continue
                    seen.update(keys)
                    events.append((checked, item.received))
            stored = self._insert_events(session, events, changes.repeats)
            changes.duplicates += len(events) - len(stored)
            for event, received in events:
                if str(event.msg_id) in stored:
                    changes.events.append(event)
                    self._apply_event(session, devices.get(event.device_id), windows, event, received, changes)
            self._touch_camera_windows(session, changes)
        return changes

    def _insert_events(self, session: Session, events: list[tuple[Event, datetime]], repeats: set[str]) -> set[str]:
        if not events:
            return set()
        flags, facts = self._seat_facts.flags([e for e, _ in events])
        rows = [
            {
                "msg_id": str(e.msg_id),
                "hall_id": e.hall_id,
                "device_id": e.device_id,
                "boot": e.boot,
                "seq": e.seq,
                "type": e.type,
                "window_id": getattr(e.body, "window_id", None),
                "event_time": e.event_time,
                "sent_time": e.sent_time,
                "received_time": received,
                "historical": e.historical,
                "body": e.body.model_dump(mode="json"),
                "repeat": flag,
            }
            for (e, received), flag in zip(events, flags, strict=True)
        ]
        stored = self._insert_new(session, rows)
        if len(stored) < len(events):
            # Some were stored before (a redelivery): the flags must follow only what was stored.
            first = {row["msg_id"]: row["repeat"] for row in rows}
            kept = [e for e, _ in events if str(e.msg_id) in stored]
            again, facts = self._seat_facts.flags(kept)
            for event, flag in zip(kept, again, strict=True):
                if flag != first[str(event.msg_id)]:
                    session.execute(update(EventRow).where(EventRow.msg_id == str(event.msg_id)).values(repeat=flag))
        else:
            kept, again = [e for e, _ in events], flags
        self._seat_facts.take(facts)
        repeats.update(str(e.msg_id) for e, flag in zip(kept, again, strict=True) if flag)
        return stored

    def _insert_new(self, session: Session, rows: list[dict[str, Any]]) -> set[str]:
        """Insert the rows not stored yet; the msg_ids stored now.

        A plain executemany (one prepared single-row INSERT) instead of an
        ``INSERT … RETURNING``: returning rows makes SQLAlchemy build one
        multi-row statement per batch and splice the results back, which
        cost ~40 % more per event on SQLite and ~2.4× on PostgreSQL
        (bench/ingest.py).  Which rows are new is asked first (a redelivery
        repeats its msg_id); should the insert still skip one (the same
        device, boot and seq under another msg_id, or a writer elsewhere),
        the table says which of ours are in.
        """
        table = EventRow.__table__
        wanted = [row["msg_id"] for row in rows]
        known = set(session.scalars(select(EventRow.msg_id).where(EventRow.msg_id.in_(wanted))))
        fresh = [row for row in rows if row["msg_id"] not in known]
        if not fresh:
            return set()
        result = session.execute(self._insert(table).on_conflict_do_nothing(), fresh, execution_options={"preserve_rowcount": True})
        ids = {row["msg_id"] for row in fresh}
        if result.rowcount == len(fresh):
            return ids
        return set(session.scalars(select(EventRow.msg_id).where(EventRow.msg_id.in_(ids))))

    def _apply_status(self, session: Session, row: DeviceRow | None, status: DeviceStatus, received: datetime, changes: Changes) -> None:
        if row is None or (row.boot is not None and status.boot < row.boot):
            return  # a late will of an earlier run must not mark a live device offline
        self._set_status(session, row, status.state, changes, status.reason if status.state == "offline" else None)
        row.boot = status.boot
        row.heartbeat_s = status.heartbeat_s
        row.software = status.software
        row.last_seen = received

    def _set_status(self, session: Session, row: DeviceRow, status: str, changes: Changes, reason: str | None = None) -> None:
        """Change a device's health (and why it is offline) and keep the change in its history."""
        if row.status != status or row.reason != reason:
            session.add(DeviceHealthRow(device_id=row.id, time=self.clock(), status=status, reason=reason))
        row.status, row.reason = status, reason
        changes.devices[row.id] = row

    def _apply_event(
        self, session: Session, device: DeviceRow | None, windows: dict[str, WindowRow], event: Event, received: datetime, changes: Changes
    ) -> None:
        if device is not None:
            device.last_seen = received
            if device.status == "stale":
                self._set_status(session, device, "online", changes)
        window_id = getattr(event.body, "window_id", None)
        if window_id is None:
            return
        window = windows.get(window_id)
        if window is None:
            return
        facts = apply_event(_facts(window), event)
        if facts != _facts(window):
            window.seat_state, window.seat_time, window.occupant = facts.seat_state, facts.seat_time, facts.occupant
            window.paused, window.pause_reason, window.pause_time = facts.paused, facts.pause_reason, facts.pause_time
            changes.windows[window.id] = window

    def _touch_camera_windows(self, session: Session, changes: Changes) -> None:
        """Windows whose camera changed health are news too (their camera status)."""
        if changes.devices:
            rows = session.scalars(select(WindowRow).where(WindowRow.camera_device.in_(set(changes.devices)))).all()
            for window in rows:
                changes.windows.setdefault(window.id, window)

    def sweep(self, now: datetime) -> Changes:
        """Mark silent devices stale and re-derive their windows (wall clock)."""
        changes = Changes()
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            for row in session.scalars(select(DeviceRow).where(DeviceRow.status == "online")):
                if row.last_seen and row.heartbeat_s and (now - row.last_seen).total_seconds() > self.stale_factor * row.heartbeat_s:
                    self._set_status(session, row, "stale", changes)
            self._touch_camera_windows(session, changes)
        return changes


def _topic_hall(topic: str) -> str:
    """The hall a refused message was published under (``hw/v1/<hall>/…``; the server subscribes only to
    its halls' topics), for that hall's list of rejections; "" when the topic has none."""
    root, _, rest = topic.partition(f"{TOPIC_ROOT}/")
    return rest.split("/", 1)[0][:64] if not root and rest else ""
