"""A window's day of supervision held live: :func:`evaluate_window`'s result, at a cost per event that does not grow with the day.

:func:`server.rules.supervision.evaluate_window` folds the whole day on every
call; the live server calls it for every window something happened at, so
each event cost a walk over all the events the window had that day.
:class:`LiveWindow` keeps the fold's state at a *frontier* — the time of the
newest observation — and on :meth:`LiveWindow.advance` folds only what came
since, then finishes a copy of that state up to ``until``.  Observations
almost always arrive in time order; one older than the frontier (a replayed
outbox, a late delivery) or a clock that goes back before it makes the next
:meth:`~LiveWindow.advance` fold the day again from the start, so the result
is always exactly the reference's (tests/test_incremental_rules.py holds them
equal after every batch of random days).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from server.rules.calendar import WorkCalendar
from server.rules.policy import Policy
from server.rules.supervision import (
    Alert,
    Observation,
    Segment,
    WindowPlan,
    _dedupe_key,
    _Evaluation,
    _fold_order,
    _us,
    open_intervals,
)

Pair = tuple[int, Observation]


class LiveWindow:
    """One window's day: observations in, ``(current segment, alerts)`` out, equal to :func:`evaluate_window`'s."""

    def __init__(self, plan: WindowPlan, policy: Policy, calendar: WorkCalendar, day: date, tz, observations: Iterable[Observation] = ()) -> None:  # type: ignore[no-untyped-def]
        self.plan = plan
        self.policy = policy
        self.tz = tz
        start = datetime.combine(day, datetime.min.time(), tz)
        self._day_start, self._midnight = _us(start), _us(start + timedelta(days=1))
        self._opened = [(_us(a), _us(b)) for a, b in open_intervals(day, policy, calendar, plan.on_lunch_duty, tz)]
        self._leaves = tuple((_us(i.start), _us(i.end), i.person) for i in plan.leaves)
        self._substitutes = tuple((_us(i.start), _us(i.end), i.person) for i in plan.substitutes)
        edges = {self._day_start, self._midnight, *(t for span in self._opened for t in span)}
        edges.update(t for a, b, _ in self._leaves + self._substitutes for t in (a, b))
        self._edges = sorted(t for t in edges if self._day_start <= t <= self._midnight)
        """The change points that do not come from observations: opening hours, leave, substitution, the day's ends."""
        self._unique: dict[tuple[object, ...], Pair] = {}
        self._stale = False
        self._restart()
        self._tail: _Evaluation | None = None
        for observation in observations:
            self.add(observation)

    def _restart(self) -> None:
        self._fold = _Evaluation(self.plan, self.policy, self._midnight, self.tz)
        self._frontier = self._day_start
        """The fold holds every span that starts before this moment (µs), and every observation before it."""
        self._pending: list[Pair] = list(self._unique.values())
        self._stale = False

    def observations(self) -> list[Observation]:
        """The day's observations, duplicates removed (to start over with another plan)."""
        return [obs for _, obs in self._unique.values()]

    def add(self, observation: Observation) -> None:
        """Take one more observation (a duplicate only counts when it brings the live copy of a replayed one)."""
        key = _dedupe_key(observation)
        kept = self._unique.get(key)
        if kept is not None and not (kept[1].historical and not observation.historical):
            return
        pair = (_us(observation.time), observation)
        self._unique[key] = pair
        if kept is not None:
            if self._folded(kept[0]):
                self._stale = True
            else:
                self._pending = [p for p in self._pending if p is not kept]
        if self._folded(pair[0]):
            self._stale = True  # older than the frontier: the day is folded again at the next advance
        elif not self._stale:
            self._pending.append(pair)

    def _folded(self, us: int) -> bool:
        return max(us, self._day_start) < self._frontier

    def advance(self, until: datetime) -> tuple[Segment | None, tuple[Alert, ...]]:
        """The window as evaluated up to ``until``: its current state segment and the day's alert episodes."""
        until_us = _us(until)
        end = min(self._midnight, until_us)
        if self._stale or end < self._frontier:
            self._restart()
        self._catch_up(end)
        tail = self._fold.copy(end)
        rest = sorted((p for p in self._pending if p[0] < end), key=_fold_order)
        tail.fold(self._points(self._frontier, end, ()), rest, self._opened, self._leaves, self._substitutes)
        day = tail.finish(end == until_us)
        self._tail = tail
        return (day.timeline[-1] if day.timeline else None), day.alerts

    def timeline(self) -> tuple[Segment, ...]:
        """The whole day's state timeline as of the last :meth:`advance` (the live path needs only its last segment)."""
        done = [Segment(self._fold.to_dt(a), self._fold.to_dt(b), state) for a, b, state in self._fold.timeline[:-1]]  # type: ignore[arg-type]
        tail = self._tail.timeline if self._tail is not None else []
        return (*done, *(Segment(self._fold.to_dt(a), self._fold.to_dt(b), state) for a, b, state in tail))  # type: ignore[arg-type]

    def _catch_up(self, end: int) -> None:
        """Fold the observations before ``end`` into the held state, up to the newest of them."""
        eligible = [p[0] for p in self._pending if p[0] < end]
        if not eligible:
            return
        frontier = max(max(eligible), self._day_start)
        if frontier <= self._frontier:
            return
        chunk = sorted((p for p in self._pending if max(p[0], self._day_start) < frontier), key=_fold_order)
        self._fold.fold(self._points(self._frontier, frontier, chunk), chunk, self._opened, self._leaves, self._substitutes)
        self._pending = [p for p in self._pending if max(p[0], self._day_start) >= frontier]
        self._frontier = frontier

    def _points(self, start: int, end: int, chunk: Iterable[Pair]) -> list[int]:
        """The change points from ``start`` to ``end`` (both included) of the opening hours, leave and ``chunk``."""
        points = {start, end, *(t for t, _ in chunk)}
        points.update(t for t in self._edges if start < t < end)
        return sorted(t for t in points if start <= t <= end and t >= self._day_start)

