"""Window supervision — the heart of HallWatch, as a pure function.

Given one window's observations for a day (seat, seated identity, pause,
evaluator login, camera health), its plan (roster, substitutes, leave, lunch
duty), the policy and the calendar, :func:`evaluate_window` returns the
window's state timeline and its alert episodes.  No I/O, no clock: the
caller says up to when to evaluate (``until``).

Why a batch function: the result depends only on the *set* of observations,
never on the order they arrived in, so late and out-of-order events, a
replayed outbox or a double delivery cannot change what is raised, and a
stored day re-run under another policy gives byte-identical output.  The
live server holds each window's fold and takes in only what is new
(:mod:`server.rules.live_supervision`), with this function as its reference.

What "unattended" means here (DOMAIN.md): during open hours the staff seat
is empty and nothing excuses it.  A camera that is offline, stale or never
seen makes the window *unknown*, never *vacant*.  Observations replayed from
an outbox (``historical``) fill the timeline, but an alert is *live* only if
the fact that raised it was observed live.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from typing import Literal

from server.rules.calendar import WorkCalendar
from server.rules.policy import Policy

State = Literal["closed", "staffed", "paused", "vacant", "unknown"]
AlertType = Literal["vacant", "pause_overrun", "unexpected_person", "clerk_mismatch", "device_fault", "no_substitute"]
ObservationKind = Literal["seat", "pause", "login", "camera"]


@dataclass(frozen=True)
class Rule:
    """How an alert type is judged: the threshold key in the policy, names, severity."""

    threshold: str | None
    name_zh: str
    name_en: str
    severity: Literal["low", "medium", "high"]


RULES: dict[str, Rule] = {
    "vacant": Rule("thresholds.vacant_grace_s", "空岗", "vacant window", "high"),
    "pause_overrun": Rule("thresholds.pause_max_s", "脱岗（暂停超时）", "pause too long", "high"),
    "unexpected_person": Rule("thresholds.unexpected_person_s", "替岗未报备", "unregistered person in the seat", "medium"),
    "clerk_mismatch": Rule("thresholds.clerk_mismatch_s", "评价器登录人员与在岗人员不符", "evaluator clerk differs from seated clerk", "medium"),
    "device_fault": Rule("thresholds.device_fault_s", "设备离线，窗口状态未知", "camera offline, window unknown", "low"),
    "no_substitute": Rule(None, "请假无人顶岗", "clerk on leave without a substitute", "high"),
}
UNKNOWN_PERSON = "unknown"
"""Occupant value for a person the camera sees but cannot identify."""


@dataclass(frozen=True, slots=True)
class Observation:
    """One fact about a window at a moment (built by adapters from events).

    ``on``: seat occupied / pause active / camera online.  ``who``: the
    occupant (seat), the logged-in clerk (login), the reason (pause).
    ``order`` breaks ties between equal times (device, boot, seq) and
    identifies duplicates.
    """

    time: datetime
    kind: ObservationKind
    on: bool
    who: str | None = None
    historical: bool = False
    order: tuple[str, int, int] = ("", 0, 0)
    evidence: str | None = None


@dataclass(frozen=True, slots=True)
class Interval:
    """A person's leave or registered substitution, [start, end)."""

    person: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class WindowPlan:
    """What the hall planned for a window on the day."""

    window: str
    roster: frozenset[str]
    """Clerks who may sit here: A post, B post, window lead."""
    substitutes: tuple[Interval, ...] = ()
    leaves: tuple[Interval, ...] = ()
    on_lunch_duty: bool = False
    staffed: bool = True
    """False when the window is not staffed today (planned closure)."""

    @property
    def single_clerk(self) -> bool:
        return len(self.roster) == 1


@dataclass(frozen=True, slots=True)
class Segment:
    start: datetime
    end: datetime
    state: State


@dataclass(frozen=True)
class Alert:
    """One alert episode: when its condition began, when the threshold made it
    an alert, when it ended (None: still active at ``until``)."""

    window: str
    type: str
    condition_since: datetime
    raised_at: datetime
    cleared_at: datetime | None
    live: bool
    severity: str
    rule: str | None
    threshold_s: int
    source: str
    facts: tuple[tuple[str, str], ...]
    evidence: str | None = None

    @property
    def key(self) -> tuple[str, str, datetime]:
        return (self.window, self.type, self.raised_at)


@dataclass(frozen=True)
class WindowDay:
    window: str
    timeline: tuple[Segment, ...]
    alerts: tuple[Alert, ...]


@dataclass(slots=True)
class _Facts:
    occupied: bool | None = None
    occupant: str | None = None
    seat_live: bool = False
    seat_since: datetime | None = None
    seat_evidence: str | None = None
    paused: bool = False
    pause_reason: str | None = None
    pause_live: bool = False
    login: str | None = None
    login_live: bool = False
    camera: bool | None = None
    camera_live: bool = False

    def apply(self, o: Observation) -> None:
        """Take in one observation: each kind overwrites only its own facts, so
        the latest seat, pause, login and camera facts hold side by side."""
        kind = o.kind
        if kind == "seat":
            if self.occupied != o.on:
                self.seat_since = o.time
                self.seat_evidence = o.evidence
            # A heartbeat names nobody: an occupied seat keeps the person last identified.
            occupant = (o.who if o.who is not None else self.occupant) if o.on else None
            self.occupied, self.occupant, self.seat_live = o.on, occupant, not o.historical
        elif kind == "pause":
            self.paused, self.pause_reason, self.pause_live = o.on, (o.who if o.on else None), not o.historical
        elif kind == "login":
            self.login, self.login_live = o.who, not o.historical
        else:
            self.camera, self.camera_live = o.on, not o.historical


@dataclass(slots=True)
class _Run:
    """A condition holding since ``start``; ``live_at_raise``: whether the fact
    in force when the threshold is (or would be) crossed was observed live —
    the last span begun at or before ``start + threshold`` says so."""

    start: int
    live_at_raise: bool
    facts: tuple[tuple[str, str], ...] = ()
    evidence: str | None = None


def open_intervals(day: date, policy: Policy, calendar: WorkCalendar, on_lunch_duty: bool, tz) -> list[tuple[datetime, datetime]]:  # type: ignore[no-untyped-def]
    """The window's open hours on ``day`` (empty on a non-working day)."""
    schedule = policy.schedule
    if schedule.working_days_only and not calendar.is_working_day(day):
        return []
    spans = [(s.start, s.end) for s in schedule.sessions]
    if on_lunch_duty and schedule.extended_service is not None:
        spans.append((schedule.extended_service.start, schedule.extended_service.end))
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(spans):
        a, b = datetime.combine(day, start, tz), datetime.combine(day, end, tz)
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def instant_state(is_open: bool, camera_online: bool | None, occupied: bool | None, paused: bool) -> State:
    """The state at one moment: closed hours first; without a healthy camera
    or any seat fact the window is unknown (never vacant); a pause wins."""
    if not is_open:
        return "closed"
    if camera_online is not True or occupied is None:
        return "unknown"
    if paused:
        return "paused"
    return "staffed" if occupied else "vacant"


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)


def _us(moment: datetime) -> int:
    """Exact integer microseconds since the epoch: the core compares integers,
    not aware datetimes (each of whose comparisons asks its tzinfo again)."""
    return (moment - _EPOCH) // _US


def _dedupe_key(obs: Observation) -> tuple[object, ...]:
    """Two observations with this key are one fact delivered twice."""
    return (obs.order, obs.kind) if obs.order != ("", 0, 0) else (obs.time, obs.kind, obs.on, obs.who)


def _fold_order(pair: tuple[int, Observation]) -> tuple[object, ...]:
    """The order the fold takes observations in: time, then ties broken without regard to arrival."""
    us, obs = pair
    return (us, obs.order, obs.kind, obs.on, obs.who or "")


def _dedupe_sorted(observations: Iterable[Observation]) -> list[tuple[int, Observation]]:
    unique: dict[tuple[object, ...], tuple[int, Observation]] = {}
    for obs in observations:
        key = _dedupe_key(obs)
        kept = unique.get(key)
        # A duplicate keeps the live copy, so arrival order cannot matter.
        if kept is None or (kept[1].historical and not obs.historical):
            unique[key] = (_us(obs.time), obs)
    return sorted(unique.values(), key=_fold_order)


def _active(intervals: tuple[tuple[int, int, str], ...], at: int) -> set[str]:
    return {person for start, end, person in intervals if start <= at < end}


def _change_points(
    day_start: int,
    day_end: int,
    opened: list[tuple[int, int]],
    intervals: tuple[tuple[int, int, str], ...],
    obs: list[tuple[int, Observation]],
) -> list[int]:
    """Every moment at which something may change (observations, opening hours,
    leave, substitution), sorted and clipped to the day: between two
    consecutive points nothing changes, so the fold visits only these."""
    points = {day_start, day_end}
    for a, b in opened:
        points.update((a, b))
    for a, b, _ in intervals:
        points.update((a, b))
    points.update(t for t, _ in obs)
    return sorted(p for p in points if day_start <= p <= day_end)


class _Evaluation:
    """The running state of one :func:`evaluate_window` call.

    The fold carries the current facts, the open condition runs, the alerts
    and the timeline from one change point to the next; holding them here
    lets its steps be separate methods without passing them all around.
    Integers (microseconds) inside, datetimes only in the result.
    """

    __slots__ = ("alerts", "day_end", "facts", "limits", "limits_us", "plan", "policy", "runs", "timeline", "tz")

    def __init__(self, plan: WindowPlan, policy: Policy, day_end: int, tz) -> None:  # type: ignore[no-untyped-def]
        self.plan = plan
        self.policy = policy
        self.day_end = day_end
        self.tz = tz
        self.facts = _Facts()
        thresholds = policy.thresholds
        self.limits: dict[str, int] = {
            name: (getattr(thresholds, rule.threshold.split(".")[1]) if rule.threshold else 0) for name, rule in RULES.items()
        }
        self.limits_us = {name: limit * 1_000_000 for name, limit in self.limits.items()}
        self.runs: dict[str, _Run] = {}
        self.alerts: list[Alert] = []
        self.timeline: list[list[object]] = []  # [start_us, end_us, state]

    def copy(self, day_end: int) -> _Evaluation:
        """The state so far, to finish at ``day_end`` while this one folds on
        (:class:`server.rules.live_supervision.LiveWindow`); of the timeline
        only the open last segment, the one the rest of the fold extends."""
        twin = _Evaluation.__new__(_Evaluation)
        twin.plan, twin.policy, twin.tz, twin.limits, twin.limits_us = self.plan, self.policy, self.tz, self.limits, self.limits_us
        twin.day_end = day_end
        twin.facts = replace(self.facts)
        twin.runs = {name: replace(run) for name, run in self.runs.items()}
        twin.alerts = list(self.alerts)
        twin.timeline = [list(self.timeline[-1])] if self.timeline else []
        return twin

    def to_dt(self, us: int) -> datetime:
        """Back to an aware datetime in the caller's zone, for the result."""
        return (_EPOCH + us * _US).astimezone(self.tz)

    def fold(
        self,
        times: list[int],
        obs: list[tuple[int, Observation]],
        opened: list[tuple[int, int]],
        leaves: tuple[tuple[int, int, str], ...],
        substitutes: tuple[tuple[int, int, str], ...],
    ) -> None:
        """Walk the change points once, in time order: take in the observations
        up to each point, then judge the span that starts there.  Indexes into
        the sorted observations and opening hours keep the walk linear."""
        plan, facts, timeline = self.plan, self.facts, self.timeline
        apply, check = facts.apply, self.check  # bound once, not per event
        roster, single_clerk = plan.roster, plan.single_clerk
        index, open_i, count = 0, 0, len(obs)
        for start, end in zip(times, times[1:]):
            while index < count and obs[index][0] <= start:
                apply(obs[index][1])
                index += 1
            while open_i < len(opened) and opened[open_i][1] <= start:
                open_i += 1
            is_open = plan.staffed and open_i < len(opened) and opened[open_i][0] <= start < opened[open_i][1]
            if leaves or substitutes:
                on_leave = _active(leaves, start) & roster
                covering = _active(substitutes, start)
            else:
                on_leave, covering = set(), set()
            uncovered_leave = bool(single_clerk and on_leave and not covering)

            state = instant_state(is_open, facts.camera, facts.occupied, facts.paused)
            if timeline and timeline[-1][2] == state:
                timeline[-1][1] = end
            else:
                timeline.append([start, end, state])
            check(start, state, is_open, on_leave, covering, uncovered_leave)

    def check(self, start: int, state: State, is_open: bool, on_leave: set[str], covering: set[str], uncovered_leave: bool) -> None:
        """Judge every alert condition for the span starting at ``start``.

        Each condition costs a call to :meth:`track` only when it holds or its
        run just ended, and builds its facts only when a run begins: most spans
        of a normal day hold no condition at all.
        """
        facts, runs, roster = self.facts, self.runs, self.plan.roster
        occupant = facts.occupant if state == "staffed" or state == "paused" else None
        allowed = roster | covering if covering else roster
        seat_live = facts.seat_live
        holds = state == "vacant" and not uncovered_leave
        if holds or "vacant" in runs:
            self.track("vacant", holds, start, seat_live,
                  lambda: (("seat", "vacant"), ("paused", "no"), ("camera", "online")), facts.seat_evidence)
        holds = state == "paused"
        if holds or "pause_overrun" in runs:
            self.track("pause_overrun", holds, start, facts.pause_live, lambda: (("pause_reason", facts.pause_reason or ""),), None)
        holds = occupant is not None and is_open and facts.occupied is True and occupant not in allowed
        if holds or "unexpected_person" in runs:
            self.track("unexpected_person", holds, start, seat_live,
                  lambda: (("occupant", occupant or ""), ("roster", ",".join(sorted(allowed)))), facts.seat_evidence)
        holds = occupant is not None and facts.login is not None and is_open and occupant in allowed and facts.login != occupant
        if holds or "clerk_mismatch" in runs:
            self.track("clerk_mismatch", holds, start, seat_live and facts.login_live,
                  lambda: (("seated", occupant or ""), ("evaluator", facts.login or "")), facts.seat_evidence)
        holds = is_open and facts.camera is not True
        if holds or "device_fault" in runs:
            self.track("device_fault", holds, start, facts.camera_live,
                  lambda: (("camera", "never seen" if facts.camera is None else "offline or stale"),), None)
        holds = is_open and uncovered_leave
        if holds or "no_substitute" in runs:
            self.track("no_substitute", holds, start, True, lambda: (("on_leave", ",".join(sorted(on_leave))),), None)

    def track(self, name: str, holds: bool, start: int, live: bool, details: Callable[[], tuple[tuple[str, str], ...]], evidence: str | None) -> None:
        """Extend or open the condition's run while it holds, close it when it
        stops; the liveness of the span in force at the threshold decides the alert's."""
        run = self.runs.get(name)
        if holds:
            if run is None:
                self.runs[name] = _Run(start, live, details(), evidence)
            elif start <= run.start + self.limits_us[name]:
                run.live_at_raise = live
        elif run is not None:
            self.close_run(name, start)

    def close_run(self, name: str, end: int | None) -> None:
        """End a condition's run at ``end`` (None: still holding at ``until``)
        and raise its alert if it lasted beyond the threshold."""
        run = self.runs.pop(name)
        limit_us = self.limits_us[name]
        stop = end if end is not None else self.day_end
        # "Beyond" the threshold: a pause of exactly pause_max_s is allowed.
        if stop - run.start <= limit_us:
            return
        raised = run.start + limit_us
        live = run.live_at_raise
        rule = RULES[name]
        self.alerts.append(
            Alert(
                window=self.plan.window,
                type=name,
                condition_since=self.to_dt(run.start),
                raised_at=self.to_dt(raised),
                cleared_at=self.to_dt(end) if end is not None else None,
                live=live,
                severity=rule.severity,
                rule=rule.threshold,
                threshold_s=self.limits[name],
                source=self.policy.sources.get(rule.threshold or "", "") if rule.threshold else "hall plan: leave register",
                facts=run.facts,
                evidence=run.evidence,
            )
        )

    def finish(self, ends_now: bool) -> WindowDay:
        """Close the runs still open at the end of the evaluated span: still
        active if that end is ``until`` itself, cleared at midnight otherwise."""
        for name in list(self.runs):
            self.close_run(name, None if ends_now else self.day_end)
        self.alerts.sort(key=lambda a: (a.raised_at, a.type))
        to_dt = self.to_dt
        segments = tuple(Segment(to_dt(a), to_dt(b), state) for a, b, state in self.timeline)  # type: ignore[arg-type]
        return WindowDay(self.plan.window, segments, tuple(self.alerts))


def evaluate_window(
    plan: WindowPlan,
    observations: Iterable[Observation],
    policy: Policy,
    calendar: WorkCalendar,
    day: date,
    until: datetime,
    tz,  # type: ignore[no-untyped-def]
) -> WindowDay:
    """Fold a window's day into its state timeline and alert episodes, up to ``until``."""
    day_start_dt = datetime.combine(day, datetime.min.time(), tz)
    day_start = _us(day_start_dt)
    day_end = min(_us(day_start_dt + timedelta(days=1)), _us(until))
    ends_now = day_end == _us(until)
    opened = [(_us(a), _us(b)) for a, b in open_intervals(day, policy, calendar, plan.on_lunch_duty, tz)]
    obs = [p for p in _dedupe_sorted(observations) if p[0] < day_end]
    leaves = tuple((_us(i.start), _us(i.end), i.person) for i in plan.leaves)
    substitutes = tuple((_us(i.start), _us(i.end), i.person) for i in plan.substitutes)
    times = _change_points(day_start, day_end, opened, leaves + substitutes, obs)

    evaluation = _Evaluation(plan, policy, day_end, tz)
    evaluation.fold(times, obs, opened, leaves, substitutes)
    return evaluation.finish(ends_now)
