"""The adapter around the supervision core: events in, alerts out.

It keeps the current day's observations per window in memory (fed by the
ingest writer after each committed batch), re-runs the pure core for the
windows that changed — and for every window on each sweep, because a grace
period can expire with no new event — and reconciles the core's alert
episodes with the ``alerts`` table, where people acknowledge them.

Seat heartbeats that repeat the known seat fact (flagged by the store at
ingest, see ``server.store.SeatFacts``) are never read: they only matter when
they turn a replayed (historical) fact into a live one.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from broker.protocol import Event
from broker.timeutil import HALL_TZ, Clock, hall_iso
from server.db import AlertRow, DeviceHealthRow, EventRow, LeaveRow, WindowRow
from server.hall import HallConfig
from server.rules.calendar import WorkCalendar
from server.rules.escalation import escalated_severity
from server.rules.policy import Policy
from server.rules.supervision import RULES, Alert, Interval, Observation, WindowDay, WindowPlan, evaluate_window

log = logging.getLogger(__name__)
SEAT_TYPES = ("seat", "seat_heartbeat")
WINDOW_EVENT_TYPES = ("seat", "seat_heartbeat", "pause", "clerk_login")


def observation_from(event_type: str, body: dict[str, Any], event_time: datetime, historical: bool, order: tuple[str, int, int]) -> Observation:
    """One stored or live event as the core's observation (time normalised to
    UTC once here, so the core's many comparisons stay cheap)."""
    event_time = event_time.astimezone(timezone.utc)
    if event_type in SEAT_TYPES:
        occupied = body["state"] == "occupied"
        return Observation(event_time, "seat", occupied, body.get("occupant"), historical, order, body.get("snapshot_id"))
    if event_type == "pause":
        return Observation(event_time, "pause", body["paused"], body.get("reason"), historical, order)
    return Observation(event_time, "login", body.get("clerk_id") is not None, body.get("clerk_id"), historical, order)


def camera_observation(row: DeviceHealthRow) -> Observation:
    return Observation(row.time, "camera", row.status == "online", row.status, False, (row.device_id, 0, row.id))


def alert_json(row: AlertRow, now: datetime, policy: Policy, window_name: str) -> dict[str, Any]:
    rule = RULES.get(row.type)
    state = "cleared" if row.cleared_at else ("acknowledged" if row.acknowledged_at else "active")
    return {
        "id": row.id,
        "window_id": row.window_id,
        "window_name": window_name,
        "type": row.type,
        "name_zh": rule.name_zh if rule else row.type,
        "name_en": rule.name_en if rule else row.type,
        "state": state,
        "severity": escalated_severity(row.severity, row.raised_at, row.acknowledged_at, row.cleared_at, now, policy.escalation),
        "condition_since": hall_iso(row.condition_since),
        "raised_at": hall_iso(row.raised_at),
        "cleared_at": hall_iso(row.cleared_at),
        "acknowledged_at": hall_iso(row.acknowledged_at),
        "acknowledged_by": row.acknowledged_by,
        "live": row.live,
        "rule": row.rule,
        "threshold_s": row.threshold_s,
        "source": row.source,
        "facts": row.facts,
        "evidence": row.evidence,
    }


class Supervisor:
    """Runs the supervision core for one hall and keeps its alerts."""

    def __init__(self, engine: Engine, hall: HallConfig, policy: Policy, calendar: WorkCalendar, clock: Clock) -> None:
        self.engine = engine
        self.hall = hall
        self.policy = policy
        self.calendar = calendar
        self.clock = clock
        self.window_names = {w.id: w.name for w in hall.windows}
        self._cameras = {w.id: hall.camera_of(w.id) for w in hall.windows}
        self._day: date | None = None
        self._windows: dict[str, list[Observation]] = {}
        self._dirty: set[str] = set()

    # ----------------------------------------------------------- inputs

    def plan(self, session: Session, window_id: str, day: date) -> WindowPlan:
        spec = next(w for w in self.hall.windows if w.id == window_id)
        start = datetime.combine(day, datetime.min.time(), HALL_TZ)
        rows = session.scalars(
            select(LeaveRow).where(LeaveRow.window_id == window_id, LeaveRow.start < start + timedelta(days=1), LeaveRow.end > start)
        ).all()
        return WindowPlan(
            window=window_id,
            roster=frozenset(spec.clerks),
            substitutes=tuple(Interval(r.person_id, r.start, r.end) for r in rows if r.kind == "substitute"),
            leaves=tuple(Interval(r.person_id, r.start, r.end) for r in rows if r.kind in ("leave", "outing")),
            on_lunch_duty=spec.lunch_duty,
            staffed=spec.staffed,
        )

    def load_day(self, session: Session, window_id: str, day: date) -> list[Observation]:
        """Every observation of a window's day from the database (repeated seat
        heartbeats left out), plus the facts it began with."""
        start = datetime.combine(day, datetime.min.time(), HALL_TZ)
        end = start + timedelta(days=1)
        observations: list[Observation] = []
        for types in (SEAT_TYPES, ("pause",), ("clerk_login",)):
            before = session.scalars(
                select(EventRow)
                .where(EventRow.window_id == window_id, EventRow.repeat.is_(False), EventRow.type.in_(types), EventRow.event_time < start)
                .order_by(EventRow.event_time.desc(), EventRow.id.desc())
                .limit(1)
            ).first()
            rows = session.scalars(
                select(EventRow).where(
                    EventRow.window_id == window_id,
                    EventRow.repeat.is_(False),
                    EventRow.type.in_(types),
                    EventRow.event_time >= start,
                    EventRow.event_time < end,
                )
            ).all()
            for row in ([before] if before else []) + list(rows):
                observations.append(observation_from(row.type, row.body, row.event_time, row.historical, (row.device_id, row.boot, row.seq)))
        camera = self._cameras.get(window_id)
        if camera:
            health = session.scalars(
                select(DeviceHealthRow).where(
                    DeviceHealthRow.device_id == camera,
                    or_(
                        and_(DeviceHealthRow.time >= start, DeviceHealthRow.time < end),
                        DeviceHealthRow.id
                        == select(DeviceHealthRow.id)
                        .where(DeviceHealthRow.device_id == camera, DeviceHealthRow.time < start)
                        .order_by(DeviceHealthRow.time.desc(), DeviceHealthRow.id.desc())
                        .limit(1)
                        .scalar_subquery(),
                    ),
                )
            ).all()
            observations += [camera_observation(row) for row in health]
        return observations

    def evaluate(self, session: Session, window_id: str, day: date, until: datetime, observations: list[Observation] | None = None) -> WindowDay:
        """Run the core for one window's day (used live and by replay)."""
        if observations is None:
            observations = self.load_day(session, window_id, day)
        return evaluate_window(self.plan(session, window_id, day), observations, self.policy, self.calendar, day, until, HALL_TZ)

    # -------------------------------------------------------------- live

    def _ensure_day(self, session: Session, day: date) -> None:
        if self._day == day:
            return
        self._day = day
        self._windows = {window.id: self.load_day(session, window.id, day) for window in self.hall.windows}
        self._dirty = set(self._windows)

    def observe(self, events: list[Event], devices_changed: list[str], repeats: set[str]) -> None:
        """Take the events of a committed batch (called by the ingest writer);
        ``repeats`` are the msg_ids the store flagged as repeated heartbeats."""
        with Session(self.engine) as session:
            self._ensure_day(session, self.clock().date())
            for event in events:
                window_id = getattr(event.body, "window_id", None)
                if event.type not in WINDOW_EVENT_TYPES or window_id not in self._windows or str(event.msg_id) in repeats:
                    continue
                body = event.body.model_dump(mode="json")
                self._windows[window_id].append(observation_from(event.type, body, event.event_time, event.historical, (event.device_id, event.boot, event.seq)))
                self._dirty.add(window_id)
            cameras = set(devices_changed)
            for window_id, camera in self._cameras.items():
                if camera in cameras:
                    self._windows[window_id] = self.load_day(session, window_id, self._day)  # type: ignore[arg-type]
                    self._dirty.add(window_id)

    def tick(self, every_window: bool) -> tuple[list[dict[str, Any]], dict[str, WindowRow]]:
        """Re-evaluate (changed or all) windows now: store alert changes and each
        window's current state.  Returns the changed alerts (JSON) and windows."""
        now = self.clock()
        changed: list[AlertRow] = []
        windows: dict[str, WindowRow] = {}
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            self._ensure_day(session, now.date())
            targets = set(self._windows) if every_window else self._dirty
            self._dirty = set()
            for window_id in sorted(targets):
                result = self.evaluate(session, window_id, now.date(), now, self._windows[window_id])
                changed += self._reconcile(session, result)
                current = result.timeline[-1] if result.timeline else None
                row = session.get(WindowRow, window_id)
                if current is not None and row is not None and (row.state, row.state_since) != (current.state, current.start):
                    row.state, row.state_since = current.state, current.start
                    windows[window_id] = row
        return [alert_json(row, now, self.policy, self.window_names.get(row.window_id, row.window_id)) for row in changed], windows

    def _reconcile(self, session: Session, result: WindowDay) -> list[AlertRow]:
        """Make the stored alerts of the window's day match the core's episodes."""
        day = self._day or self.clock().date()
        start = datetime.combine(day, datetime.min.time(), HALL_TZ)
        stored = {
            (row.type, row.raised_at): row
            for row in session.scalars(select(AlertRow).where(AlertRow.window_id == result.window, AlertRow.raised_at >= start))
        }
        changed: list[AlertRow] = []
        current = set()
        for alert in result.alerts:
            key = (alert.type, alert.raised_at)
            current.add(key)
            row = stored.get(key)
            if row is None:
                row = _new_row(alert)
                session.add(row)
                changed.append(row)
            elif row.cleared_at != alert.cleared_at or row.live != alert.live:
                row.cleared_at, row.live = alert.cleared_at, alert.live
                changed.append(row)
        for key, row in stored.items():
            if key not in current and row.cleared_at is None:
                # Late data showed the condition never lasted: withdraw, keep the record.
                row.cleared_at = row.raised_at
                row.facts = dict(row.facts) | {"withdrawn": "later observations show the condition did not last"}
                changed.append(row)
        session.flush()
        return changed

    def acknowledge(self, alert_id: int, by: str) -> dict[str, Any] | None:
        now = self.clock()
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            row = session.get(AlertRow, alert_id)
            if row is None:
                return None
            if row.acknowledged_at is None:
                row.acknowledged_at, row.acknowledged_by = now, by
        return alert_json(row, now, self.policy, self.window_names.get(row.window_id, row.window_id))

    def alerts(self, active_only: bool, limit: int) -> list[dict[str, Any]]:
        now = self.clock()
        query = select(AlertRow).order_by(AlertRow.raised_at.desc(), AlertRow.id.desc()).limit(limit)
        if active_only:
            query = query.where(AlertRow.cleared_at.is_(None))
        with Session(self.engine) as session:
            return [alert_json(r, now, self.policy, self.window_names.get(r.window_id, r.window_id)) for r in session.scalars(query)]


def _new_row(alert: Alert) -> AlertRow:
    return AlertRow(
        window_id=alert.window,
        type=alert.type,
        severity=alert.severity,
        condition_since=alert.condition_since,
        raised_at=alert.raised_at,
        cleared_at=alert.cleared_at,
        live=alert.live,
        rule=alert.rule,
        threshold_s=alert.threshold_s,
        source=alert.source,
        facts=dict(alert.facts),
        evidence=alert.evidence,
    )
