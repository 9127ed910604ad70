"""Attendance (考勤): one person's punches plus the policy give each half-day a status — pure.

The regulations count attendance by the **half-day** (000 篇9:
「考勤以半天为单位」): each session of ``policy.schedule.sessions`` is one.
:func:`evaluate_day` and :func:`evaluate_month` take a person's punches (by
face, staff number + PIN, card, or an approved make-up punch — all alike),
their leave as plain intervals, the policy and the working-day calendar, and
return for every half-day one of

    normal · late · early_leave · late_and_early_leave · missing_punch ·
    absent · on_leave · non_working · pending

with the minutes late or early, the punches used, the policy rules that
decided it (key and citation) and the facts, so the office can check every
mark on the sheet.  The month adds up counts and the preset's escalations.
Make-up punches (补卡) are a small state machine: requested → approved or
rejected, filed within ``attendance.makeup_file_working_days`` working days
of the missed day, at most ``attendance.makeup_monthly_limit`` a month.

How punches are read (see docs/attendance.md):

* A *block* is the stretch that needs one clock-in and one clock-out: every
  half-day (``per_half_day``, 4 punches a day) or the run of worked
  half-days of the day (``per_day``, 2 punches).  Leave at the edge of a
  half-day moves the expected time (on leave until 10:00 → clock in by
  10:00); leave covering a whole half-day makes it ``on_leave`` and splits
  a ``per_day`` block.
* A punch counts only inside a window around the expected time; one that
  falls in the windows of several slots goes to the slot whose expected time
  is nearest.  In a block the earliest punch in the clock-in window is the
  clock-in and the latest in the clock-out window the clock-out; one punch
  cannot be both.  Punches outside every window are ignored and listed.
* No accepted punch at all is ``absent`` (旷工); one of the two missing is
  ``missing_punch`` (缺卡), which counts as absent when the policy says so —
  until a make-up punch is approved.  Late by ``late_absent_s`` or more is
  ``absent``, not late.

Nothing here reads a clock: ``until`` says how far the caller's day has
got, and half-days whose punch windows are still open are ``pending``, so
today's afternoon is never reported absent at 10:00.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Literal, get_args

from broker.timeutil import HALL_TZ
from server.rules.calendar import WorkCalendar
from server.rules.policy import MonthlyEscalation, Policy, Session
from server.rules.supervision import Interval

PunchMethod = Literal["face", "pin", "card", "makeup"]
METHODS: tuple[PunchMethod, ...] = get_args(PunchMethod)

Status = Literal[
    "normal",
    "late",
    "early_leave",
    "late_and_early_leave",
    "missing_punch",
    "absent",
    "on_leave",
    "non_working",
    "pending",
]
STATUSES: tuple[Status, ...] = get_args(Status)
STATUS_ZH: dict[str, str] = {
    "normal": "正常",
    "late": "迟到",
    "early_leave": "早退",
    "late_and_early_leave": "迟到、早退",
    "missing_punch": "缺卡",
    "absent": "旷工",
    "on_leave": "请假",
    "non_working": "休息日",
    "pending": "未结束",
}
ATTENDED: frozenset[str] = frozenset({"normal", "late", "early_leave", "late_and_early_leave"})
"""Statuses of a half-day the person was there for (with or without a late/early mark)."""

LEAVE_RULE = ("leave", "leave register (请假登记): approved leave or outing")
"""The basis of an ``on_leave`` half-day: the hall's register, not a policy value."""


class MakeUpRefused(ValueError):
    """A make-up punch (补卡) that the rules do not accept; says why and which policy rule."""

    def __init__(self, reason: str, rule: str | None = None, source: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.rule = rule
        self.source = source


class MakeUpTransitionError(ValueError):
    """A decision the make-up workflow does not allow (e.g. approving twice)."""


# --------------------------------------------------------------------------
# Inputs and results
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Punch:
    """One clock-in terminal punch (打卡), or an approved make-up punch (``method="makeup"``)."""

    at: datetime
    method: PunchMethod = "face"


@dataclass(frozen=True)
class HalfDay:
    """One half-day (session) of one person: its status and everything it rests on."""

    day: date
    session: str
    start: datetime
    """The session's official start and end (not moved by leave)."""
    end: datetime
    status: Status
    late_s: int = 0
    """Seconds after the expected start the clock-in came (0 if on time or no clock-in)."""
    early_s: int = 0
    """Seconds before the expected end the clock-out came."""
    clock_in: Punch | None = None
    clock_out: Punch | None = None
    counts_as_absent: bool = False
    """Counted as a half-day of absence (旷工/缺勤) in the month: ``absent``, or ``missing_punch``
    where the policy says so."""
    rules: tuple[tuple[str, str], ...] = ()
    """(policy key, citation) of each rule that decided the status."""
    facts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DayAttendance:
    day: date
    working: bool
    halves: tuple[HalfDay, ...]
    ignored: tuple[Punch, ...] = ()
    """Punches of the day outside every punch window: not counted, listed for the office."""


@dataclass(frozen=True)
class EscalationHit:
    """A monthly escalation the person reached, with the rule and its citation."""

    name: str
    at_least: int
    count: int
    absent_halfdays: int
    source: str
    rule: str = "attendance.monthly_escalations"


@dataclass(frozen=True)
class MonthSummary:
    """A person's month in numbers, as the 督查科 reports it (每月通报一次考勤汇总情况)."""

    counts: Mapping[str, int]
    """Half-days per status (every status present, 0 included)."""
    late: int
    """Late arrivals (迟到), counting ``late_and_early_leave`` half-days too."""
    early: int
    """Early leaves (早退), counting ``late_and_early_leave`` half-days too."""
    absent_halfdays: int
    """Half-days counted as absence: ``absent``, counted ``missing_punch``, and escalations."""
    punches: Mapping[str, int]
    """Punches used as clock-in or clock-out, by method (face, pin, card, makeup)."""
    escalations: tuple[EscalationHit, ...]

    @property
    def late_or_early(self) -> int:
        """What the monthly escalations count: late arrivals plus early leaves."""
        return self.late + self.early

    @property
    def working_halfdays(self) -> int:
        return sum(n for status, n in self.counts.items() if status not in ("non_working", "pending"))

    @property
    def attended_halfdays(self) -> int:
        return sum(self.counts[status] for status in ATTENDED)

    @property
    def non_face(self) -> int:
        """Punches used that were not face punches (PIN, card, make-up)."""
        return sum(n for method, n in self.punches.items() if method != "face")


@dataclass(frozen=True)
class MonthAttendance:
    person: str
    year: int
    month: int
    days: tuple[DayAttendance, ...]
    summary: MonthSummary


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def _aware(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise TypeError(f"{what} must be a timezone-aware datetime, not {value!r}")
    return value.astimezone(HALL_TZ)


def local_day(moment: datetime) -> date:
    """The hall-local (Asia/Shanghai) date of an aware datetime."""
    return _aware(moment, "time").date()


def is_attendance_day(day: date, policy: Policy, calendar: WorkCalendar) -> bool:
    """Does the person work on ``day``?  A 调休 Saturday yes, a holiday no (raises CalendarGapError
    for a year the calendar does not cover)."""
    return not policy.schedule.working_days_only or calendar.is_working_day(day)


def _seconds(span: timedelta) -> int:
    """Whole seconds, rounded up: half a second late is late, and shows as 1 s, never 0."""
    return max(0, math.ceil(span.total_seconds()))


def _duration(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def _hms(moment: datetime) -> str:
    return moment.astimezone(HALL_TZ).strftime("%H:%M:%S")


def _merged(spans: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Union of intervals; touching ones merge, so leave 08:00–10:00 plus 10:00–12:00 covers the morning."""
    out: list[tuple[datetime, datetime]] = []
    for start, end in sorted(spans):
        if end <= start:
            continue
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


# --------------------------------------------------------------------------
# One day
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Half:
    session: Session
    start: datetime
    end: datetime
    expected_start: datetime
    """Start moved past leave that covers the start (on leave until 10:00 → expected at 10:00)."""
    expected_end: datetime
    on_leave: bool
    leave: tuple[tuple[datetime, datetime], ...]


@dataclass(frozen=True, slots=True)
class _Slot:
    block: int
    expected: datetime
    low: datetime
    high: datetime

    def holds(self, moment: datetime) -> bool:
        return self.low <= moment <= self.high


def _plan_half(session: Session, day: date, leave: list[tuple[datetime, datetime]]) -> _Half:
    start = datetime.combine(day, session.start, HALL_TZ)
    end = datetime.combine(day, session.end, HALL_TZ)
    parts = tuple((max(a, start), min(b, end)) for a, b in leave if a < end and b > start)
    covers_start = bool(parts) and parts[0][0] == start
    covers_end = bool(parts) and parts[-1][1] == end
    on_leave = covers_start and parts[0][1] == end
    return _Half(
        session=session,
        start=start,
        end=end,
        expected_start=parts[0][1] if covers_start and not on_leave else start,
        expected_end=parts[-1][0] if covers_end and not on_leave else end,
        on_leave=on_leave,
        leave=parts,
    )


def _blocks(halves: Sequence[_Half], per_day: bool) -> list[list[_Half]]:
    """The stretches that each need one clock-in and one clock-out."""
    blocks: list[list[_Half]] = []
    run: list[_Half] = []
    for half in halves:
        if half.on_leave:
            if run:
                blocks.append(run)
            run = []
        elif per_day:
            run.append(half)
        else:
            blocks.append([half])
    if run:
        blocks.append(run)
    return blocks


def _slots(blocks: Sequence[Sequence[_Half]], policy: Policy, day_start: datetime) -> list[_Slot]:
    """Clock-in and clock-out windows of each block (inclusive, clamped to the half-day and the day).

    A clock-in is never accepted after its half-day has ended, nor a clock-out
    before its half-day has begun: such a punch says nothing about that time.
    """
    rules = policy.attendance
    day_end = day_start + timedelta(days=1) - timedelta(microseconds=1)

    def offset(base: datetime, seconds: int | None, fallback: datetime, sign: int) -> datetime:
        return fallback if seconds is None else base + sign * timedelta(seconds=seconds)

    slots: list[_Slot] = []
    for index, block in enumerate(blocks):
        first, last = block[0], block[-1]
        at_in, at_out = first.expected_start, last.expected_end
        slots.append(
            _Slot(
                index,
                at_in,
                max(offset(at_in, rules.clock_in_before_s, day_start, -1), day_start),
                min(offset(at_in, rules.clock_in_after_s, first.expected_end, 1), first.expected_end),
            )
        )
        slots.append(
            _Slot(
                index,
                at_out,
                max(offset(at_out, rules.clock_out_before_s, last.expected_start, -1), last.expected_start),
                min(offset(at_out, rules.clock_out_after_s, day_end, 1), day_end),
            )
        )
    return slots


def _pick(punches: Sequence[Punch], slot_in: _Slot, slot_out: _Slot) -> tuple[Punch | None, Punch | None]:
    """The block's clock-in (earliest in its window) and clock-out (latest in its window)."""
    ins = [p for p in punches if slot_in.holds(p.at)]
    outs = [p for p in punches if slot_out.holds(p.at)]
    return resolve_pair(ins[0] if ins else None, outs[-1] if outs else None, slot_in, slot_out)


def resolve_pair(clock_in: Punch | None, clock_out: Punch | None, slot_in: _Slot, slot_out: _Slot) -> tuple[Punch | None, Punch | None]:
    """One punch cannot be both: when the earliest clock-in and the latest clock-out are the same
    punch (the block's one punch, in both windows of a short half-day), it is the clock-in if it is
    at least as near the expected start as the expected end."""
    if clock_in is not None and clock_out is not None and clock_in.at == clock_out.at:
        if abs(clock_in.at - slot_in.expected) <= abs(slot_out.expected - clock_in.at):
            return clock_in, None
        return None, clock_out
    return clock_in, clock_out


_Verdict = tuple[str, tuple[str, str] | None]  # (kind, rule) with kind ok/late/early/missing/absent


def _cite(policy: Policy, key: str) -> tuple[str, str]:
    return (key, policy.sources.get(key, ""))


def _judge_in(punch: Punch | None, expected: datetime, policy: Policy) -> tuple[_Verdict, int]:
    rules = policy.attendance
    if punch is None:
        return ("missing", _cite(policy, "attendance.missing_punch_absent")), 0
    late = punch.at - expected
    late_s = _seconds(late)
    if rules.late_absent_s is not None and late >= timedelta(seconds=rules.late_absent_s):
        return ("absent", _cite(policy, "attendance.late_absent_s")), late_s
    if late > timedelta(seconds=rules.late_grace_s):
        return ("late", _cite(policy, "attendance.late_grace_s")), late_s
    return ("ok", None), late_s


def _judge_out(punch: Punch | None, expected: datetime, policy: Policy) -> tuple[_Verdict, int]:
    if punch is None:
        return ("missing", _cite(policy, "attendance.missing_punch_absent")), 0
    early = expected - punch.at
    early_s = _seconds(early)
    if early > timedelta(seconds=policy.attendance.early_grace_s):
        return ("early", _cite(policy, "attendance.early_grace_s")), early_s
    return ("ok", None), early_s


def _combine(verdicts: Sequence[_Verdict]) -> tuple[Status, tuple[tuple[str, str], ...]]:
    """One status from the half-day's clock-in and clock-out verdicts: absent > missing > late/early."""
    kinds = [kind for kind, _ in verdicts]

    def rules_of(*wanted: str) -> tuple[tuple[str, str], ...]:
        return tuple(rule for kind, rule in verdicts if kind in wanted and rule is not None)

    if "absent" in kinds:
        return "absent", rules_of("absent")
    if "missing" in kinds:
        return "missing_punch", rules_of("missing")
    if "late" in kinds and "early" in kinds:
        return "late_and_early_leave", rules_of("late", "early")
    if "late" in kinds:
        return "late", rules_of("late")
    if "early" in kinds:
        return "early_leave", rules_of("early")
    return "normal", ()


def _session_fact(half: _Half) -> tuple[str, str]:
    return ("session", f"{half.session.name} {half.session.start:%H:%M}–{half.session.end:%H:%M}")


def _leave_facts(half: _Half) -> tuple[tuple[str, str], ...]:
    return tuple(("leave", f"{_hms(a)}–{_hms(b)}") for a, b in half.leave)


def _punch_fact(name: str, punch: Punch) -> tuple[str, str]:
    return (name, f"{_hms(punch.at)} {punch.method}")


def _judge_block(
    block: Sequence[_Half], clock_in: Punch | None, clock_out: Punch | None, policy: Policy, day: date
) -> list[HalfDay]:
    first, last = block[0], block[-1]
    counts_missing = policy.attendance.missing_punch_absent
    if clock_in is None and clock_out is None:
        rule = _cite(policy, "attendance.punches")
        return [
            HalfDay(
                day, h.session.name, h.start, h.end, "absent", counts_as_absent=True, rules=(rule,),
                facts=(_session_fact(h), *_leave_facts(h), ("punches", "no accepted clock-in or clock-out, no leave")),
            )
            for h in block
        ]
    verdict_in, late_s = _judge_in(clock_in, first.expected_start, policy)
    verdict_out, early_s = _judge_out(clock_out, last.expected_end, policy)
    result: list[HalfDay] = []
    for half in block:
        verdicts: list[_Verdict] = []
        facts: list[tuple[str, str]] = [_session_fact(half), *_leave_facts(half)]
        this_late = this_early = 0
        this_in = this_out = None
        if half is first:
            verdicts.append(verdict_in)
            this_late, this_in = late_s, clock_in
            facts.append(("expected_in", _hms(half.expected_start)))
            facts.append(_punch_fact("clock_in", clock_in) if clock_in else ("clock_in", "none accepted"))
            if late_s:
                facts.append(("late", _duration(late_s)))
        if half is last:
            verdicts.append(verdict_out)
            this_early, this_out = early_s, clock_out
            facts.append(("expected_out", _hms(half.expected_end)))
            facts.append(_punch_fact("clock_out", clock_out) if clock_out else ("clock_out", "none accepted"))
            if early_s:
                facts.append(("early", _duration(early_s)))
        status, rules = _combine(verdicts)
        result.append(
            HalfDay(
                day, half.session.name, half.start, half.end, status,
                late_s=this_late, early_s=this_early, clock_in=this_in, clock_out=this_out,
                counts_as_absent=status == "absent" or (status == "missing_punch" and counts_missing),
                rules=rules, facts=tuple(facts),
            )
        )
    return result


@dataclass(frozen=True, slots=True)
class DayPlan:
    """What a person's day asks before any punch: its half-days (moved by leave), blocks and punch windows."""

    day: date
    working: bool
    planned: tuple[_Half, ...]
    blocks: tuple[tuple[_Half, ...], ...]
    slots: tuple[_Slot, ...]
    """Two per block: its clock-in window, then its clock-out window."""

    def block_of(self, punch: Punch) -> int | None:
        """The block a punch of this day counts for: the one whose window holding it has the nearest
        expected time (windows of neighbouring blocks may overlap over a short lunch); None outside all."""
        holding = [s for s in self.slots if s.holds(punch.at)]
        if not holding:
            return None
        return min(holding, key=lambda s: (abs(punch.at - s.expected), s.expected)).block


def plan_day(day: date, leaves: Iterable[Interval], policy: Policy, calendar: WorkCalendar) -> DayPlan:
    """The half-days, blocks and windows of ``day`` for a person with ``leaves`` (raises CalendarGapError)."""
    sessions = sorted(policy.schedule.sessions, key=lambda s: s.start)
    if not is_attendance_day(day, policy, calendar):
        return DayPlan(day, False, tuple(_plan_half(s, day, []) for s in sessions), (), ())
    leave = _merged((_aware(i.start, "leave start"), _aware(i.end, "leave end")) for i in leaves)
    planned = [_plan_half(s, day, leave) for s in sessions]
    blocks = _blocks(planned, policy.attendance.punches == "per_day")
    slots = _slots(blocks, policy, datetime.combine(day, time(), HALL_TZ))
    return DayPlan(day, True, tuple(planned), tuple(tuple(b) for b in blocks), tuple(slots))


def punch_order(punch: Punch) -> tuple[datetime, str]:
    """The order punches are read in: by time, then method (so equal inputs give equal days in any order)."""
    return (punch.at, punch.method)


def judge_day(
    plan: DayPlan, picks: Sequence[tuple[Punch | None, Punch | None]], ignored: Sequence[Punch], policy: Policy, calendar: WorkCalendar, until: datetime | None
) -> DayAttendance:
    """The day's result from each block's chosen clock-in and clock-out (``picks``, one pair per block)."""
    day = plan.day
    if not plan.working:
        rule = _cite(policy, "schedule.working_days_only")
        facts = (("calendar", calendar.name(day) or day.strftime("%A")),)
        halves = tuple(HalfDay(day, h.session.name, h.start, h.end, "non_working", rules=(rule,), facts=facts) for h in plan.planned)
        return DayAttendance(day, False, halves)
    judged: dict[datetime, HalfDay] = {}
    for index, block in enumerate(plan.blocks):
        slot_out = plan.slots[2 * index + 1]
        if until is not None and _aware(until, "until") < slot_out.high:
            for half in block:
                judged[half.start] = HalfDay(
                    day, half.session.name, half.start, half.end, "pending",
                    facts=(_session_fact(half), *_leave_facts(half), ("pending", f"clock-out window open until {_hms(slot_out.high)}")),
                )
            continue
        clock_in, clock_out = picks[index]
        for result in _judge_block(block, clock_in, clock_out, policy, day):
            judged[result.start] = result
    for half in plan.planned:
        if half.on_leave:
            judged[half.start] = HalfDay(
                day, half.session.name, half.start, half.end, "on_leave", rules=(LEAVE_RULE,),
                facts=(_session_fact(half), *_leave_facts(half)),
            )
    return DayAttendance(day, True, tuple(judged[h.start] for h in plan.planned), tuple(ignored))


def evaluate_day(
    day: date,
    punches: Iterable[Punch],
    leaves: Iterable[Interval],
    policy: Policy,
    calendar: WorkCalendar,
    until: datetime | None = None,
) -> DayAttendance:
    """One person's attendance on ``day``: a :class:`HalfDay` per session.

    ``punches``: the person's punches (any days; only ``day``'s are read),
    approved make-up punches included as ``method="makeup"``.  ``leaves``:
    the person's approved leave and outings as intervals (partial half-days
    allowed).  ``until``: how far the day has got; a block whose clock-out
    window is still open then is ``pending``.  None: the day is over.
    """
    plan = plan_day(day, leaves, policy, calendar)
    if not plan.working:
        return judge_day(plan, [], [], policy, calendar, until)
    todays = sorted((replace(p, at=_aware(p.at, "punch time")) for p in punches), key=punch_order)
    by_block: list[list[Punch]] = [[] for _ in plan.blocks]
    ignored: list[Punch] = []
    for punch in (p for p in todays if p.at.date() == day):
        block = plan.block_of(punch)
        if block is None:
            ignored.append(punch)
        else:
            by_block[block].append(punch)
    picks = [_pick(by_block[i], plan.slots[2 * i], plan.slots[2 * i + 1]) for i in range(len(plan.blocks))]
    return judge_day(plan, picks, ignored, policy, calendar, until)


# --------------------------------------------------------------------------
# The month
# --------------------------------------------------------------------------


def month_days(year: int, month: int) -> list[date]:
    first = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    return [first + timedelta(days=n) for n in range((following - first).days)]


def summarize(days: Iterable[DayAttendance], policy: Policy) -> MonthSummary:
    """Counts of a set of days (a month) and the escalations they reach."""
    counts = {status: 0 for status in STATUSES}
    punches = {method: 0 for method in METHODS}
    late = early = absent = 0
    for day in days:
        for half in day.halves:
            counts[half.status] += 1
            late += half.status in ("late", "late_and_early_leave")
            early += half.status in ("early_leave", "late_and_early_leave")
            absent += half.counts_as_absent
            for punch in (half.clock_in, half.clock_out):
                if punch is not None:
                    punches[punch.method] += 1
    hits = tuple(
        _hit(rule, late + early, policy) for rule in policy.attendance.monthly_escalations if late + early >= rule.at_least
    )
    absent += sum(hit.absent_halfdays for hit in hits)
    return MonthSummary(counts, late, early, absent, punches, hits)


def _hit(rule: MonthlyEscalation, count: int, policy: Policy) -> EscalationHit:
    return EscalationHit(rule.name, rule.at_least, count, rule.absent_halfdays, policy.sources.get("attendance.monthly_escalations", ""))


def evaluate_month(
    person: str,
    year: int,
    month: int,
    punches: Iterable[Punch],
    leaves: Iterable[Interval],
    policy: Policy,
    calendar: WorkCalendar,
    until: datetime | None = None,
) -> MonthAttendance:
    """``person``'s attendance for a calendar month: every day, and the summary.

    ``leaves`` must all be ``person``'s (a ValueError otherwise: someone
    else's leave must never excuse this person).  Raises CalendarGapError
    when the calendar does not cover the month.
    """
    own = tuple(leaves)
    strangers = sorted({i.person for i in own if i.person != person})
    if strangers:
        raise ValueError(f"leave of {strangers} passed for {person!r}")
    kept = tuple(punches)
    days = tuple(evaluate_day(d, kept, own, policy, calendar, until) for d in month_days(year, month))
    return MonthAttendance(person, year, month, days, summarize(days, policy))


# --------------------------------------------------------------------------
# Make-up punches (补卡)
# --------------------------------------------------------------------------

MakeUpState = Literal["requested", "approved", "rejected"]


@dataclass(frozen=True)
class MakeUpRequest:
    """A request to record a punch the terminal did not (指纹签不上、漏签): requested → approved / rejected."""

    person: str
    claimed_at: datetime
    """The time the person says they punched (or should have): the make-up punch's time."""
    reason: str
    filed_at: datetime
    deadline: date
    """The last day it could be filed (already checked when it was filed)."""
    state: MakeUpState = "requested"
    decided_by: str = ""
    decided_at: datetime | None = None
    note: str = ""

    @property
    def day(self) -> date:
        """The day of the missed punch."""
        return local_day(self.claimed_at)


def makeup_deadline(missed_day: date, policy: Policy, calendar: WorkCalendar) -> date:
    """The last day to file a make-up punch for ``missed_day``.

    ``attendance.makeup_file_working_days`` working days *after* the missed
    day, counted like every HallWatch deadline (the day itself never counts;
    调休 Saturdays count, holidays do not): with 2, a punch missed on Friday
    2026-02-13 is due on Tuesday 2026-02-24 — Saturday 14 Feb is a moved
    working day, 15–23 Feb the Spring Festival.
    """
    return calendar.add_working_days(missed_day, policy.attendance.makeup_file_working_days)


def file_makeup(
    person: str,
    claimed_at: datetime,
    reason: str,
    filed_at: datetime,
    policy: Policy,
    calendar: WorkCalendar,
    others: Iterable[MakeUpRequest] = (),
) -> MakeUpRequest:
    """File a make-up punch; :class:`MakeUpRefused` says why the rules refuse it.

    Refused: no reason given; filed before the time it claims; for a day the
    person does not work; after :func:`makeup_deadline`; or when the person
    already has ``attendance.makeup_monthly_limit`` requests pending or
    approved for that month (``others``: their earlier requests; rejected
    ones do not count).
    """
    claimed = _aware(claimed_at, "claimed_at")
    filed = _aware(filed_at, "filed_at")
    reason = (reason or "").strip()
    if not reason:
        raise MakeUpRefused("a make-up punch (补卡) needs a reason (说明), e.g. 「人脸识别失败」")
    if filed < claimed:
        raise MakeUpRefused(f"filed at {filed.isoformat()}, before the punch it claims ({claimed.isoformat()})")
    missed = claimed.date()
    if not is_attendance_day(missed, policy, calendar):
        raise MakeUpRefused(
            f"{missed.isoformat()} is not a working day: there is no punch to make up",
            "schedule.working_days_only",
            policy.sources.get("schedule.working_days_only", ""),
        )
    rules = policy.attendance
    deadline = makeup_deadline(missed, policy, calendar)
    if filed.date() > deadline:
        key = "attendance.makeup_file_working_days"
        raise MakeUpRefused(
            f"filed on {filed.date().isoformat()}, after the deadline {deadline.isoformat()} "
            f"({rules.makeup_file_working_days} working days after {missed.isoformat()})",
            key,
            policy.sources.get(key, ""),
        )
    used = [
        r for r in others
        if r.person == person and r.state != "rejected" and (r.day.year, r.day.month) == (missed.year, missed.month)
    ]
    if len(used) >= rules.makeup_monthly_limit:
        key = "attendance.makeup_monthly_limit"
        raise MakeUpRefused(
            f"{person} already has {len(used)} make-up punches for {missed:%Y-%m} "
            f"(limit {rules.makeup_monthly_limit} a month, pending or approved)",
            key,
            policy.sources.get(key, ""),
        )
    return MakeUpRequest(person, claimed, reason, filed, deadline)


def _decide(request: MakeUpRequest, state: MakeUpState, by: str, at: datetime, note: str) -> MakeUpRequest:
    if request.state != "requested":
        raise MakeUpTransitionError(f"only a requested make-up punch can be decided; this one is {request.state}")
    by = (by or "").strip()
    if not by:
        raise MakeUpTransitionError("a decision needs the person who takes it")
    moment = _aware(at, "at")
    if moment < request.filed_at:
        raise MakeUpTransitionError(f"decided at {moment.isoformat()}, before it was filed ({request.filed_at.isoformat()})")
    return replace(request, state=state, decided_by=by, decided_at=moment, note=(note or "").strip())


def approve_makeup(request: MakeUpRequest, by: str, at: datetime, note: str = "") -> MakeUpRequest:
    """The office verified the punch (督查科核实): it now counts, as :func:`makeup_punch`."""
    return _decide(request, "approved", by, at, note)


def reject_makeup(request: MakeUpRequest, by: str, at: datetime, note: str) -> MakeUpRequest:
    """The office did not verify it; the reason is required, the person sees it."""
    if not (note or "").strip():
        raise MakeUpTransitionError("rejecting a make-up punch needs a reason")
    return _decide(request, "rejected", by, at, note)


def makeup_punch(request: MakeUpRequest) -> Punch:
    """The punch an approved request adds to the person's punches (``method="makeup"``)."""
    if request.state != "approved":
        raise MakeUpTransitionError(f"only an approved make-up punch counts; this one is {request.state}")
    return Punch(request.claimed_at, "makeup")
