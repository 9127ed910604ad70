"""The adapter around the supervision core: events in, alerts out.

It keeps the current day's observations per window in memory (fed by the
ingest writer after each committed batch), re-runs the pure core for the
windows that changed — and for every window on each sweep, because a grace
period can expire with no new event — and reconciles the core's alert
episodes with the ``alerts`` table, where people acknowledge them.

Seat heartbeats that repeat the known seat fact (flagged by the store at
ingest, see ``server.ingest.store.SeatFacts``) are never read: they only matter when
they turn a replayed (historical) fact into a live one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any, Protocol

from sqlalchemy import Select, bindparam, func, select, union_all
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from broker.protocol import Event
from broker.timeutil import HALL_TZ, Clock, hall_iso
from server.db import AlertRow, DeviceHealthRow, EventRow, LeaveRow, WindowRow
from server.config.hall import HallConfig
from server.rules.calendar import WorkCalendar
from server.rules.escalation import escalated_severity
from server.rules.policy import Policy
from server.rules.ratings import RATING_ALERTS
from server.rules.live_supervision import LiveWindow
from server.rules.supervision import RULES, Alert, Interval, Observation, Rule, Segment, WindowDay, WindowPlan, evaluate_window

log = logging.getLogger(__name__)
SEAT_TYPES = ("seat", "seat_heartbeat")
WINDOW_EVENT_TYPES = ("seat", "seat_heartbeat", "pause", "clerk_login")


def observation_from(event_type: str, body: Mapping[str, Any], event_time: datetime, historical: bool, order: tuple[str, int, int]) -> Observation:
    """One stored or live event as the core's observation (time normalised to
    UTC once here, so the core's many comparisons stay cheap).  ``body``: the
    event's body, or the fields of it a stored row was selected with."""
    event_time = event_time.astimezone(timezone.utc)
    if event_type in SEAT_TYPES:
        occupied = body["state"] == "occupied"
        return Observation(event_time, "seat", occupied, body.get("occupant"), historical, order, body.get("snapshot_id"))
    if event_type == "pause":
        return Observation(event_time, "pause", body["paused"], body.get("reason"), historical, order)
    return Observation(event_time, "login", body.get("clerk_id") is not None, body.get("clerk_id"), historical, order)


class HealthFacts(Protocol):
    """What a camera observation needs of a ``device_health`` row (an ORM row or selected columns)."""

    id: int
    device_id: str
    time: datetime
    status: str


def camera_observation(row: HealthFacts) -> Observation:
    return Observation(row.time, "camera", row.status == "online", row.status, False, (row.device_id, 0, row.id))


_CHUNK = 500
"""Windows per bulk query: a few hundred ids stay under every backend's limit
on bound parameters (999 in older SQLite) and bound what one chunk holds."""

_EVENT_COLUMNS = (
    EventRow.window_id,
    EventRow.type,
    EventRow.event_time,
    EventRow.historical,
    EventRow.device_id,
    EventRow.boot,
    EventRow.seq,
    EventRow.body["state"].as_string().label("state"),
    EventRow.body["occupant"].as_string().label("occupant"),
    EventRow.body["snapshot_id"].as_string().label("snapshot_id"),
    EventRow.body["paused"].as_boolean().label("paused"),
    EventRow.body["reason"].as_string().label("reason"),
    EventRow.body["clerk_id"].as_string().label("clerk_id"),
)
"""A stored event as ``observation_from`` reads it: the body's fields are
taken out by the database (~1 µs a row in SQLite), not decoded from JSON into
a dict per row in Python (a fifth of a day's load)."""
_WINDOW_EVENT = func.coalesce(EventRow.type, "").in_(WINDOW_EVENT_TYPES)
"""The row is a supervision event.  Tested on an expression (``type`` is never
NULL): SQLite tests ``IN`` on a column that leads an index (``ix_events_type_time``)
with a b-tree probe per row, which cost more than fetching the row."""
_DAY_EVENTS = select(*_EVENT_COLUMNS).where(
    EventRow.window_id.in_(bindparam("windows", expanding=True)),
    EventRow.repeat.is_(False),
    EventRow.event_time >= bindparam("start"),
    EventRow.event_time < bindparam("end"),
    _WINDOW_EVENT,
)
"""A chunk of windows' rows of the day, found through ``ix_events_window_day``
(window, repeat, time), so flagged repeats are skipped in the index."""


def _last_before(types: tuple[str, ...]) -> Select[Any]:
    return (
        select(*_EVENT_COLUMNS)
        .where(EventRow.window_id == bindparam("window"), EventRow.repeat.is_(False), EventRow.type.in_(types), EventRow.event_time < bindparam("start"))
        .order_by(EventRow.event_time.desc(), EventRow.id.desc())
        .limit(1)
    )


_EVENTS_BEFORE = union_all(*(_last_before(types).subquery().select() for types in (SEAT_TYPES, ("pause",), ("clerk_login",))))
"""A window's last seat, pause and login fact before the day: what it began
the day with.  Each an indexed ``LIMIT 1`` walking back from the day's start
(for pauses and logins, over the window's seat rows until it meets one), the
three in one statement: a city replay sends one per window."""

_HEALTH_COLUMNS = (DeviceHealthRow.id, DeviceHealthRow.device_id, DeviceHealthRow.time, DeviceHealthRow.status)
_DAY_HEALTH = select(*_HEALTH_COLUMNS).where(
    DeviceHealthRow.device_id.in_(bindparam("devices", expanding=True)),
    DeviceHealthRow.time >= bindparam("start"),
    DeviceHealthRow.time < bindparam("end"),
)
_HEALTH_BEFORE = (
    select(*_HEALTH_COLUMNS)
    .where(DeviceHealthRow.device_id == bindparam("device"), DeviceHealthRow.time < bindparam("start"))
    .order_by(DeviceHealthRow.time.desc(), DeviceHealthRow.id.desc())
    .limit(1)
)
_LEAVES = (
    select(LeaveRow.window_id, LeaveRow.kind, LeaveRow.person_id, LeaveRow.start, LeaveRow.end)
    .where(LeaveRow.window_id.in_(bindparam("windows", expanding=True)), LeaveRow.start < bindparam("end"), LeaveRow.end > bindparam("start"))
    .order_by(LeaveRow.id)
)


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for at in range(0, len(items), size):
        yield items[at : at + size]


def window_cameras(hall: HallConfig) -> dict[str, str | None]:
    """Each window's camera as ``HallConfig.camera_of`` names it (the first
    window camera listing it), in one pass over the devices: asking
    ``camera_of`` per window is quadratic, seconds for a city of 10,000."""
    first: dict[str, str] = {}
    for device in hall.devices:
        if device.kind == "window_camera":
            for window_id in device.windows:
                first.setdefault(window_id, device.id)
    return {w.id: first.get(w.id) for w in hall.windows}


ALERT_RULES: dict[str, Rule] = RULES | RATING_ALERTS
"""Every alert type the ``alerts`` table holds: the supervision core's, and the ratings' (好差评)."""


def alert_json(row: AlertRow, now: datetime, policy: Policy, window_name: str) -> dict[str, Any]:
    rule = ALERT_RULES.get(row.type)
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
        self._specs = {w.id: w for w in hall.windows}
        self._cameras = window_cameras(hall)
        self._day: date | None = None
        self._windows: dict[str, LiveWindow] = {}
        self._dirty: set[str] = set()
        self._written: dict[str, tuple[tuple[Alert, ...], Segment | None]] = {}
        """What each window's last tick stored (alerts, current segment): an unchanged window costs no statement."""

    # ----------------------------------------------------------- inputs

    def plan(self, session: Session, window_id: str, day: date) -> WindowPlan:
        return self.plans(session, [window_id], day)[window_id]

    def plans(self, session: Session, window_ids: Iterable[str], day: date) -> dict[str, WindowPlan]:
        """The windows' plans for ``day``: roster and duties from the hall file,
        leave and substitutes from the register (one query per chunk of windows)."""
        start = datetime.combine(day, datetime.min.time(), HALL_TZ)
        connection = session.connection()
        rows: dict[str, list[Any]] = {window_id: [] for window_id in window_ids}
        for chunk in _chunks(list(rows), _CHUNK):
            for row in connection.execute(_LEAVES, {"windows": chunk, "start": start, "end": start + timedelta(days=1)}):
                rows[row.window_id].append(row)
        plans = {}
        for window_id, leaves in rows.items():
            spec = self._specs[window_id]
            plans[window_id] = WindowPlan(
                window=window_id,
                roster=frozenset(spec.clerks),
                substitutes=tuple(Interval(r.person_id, r.start, r.end) for r in leaves if r.kind == "substitute"),
                leaves=tuple(Interval(r.person_id, r.start, r.end) for r in leaves if r.kind in ("leave", "outing")),
                on_lunch_duty=spec.lunch_duty,
                staffed=spec.staffed,
            )
        return plans

    def load_day(self, session: Session, window_id: str, day: date) -> list[Observation]:
        return self.load_days(session, [window_id], day)[window_id]

    def load_days(self, session: Session, window_ids: Iterable[str], day: date) -> dict[str, list[Observation]]:
        """Every observation of the windows' day from the database (repeated
        seat heartbeats left out), plus the facts each day began with.

        The one way a window's day is read — at start-up, when its camera's
        health changes, and by replay — so all of them see the same day.  The
        day's rows come a chunk of windows per query, selected as columns (no
        ORM objects); a city replay (10,000 windows) reading them a window and
        a kind at a time spent more in query overhead than in the core.
        """
        start = datetime.combine(day, datetime.min.time(), HALL_TZ)
        bounds = {"start": start, "end": start + timedelta(days=1)}
        connection = session.connection()  # Core rows: the ORM's result layer costs more than reading them
        days: dict[str, list[Observation]] = {window_id: [] for window_id in window_ids}
        for chunk in _chunks(list(days), _CHUNK):
            rows = connection.execute(_DAY_EVENTS, {"windows": chunk, **bounds}).all()
            for window_id in chunk:
                rows += connection.execute(_EVENTS_BEFORE, {"window": window_id, "start": start}).all()
            for window_id, kind, event_time, historical, device_id, boot, seq, state, occupant, snapshot_id, paused, reason, clerk_id in rows:
                body = {"state": state, "occupant": occupant, "snapshot_id": snapshot_id, "paused": paused, "reason": reason, "clerk_id": clerk_id}
                days[window_id].append(observation_from(kind, body, event_time, historical, (device_id, boot, seq)))
            watched: dict[str, list[str]] = {}
            for window_id in chunk:
                camera = self._cameras.get(window_id)
                if camera:
                    watched.setdefault(camera, []).append(window_id)
            if not watched:
                continue
            health = list(connection.execute(_DAY_HEALTH, {"devices": list(watched), **bounds}))
            for camera in watched:
                row = connection.execute(_HEALTH_BEFORE, {"device": camera, "start": start}).first()
                if row is not None:
                    health.append(row)
            for row in health:
                observation = camera_observation(row)
                for window_id in watched[row.device_id]:
                    days[window_id].append(observation)
        return days

    def evaluate_days(self, session: Session, window_ids: Sequence[str], day: date, until: datetime) -> Iterator[WindowDay]:
        """Run the core for the windows' stored days (replay), loading plans
        and days a chunk of windows at a time: memory holds one chunk's
        observations, not a city's."""
        for chunk in _chunks(window_ids, _CHUNK):
            plans, days = self.plans(session, chunk, day), self.load_days(session, chunk, day)
            for window_id in chunk:
                yield evaluate_window(plans[window_id], days[window_id], self.policy, self.calendar, day, until, HALL_TZ)

    # -------------------------------------------------------------- live

    def _ensure_day(self, session: Session, day: date) -> None:
        if self._day == day:
            return
        self._day = day
        self._hold(session, [window.id for window in self.hall.windows])

    def _hold(self, session: Session, window_ids: list[str]) -> None:
        """Read the windows' day and hold it live (at the day's start, and when a camera's health changes)."""
        day = self._day
        assert day is not None
        plans, days = self.plans(session, window_ids, day), self.load_days(session, window_ids, day)
        for window_id in window_ids:
            self._windows[window_id] = LiveWindow(plans[window_id], self.policy, self.calendar, day, HALL_TZ, days[window_id])
            self._written.pop(window_id, None)
        self._dirty.update(window_ids)

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
                self._windows[window_id].add(observation_from(event.type, body, event.event_time, event.historical, (event.device_id, event.boot, event.seq)))
                self._dirty.add(window_id)
            cameras = set(devices_changed)
            reload = [window_id for window_id, camera in self._cameras.items() if camera in cameras]
            if reload:
                self._hold(session, reload)

    def tick(self, every_window: bool) -> tuple[list[dict[str, Any]], dict[str, WindowRow]]:
        """Evaluate (changed or all) windows now: store alert changes and each
        window's current state.  Returns the changed alerts (JSON) and windows.

        Each window's day is held live (:class:`LiveWindow`), so a window costs
        the events it got since the last tick, not its whole day; a plan that
        changed (leave registered meanwhile) starts its day over.
        """
        now = self.clock()
        changed: list[AlertRow] = []
        windows: dict[str, WindowRow] = {}
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                self._ensure_day(session, now.date())
                targets = sorted(set(self._windows) if every_window else self._dirty)
                self._dirty = set()
                plans = self.plans(session, targets, now.date())
                for window_id in targets:
                    live = self._windows[window_id]
                    if live.plan != plans[window_id]:
                        live = self._windows[window_id] = LiveWindow(plans[window_id], self.policy, self.calendar, now.date(), HALL_TZ, live.observations())
                    current, alerts = live.advance(now)
                    changed += self._store(session, window_id, current, alerts, windows)
        except BaseException:
            self._written.clear()  # what the failed transaction was to store is not stored
            raise
        return [alert_json(row, now, self.policy, self.window_names.get(row.window_id, row.window_id)) for row in changed], windows

    def _store(self, session: Session, window_id: str, current: Segment | None, alerts: tuple[Alert, ...], windows: dict[str, WindowRow]) -> list[AlertRow]:
        """Store what changed of one window since the last tick: its alerts (reconciled) and its current state."""
        written_alerts, written_segment = self._written.get(window_id, (None, None))
        changed = self._reconcile(session, window_id, alerts) if alerts != written_alerts else []
        if current is not None and (written_segment is None or (written_segment.state, written_segment.start) != (current.state, current.start)):
            row = session.get(WindowRow, window_id)
            if row is not None and (row.state, row.state_since) != (current.state, current.start):
                row.state, row.state_since = current.state, current.start
                windows[window_id] = row
        self._written[window_id] = (alerts, current if current is not None else written_segment)
        return changed

    def _reconcile(self, session: Session, window_id: str, alerts: tuple[Alert, ...]) -> list[AlertRow]:
        """Make the stored alerts of the window's day match the core's episodes."""
        day = self._day or self.clock().date()
        start = datetime.combine(day, datetime.min.time(), HALL_TZ)
        stored = session.scalars(
            select(AlertRow).where(AlertRow.window_id == window_id, AlertRow.type.in_(tuple(RULES)), AlertRow.raised_at >= start)
        )
        return reconcile_alerts(session, stored, alerts)

    def acknowledge(self, alert_id: int, by: str) -> dict[str, Any] | None:
        now = self.clock()
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            row = session.get(AlertRow, alert_id)
            if row is None or row.hall_id != self.hall.hall.id:  # another hall's alert is not this hall's to acknowledge
                return None
            if row.acknowledged_at is None:
                row.acknowledged_at, row.acknowledged_by = now, by
        return alert_json(row, now, self.policy, self.window_names.get(row.window_id, row.window_id))

    def alerts(self, active_only: bool, limit: int) -> list[dict[str, Any]]:
        now = self.clock()
        query = select(AlertRow).where(AlertRow.hall_id == self.hall.hall.id).order_by(AlertRow.raised_at.desc(), AlertRow.id.desc()).limit(limit)
        if active_only:
            query = query.where(AlertRow.cleared_at.is_(None))
        with Session(self.engine) as session:
            return [alert_json(r, now, self.policy, self.window_names.get(r.window_id, r.window_id)) for r in session.scalars(query)]


def reconcile_alerts(session: Session, stored: Iterable[AlertRow], alerts: Iterable[Alert]) -> list[AlertRow]:
    """Make the stored alert rows of one scope match the episodes a pure core computed for it.

    The one way alerts are kept, whichever core raised them (supervision,
    ratings): the scope is the caller's (a window's day and types); a new
    episode is added, a known one (same type and raise time) gets its end,
    liveness and facts, and a stored active episode the core no longer
    sees is withdrawn — cleared at its raise time, its record kept — because
    late data showed the condition never held.  Returns the changed rows.
    """
    rows = {(row.type, row.raised_at): row for row in stored}
    changed: list[AlertRow] = []
    current = set()
    for alert in alerts:
        key = (alert.type, alert.raised_at)
        current.add(key)
        row = rows.get(key)
        if row is None:
            row = _new_row(alert, _hall_of(session, alert.window))
            session.add(row)
            changed.append(row)
        elif (row.cleared_at, row.live, row.facts) != (alert.cleared_at, alert.live, dict(alert.facts)):
            row.cleared_at, row.live, row.facts = alert.cleared_at, alert.live, dict(alert.facts)
            changed.append(row)
    for key, row in rows.items():
        if key not in current and row.cleared_at is None:
            row.cleared_at = row.raised_at
            row.facts = dict(row.facts) | {"withdrawn": "later observations show the condition did not last"}
            changed.append(row)
    session.flush()
    return changed


def _hall_of(session: Session, window_id: str) -> str:
    """The hall a window belongs to (window ids are unique across the district): a new alert carries it.
    Alerts are rare, so one lookup each costs nothing a caller would notice."""
    return session.scalar(select(WindowRow.hall_id).where(WindowRow.id == window_id)) or ""


def _new_row(alert: Alert, hall_id: str) -> AlertRow:
    return AlertRow(
        hall_id=hall_id,
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
