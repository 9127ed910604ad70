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

One database serves a district of halls, one service per hall: every row
it writes carries its hall and every query reads that hall's rows only —
queue tickets (A001) and the transaction keys built from them repeat in
every hall, so a key of one hall must never meet a rating of another.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine, Row
from sqlalchemy.orm import Session

from broker.timeutil import HALL_TZ, Clock
from server.config.hall import HallConfig
from server.db import (
    AlertRow,
    EventRow,
    RatingKeyRow,
    RatingRow,
    StaffRow,
    TicketRow,
    WorkOrderRow,
    WorkOrderStepRow,
)
from server.ingest.batch import Changes
from server.ratings.signals import (
    SIGNAL_TYPES,
    DayLoader,
    HeldSignals,
    rating_of,
    ticket_of,
)
from server.rules import ratings as rules
from server.rules.attendance import local_day
from server.rules.calendar import CalendarGapError, WorkCalendar
from server.rules.policy import Policy
from server.rules.ratings import Rating, StatRow, Step, WorkOrder
from server.supervision.service import alert_json, reconcile_alerts

RECHECK = timedelta(seconds=60)
"""Hall time between periodic passes (defaults, deadlines, overdue, signals of the day)."""
CHUNK = 1000
"""Rating and ticket events taken per transaction."""
OPEN_EXCLUDED = tuple(sorted(rules.FINAL))
"""Statuses of a finished order, for SQL (``status NOT IN``: the order is open)."""


class NotFound(LookupError):
    """No such work order (the message names it)."""


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


def _new_rating_row(hall_id: str, rating: Rating, msg_id: str | None, stored_at: datetime) -> RatingRow:
    return RatingRow(
        hall_id=hall_id,
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
    """Ratings, work orders and their alerts for one hall (of the many a district database holds)."""

    def __init__(self, engine: Engine, hall: HallConfig, policy: Policy, calendar: WorkCalendar, clock: Clock, load_days: DayLoader) -> None:
        """``load_days``: ``Supervisor.load_days``, how the fraud signals read a window's day of observations."""
        self.engine = engine
        self.hall = hall
        self.hall_id = hall.hall.id
        """Stamped on every row written, and the filter of every query that is not already one window's or one row's."""
        self.policy = policy
        self.calendar = calendar
        self.clock = clock
        self.windows = {w.id: w for w in hall.windows}
        self.departments = {w.id: w.department for w in hall.windows}
        self.gateways: dict[str, str] = {}
        """Window → the queue gateway (叫号系统) serving it."""
        for device in hall.devices:
            if device.kind == "queue_gateway":
                for window_id in device.windows:
                    self.gateways.setdefault(window_id, device.id)
        self.signals = HeldSignals(hall, policy, self.gateways, load_days)
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
            last = session.scalar(select(func.max(EventRow.id)).join(RatingRow, RatingRow.msg_id == EventRow.msg_id).where(EventRow.hall_id == self.hall_id))
        return last or 0

    # ------------------------------------------------------------ ingest path

    def follow(self, changes: Changes, sweep: bool) -> None:
        """Called by the ingest writer after each batch and each sweep: adds the alert changes to ``changes``.

        A batch without a rating or ticket costs its seat facts only; each
        sweep also takes any event a failed call left behind.
        """
        try:
            rows = self._take(changes, sweep)
        except BaseException:
            self.signals.forget()  # what it held may not have been written
            raise
        if rows:
            now = self.now()
            changes.alerts += [self.alert_json(row, now) for row in rows]

    def _take(self, changes: Changes, sweep: bool) -> list[AlertRow]:
        self.signals.observe(changes)
        rows: list[AlertRow] = []
        if sweep or any(event.type in ("rating", "ticket") for event in changes.events):
            rows = self.take_events()
        if sweep:
            rows += self.sweep()
        if self.signals.touched():  # seat facts of held days, in a batch without ratings
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                rows += self.signals.settle(session, self.now())
        return rows

    def alert_json(self, row: AlertRow, now: datetime) -> dict[str, Any]:
        window = self.windows.get(row.window_id)
        return alert_json(row, now, self.policy, window.name if window else row.window_id)

    def take_events(self) -> list[AlertRow]:
        """Store the rating and ticket events stored since the last call; returns changed alerts.

        A chunk costs a bounded number of statements whatever the day holds:
        one to find the ratings taken before a restart, one flush for the new
        rows, a few to find their transactions (:meth:`_resolve`), and the
        signals of the days and months touched (:class:`HeldSignals`).
        """
        changed: list[AlertRow] = []
        while True:
            now = self.now()
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                events = session.execute(
                    select(EventRow.id, EventRow.msg_id, EventRow.type, EventRow.event_time, EventRow.historical, EventRow.device_id, EventRow.boot, EventRow.seq, EventRow.body)
                    .where(EventRow.id > self._watermark, EventRow.hall_id == self.hall_id, EventRow.type.in_(("rating", "ticket")))
                    .order_by(EventRow.id)
                    .limit(CHUNK)
                ).all()
                if not events:
                    return changed
                ratings = [event for event in events if event.type == "rating"]
                taken = set(session.scalars(select(RatingRow.msg_id).where(RatingRow.msg_id.in_([e.msg_id for e in ratings])))) if ratings else set()
                for row in self._put_tickets(session, [event for event in events if event.type == "ticket"]):
                    self.signals.ticket_stored(row)
                fresh = [
                    self._new_rating(session, rules.device_rating(
                        e.body["window_id"], e.body["level"], e.event_time, clerk=e.body.get("clerk_id"), ticket=e.body.get("ticket"),
                        cases=e.body.get("cases") or (), historical=e.historical, order=(e.device_id, e.boot, e.seq),
                    ), e.msg_id, now)
                    for e in ratings if e.msg_id not in taken  # taken before a restart
                ]  # fmt: skip
                self._store_ratings(session, fresh, now)
                changed += self.signals.settle(session, now)
            self._watermark = events[-1].id
            if len(events) < CHUNK:
                return changed

    def _put_tickets(self, session: Session, events: Sequence[Row[Any]]) -> list[TicketRow]:
        """Store a chunk's ticket events (called, finished) on their tickets' rows: one read, one flush."""
        if not events:
            return []
        wanted = {(local_day(e.event_time), e.body["ticket"]) for e in events}
        rows = {
            (row.day, row.ticket): row
            for row in session.scalars(
                select(TicketRow).where(TicketRow.hall_id == self.hall_id, TicketRow.ticket.in_({t for _, t in wanted}), TicketRow.day.in_({d for d, _ in wanted}))
            )
        }
        touched: dict[tuple[date, str], TicketRow] = {}
        for event in events:
            body, at, key = event.body, event.event_time, (local_day(event.event_time), event.body["ticket"])
            row = rows.get(key)
            if row is None:
                row = rows[key] = TicketRow(hall_id=self.hall_id, day=key[0], ticket=key[1], window_id=body["window_id"], cases=[], settled=False)
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
            touched[key] = row
        session.flush()
        return list(touched.values())

    def _new_rating(self, session: Session, rating: Rating, msg_id: str | None, now: datetime) -> tuple[RatingRow, Rating]:
        row = _new_rating_row(self.hall_id, rating, msg_id, now)
        session.add(row)
        return row, rating

    def _store_ratings(self, session: Session, fresh: Sequence[tuple[RatingRow, Rating]], now: datetime) -> None:
        """New ratings (added to the session): their keys, their transactions, their signals."""
        if not fresh:
            return
        session.flush()
        session.add_all(RatingKeyRow(hall_id=self.hall_id, key=key, rating_id=row.id) for row, rating in fresh for key in sorted(rating.keys))
        session.flush()
        recounted = self._resolve(session, [row for row, rating in fresh if rating.keys], now)
        rows = [row for row, _ in fresh]
        self._follow_orders(session, [[row] for row, rating in fresh if not rating.keys], now)
        self.signals.ratings_stored(session, rows)
        self.signals.counting_changed(session, list({row.id: row for row in [*rows, *recounted]}.values()))

    # ------------------------------------------------------------ 一事一评

    def _components(self, session: Session, seeds: Sequence[RatingRow]) -> list[list[RatingRow]]:
        """The transactions of ``seeds``: the ratings connected to them through shared keys, each in id order.

        The key links are walked for all seeds at once, a few statements per
        chunk, however many ratings the day already holds.
        """
        ids = {row.id for row in seeds}
        links: set[tuple[int, str]] = set()
        keys: set[str] = set()
        frontier = set(ids)
        while frontier:
            found = {(rating_id, key) for rating_id, key in session.execute(select(RatingKeyRow.rating_id, RatingKeyRow.key).where(RatingKeyRow.rating_id.in_(frontier)))}
            new_keys = {key for _, key in found} - keys
            keys |= new_keys
            # Keys repeat in every hall (ticket A001 of the day): only this hall's ratings share one.
            same_key = select(RatingKeyRow.rating_id, RatingKeyRow.key).where(RatingKeyRow.hall_id == self.hall_id, RatingKeyRow.key.in_(new_keys))
            linked = {(rating_id, key) for rating_id, key in session.execute(same_key)} if new_keys else set()
            links |= found | linked
            frontier = {rating_id for rating_id, _ in linked} - ids
            ids |= frontier
        parent = {rating_id: rating_id for rating_id in ids}

        def root(item: int) -> int:
            while parent[item] != item:
                parent[item] = parent[parent[item]]
                item = parent[item]
            return item

        owner: dict[str, int] = {}
        for rating_id, key in sorted(links):
            if key in owner:
                parent[root(rating_id)] = root(owner[key])
            else:
                owner[key] = rating_id
        components: dict[int, list[RatingRow]] = {}
        for row in session.scalars(select(RatingRow).where(RatingRow.id.in_(ids)).order_by(RatingRow.id)):
            components.setdefault(root(row.id), []).append(row)
        return list(components.values())

    def _resolve(self, session: Session, fresh: Sequence[RatingRow], now: datetime) -> list[RatingRow]:
        """Decide again which rating counts in each transaction touched, and make the work orders follow.

        Returns the ratings whose counting changed (the never-below months take them).
        """
        if not fresh:
            return []
        components = self._components(session, fresh)
        recounted = []
        for component in components:
            for row, root in zip(component, rules.resolve([rating_of(row) for row in component]), strict=True):
                duplicate_of = None if root is None else component[root].id
                if row.duplicate_of != duplicate_of:
                    row.duplicate_of = duplicate_of
                    recounted.append(row)
        session.flush()
        self._follow_orders(session, components, now)
        return recounted

    def _follow_orders(self, session: Session, components: Sequence[Sequence[RatingRow]], now: datetime) -> None:
        """Create, move or withdraw the work orders of the transactions given (their orders read in one statement)."""
        ids = [row.id for component in components for row in component]
        if not ids:
            return
        found = {o.rating_id: o for o in session.scalars(select(WorkOrderRow).where(WorkOrderRow.rating_id.in_(ids)))}
        for component in components:
            self._follow_component(session, component, {row.id: found[row.id] for row in component if row.id in found}, now)
        session.flush()

    def _follow_component(self, session: Session, component: Sequence[RatingRow], orders: dict[int, WorkOrderRow], now: datetime) -> None:
        by_id = {row.id: row for row in component}

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

    def _deadlines(self, rated_at: datetime) -> tuple[date, date] | None:
        try:
            return rules.order_deadlines(rated_at, self.policy, self.calendar)
        except CalendarGapError:
            return None  # filled in by a later pass once the calendar covers the days

    def _add_order(self, session: Session, order: WorkOrder) -> WorkOrderRow:
        row = WorkOrderRow(
            hall_id=self.hall_id, rating_id=order.rating_id, window_id=order.window, clerk_id=order.clerk, level=order.level, rated_at=order.rated_at,
            callback_due=order.callback_due, rectify_due=order.rectify_due, status=order.status, final_at=order.final_at,
        )  # fmt: skip
        row.steps = [WorkOrderStepRow(status=s.status, at=s.at, actor=s.actor, note=s.note) for s in order.history]
        session.add(row)
        return row

    @staticmethod
    def _store_step(session: Session, row: WorkOrderRow, after: WorkOrder) -> None:
        step = after.history[-1]
        row.status, row.final_at = after.status, after.final_at
        row.steps.append(WorkOrderStepRow(status=step.status, at=step.at, actor=step.actor, note=step.note))

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
            days = set(
                session.execute(
                    select(RatingRow.window_id, RatingRow.day).where(RatingRow.hall_id == self.hall_id, RatingRow.day == today, RatingRow.origin == "device").distinct()
                )
            )
            months: set[tuple[str, date]] = set()
            for window_id, type_, raised in session.execute(
                select(AlertRow.window_id, AlertRow.type, AlertRow.raised_at).where(
                    AlertRow.hall_id == self.hall_id, AlertRow.cleared_at.is_(None), AlertRow.type.in_((*SIGNAL_TYPES, "rating_never_below"))
                )
            ):
                day = local_day(raised)
                if type_ == "rating_never_below":
                    months.add((window_id, day.replace(day=1)))
                else:
                    days.add((window_id, day))
            self.signals.touch(days, months)
            changed += self.signals.sweep(session, now)
        return changed

    def _give_defaults(self, now: datetime) -> None:
        """Default ratings for finished tickets left unrated past the policy's days (none if the policy has no default)."""
        after = self.policy.ratings.default_after_days
        if after is None:
            return
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            due = session.scalars(
                select(TicketRow)
                .where(TicketRow.hall_id == self.hall_id, TicketRow.settled.is_(False), TicketRow.finished_at <= now - timedelta(days=after))
                .order_by(TicketRow.id)
                .limit(CHUNK)
            ).all()
            given: list[tuple[RatingRow, Rating]] = []
            for row in due:
                ticket = ticket_of(row)
                rated = session.scalar(select(RatingKeyRow.id).where(RatingKeyRow.hall_id == self.hall_id, RatingKeyRow.key.in_(ticket.keys)).limit(1)) is not None
                rating = rules.due_default(ticket, rated, self.policy, now)
                if rating is not None:
                    given.append(self._new_rating(session, rating, None, now))
                row.settled = True
            self._store_ratings(session, given, now)

    def _fill_deadlines(self) -> None:
        """Deadlines a calendar gap left empty, once the calendar covers them (a hall added next year's file)."""
        with Session(self.engine) as session, session.begin():
            for row in session.scalars(
                select(WorkOrderRow).where(WorkOrderRow.hall_id == self.hall_id, WorkOrderRow.callback_due.is_(None), WorkOrderRow.status.not_in(OPEN_EXCLUDED))
            ):
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
                ours = WorkOrderRow.hall_id == self.hall_id
                windows = set(session.scalars(select(WorkOrderRow.window_id).where(ours, WorkOrderRow.status.not_in(OPEN_EXCLUDED)).distinct()))
                windows |= set(session.scalars(select(AlertRow.window_id).where(AlertRow.hall_id == self.hall_id, overdue, AlertRow.cleared_at.is_(None)).distinct()))
                finished = WorkOrderRow.final_at.is_not(None) if since is None else WorkOrderRow.final_at > since
                windows |= set(session.scalars(select(WorkOrderRow.window_id).where(ours, finished).distinct()))
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
        """The order of this hall (another hall's order is no order here: its API cannot read or step it)."""
        row = session.get(WorkOrderRow, order_id)
        if row is None or row.hall_id != self.hall_id:
            raise NotFound(f"no work order {order_id}")
        return row

    def get_order(self, order_id: int) -> tuple[WorkOrder, RatingRow]:
        with Session(self.engine) as session:
            row = self._order_row(session, order_id)
            return order_of(row), session.get_one(RatingRow, row.rating_id)

    def orders(self, status: str | None, window: str | None, overdue_only: bool, limit: int) -> list[tuple[WorkOrder, RatingRow]]:
        """Work orders newest first, with their ratings; ``overdue_only`` keeps those past a deadline now."""
        now = self.now()
        query = select(WorkOrderRow, RatingRow).join(RatingRow, RatingRow.id == WorkOrderRow.rating_id).where(WorkOrderRow.hall_id == self.hall_id)
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
        query = query.where(RatingRow.hall_id == self.hall_id, RatingRow.day >= start, RatingRow.day <= end)
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
            ratings = [rating_of(row) for row in session.scalars(select(RatingRow).where(RatingRow.hall_id == self.hall_id, RatingRow.day >= start, RatingRow.day <= end))]
            orders = [
                order_of(row)
                for row in session.scalars(
                    select(WorkOrderRow).where(
                        WorkOrderRow.hall_id == self.hall_id,
                        WorkOrderRow.rated_at >= rules.day_start(start),
                        WorkOrderRow.rated_at < rules.day_start(end + timedelta(days=1)),
                    )
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
                .where(
                    WorkOrderRow.hall_id == self.hall_id,
                    WorkOrderRow.rated_at >= rules.day_start(start),
                    WorkOrderRow.rated_at < rules.day_start(end + timedelta(days=1)),
                )
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
