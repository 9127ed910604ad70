"""The 好差评 fraud signals of the window days and months ingest touches, held between batches.

Judging a window's whole day again after every batch made each rating cost
more than the one before (issue 16).  Here each (window, day) is read from
the database once — its ratings, the day's tickets, the window's day as the
supervisor reads it, the queue gateway's health — into a
:class:`~server.rules.rating_signals.DaySignals`, and from then on only the
batch's news goes in: new ratings, changed tickets, seat and camera facts.
Months for the never-below rule are held the same way
(:class:`~server.rules.rating_signals.MonthRatings`).  What changed is
written back: the signals of the ratings whose signals changed, and the
alert rows of the days and months touched (through the same reconciliation
as every alert).

A camera or gateway whose health changed makes its windows' days be read
again at their next touch (rare, and the full read is the reference); a late
seat fact of an earlier day does the same for the days after it.  Days
before today and months before this month are let go at each sweep, after
their alerts were brought to their end.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.config.hall import HallConfig
from server.db import AlertRow, DeviceHealthRow, RatingRow, TicketRow
from server.ingest.batch import Changes
from server.rules import ratings as rules
from server.rules.attendance import local_day
from server.rules.policy import Policy
from server.rules.rating_signals import DaySignals, MonthRatings
from server.rules.ratings import Rating, Ticket
from server.rules.supervision import Alert, Observation
from server.supervision.service import (
    SEAT_TYPES,
    observation_from,
    reconcile_alerts,
    window_cameras,
)

SIGNAL_TYPES = tuple(rules.SIGNAL_ALERT.values())
DayLoader = Callable[[Session, list[str], date], dict[str, list[Observation]]]
"""``Supervisor.load_days``: the one way a window's day of observations is read."""


def rating_of(row: RatingRow) -> Rating:
    return Rating(
        window=row.window_id,
        level=row.level,
        rated_at=row.rated_at,
        day=row.day,
        clerk=row.clerk_id,
        ticket=row.ticket,
        cases=tuple(row.cases),
        origin=row.origin,  # type: ignore[arg-type]
        historical=row.historical,
        order=(row.device_id, row.boot, row.seq),
        counted=row.duplicate_of is None,
        signals=frozenset(row.signals),
        id=row.id,
    )


def ticket_of(row: TicketRow) -> Ticket:
    return Ticket(row.window_id, row.ticket, row.day, row.called_at, row.finished_at, row.clerk_id, tuple(row.cases))


class HeldSignals:
    """Fraud-signal state of the days and months touched, for one hall (the writer thread's alone)."""

    def __init__(self, hall: HallConfig, policy: Policy, gateways: dict[str, str], load_days: DayLoader) -> None:
        self.hall_id = hall.hall.id
        self.policy = policy
        self.windows = {w.id for w in hall.windows}
        self.gateways = gateways
        self.load_days = load_days  # Supervisor.load_days: the one way a window's day of observations is read
        self._watchers: dict[str, set[str]] = {}
        """Device (window camera, queue gateway) → the windows whose held days its health enters."""
        for window_id, camera in window_cameras(hall).items():
            if camera:
                self._watchers.setdefault(camera, set()).add(window_id)
        for window_id, gateway in gateways.items():
            self._watchers.setdefault(gateway, set()).add(window_id)
        self._days: dict[date, dict[str, DaySignals]] = {}
        self._tickets: dict[date, dict[str, Ticket]] = {}
        self._months: dict[tuple[str, date], MonthRatings] = {}
        self._touched_days: set[tuple[str, date]] = set()
        self._touched_months: set[tuple[str, date]] = set()
        self._stored: weakref.WeakKeyDictionary[DaySignals | MonthRatings, tuple[Alert, ...]] = weakref.WeakKeyDictionary()
        """The alerts each held state last wrote: a state whose alerts did not change costs no query."""

    # ------------------------------------------------------------ news

    def observe(self, changes: Changes) -> None:
        """Take a batch's seat facts into the days held; forget the days a health change alters."""
        for device in changes.devices:
            for window_id in self._watchers.get(device, ()):
                for held in self._days.values():
                    held.pop(window_id, None)
        for event in changes.events:
            if event.type not in SEAT_TYPES or str(event.msg_id) in changes.repeats:
                continue
            window_id, day = event.body.window_id, local_day(event.event_time)  # type: ignore[union-attr]
            for later in [d for d in self._days if d > day]:
                self._days[later].pop(window_id, None)  # the fact the later day began with may have changed
            state = self._days.get(day, {}).get(window_id)
            if state is not None:
                body = event.body.model_dump(mode="json")
                state.observe(observation_from(event.type, body, event.event_time, event.historical, (event.device_id, event.boot, event.seq)))
                self._touched_days.add((window_id, day))

    def ticket_stored(self, row: TicketRow) -> None:
        """A ticket row was stored or changed: the days held that rate its number judge it again."""
        tickets = self._tickets.get(row.day)
        if tickets is None:
            return  # read with the day when a day of it is first held
        tickets[row.ticket] = ticket_of(row)
        for window_id, state in self._days.get(row.day, {}).items():
            if state.ticket_changed(row.ticket):
                self._touched_days.add((window_id, row.day))

    def ratings_stored(self, session: Session, rows: Sequence[RatingRow]) -> None:
        """New rating rows (flushed): into their days, read from the database the first time."""
        for row in rows:
            if row.origin != "device":
                continue  # defaults are never judged
            held = self._days.get(row.day, {})
            if row.window_id in held:
                held[row.window_id].add_rating(rating_of(row))
            elif row.window_id in self.windows:
                self._day(session, row.window_id, row.day)  # reads the new row with the rest of the day
            self._touched_days.add((row.window_id, row.day))

    def counting_changed(self, session: Session, rows: Iterable[RatingRow]) -> None:
        """Ratings added or whose counting (一事一评) changed: into their months."""
        for row in rows:
            if row.origin == "device":
                self._month(session, row.window_id, row.day.replace(day=1)).put(rating_of(row))
                self._touched_months.add((row.window_id, row.day.replace(day=1)))

    def touched(self) -> bool:
        """Whether news waits for :meth:`settle`."""
        return bool(self._touched_days or self._touched_months)

    def touch(self, days: Iterable[tuple[str, date]], months: Iterable[tuple[str, date]]) -> None:
        """Judge these days and months again at the next :meth:`settle` (the periodic pass)."""
        self._touched_days.update(days)
        self._touched_months.update(months)

    # ------------------------------------------------------------ judging

    def settle(self, session: Session, now: datetime) -> list[AlertRow]:
        """Judge the days and months touched as of ``now``; store what changed; returns the changed alert rows."""
        changed: list[AlertRow] = []
        days, self._touched_days = self._touched_days, set()
        for window_id, day in sorted(days):
            if window_id in self.windows:
                changed += self._settle_day(session, self._day(session, window_id, day), now)
        months, self._touched_months = self._touched_months, set()
        for window_id, month in sorted(months):
            changed += self._settle_month(session, self._month(session, window_id, month), now)
        return changed

    def sweep(self, session: Session, now: datetime) -> list[AlertRow]:
        """Judge every day and month held (time passes: ticket waits end, days end), then let go of the past ones."""
        self.touch(((w, d) for d, held in self._days.items() for w in held), self._months)
        changed = self.settle(session, now)
        today = local_day(now)
        for day in [d for d in self._days if d < today]:
            del self._days[day]
            self._tickets.pop(day, None)
        for key in [k for k in self._months if k[1] < today.replace(day=1)]:
            del self._months[key]
        return changed

    def forget(self) -> None:
        """Let go of everything held: after a failed transaction the database, not memory, is what holds."""
        self._days.clear()
        self._tickets.clear()
        self._months.clear()
        self._stored.clear()

    def _settle_day(self, session: Session, state: DaySignals, now: datetime) -> list[AlertRow]:
        changed, alerts = state.advance(now)
        if changed:
            session.execute(update(RatingRow), [{"id": state.rating(h).id, "signals": sorted(s)} for h, s in changed.items()])
        if self._stored.get(state) == alerts:
            return []
        start = rules.day_start(state.day)
        stored = session.scalars(
            select(AlertRow).where(
                AlertRow.window_id == state.window, AlertRow.type.in_(SIGNAL_TYPES), AlertRow.raised_at >= start, AlertRow.raised_at < start + timedelta(days=1)
            )
        )
        changed_rows = reconcile_alerts(session, stored, alerts)
        self._stored[state] = alerts
        return changed_rows

    def _settle_month(self, session: Session, state: MonthRatings, now: datetime) -> list[AlertRow]:
        alert = state.alert(now)
        if self._stored.get(state) == (alerts := (alert,) if alert else ()):
            return []
        _, after = rules.month_bounds(state.month)
        stored = session.scalars(
            select(AlertRow).where(
                AlertRow.window_id == state.window,
                AlertRow.type == "rating_never_below",
                AlertRow.raised_at >= rules.day_start(state.month),
                AlertRow.raised_at < rules.day_start(after),
            )
        )
        changed_rows = reconcile_alerts(session, stored, alerts)
        self._stored[state] = alerts
        return changed_rows

    # ------------------------------------------------------------ reading (once per day or month held)

    def _day(self, session: Session, window_id: str, day: date) -> DaySignals:
        held = self._days.setdefault(day, {})
        state = held.get(window_id)
        if state is None:
            state = held[window_id] = self._read_day(session, window_id, day)
        return state

    def _read_day(self, session: Session, window_id: str, day: date) -> DaySignals:
        """The window's day from the database, judged once against the signals its rows carry."""
        tickets = self._tickets.get(day)
        if tickets is None:
            # Ticket numbers repeat in every hall: another hall's A001 does not make this hall's rating of A001 served.
            mine = select(TicketRow).where(TicketRow.hall_id == self.hall_id, TicketRow.day == day)
            tickets = self._tickets[day] = {row.ticket: ticket_of(row) for row in session.scalars(mine)}
        observations = self.load_days(session, [window_id], day)[window_id]
        state = DaySignals(window_id, day, self.policy, tickets, self._gateway(session, window_id, day), observations)
        rows = list(session.scalars(select(RatingRow).where(RatingRow.window_id == window_id, RatingRow.day == day, RatingRow.origin == "device").order_by(RatingRow.id)))
        for row in rows:
            state.add_rating(rating_of(row))
        state.assume([frozenset(row.signals) for row in rows])
        return state

    def _gateway(self, session: Session, window_id: str, day: date) -> list[tuple[datetime, bool]] | None:
        device = self.gateways.get(window_id)
        if device is None:
            return None
        start = rules.day_start(day)
        health = DeviceHealthRow.time, DeviceHealthRow.status
        rows = list(session.execute(select(*health).where(DeviceHealthRow.device_id == device, DeviceHealthRow.time >= start, DeviceHealthRow.time < start + timedelta(days=1))))
        before = session.execute(
            select(*health).where(DeviceHealthRow.device_id == device, DeviceHealthRow.time < start).order_by(DeviceHealthRow.time.desc(), DeviceHealthRow.id.desc()).limit(1)
        ).first()
        if before is not None:
            rows.append(before)
        return [(time, status == "online") for time, status in rows]

    def _month(self, session: Session, window_id: str, month: date) -> MonthRatings:
        state = self._months.get((window_id, month))
        if state is None:
            first, after = rules.month_bounds(month)
            state = self._months[(window_id, month)] = MonthRatings(window_id, month, self.policy)
            for row in session.scalars(
                select(RatingRow).where(
                    RatingRow.window_id == window_id, RatingRow.origin == "device", RatingRow.duplicate_of.is_(None), RatingRow.day >= first, RatingRow.day < after
                ).order_by(RatingRow.id)
            ):
                state.put(rating_of(row))
        return state
