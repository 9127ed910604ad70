"""A person's attendance day held as punches arrive: :func:`evaluate_day`'s result without re-reading the day.

:func:`server.rules.attendance.evaluate_day` sorts all of a person's punches
and picks each block's clock-in and clock-out from them.  What decides a
block is only its earliest punch in the clock-in window and its latest in
the clock-out window, so :class:`LiveDay` keeps exactly those two per block
(and the punches outside every window, which the office sees listed): a
punch costs one comparison per block, however many came before it, and a
punch replayed late or out of order lands where the sorted reading would
have put it.  Leave changes the plan itself; the adapter then starts the
day over from the person's punches (tests/test_incremental_rules.py holds
the two equal after every batch of random days).
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from server.rules.attendance import (
    DayAttendance,
    Punch,
    _aware,
    _judge_in,
    judge_day,
    plan_day,
    punch_order,
    resolve_pair,
)
from server.rules.calendar import WorkCalendar
from server.rules.policy import Policy
from server.rules.supervision import Interval


@dataclass(frozen=True, slots=True)
class Progress:
    """How a person's day stands so far, before its blocks are decided (the live and district pages)."""

    expected: bool
    """A working day with at least one half-day not on leave."""
    arrived: bool
    """At least one punch accepted for a block (clock-in or clock-out)."""
    late: bool
    """A block's clock-in so far came after its grace (late, or late enough to be absent)."""
    missing_in: bool
    """A block's clock-in window has closed without a clock-in (未签到)."""


class LiveDay:
    """One person's day: punches in (any order, any day), :meth:`result` equal to :func:`evaluate_day`'s."""

    def __init__(self, day: date, leaves: Iterable[Interval], policy: Policy, calendar: WorkCalendar, punches: Iterable[Punch] = ()) -> None:
        self.day = day
        self.policy = policy
        self.calendar = calendar
        self.plan = plan_day(day, leaves, policy, calendar)
        self._in: list[Punch | None] = [None] * len(self.plan.blocks)
        self._out: list[Punch | None] = [None] * len(self.plan.blocks)
        self._ignored: list[Punch] = []
        for punch in punches:
            self.add(punch)

    def add(self, punch: Punch) -> None:
        """Take one punch; one of another day is not this day's (as in the full reading)."""
        _aware(punch.at, "punch time")
        if not self.plan.working or punch.at.date() != self.day:
            return
        block = self.plan.block_of(punch)
        if block is None:
            insort(self._ignored, punch, key=punch_order)
            return
        key = punch_order(punch)
        if self.plan.slots[2 * block].holds(punch.at) and (self._in[block] is None or key < punch_order(self._in[block])):  # type: ignore[arg-type]
            self._in[block] = punch
        if self.plan.slots[2 * block + 1].holds(punch.at) and (self._out[block] is None or key > punch_order(self._out[block])):  # type: ignore[arg-type]
            self._out[block] = punch

    def _picks(self) -> list[tuple[Punch | None, Punch | None]]:
        slots = self.plan.slots
        return [resolve_pair(self._in[i], self._out[i], slots[2 * i], slots[2 * i + 1]) for i in range(len(self.plan.blocks))]

    def result(self, until: datetime | None = None) -> DayAttendance:
        """The day as :func:`evaluate_day` judges it at ``until`` (None: the day is over)."""
        return judge_day(self.plan, self._picks(), self._ignored, self.policy, self.calendar, until)

    def progress(self, until: datetime) -> Progress:
        """Arrived, late and missing clock-ins so far, from the blocks' clock-ins as they stand at ``until``."""
        expected = self.plan.working and any(not h.on_leave for h in self.plan.planned)
        arrived = late = missing = False
        for index, (clock_in, clock_out) in enumerate(self._picks()):
            slot_in = self.plan.slots[2 * index]
            if clock_in is not None and clock_in.at <= until:
                arrived = True
                (kind, _), _ = _judge_in(clock_in, slot_in.expected, self.policy)
                late = late or kind in ("late", "absent")
            elif slot_in.high < until:
                missing = True
            if clock_out is not None and clock_out.at <= until:
                arrived = True
        return Progress(expected, arrived, late, missing)
