"""好差评: ratings, their work orders, fraud signals and statistics — pure.

Seed 003 (衢江区 四(六) 政务服务"好差评"管理制度) is the workflow: one rating
per transaction (一事一评, 二(三)1(4)), a batch of cases filed together is rated
once (四(六)5), a 不满意 or 非常不满意 rating creates a work order that the
handling unit calls back, verifies and handles within N working days
(四(六)6), staff must not force or fake a rating (四(六)4), and the results go
into appraisal (四(六)8).  This module is that workflow as data and pure
functions — no I/O, no clock: the caller passes the time, the policy and the
working-day calendar, and stores what comes back.

Transactions (一事一评)
    A rating's transaction is named by its keys: its queue ticket (scoped to
    the day: queue numbers restart every morning) and every case number it
    covers.  Two ratings sharing any key rate the same transaction; the one
    that counts is the first real rating by event time (:func:`resolve`), the
    others are duplicates — stored, reported, never counted.  A batch filed
    together carries all its case numbers in one rating, so it is one
    transaction.  Deciding by event time, not arrival, makes the result the
    same whatever order the events arrive in.
Default ratings
    A finished ticket still unrated ``ratings.default_after_days`` after it
    finished gets the policy's default level (:func:`due_default`).  It is a
    rating of origin ``default``: any real rating of the transaction beats
    it, it never creates a work order, and statistics count it apart.
Work orders
    A counted rating at or below ``ratings.bad_at_most`` opens one
    (:func:`new_work_order`); its life is a small state machine
    (:func:`act`), its deadlines are working days (:func:`order_deadlines`).
Fraud signals
    Per window and day (:func:`evaluate_window_day`): a rating while the
    staff seat was vacant, a rating with no ticket served at the window, a
    rating credited to a clerk other than the one seen in the seat, and
    bursts of ratings; per window and month (:func:`never_below`): ratings
    that never fall below a level.  Signals are prompts to look, never
    findings: a camera or queue system that is offline makes no signal.
Statistics
    :func:`statistics` — satisfaction, bad-rating, rectification and on-time
    rates per window, clerk or department and day or month, with rankings;
    default ratings, duplicates and ratings overturned on appeal are counted
    apart and never enter a rate.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Literal

from broker.timeutil import HALL_TZ
from server.rules.attendance import local_day
from server.rules.calendar import WorkCalendar
from server.rules.policy import Policy
from server.rules.supervision import UNKNOWN_PERSON, Alert, Observation, Rule

# --------------------------------------------------------------------------
# Levels
# --------------------------------------------------------------------------

LEVEL_ZH: dict[int, str] = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
SATISFIED_AT_LEAST = 4
"""满意率 counts 非常满意 and 满意; 基本满意 is neither satisfied nor bad."""

SYSTEM_ACTOR = "hallwatch"


def is_bad(level: int, policy: Policy) -> bool:
    """Is ``level`` a 差评 (003 四(六)6: 不满意 or 非常不满意 with the presets)?"""
    return level <= policy.ratings.bad_at_most


def _aware(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise TypeError(f"{what} must be a timezone-aware datetime, not {value!r}")
    return value


def day_start(day: date) -> datetime:
    """00:00 of ``day`` in hall time."""
    return datetime.combine(day, time.min, HALL_TZ)


# --------------------------------------------------------------------------
# Ratings and transactions
# --------------------------------------------------------------------------

Origin = Literal["device", "default"]


def ticket_key(day: date, ticket: str) -> str:
    """A queue ticket is unique within its day: ``2026-03-02:A023``."""
    return f"{day.isoformat()}:{ticket}"


def transaction_keys(day: date, ticket: str | None, cases: Iterable[str]) -> frozenset[str]:
    """The keys naming a transaction: its ticket of the day and each case number (办件编号)."""
    keys = {f"case:{case}" for case in cases}
    if ticket:
        keys.add(f"ticket:{ticket_key(day, ticket)}")
    return frozenset(keys)


@dataclass(frozen=True)
class Rating:
    """One rating: pressed on an evaluator (``device``) or given by the system (``default``)."""

    window: str
    level: int
    rated_at: datetime
    """When it was pressed; for a default rating, when its ticket finished (the transaction's time)."""
    day: date
    """The transaction's day in hall time (statistics and ticket keys use it)."""
    clerk: str | None = None
    ticket: str | None = None
    cases: tuple[str, ...] = ()
    origin: Origin = "device"
    historical: bool = False
    order: tuple[str, int, int] = ("", 0, 0)
    """(device, boot, seq): breaks ties between ratings at the same moment."""
    counted: bool = True
    """False for a duplicate (the transaction was already rated), see :func:`resolve`."""
    signals: frozenset[str] = frozenset()
    id: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.level, bool) or self.level not in LEVEL_ZH:
            raise ValueError(f"a rating level is 1–5 ({', '.join(f'{k} {v}' for k, v in LEVEL_ZH.items())}), not {self.level!r}")
        _aware(self.rated_at, "rated_at")

    @property
    def keys(self) -> frozenset[str]:
        return transaction_keys(self.day, self.ticket, self.cases)


def device_rating(
    window: str,
    level: int,
    rated_at: datetime,
    *,
    clerk: str | None = None,
    ticket: str | None = None,
    cases: Iterable[str] = (),
    historical: bool = False,
    order: tuple[str, int, int] = ("", 0, 0),
) -> Rating:
    """A rating pressed on a keypad; its day is the hall-local day it was pressed."""
    return Rating(window, level, rated_at, local_day(rated_at), clerk, ticket, tuple(cases), "device", historical, order)


def _precedence(rating: Rating) -> tuple[object, ...]:
    # Real ratings first (a default only stands in for silence), then by event time.
    return (rating.origin != "device", rating.rated_at, rating.order, rating.ticket or "", rating.cases, rating.level)


def resolve(ratings: Sequence[Rating]) -> tuple[int | None, ...]:
    """For each rating, ``None`` if it counts, else the index of the counted rating it duplicates.

    Ratings are taken in order of precedence — real before default, then
    event time, then (device, boot, seq) — and a rating whose keys meet a
    key already taken is a duplicate of the rating that took it first.  A
    duplicate takes its own other keys too (a second press for the same
    ticket also rates the cases it names).  A rating with no keys (no ticket,
    no case) always counts: nothing names its transaction.
    """
    owner: dict[str, int] = {}
    roots: list[int | None] = [None] * len(ratings)
    for index in sorted(range(len(ratings)), key=lambda i: _precedence(ratings[i])):
        keys = ratings[index].keys
        claimed = sorted({owner[k] for k in keys if k in owner}, key=lambda i: _precedence(ratings[i]))
        root = claimed[0] if claimed else index
        roots[index] = None if root == index else root
        for key in keys:
            owner.setdefault(key, root)
    return tuple(roots)


def mark_duplicates(ratings: Sequence[Rating]) -> tuple[Rating, ...]:
    """The ratings with ``counted`` set by :func:`resolve`."""
    return tuple(replace(r, counted=root is None) for r, root in zip(ratings, resolve(ratings), strict=True))


@dataclass(frozen=True)
class Ticket:
    """A queue ticket (排队号) as the queue system reported it."""

    window: str
    ticket: str
    day: date
    called_at: datetime | None = None
    finished_at: datetime | None = None
    clerk: str | None = None
    cases: tuple[str, ...] = ()

    @property
    def first_seen(self) -> datetime | None:
        seen = [t for t in (self.called_at, self.finished_at) if t is not None]
        return min(seen) if seen else None

    @property
    def keys(self) -> frozenset[str]:
        return transaction_keys(self.day, self.ticket, self.cases)


def default_due(ticket: Ticket, policy: Policy) -> datetime | None:
    """When a finished ticket left unrated gets the default rating: ``default_after_days`` × 24 h after it finished."""
    days = policy.ratings.default_after_days
    if days is None or ticket.finished_at is None:
        return None
    return ticket.finished_at + timedelta(days=days)


def due_default(ticket: Ticket, rated: bool, policy: Policy, now: datetime) -> Rating | None:
    """The default rating of ``ticket`` if it is due at ``now`` and nothing rated the transaction.

    Dated when the ticket finished (the transaction's time, so it falls in
    the statistics of the day of service) and of origin ``default``.
    """
    due = default_due(ticket, policy)
    level = policy.ratings.default_level
    if rated or due is None or level is None or _aware(now, "now") < due:
        return None
    assert ticket.finished_at is not None
    return Rating(ticket.window, level, ticket.finished_at, ticket.day, ticket.clerk, ticket.ticket, ticket.cases, "default")


# --------------------------------------------------------------------------
# Work orders
# --------------------------------------------------------------------------

OrderStatus = Literal["assigned", "called_back", "rectified", "closed", "appealed", "upheld", "overturned", "withdrawn"]
Action = Literal["call_back", "rectify", "close", "appeal", "uphold", "overturn"]

STATUS_ZH: dict[str, str] = {
    "assigned": "待回访",
    "called_back": "已回访核实",
    "rectified": "已整改",
    "closed": "已办结",
    "appealed": "申诉中",
    "upheld": "申诉不成立",
    "overturned": "申诉成立（差评不计）",
    "withdrawn": "已撤销（重复评价）",
}
ACTION_ZH: dict[str, str] = {
    "call_back": "回访核实",
    "rectify": "整改",
    "close": "办结",
    "appeal": "申诉",
    "uphold": "申诉不成立",
    "overturn": "申诉成立",
}
FINAL: frozenset[str] = frozenset({"closed", "overturned", "withdrawn"})
HANDLED: frozenset[str] = frozenset({"rectified", "closed"})
"""The handling unit has done its part (整改 or 办结)."""
NOT_COUNTED: frozenset[str] = frozenset({"overturned", "withdrawn"})
"""Orders that are not (or no longer) about a valid bad rating: out of every rate."""
_TARGET: dict[str, OrderStatus] = {
    "call_back": "called_back",
    "rectify": "rectified",
    "close": "closed",
    "appeal": "appealed",
    "uphold": "upheld",
    "overturn": "overturned",
}
_ALLOWED_FROM: dict[str, frozenset[str]] = {
    "call_back": frozenset({"assigned", "upheld"}),
    "rectify": frozenset({"called_back", "upheld"}),
    "close": frozenset({"called_back", "rectified", "upheld"}),
    "appeal": frozenset({"assigned", "called_back"}),
    "uphold": frozenset({"appealed"}),
    "overturn": frozenset({"appealed"}),
}
_WHAT = {
    "call_back": "an assigned order (or one whose appeal failed before its call back) can be called back",
    "rectify": "a called-back order can be rectified",
    "close": "a called-back or rectified order can be closed",
    "appeal": "an order can be appealed (once) before it is rectified",
    "uphold": "an appealed order can be upheld",
    "overturn": "an appealed order can be overturned",
}
_PAST_CALLBACK = frozenset({"called_back", "rectified", "closed", "overturned", "withdrawn"})
_PAST_HANDLING = frozenset({"rectified", "closed", "overturned", "withdrawn"})


class TransitionError(ValueError):
    """A work-order step the workflow does not allow; the message says why."""


@dataclass(frozen=True)
class Step:
    """One step of a work order: into ``status`` at ``at`` by ``actor``, with what was done."""

    status: OrderStatus
    at: datetime
    actor: str
    note: str = ""


@dataclass(frozen=True)
class WorkOrder:
    """The 差评工单 of one counted bad rating.  ``history[0]`` is its creation."""

    window: str
    clerk: str | None
    level: int
    rated_at: datetime
    callback_due: date | None
    """Last day to call back; None while the calendar does not cover the days counted."""
    rectify_due: date | None
    """Last day to handle (整改/办结)."""
    history: tuple[Step, ...]
    rating_id: int | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        if not self.history:
            raise ValueError("a work order needs its history (at least its creation)")

    @property
    def status(self) -> OrderStatus:
        return self.history[-1].status

    @property
    def day(self) -> date:
        return local_day(self.rated_at)

    def first(self, statuses: Iterable[str]) -> datetime | None:
        wanted = frozenset(statuses)
        return next((s.at for s in self.history if s.status in wanted), None)

    @property
    def called_back_at(self) -> datetime | None:
        return self.first({"called_back"})

    @property
    def handled_at(self) -> datetime | None:
        """When it was first rectified or closed (the handling unit's part done)."""
        return self.first(HANDLED)

    @property
    def final_at(self) -> datetime | None:
        return self.history[-1].at if self.status in FINAL else None


def deadline_instant(due: date) -> datetime:
    """The first moment a deadline day is missed: 00:00 (hall time) of the next day."""
    return day_start(due + timedelta(days=1))


def order_deadlines(rated_at: datetime, policy: Policy, calendar: WorkCalendar) -> tuple[date, date]:
    """(call-back, handling) due days of an order for a rating given at ``rated_at``.

    "Within N working days" (003 四(六)6 「承办单位应在10个工作日内进行回访核实并作相应处理及反馈」)
    is the end of the N-th working day *after* the day of the rating: that
    day never counts (a rating at 16:59 leaves no day to act), days off and
    调休 follow the calendar, and the step is on time up to 23:59:59.999 of
    the due day (:func:`deadline_instant`).  Raises CalendarGapError when the
    calendar does not cover the days counted.
    """
    day = local_day(rated_at)
    deadlines = policy.deadlines
    return (
        calendar.add_working_days(day, deadlines.callback_working_days),
        calendar.add_working_days(day, deadlines.rectify_working_days),
    )


def new_work_order(rating: Rating, policy: Policy, deadlines: tuple[date, date] | None) -> WorkOrder:
    """The work order a counted bad rating opens, created at the rating's time (系统自动生成差评工单).

    ``deadlines`` come from :func:`order_deadlines` (None while the calendar has a gap).
    """
    if rating.origin != "device" or not rating.counted or not is_bad(rating.level, policy):
        raise ValueError("only a counted real 差评 opens a work order")
    callback, rectify = deadlines if deadlines is not None else (None, None)
    note = f"{LEVEL_ZH[rating.level]}（★{rating.level}）评价，系统自动生成差评工单"
    return WorkOrder(
        window=rating.window,
        clerk=rating.clerk,
        level=rating.level,
        rated_at=rating.rated_at,
        callback_due=callback,
        rectify_due=rectify,
        history=(Step("assigned", rating.rated_at, SYSTEM_ACTOR, note),),
        rating_id=rating.id,
    )


def next_actions(order: WorkOrder) -> tuple[str, ...]:
    """What people may do next (the order's status and whether it was called back decide)."""
    called = order.called_back_at is not None
    actions = []
    for action, allowed in _ALLOWED_FROM.items():
        if order.status not in allowed:
            continue
        if order.status == "upheld" and (action == "call_back") == called:
            continue  # after a failed appeal the order resumes where it was
        actions.append(action)
    return tuple(actions)


def act(order: WorkOrder, action: str, actor: str, note: str, at: datetime) -> WorkOrder:
    """Take one step; returns the order with the step appended, or raises TransitionError.

    Every step needs its actor and a note (回访情况, 整改情况, 办结说明, 申诉理由
    or 核实结论) and cannot be dated before the previous one; the appeal is
    decided by someone other than the person who appealed.  Deadlines keep
    running during an appeal: it is part of verifying (核实) the rating.
    """
    if action not in _TARGET:
        raise TransitionError(f"unknown action {action!r}; actions: {', '.join(_TARGET)}")
    _aware(at, "at")
    actor = (actor or "").strip()
    note = (note or "").strip()
    ident = f"work order {order.id}" if order.id is not None else "the work order"
    if action not in next_actions(order):
        raise TransitionError(f"cannot {action}: {ident} is {order.status} ({STATUS_ZH[order.status]}); only {_WHAT[action]}")
    if not actor:
        raise TransitionError("every step needs the person who takes it (actor)")
    if not note:
        raise TransitionError(f"cannot {action} without a note ({ACTION_ZH[action]}情况)")
    if at < order.history[-1].at:
        raise TransitionError(f"cannot {action} at {at.isoformat()}: before the order's last step ({order.history[-1].at.isoformat()})")
    if action in ("uphold", "overturn"):
        appellant = next(s.actor for s in reversed(order.history) if s.status == "appealed")
        if actor == appellant:
            raise TransitionError(f"cannot {action}: {appellant} appealed and cannot also decide the appeal")
    return replace(order, history=order.history + (Step(_TARGET[action], at, actor, note),))


def withdraw(order: WorkOrder, at: datetime, reason: str) -> WorkOrder:
    """The system withdraws an order whose rating no longer counts (an earlier rating of the same transaction arrived late)."""
    if order.status in FINAL:
        raise TransitionError(f"cannot withdraw: the work order is already {order.status} ({STATUS_ZH[order.status]})")
    at = max(_aware(at, "at"), order.history[-1].at)
    return replace(order, history=order.history + (Step("withdrawn", at, SYSTEM_ACTOR, reason),))


OverdueKind = Literal["callback", "rectify"]


def overdue_intervals(order: WorkOrder) -> tuple[tuple[OverdueKind, datetime, datetime | None], ...]:
    """When the order was (or is) past a deadline without its step: (kind, from, until or None)."""
    spans: list[tuple[OverdueKind, datetime, datetime | None]] = []
    for kind, due, past in (("callback", order.callback_due, _PAST_CALLBACK), ("rectify", order.rectify_due, _PAST_HANDLING)):
        if due is None:
            continue
        start = deadline_instant(due)
        end = order.first(past)
        if end is None or end >= start:  # a step at the very instant is late (an empty span)
            spans.append((kind, start, end))  # type: ignore[arg-type]
    return tuple(spans)


def overdue(order: WorkOrder, now: datetime) -> tuple[OverdueKind, ...]:
    """The deadlines the order is past at ``now`` without their step."""
    return tuple(kind for kind, start, end in overdue_intervals(order) if start <= now and (end is None or now < end))


Timeliness = Literal["on_time", "late", "open"]


def timeliness(order: WorkOrder, now: datetime) -> Timeliness | None:
    """``late`` once a deadline passed without its step, ``on_time`` when handled within both,
    ``open`` while undecided; None for an order out of the rates (overturned, withdrawn)."""
    if order.status in NOT_COUNTED:
        return None
    if any(start <= now for _, start, _ in overdue_intervals(order)):
        return "late"
    return "on_time" if order.handled_at is not None else "open"


# --------------------------------------------------------------------------
# Alerts the ratings raise (the same table and shape as the supervision alerts)
# --------------------------------------------------------------------------

RATING_ALERTS: dict[str, Rule] = {
    "rating_seat_vacant": Rule("ratings.seat_vacant_grace_s", "评价时窗口无人在岗", "rating while the staff seat was vacant", "medium"),
    "rating_no_ticket": Rule("ratings.ticket_required", "评价无对应叫号业务", "rating with no customer served (no queue ticket)", "medium"),
    "rating_burst": Rule("ratings.burst_count", "短时间内集中评价", "burst of ratings at one window", "medium"),
    "rating_never_below": Rule("ratings.never_below_level", "评价从未低于非常满意", "ratings never below a level this month", "low"),
    "work_order_overdue": Rule("deadlines.rectify_working_days", "差评工单超期未办", "bad-rating work order overdue", "medium"),
}
"""Alert types of this module, with the policy key each rests on.  The clerk
shown on the evaluator differing from the seated clerk is the supervision
core's ``clerk_mismatch`` alert; here it only marks the ratings concerned."""

SIGNALS: dict[str, str] = {
    "seat_vacant": "评价时无人在岗",
    "no_ticket": "无对应叫号",
    "clerk_mismatch": "评价人员与在岗人员不符",
    "burst": "集中评价",
}
"""Fraud signals a single rating can carry (name → 中文)."""
SIGNAL_ALERT = {"seat_vacant": "rating_seat_vacant", "no_ticket": "rating_no_ticket", "burst": "rating_burst"}
"""The signals that raise a day's alert (signal → alert type); ``clerk_mismatch`` is the supervision core's alert."""


@dataclass(frozen=True)
class SeatAt:
    """What the window camera knew of the staff seat at one moment."""

    camera_online: bool = False
    occupied: bool | None = None
    since: datetime | None = None
    """When the seat took its current state (occupied or vacant)."""
    occupant: str | None = None


class SeatHistory:
    """A window's seat and camera facts over a day, asked at any moment (built from the supervision observations).

    Observations can also be added one at a time (:meth:`add`), in any
    order: the states after the new one are folded again, which for a live
    day (facts arrive in time order) is none or a few.
    """

    def __init__(self, observations: Iterable[Observation] = ()) -> None:
        self._keys: list[tuple[datetime, tuple[str, int, int], str]] = []
        self._observations: list[Observation] = []
        self._times: list[datetime] = []
        self._states: list[SeatAt] = []
        for o in sorted((o for o in observations if o.kind in _SEAT_KINDS), key=_seat_key):
            self._keys.append(_seat_key(o))
            self._observations.append(o)
        self._fold_from(0)

    def add(self, o: Observation) -> None:
        """Take one more observation (other kinds than seat and camera are ignored)."""
        if o.kind not in _SEAT_KINDS:
            return
        key = _seat_key(o)
        index = bisect_right(self._keys, key)
        self._keys.insert(index, key)
        self._observations.insert(index, o)
        self._fold_from(index)

    def _fold_from(self, index: int) -> None:
        del self._times[index:], self._states[index:]
        state = self._states[index - 1] if index else SeatAt()
        for o in self._observations[index:]:
            if o.kind == "camera":
                state = replace(state, camera_online=o.on)
            else:
                since = o.time if state.occupied != o.on else state.since
                # A heartbeat names nobody: an occupied seat keeps the person last identified.
                occupant = (o.who if o.who is not None else state.occupant) if o.on else None
                state = replace(state, occupied=o.on, since=since, occupant=occupant)
            self._times.append(o.time)
            self._states.append(state)

    def at(self, moment: datetime) -> SeatAt:
        index = bisect_right(self._times, moment)
        return self._states[index - 1] if index else SeatAt()


_SEAT_KINDS = ("seat", "camera")


def _seat_key(o: Observation) -> tuple[datetime, tuple[str, int, int], str]:
    return (o.time, o.order, o.kind)


def online_at(changes: Sequence[tuple[datetime, bool]], moment: datetime) -> bool | None:
    """A device's health at ``moment`` from its (time, online) changes; None if never heard of."""
    state: bool | None = None
    for at, online in sorted(changes):
        if at > moment:
            break
        state = online
    return state


@dataclass(frozen=True)
class WindowDayRatings:
    signals: tuple[frozenset[str], ...]
    """Per rating given (same order): its fraud signals."""
    alerts: tuple[Alert, ...]
    """At most one episode per signal type for the day (see :func:`evaluate_window_day`)."""


def _hms(moment: datetime) -> str:
    return moment.astimezone(HALL_TZ).strftime("%H:%M:%S")


FACT_ITEMS = 10
"""Ratings (times, tickets) and clerks an alert's facts list by name; more are counted."""


def _listed(first: Sequence[str], total: int) -> str:
    text = ", ".join(first[:FACT_ITEMS])
    return text + (f" …（共 {total} 个）" if total > FACT_ITEMS else "")


def clerk_label(rating: Rating) -> str:
    return rating.clerk or "（未登录）"


@dataclass(frozen=True)
class Flagged:
    """What an alert's facts tell of the ratings it flags: how many, the first
    ones in event order, and every clerk credited with one (sorted).  A
    summary rather than the ratings, so a day kept up to date rating by
    rating (:class:`server.rules.rating_signals.DaySignals`) builds an alert
    without walking all of them."""

    count: int
    first: tuple[Rating, ...]
    clerks: tuple[str, ...]

    @classmethod
    def of(cls, ratings: Sequence[Rating]) -> Flagged:
        return cls(len(ratings), tuple(ratings[:FACT_ITEMS]), tuple(sorted({clerk_label(r) for r in ratings})))


def _rating_alert(
    name: str, window: str, since: Rating, raising: Rating, flagged: Flagged, cleared: datetime | None, policy: Policy, threshold_s: int, extra: tuple[tuple[str, str], ...] = ()
) -> Alert:
    rule = RATING_ALERTS[name]
    assert rule.threshold is not None
    facts = (
        ("count", str(flagged.count)),
        ("times", _listed([_hms(r.rated_at) for r in flagged.first], flagged.count)),
        ("tickets", _listed([r.ticket or "（无）" for r in flagged.first], flagged.count)),
        ("clerks", _listed(flagged.clerks, len(flagged.clerks))),
    ) + extra
    return Alert(
        window=window,
        type=name,
        condition_since=since.rated_at,
        raised_at=raising.rated_at,
        cleared_at=cleared,
        live=not raising.historical,
        severity=rule.severity,
        rule=rule.threshold,
        threshold_s=threshold_s,
        source=policy.sources.get(rule.threshold, ""),
        facts=facts,
    )


def _judged_in_order(ratings: Sequence[Rating], until: datetime) -> list[int]:
    """Indices of the device ratings pressed by ``until``, in event order.

    Indices rather than ratings, because the result reports the signals
    against each rating as given, and defaults are never judged (nobody
    pressed them).
    """
    return sorted(
        (i for i, r in enumerate(ratings) if r.origin == "device" and r.rated_at <= until), key=lambda i: (ratings[i].rated_at, ratings[i].order)
    )


def _lacks_ticket(
    r: Rating, window: str, tickets: Mapping[str, Ticket], gateway: Sequence[tuple[datetime, bool]] | None, policy: Policy, until: datetime
) -> bool:
    """The ``no_ticket`` signal of one rating (see :func:`evaluate_window_day`).

    Only a queue gateway that was online can vouch that no ticket was
    served, and a ticket is given ``ticket_wait_s`` to arrive before its
    absence counts, since the queue system reports late.
    """
    rules = policy.ratings
    if not (rules.ticket_required and gateway is not None and online_at(gateway, r.rated_at)):
        return False
    if r.ticket is None:
        return True
    if until < r.rated_at + timedelta(seconds=rules.ticket_wait_s):
        return False
    served = tickets.get(r.ticket)
    seen = served.first_seen if served is not None else None
    return served is None or served.window != window or seen is None or seen > r.rated_at


def own_signals(
    r: Rating,
    seat: SeatAt,
    window: str,
    tickets: Mapping[str, Ticket],
    gateway: Sequence[tuple[datetime, bool]] | None,
    policy: Policy,
    until: datetime,
) -> set[str]:
    """The signals a rating carries on its own; a burst needs its neighbours (see :func:`_find_bursts`)."""
    signals: set[str] = set()
    grace = timedelta(seconds=policy.ratings.seat_vacant_grace_s)
    if seat.camera_online and seat.occupied is False and seat.since is not None and r.rated_at - seat.since > grace:
        signals.add("seat_vacant")
    if (
        seat.camera_online
        and seat.occupied
        and seat.occupant not in (None, UNKNOWN_PERSON)
        and r.clerk is not None
        and r.clerk != seat.occupant
    ):
        signals.add("clerk_mismatch")
    if _lacks_ticket(r, window, tickets, gateway, policy, until):
        signals.add("no_ticket")
    return signals


@dataclass(frozen=True)
class _Bursts:
    """The ratings caught in any burst, and where the first burst lies.

    The first burst is kept apart because the day's burst alert starts at its
    first rating and is raised by the rating that completed it.
    """

    marked: frozenset[int]
    first: tuple[int, int] | None
    """(first rating of the first burst, the rating completing it), as indices into the ratings."""


def _find_bursts(ratings: Sequence[Rating], ordered: Sequence[int], policy: Policy) -> _Bursts:
    """Every run of ``burst_count`` ratings within ``burst_window_s`` (both ends included), by a sliding window."""
    rules = policy.ratings
    window_s = timedelta(seconds=rules.burst_window_s)
    marked: set[int] = set()
    first: tuple[int, int] | None = None
    start = 0
    for end in range(len(ordered)):
        while ratings[ordered[end]].rated_at - ratings[ordered[start]].rated_at > window_s:
            start += 1
        if end - start + 1 >= rules.burst_count:
            marked.update(ordered[start : end + 1])
            if first is None:
                first = (ordered[start], ordered[end])
    return _Bursts(frozenset(marked), first)


def _signal_alerts(
    window: str,
    ratings: Sequence[Rating],
    ordered: Sequence[int],
    marks: Mapping[int, set[str]],
    bursts: _Bursts,
    cleared: datetime | None,
    policy: Policy,
) -> tuple[Alert, ...]:
    """At most one alert episode per signal type for the day, ordered by when each was raised.

    One episode a day, not one per rating, so a window pressing the keypad
    all afternoon is one thing to look at, its facts listing the ratings.
    """
    alerts: list[Alert] = []
    for signal in SIGNAL_ALERT:
        flagged = [ratings[i] for i in ordered if signal in marks[i]]
        if not flagged:
            continue
        if signal == "burst":
            assert bursts.first is not None
            since, raising = ratings[bursts.first[0]], ratings[bursts.first[1]]
        else:
            since = raising = flagged[0]
        alerts.append(signal_alert(signal, window, since, raising, Flagged.of(flagged), cleared, policy))
    alerts.sort(key=lambda a: (a.raised_at, a.type))
    return tuple(alerts)


def signal_alert(signal: str, window: str, since: Rating, raising: Rating, flagged: Flagged, cleared: datetime | None, policy: Policy) -> Alert:
    """The day's alert of one fraud signal: from ``since`` (its first rating,
    or a burst's first), raised by ``raising`` (the first flagged, or the
    rating completing the first burst)."""
    rules = policy.ratings
    threshold = {"burst": rules.burst_window_s, "seat_vacant": rules.seat_vacant_grace_s}.get(signal, rules.ticket_wait_s)
    return _rating_alert(SIGNAL_ALERT[signal], window, since, raising, flagged, cleared, policy, threshold)


def evaluate_window_day(
    window: str,
    day: date,
    ratings: Sequence[Rating],
    tickets: Mapping[str, Ticket],
    observations: Iterable[Observation],
    gateway: Sequence[tuple[datetime, bool]] | None,
    policy: Policy,
    until: datetime,
) -> WindowDayRatings:
    """The fraud signals of a window's day, and its signal alerts, as known at ``until``.

    ``ratings``: the window's ratings of the day (defaults are ignored);
    ``tickets``: the day's tickets by number (any window); ``observations``:
    the window's day as the supervision core reads it (seat, camera, …);
    ``gateway``: the (time, online) changes of the window's queue gateway,
    None when no queue gateway serves the window.

    * ``seat_vacant``: the camera was online, the seat vacant for more than
      ``seat_vacant_grace_s`` when the rating was pressed.
    * ``clerk_mismatch``: the camera identified someone in the seat who is
      not the clerk the rating is credited to.
    * ``no_ticket`` (``ticket_required``, at a window with a queue gateway
      that was online): the rating names no ticket, or ``ticket_wait_s``
      after it no ticket of that number had been called to this window
      before the rating.
    * ``burst``: ``burst_count`` ratings within ``burst_window_s`` (both ends
      included) — all of them are marked.

    A camera or gateway that was offline, stale or never heard of gives no
    signal: silence is no evidence.  Each signal type gives at most one alert
    episode a day: from the first marked rating until the end of the day
    (cleared at midnight, hall time), its facts listing the ratings.  Only
    ratings up to ``until`` are judged.
    """
    day_end = day_start(day + timedelta(days=1))
    ordered = _judged_in_order(ratings, until)
    seats = SeatHistory(observations)
    marks = {i: own_signals(ratings[i], seats.at(ratings[i].rated_at), window, tickets, gateway, policy, until) for i in ordered}
    bursts = _find_bursts(ratings, ordered, policy)
    for i in bursts.marked:
        marks[i].add("burst")
    cleared = day_end if until >= day_end else None
    alerts = _signal_alerts(window, ratings, ordered, marks, bursts, cleared, policy)
    return WindowDayRatings(tuple(frozenset(marks.get(i, ())) for i in range(len(ratings))), alerts)


def month_bounds(day: date) -> tuple[date, date]:
    """The first day of ``day``'s month and the first day of the next month."""
    first = day.replace(day=1)
    return first, (first + timedelta(days=32)).replace(day=1)


def never_below(window: str, month: date, ratings: Iterable[Rating], policy: Policy, until: datetime) -> Alert | None:
    """A window whose counted real ratings of the month are all at or above ``never_below_level``.

    Raised when the ``never_below_min_count``-th such rating arrives with no
    lower one before it; cleared by the first lower rating after that, or at
    the end of the month.  None when the month never met the condition.
    """
    rules = policy.ratings
    first, after = month_bounds(month)
    counted = sorted(
        (r for r in ratings if r.origin == "device" and r.counted and first <= r.day < after and r.rated_at <= until),
        key=lambda r: (r.rated_at, r.order),
    )
    if len(counted) < rules.never_below_min_count:
        return None
    before = counted[: rules.never_below_min_count]
    if any(r.level < rules.never_below_level for r in before):
        return None
    lower = next((r for r in counted[rules.never_below_min_count :] if r.level < rules.never_below_level), None)
    count = len(counted) if lower is None else sum(1 for r in counted if r.rated_at < lower.rated_at)
    return never_below_alert(window, first, counted[0], before[-1], lower, count, policy, until)


def never_below_alert(window: str, month: date, since: Rating, raising: Rating, lower: Rating | None, count: int, policy: Policy, until: datetime) -> Alert:
    """The month's never-below alert: from its first counted rating, raised by
    the ``never_below_min_count``-th, cleared by ``lower`` (the first rating
    below the level after it) or at the month's end; ``count`` ratings before
    ``lower``."""
    first, after = month_bounds(month)
    month_end = day_start(after)
    cleared = lower.rated_at if lower is not None else (month_end if until >= month_end else None)
    level = policy.ratings.never_below_level
    extra = (("month", first.strftime("%Y-%m")), ("level", f"≥{level} {LEVEL_ZH[level]}"))
    alert = _rating_alert("rating_never_below", window, since, raising, Flagged(count, (), ()), cleared, policy, 0, extra)
    return replace(alert, facts=(("count", str(count)),) + extra)


def overdue_alerts(window: str, orders: Iterable[WorkOrder], policy: Policy, now: datetime) -> tuple[Alert, ...]:
    """A window's overdue episodes: while at least one of its orders is past a deadline without its step.

    One episode per continuous stretch (the union of the orders' overdue
    spans up to ``now``), so the window has at most one active overdue alert
    however many orders are late; it clears when the last of them is called
    back, handled, overturned or withdrawn.  Facts name the orders and the
    deadline each missed.
    """
    spans = sorted(
        ((start, end, kind, order) for order in orders for kind, start, end in overdue_intervals(order) if start <= now and end != start),
        key=lambda s: (s[0], s[2], s[3].id or 0),
    )
    episodes: list[list[tuple[datetime, datetime | None, str, WorkOrder]]] = []
    reach: datetime | None = None  # the current episode's end so far (None: still open)
    for span in spans:
        start, end = span[0], span[1]
        if episodes and (reach is None or start <= reach):
            episodes[-1].append(span)
            reach = None if reach is None or end is None else max(reach, end)
        else:
            episodes.append([span])
            reach = end
    alerts = []
    for members in episodes:
        first = members[0]
        ends = [m[1] for m in members]
        key = "deadlines.callback_working_days" if first[2] == "callback" else "deadlines.rectify_working_days"
        rule = RATING_ALERTS["work_order_overdue"]
        steps = [f"{m[3].id if m[3].id is not None else '?'}:{'回访' if m[2] == 'callback' else '办结'}" for m in members]
        alerts.append(
            Alert(
                window=window,
                type="work_order_overdue",
                condition_since=first[0],
                raised_at=first[0],
                cleared_at=None if any(e is None for e in ends) else max(e for e in ends if e is not None),
                live=True,
                severity=rule.severity,
                rule=key,
                threshold_s=0,
                source=policy.sources.get(key, ""),
                facts=(
                    ("count", str(len({id(m[3]) for m in members}))),
                    ("orders", _listed(steps, len(steps))),
                ),
            )
        )
    return tuple(alerts)


# --------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------

GroupBy = Literal["window", "clerk", "department"]
Period = Literal["day", "month"]


@dataclass(frozen=True)
class StatRow:
    """One group (window, clerk or department) in one period, or the totals.

    ``rated`` (有效评价) counts real ratings that count for their transaction
    and were not overturned on appeal; only they enter the rates.
    """

    key: str
    period: str
    rated: int = 0
    levels: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    """Counts of levels 5, 4, 3, 2, 1 among ``rated``."""
    satisfied: int = 0
    bad: int = 0
    defaults: int = 0
    """System-default ratings (no real rating in time) — never in a rate."""
    duplicates: int = 0
    """Second ratings of an already rated transaction (一事一评) — never in a rate."""
    overturned: int = 0
    """Bad ratings found malicious or mistaken on appeal — out of ``rated``."""
    work_orders: int = 0
    handled: int = 0
    on_time: int = 0
    late: int = 0
    signals: tuple[tuple[str, int], ...] = tuple((name, 0) for name in SIGNALS)
    suspect: int = 0
    """Rated ratings with at least one fraud signal."""
    never_below: bool | None = None
    rank: int | None = None

    @staticmethod
    def _rate(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    @property
    def satisfaction_rate(self) -> float | None:
        """满意率 = (非常满意 + 满意) / 有效评价."""
        return self._rate(self.satisfied, self.rated)

    @property
    def bad_rate(self) -> float | None:
        """差评率 = 差评 / 有效评价."""
        return self._rate(self.bad, self.rated)

    @property
    def rectification_rate(self) -> float | None:
        """整改率 = 已整改或已办结的工单 / 差评工单 (overturned and withdrawn orders left out)."""
        return self._rate(self.handled, self.work_orders)

    @property
    def on_time_rate(self) -> float | None:
        """按时办结率 = 按时 / (按时 + 超期): open orders not yet due are not judged."""
        return self._rate(self.on_time, self.on_time + self.late)

    def __add__(self, other: StatRow) -> StatRow:
        return replace(
            self,
            rated=self.rated + other.rated,
            levels=tuple(a + b for a, b in zip(self.levels, other.levels, strict=True)),  # type: ignore[arg-type]
            satisfied=self.satisfied + other.satisfied,
            bad=self.bad + other.bad,
            defaults=self.defaults + other.defaults,
            duplicates=self.duplicates + other.duplicates,
            overturned=self.overturned + other.overturned,
            work_orders=self.work_orders + other.work_orders,
            handled=self.handled + other.handled,
            on_time=self.on_time + other.on_time,
            late=self.late + other.late,
            signals=tuple((n, a + b) for (n, a), (_, b) in zip(self.signals, other.signals, strict=True)),
            suspect=self.suspect + other.suspect,
            never_below=None,
            rank=None,
        )


def period_of(day: date, period: Period) -> str:
    return day.isoformat() if period == "day" else day.strftime("%Y-%m")


def _group(window: str, clerk: str | None, by: GroupBy, departments: Mapping[str, str]) -> str:
    if by == "window":
        return window
    if by == "clerk":
        return clerk or ""
    return departments.get(window, "")


@dataclass
class _Tally:
    """The running counts of one (period, group) cell while :func:`statistics` reads its inputs.

    Mutable on purpose: it lives only inside one call, and counting in place
    keeps each rule (what is rated, bad, suspect …) in one spot before the
    cell is frozen into a :class:`StatRow`.
    """

    rated: int = 0
    levels: list[int] = field(default_factory=lambda: [0] * 5)
    """Counts of levels 5, 4, 3, 2, 1, as in :attr:`StatRow.levels`."""
    satisfied: int = 0
    bad: int = 0
    defaults: int = 0
    duplicates: int = 0
    overturned: int = 0
    work_orders: int = 0
    handled: int = 0
    on_time: int = 0
    late: int = 0
    signals: dict[str, int] = field(default_factory=lambda: {name: 0 for name in SIGNALS})
    suspect: int = 0
    lowest: int = 5
    """The lowest rated level so far (5 while none): for ``never_below``."""

    def add_rating(self, r: Rating, overturned_ratings: set[int], policy: Policy) -> None:
        """Count a rating where it belongs: defaults, duplicates and ratings overturned on appeal stay out of ``rated``.

        A default that lost to a real rating (not counted) is not a default
        of this transaction, so it is not counted at all.
        """
        if r.origin == "default":
            if r.counted:
                self.defaults += 1
            return
        if not r.counted:
            self.duplicates += 1
            return
        if r.id is not None and r.id in overturned_ratings:
            self.overturned += 1
            return
        self.rated += 1
        self.levels[5 - r.level] += 1
        if r.level >= SATISFIED_AT_LEAST:
            self.satisfied += 1
        if is_bad(r.level, policy):
            self.bad += 1
        hit = [s for s in r.signals if s in SIGNALS]
        for s in hit:
            self.signals[s] += 1
        if hit:
            self.suspect += 1
        self.lowest = min(self.lowest, r.level)

    def add_order(self, o: WorkOrder, now: datetime) -> None:
        """Count a work order that is in the rates (the caller leaves out overturned and withdrawn ones)."""
        self.work_orders += 1
        if o.handled_at is not None:
            self.handled += 1
        judged = timeliness(o, now)
        if judged == "on_time":
            self.on_time += 1
        elif judged == "late":
            self.late += 1

    def row(self, key: str, label: str, period: Period, policy: Policy) -> StatRow:
        """The cell as an unranked :class:`StatRow`; ``never_below`` is judged on whole months only."""
        rules = policy.ratings
        return StatRow(
            key=key,
            period=label,
            rated=self.rated,
            levels=tuple(self.levels),  # type: ignore[arg-type]
            satisfied=self.satisfied,
            bad=self.bad,
            defaults=self.defaults,
            duplicates=self.duplicates,
            overturned=self.overturned,
            work_orders=self.work_orders,
            handled=self.handled,
            on_time=self.on_time,
            late=self.late,
            signals=tuple(self.signals.items()),
            suspect=self.suspect,
            never_below=(self.rated >= rules.never_below_min_count and self.lowest >= rules.never_below_level) if period == "month" else None,
        )


def statistics(
    ratings: Iterable[Rating],
    orders: Iterable[WorkOrder],
    by: GroupBy,
    period: Period,
    departments: Mapping[str, str],
    policy: Policy,
    now: datetime,
) -> tuple[StatRow, ...]:
    """Counts and rates per group and period, ranked within each period.

    Ratings fall in the period of their transaction's day; work orders in
    the period of their rating.  A clerk is the one the rating was credited
    to (``""`` when nobody was logged in).  Ranking: by satisfaction rate,
    then by bad-rating rate (lower first); equal rates share a rank (1, 1, 3);
    groups without a rated rating are not ranked.  ``never_below`` (month
    rows only): at least ``never_below_min_count`` rated ratings, none below
    ``never_below_level``.  Rows are sorted by period, then rank, then key.
    """
    order_list = list(orders)
    overturned_ratings = {o.rating_id for o in order_list if o.status == "overturned" and o.rating_id is not None}
    tallies: dict[tuple[str, str], _Tally] = {}

    def tally(window: str, clerk: str | None, day: date) -> _Tally:
        key = (period_of(day, period), _group(window, clerk, by, departments))
        if key not in tallies:
            tallies[key] = _Tally()
        return tallies[key]

    for r in ratings:
        tally(r.window, r.clerk, r.day).add_rating(r, overturned_ratings, policy)
    for o in order_list:
        if o.status not in NOT_COUNTED:
            tally(o.window, o.clerk, o.day).add_order(o, now)
    return rank([t.row(key, label, period, policy) for (label, key), t in tallies.items()])


def rank(rows: Iterable[StatRow]) -> tuple[StatRow, ...]:
    """Rank each period's rated rows: higher satisfaction first, then lower bad-rating rate; ties share a rank."""
    by_period: dict[str, list[StatRow]] = {}
    for row in rows:
        by_period.setdefault(row.period, []).append(row)
    ranked: list[StatRow] = []
    for label in sorted(by_period):
        group = by_period[label]
        merit = {id(r): (-(r.satisfaction_rate or 0.0), r.bad_rate or 0.0) for r in group}
        scored = sorted((r for r in group if r.rated), key=lambda r: (merit[id(r)], r.key))
        place: dict[int, int] = {}
        for position, row in enumerate(scored, 1):
            previous = scored[position - 2] if position > 1 else None
            place[id(row)] = place[id(previous)] if previous is not None and merit[id(previous)] == merit[id(row)] else position
        ordered = scored + sorted((r for r in group if not r.rated), key=lambda r: r.key)
        ranked += [replace(r, rank=place.get(id(r))) for r in ordered]
    return tuple(ranked)


def totals(rows: Iterable[StatRow], label: str) -> StatRow:
    """The sum of rows' counts (its rates are computed from the sums, never averaged)."""
    total = StatRow(key="", period=label)
    for row in rows:
        total = total + row
    return total
