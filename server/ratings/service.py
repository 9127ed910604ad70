"""The adapter around the 好差评 rules: rating and ticket events in; ratings, work orders, alerts and statistics out.

It follows the ingest writer (``Ingestor(followers=[service.follow])``):
after each committed batch it takes the ``rating`` and ``ticket`` events
stored since the last ones it took — read back from the event store by id,
so a batch it failed on is taken again at the next sweep and a database
upgraded with ratings already stored fills in — and after each sweep it
also runs its periodic work.  The decisions are :mod:`server.rules.ratings`';
this module loads, stores and reconciles:

* a new rating is stored with its transaction keys; the connected ratings
  (sharing a key) are resolved again, so the first by event time counts
  whatever order they arrived in, and the work orders follow (created for a
  counted bad rating, moved to another bad rating of the transaction, or
  withdrawn when the counted rating is no longer bad);
* the fraud signals of the window's day are evaluated again (with the
  window's day as the supervisor reads it, and the queue gateway's health)
  and kept as alert rows of the ``alerts`` table through the same
  reconciliation as the supervision alerts, so the live alert list, its
  WebSocket pushes and the acknowledge API show them unchanged;
* periodically (every :data:`RECHECK` of hall time): default ratings that
  fell due, deadlines the calendar could not count before, the overdue
  alerts of windows with open orders, and the signals of today's rated
  windows (a ticket may come after its rating; a day's alerts clear at
  midnight).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from broker.timeutil import HALL_TZ, Clock
from server.db import AlertRow, DeviceHealthRow, EventRow, RatingKeyRow, RatingRow, StaffRow, TicketRow, WorkOrderRow, WorkOrderStepRow
from server.config.hall import HallConfig
from server.rules import ratings as rules
from server.rules.attendance import local_day
from server.rules.calendar import CalendarGapError, WorkCalendar
from server.rules.policy import Policy
from server.rules.ratings import Rating, StatRow, Step, Ticket, WorkOrder
from server.rules.supervision import Observation
from server.ingest.batch import Changes
from server.supervision.service import alert_json, reconcile_alerts

DayLoader = Callable[[Session, list[str], date], dict[str, list[Observation]]]
"""``Supervisor.load_days``: the one way a window's day of observations is read."""

RECHECK = timedelta(seconds=60)
"""Hall time between periodic passes (defaults, deadlines, overdue, signals of the day)."""
CHUNK = 1000
"""Rating and ticket events taken per transaction."""
SIGNAL_TYPES = ("rating_seat_vacant", "rating_no_ticket", "rating_burst")
OPEN_EXCLUDED = tuple(sorted(rules.FINAL))
"""Statuses of a finished order, for SQL (``status NOT IN``: the order is open)."""


class NotFound(LookupError):
    """No such work order (the message names it)."""


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


def order_of(row: WorkOrderRow) -> WorkOrder:
    return WorkOrder(
        window=row.window_id,
        clerk=row.clerk_id,
        level=row.level,
        rated_at=row.rated_at,
        callback_due=row.callback_due,
        rectify_due=row.rectify_due,
        history=tuple(Step(s.status, s.at, s.actor, s.note) for s in row.steps),  # type: ignore[arg-type]
        rating_id=row.rating_id,
        id=row.id,
    )


def _new_rating_row(rating: Rating, msg_id: str | None, stored_at: datetime) -> RatingRow:
    return RatingRow(
        msg_id=msg_id,
        origin=rating.origin,
        window_id=rating.window,
        clerk_id=rating.clerk,
        level=rating.level,
        ticket=rating.ticket,
        cases=list(rating.cases),
        day=rating.day,
        rated_at=rating.rated_at,
        device_id=rating.order[0],
        boot=rating.order[1],
        seq=rating.order[2],
        historical=rating.historical,
        stored_at=stored_at,
        duplicate_of=None,
        signals=[],
    )


@dataclass(frozen=True)
class StatsView:
    """Statistics for the API and the sheet: the rows, their totals, the range asked for."""

    by: rules.GroupBy
    period: rules.Period
    start: date
    end: date
    rows: tuple[StatRow, ...]
    totals: StatRow
    names: dict[str, str]
    """Group key → the name people read (window name, clerk name, department)."""


class RatingsService:
    """Ratings, work orders and their alerts for one hall."""

    def __init__(self, engine: Engine, hall: HallConfig, policy: Policy, calendar: WorkCalendar, clock: Clock, load_days: DayLoader) -> None:
        self.engine = engine
        self.hall = hall
        self.policy = policy
        self.calendar = calendar
        self.clock = clock
        self.load_days = load_days
        self.windows = {w.id: w for w in hall.windows}
        self.departments = {w.id: w.department for w in hall.windows}
        self.gateways: dict[str, str] = {}
        """Window → the queue gateway (叫号系统) serving it."""
        for device in hall.devices:
            if device.kind == "queue_gateway":
                for window_id in device.windows:
                    self.gateways.setdefault(window_id, device.id)
        self._watermark = self._taken_until()
        self._rechecked: datetime | None = None
        self._overdue_pass: datetime | None = None
        self._lock = threading.Lock()
        self._transitioned: set[str] = set()
        """Windows whose orders people changed since the last pass (their overdue alert may clear)."""

    def now(self) -> datetime:
        return self.clock().astimezone(HALL_TZ)

    def _taken_until(self) -> int:
        """The id of the last rating event already stored as a rating (tickets after it are taken again, harmlessly)."""
        with Session(self.engine) as session:
            last = session.scalar(select(func.max(EventRow.id)).join(RatingRow, RatingRow.msg_id == EventRow.msg_id))
        return last or 0

    # ------------------------------------------------------------ ingest path

    def follow(self, changes: Changes, sweep: bool) -> None:
        """Called by the ingest writer after each batch and each sweep: adds the alert changes to ``changes``.

        A batch without a rating or ticket costs nothing; each sweep also
        takes any event a failed call left behind.
        """
        rows: list[AlertRow] = []
        if sweep or any(event.type in ("rating", "ticket") for event in changes.events):
            rows = self.take_events()
        if sweep:
            rows += self.sweep()
        if rows:
            now = self.now()
            changes.alerts += [self.alert_json(row, now) for row in rows]

    def alert_json(self, row: AlertRow, now: datetime) -> dict[str, Any]:
        window = self.windows.get(row.window_id)
        return alert_json(row, now, self.policy, window.name if window else row.window_id)

    def take_events(self) -> list[AlertRow]:
        """Store the rating and ticket events stored since the last call; returns changed alerts."""
        changed: list[AlertRow] = []
        while True:
            now = self.now()
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                events = session.execute(
                    select(EventRow.id, EventRow.msg_id, EventRow.type, EventRow.event_time, EventRow.historical, EventRow.device_id, EventRow.boot, EventRow.seq, EventRow.body)
                    .where(EventRow.id > self._watermark, EventRow.type.in_(("rating", "ticket")))
                    .order_by(EventRow.id)
                    .limit(CHUNK)
                ).all()
                if not events:
                    return changed
                days: set[tuple[str, date]] = set()
                tickets: set[tuple[date, str]] = set()
                fresh: list[RatingRow] = []
                for event in events:
                    body = event.body
                    if event.type == "ticket":
                        tickets.add(self._put_ticket(session, body, event.event_time))
                        continue
                    if session.scalar(select(RatingRow.id).where(RatingRow.msg_id == event.msg_id)) is not None:
                        continue  # taken before a restart
                    rating = rules.device_rating(
                        body["window_id"], body["level"], event.event_time, clerk=body.get("clerk_id"), ticket=body.get("ticket"),
                        cases=body.get("cases") or (), historical=event.historical, order=(event.device_id, event.boot, event.seq),
                    )  # fmt: skip
                    fresh.append(self._add_rating(session, rating, event.msg_id, now))
                    days.add((rating.window, rating.day))
                self._resolve(session, fresh, now)
                if tickets:
                    for window_id, day in session.execute(
                        select(RatingRow.window_id, RatingRow.day).where(RatingRow.day.in_({d for d, _ in tickets}), RatingRow.ticket.in_({t for _, t in tickets}))
                    ):
                        days.add((window_id, day))
                for window_id, day in sorted(days):
                    changed += self._evaluate_day(session, window_id, day, now)
                for window_id, month in sorted({(r.window_id, r.day.replace(day=1)) for r in fresh}):
                    changed += self._never_below(session, window_id, month, now)
            self._watermark = events[-1].id
            if len(events) < CHUNK:
                return changed

    def _put_ticket(self, session: Session, body: dict[str, Any], at: datetime) -> tuple[date, str]:
        day = local_day(at)
        row = session.scalars(select(TicketRow).where(TicketRow.day == day, TicketRow.ticket == body["ticket"])).first()
        if row is None:
            row = TicketRow(day=day, ticket=body["ticket"], window_id=body["window_id"], cases=[], settled=False)
            session.add(row)
        finished = body["state"] == "finished"
        if finished or row.finished_at is None:
            row.window_id = body["window_id"]  # the window that finished it (a ticket may be transferred)
        if body.get("clerk_id"):
            row.clerk_id = body["clerk_id"]
        row.cases = list(dict.fromkeys([*row.cases, *(body.get("cases") or [])]))
        if finished:
            row.finished_at = at if row.finished_at is None else max(row.finished_at, at)
        else:
            row.called_at = at if row.called_at is None else min(row.called_at, at)
        session.flush()
        return day, body["ticket"]

    def _add_rating(self, session: Session, rating: Rating, msg_id: str | None, now: datetime) -> RatingRow:
        row = _new_rating_row(rating, msg_id, now)
        session.add(row)
        session.flush()
        session.add_all(RatingKeyRow(key=key, rating_id=row.id) for key in sorted(rating.keys))
        return row

    # ------------------------------------------------------------ 一事一评

    def _component(self, session: Session, seeds: Sequence[RatingRow]) -> list[RatingRow]:
        """The ratings connected to ``seeds`` through shared transaction keys."""
        ids = {row.id for row in seeds}
        keys: set[str] = set()
        frontier = set(ids)
        while frontier:
            found = set(session.scalars(select(RatingKeyRow.key).where(RatingKeyRow.rating_id.in_(frontier)))) - keys
            keys |= found
            frontier = set(session.scalars(select(RatingKeyRow.rating_id).where(RatingKeyRow.key.in_(found)))) - ids if found else set()
            ids |= frontier
        return list(session.scalars(select(RatingRow).where(RatingRow.id.in_(ids)).order_by(RatingRow.id)))

    def _resolve(self, session: Session, fresh: Sequence[RatingRow], now: datetime) -> None:
        """Decide again which rating counts in each transaction touched, and make the work orders follow."""
        done: set[int] = set()
        for seed in fresh:
            if seed.id in done:
                continue
            component = self._component(session, [seed])
            done.update(row.id for row in component)
            ratings = [rating_of(row) for row in component]
            for row, root in zip(component, rules.resolve(ratings), strict=True):
                row.duplicate_of = None if root is None else component[root].id
            session.flush()
            self._follow_orders(session, component, now)

    def _follow_orders(self, session: Session, component: Sequence[RatingRow], now: datetime) -> None:
        by_id = {row.id: row for row in component}
        orders = {o.rating_id: o for o in session.scalars(select(WorkOrderRow).where(WorkOrderRow.rating_id.in_(by_id)))}

        def opens(row: RatingRow) -> bool:
            return row.origin == "device" and row.duplicate_of is None and rules.is_bad(row.level, self.policy)

        for row in sorted(component, key=lambda r: (r.rated_at, r.id)):
            if not opens(row) or row.id in orders:
                continue
            moved = next((orders[d.id] for d in component if d.duplicate_of == row.id and d.id in orders and orders[d.id].status not in rules.FINAL), None)
            if moved is not None:
                del orders[moved.rating_id]
                moved.rating_id, moved.level, moved.clerk_id = row.id, row.level, row.clerk_id
                orders[row.id] = moved
                continue
            order = rules.new_work_order(rating_of(row), self.policy, self._deadlines(row.rated_at))
            orders[row.id] = self._add_order(session, order)
        for rating_id, order_row in orders.items():
            if not opens(by_id[rating_id]) and order_row.status not in rules.FINAL:
                self._store_step(session, order_row, rules.withdraw(order_of(order_row), now, "同一事项已有更早的评价（一事一评），本评价不计"))
        session.flush()

    def _deadlines(self, rated_at: datetime) -> tuple[date, date] | None:
        try:
            return rules.order_deadlines(rated_at, self.policy, self.calendar)
        except CalendarGapError:
            return None  # filled in by a later pass once the calendar covers the days

    def _add_order(self, session: Session, order: WorkOrder) -> WorkOrderRow:
        row = WorkOrderRow(
            rating_id=order.rating_id, window_id=order.window, clerk_id=order.clerk, level=order.level, rated_at=order.rated_at,
            callback_due=order.callback_due, rectify_due=order.rectify_due, status=order.status, final_at=order.final_at,
        )  # fmt: skip
        row.steps = [WorkOrderStepRow(status=s.status, at=s.at, actor=s.actor, note=s.note) for s in order.history]
        session.add(row)
        session.flush()
        return row

    @staticmethod
    def _store_step(session: Session, row: WorkOrderRow, after: WorkOrder) -> None:
        step = after.history[-1]
        row.status, row.final_at = after.status, after.final_at
        row.steps.append(WorkOrderStepRow(status=step.status, at=step.at, actor=step.actor, note=step.note))

    # ------------------------------------------------------------ signals

    def _gateway(self, session: Session, window_id: str, day: date) -> list[tuple[datetime, bool]] | None:
        device = self.gateways.get(window_id)
        if device is None:
            return None
        start = rules.day_start(day)
        rows = list(
            session.execute(
                select(DeviceHealthRow.time, DeviceHealthRow.status).where(
                    DeviceHealthRow.device_id == device, DeviceHealthRow.time >= start, DeviceHealthRow.time < start + timedelta(days=1)
                )
            )
        )
        before = session.execute(
            select(DeviceHealthRow.time, DeviceHealthRow.status)
            .where(DeviceHealthRow.device_id == device, DeviceHealthRow.time < start)
            .order_by(DeviceHealthRow.time.desc(), DeviceHealthRow.id.desc())
            .limit(1)
        ).first()
        if before is not None:
            rows.append(before)
        return [(time, status == "online") for time, status in rows]

    def _evaluate_day(self, session: Session, window_id: str, day: date, now: datetime) -> list[AlertRow]:
        """The window's day of fraud signals, stored on its ratings and as alert rows."""
        if window_id not in self.windows:
            return []
        rows = list(session.scalars(select(RatingRow).where(RatingRow.window_id == window_id, RatingRow.day == day, RatingRow.origin == "device").order_by(RatingRow.id)))
        numbers = {row.ticket for row in rows if row.ticket}
        tickets = {
            row.ticket: ticket_of(row)
            for row in (session.scalars(select(TicketRow).where(TicketRow.day == day, TicketRow.ticket.in_(numbers))) if numbers else ())
        }
        observations = self.load_days(session, [window_id], day)[window_id]
        result = rules.evaluate_window_day(
            window_id, day, [rating_of(row) for row in rows], tickets, observations, self._gateway(session, window_id, day), self.policy, now
        )
        for row, signals in zip(rows, result.signals, strict=True):
            if sorted(signals) != row.signals:
                row.signals = sorted(signals)
        start = rules.day_start(day)
        stored = session.scalars(
            select(AlertRow).where(
                AlertRow.window_id == window_id, AlertRow.type.in_(SIGNAL_TYPES), AlertRow.raised_at >= start, AlertRow.raised_at < start + timedelta(days=1)
            )
        )
        return reconcile_alerts(session, stored, result.alerts)

    def _never_below(self, session: Session, window_id: str, month: date, now: datetime) -> list[AlertRow]:
        first, after = rules.month_bounds(month)
        rows = session.scalars(
            select(RatingRow).where(
                RatingRow.window_id == window_id, RatingRow.origin == "device", RatingRow.duplicate_of.is_(None), RatingRow.day >= first, RatingRow.day < after
            )
        )
        alert = rules.never_below(window_id, first, [rating_of(row) for row in rows], self.policy, now)
        stored = session.scalars(
            select(AlertRow).where(
                AlertRow.window_id == window_id,
                AlertRow.type == "rating_never_below",
                AlertRow.raised_at >= rules.day_start(first),
                AlertRow.raised_at < rules.day_start(after),
            )
        )
        return reconcile_alerts(session, stored, [alert] if alert else [])

    # ------------------------------------------------------------ periodic work

    def sweep(self) -> list[AlertRow]:
        """The periodic pass, at most once per :data:`RECHECK` of hall time (and after people changed orders)."""
        now = self.now()
        with self._lock:
            transitioned, self._transitioned = self._transitioned, set()
        if self._rechecked is not None and now - self._rechecked < RECHECK:
            return self._overdue(now, transitioned) if transitioned else []
        self._rechecked = now
        self._give_defaults(now)
        self._fill_deadlines()
        changed = self._overdue(now, None)
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            today = now.date()
            days = set(session.execute(select(RatingRow.window_id, RatingRow.day).where(RatingRow.day == today, RatingRow.origin == "device").distinct()))
            months: set[tuple[str, date]] = set()
            for window_id, type_, raised in session.execute(
                select(AlertRow.window_id, AlertRow.type, AlertRow.raised_at).where(AlertRow.cleared_at.is_(None), AlertRow.type.in_((*SIGNAL_TYPES, "rating_never_below")))
            ):
                day = local_day(raised)
                if type_ == "rating_never_below":
                    months.add((window_id, day.replace(day=1)))
                else:
                    days.add((window_id, day))
            for window_id, day in sorted(days):
                changed += self._evaluate_day(session, window_id, day, now)
            for window_id, month in sorted(months):
                changed += self._never_below(session, window_id, month, now)
        return changed

    def _give_defaults(self, now: datetime) -> None:
        """Default ratings for finished tickets left unrated past the policy's days (none if the policy has no default)."""
        after = self.policy.ratings.default_after_days
        if after is None:
            return
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            due = session.scalars(
                select(TicketRow).where(TicketRow.settled.is_(False), TicketRow.finished_at <= now - timedelta(days=after)).order_by(TicketRow.id).limit(CHUNK)
            ).all()
            given: list[RatingRow] = []
            for row in due:
                ticket = ticket_of(row)
                rated = session.scalar(select(RatingKeyRow.id).where(RatingKeyRow.key.in_(ticket.keys)).limit(1)) is not None
                rating = rules.due_default(ticket, rated, self.policy, now)
                if rating is not None:
                    given.append(self._add_rating(session, rating, None, now))
                row.settled = True
            self._resolve(session, given, now)

    def _fill_deadlines(self) -> None:
        """Deadlines a calendar gap left empty, once the calendar covers them (a hall added next year's file)."""
        with Session(self.engine) as session, session.begin():
            for row in session.scalars(select(WorkOrderRow).where(WorkOrderRow.callback_due.is_(None), WorkOrderRow.status.not_in(OPEN_EXCLUDED))):
                deadlines = self._deadlines(row.rated_at)
                if deadlines is not None:
                    row.callback_due, row.rectify_due = deadlines

    def _overdue(self, now: datetime, windows: set[str] | None) -> list[AlertRow]:
        """Raise or clear the windows' overdue alerts (``windows`` None: every window that may have changed).

        A window's episodes are computed from its open orders and the orders
        finished since its active episode began (or since the previous full
        pass): those finished earlier ended their overdue spans before.
        Episodes that ended before the window's last cleared one are on record.
        """
        changed: list[AlertRow] = []
        overdue = (AlertRow.type == "work_order_overdue")
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            since = self._overdue_pass
            if windows is None:
                windows = set(session.scalars(select(WorkOrderRow.window_id).where(WorkOrderRow.status.not_in(OPEN_EXCLUDED)).distinct()))
                windows |= set(session.scalars(select(AlertRow.window_id).where(overdue, AlertRow.cleared_at.is_(None)).distinct()))
                finished = WorkOrderRow.final_at.is_not(None) if since is None else WorkOrderRow.final_at > since
                windows |= set(session.scalars(select(WorkOrderRow.window_id).where(finished).distinct()))
                self._overdue_pass = now
            for window_id in sorted(windows):
                mine = (AlertRow.window_id == window_id) & overdue
                active = list(session.scalars(select(AlertRow).where(mine, AlertRow.cleared_at.is_(None))))
                horizon = session.scalar(select(func.max(AlertRow.cleared_at)).where(mine))
                bound = min(row.raised_at for row in active) if active else since
                query = select(WorkOrderRow).where(WorkOrderRow.window_id == window_id)
                if bound is not None:
                    query = query.where(WorkOrderRow.status.not_in(OPEN_EXCLUDED) | (WorkOrderRow.final_at > bound))
                computed = [
                    alert
                    for alert in rules.overdue_alerts(window_id, [order_of(row) for row in session.scalars(query)], self.policy, now)
                    if alert.cleared_at is None or horizon is None or alert.cleared_at > horizon
                ]
                raised = {alert.raised_at for alert in computed}
                if raised:
                    active += session.scalars(select(AlertRow).where(mine, AlertRow.cleared_at.is_not(None), AlertRow.raised_at.in_(raised)))
                changed += reconcile_alerts(session, active, computed)
        return changed

    # ------------------------------------------------------------ work orders (API)

    def _order_row(self, session: Session, order_id: int) -> WorkOrderRow:
        row = session.get(WorkOrderRow, order_id)
        if row is None:
            raise NotFound(f"no work order {order_id}")
        return row

    def get_order(self, order_id: int) -> tuple[WorkOrder, RatingRow]:
        with Session(self.engine) as session:
            row = self._order_row(session, order_id)
            return order_of(row), session.get_one(RatingRow, row.rating_id)

    def orders(self, status: str | None, window: str | None, overdue_only: bool, limit: int) -> list[tuple[WorkOrder, RatingRow]]:
        """Work orders newest first, with their ratings; ``overdue_only`` keeps those past a deadline now."""
        now = self.now()
        query = select(WorkOrderRow, RatingRow).join(RatingRow, RatingRow.id == WorkOrderRow.rating_id)
        if status:
            query = query.where(WorkOrderRow.status == status)
        if window:
            query = query.where(WorkOrderRow.window_id == window)
        if overdue_only:
            query = query.where(WorkOrderRow.status.not_in(OPEN_EXCLUDED))
        query = query.order_by(WorkOrderRow.rated_at.desc(), WorkOrderRow.id.desc())
        found = []
        with Session(self.engine) as session:
            for order_row, rating_row in session.execute(query if overdue_only else query.limit(limit)):
                order = order_of(order_row)
                if overdue_only and not rules.overdue(order, now):
                    continue
                found.append((order, rating_row))
                if len(found) >= limit:
                    break
        return found

    def transition(self, order_id: int, action: str, actor: str, note: str) -> tuple[WorkOrder, RatingRow]:
        """Take one step now; NotFound, or TransitionError with the rule's reason (also when another request changed the order meanwhile)."""
        now = self.now()
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            row = self._order_row(session, order_id)
            before = order_of(row)
            after = rules.act(before, action, actor, note, now)
            step = after.history[-1]
            # Compare-and-set: a concurrent step (or the writer withdrawing the order) makes this one fail.
            changed = session.execute(
                update(WorkOrderRow)
                .where(WorkOrderRow.id == order_id, WorkOrderRow.status == before.status)
                .values(status=after.status, final_at=after.final_at)
                .execution_options(synchronize_session=False)
            ).rowcount
            if changed != 1:
                raise rules.TransitionError(f"work order {order_id} was changed by another request; reload it and try again")
            session.add(WorkOrderStepRow(order_id=order_id, status=step.status, at=step.at, actor=step.actor, note=step.note))
            session.flush()
            session.expire(row)
            result = order_of(self._order_row(session, order_id)), session.get_one(RatingRow, row.rating_id)
        with self._lock:
            self._transitioned.add(before.window)
        return result

    # ------------------------------------------------------------ reading

    def ratings(
        self, *, start: date, end: date, window: str | None, clerk: str | None, origin: str | None, counted: bool | None, signal: str | None, limit: int
    ) -> list[tuple[RatingRow, int | None]]:
        """Ratings of the days ``start``..``end`` newest first, each with its work order id."""
        query = select(RatingRow, WorkOrderRow.id).outerjoin(WorkOrderRow, WorkOrderRow.rating_id == RatingRow.id)
        query = query.where(RatingRow.day >= start, RatingRow.day <= end)
        if window:
            query = query.where(RatingRow.window_id == window)
        if clerk:
            query = query.where(RatingRow.clerk_id == clerk)
        if origin:
            query = query.where(RatingRow.origin == origin)
        if counted is not None:
            query = query.where(RatingRow.duplicate_of.is_(None) if counted else RatingRow.duplicate_of.is_not(None))
        query = query.order_by(RatingRow.rated_at.desc(), RatingRow.id.desc())
        with Session(self.engine) as session:
            found = []
            for row, order_id in session.execute(query if signal else query.limit(limit)):
                if signal and signal not in row.signals:
                    continue
                found.append((row, order_id))
                if len(found) >= limit:
                    break
            return found

    def staff_names(self) -> dict[str, str]:
        with Session(self.engine) as session:
            return {person: name for person, name in session.execute(select(StaffRow.id, StaffRow.name)) if name}

    def stats(self, by: rules.GroupBy, period: rules.Period, start: date, end: date) -> StatsView:
        """Counts, rates and ranks of the days ``start``..``end`` (inclusive)."""
        now = self.now()
        with Session(self.engine) as session:
            ratings = [rating_of(row) for row in session.scalars(select(RatingRow).where(RatingRow.day >= start, RatingRow.day <= end))]
            orders = [
                order_of(row)
                for row in session.scalars(
                    select(WorkOrderRow).where(WorkOrderRow.rated_at >= rules.day_start(start), WorkOrderRow.rated_at < rules.day_start(end + timedelta(days=1)))
                )
            ]
        rows = rules.statistics(ratings, orders, by, period, self.departments, self.policy, now)
        label = start.isoformat() if start == end else f"{start.isoformat()}—{end.isoformat()}"
        return StatsView(by, period, start, end, rows, rules.totals(rows, label), self.group_names(by, (r.key for r in rows)))

    def group_names(self, by: rules.GroupBy, keys: Iterable[str]) -> dict[str, str]:
        if by == "window":
            return {key: self.windows[key].name if key in self.windows else key for key in keys}
        if by == "clerk":
            staff = self.staff_names()
            return {key: staff.get(key, key) if key else "（未登录）" for key in keys}
        return {key: key or "（未知部门）" for key in keys}

    def department_of(self, by: rules.GroupBy, key: str) -> str:
        """The department a window's or clerk's row belongs to (a clerk: of the first window whose roster names them)."""
        if by == "window":
            window = self.windows.get(key)
            return window.department if window else ""
        if by == "clerk":
            return next((w.department for w in self.hall.windows if key in w.clerks), "")
        return key

    def orders_between(self, start: date, end: date) -> list[tuple[WorkOrder, RatingRow]]:
        """The work orders of the ratings of ``start``..``end``, oldest first (the sheet's second table)."""
        with Session(self.engine) as session:
            rows = session.execute(
                select(WorkOrderRow, RatingRow)
                .join(RatingRow, RatingRow.id == WorkOrderRow.rating_id)
                .where(WorkOrderRow.rated_at >= rules.day_start(start), WorkOrderRow.rated_at < rules.day_start(end + timedelta(days=1)))
                .order_by(WorkOrderRow.rated_at, WorkOrderRow.id)
            )
            return [(order_of(order_row), rating_row) for order_row, rating_row in rows]


def order_deadline_error(order: WorkOrder, calendar: WorkCalendar, policy: Policy) -> str | None:
    """Why an order has no deadlines yet (the calendar's gap), else None."""
    if order.callback_due is not None:
        return None
    try:
        rules.order_deadlines(order.rated_at, policy, calendar)
    except CalendarGapError as exc:
        return str(exc)
    return None
