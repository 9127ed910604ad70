"""Attendance (考勤) by each preset's rules, written from the regulation texts.

One table of half-day scenarios per preset — boundaries exactly and one
second either side, moved working days (调休) and holidays of 2026, leave
over part of a half-day, missing punches, make-up punches — then the month
(escalations at exactly their count), make-up punch requests (deadline in
working days, monthly limit, approval), and the policy section itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest

from broker.config_file import ConfigError
from broker.timeutil import HALL_TZ
from server.config.calendar import national_calendar
from server.config.policy import load_policy
from server.rules.attendance import (
    STATUSES,
    MakeUpRefused,
    MakeUpRequest,
    MakeUpTransitionError,
    Punch,
    approve_makeup,
    evaluate_day,
    evaluate_month,
    file_makeup,
    makeup_deadline,
    makeup_punch,
    reject_makeup,
)
from server.rules.calendar import CalendarGapError
from server.rules.supervision import Interval

CAL = national_calendar([2026])
PRESETS = ["linfen", "qujiang-2023", "yuanzhou"]
POLICIES = {name: load_policy(name) for name in PRESETS}

WED = date(2026, 3, 4)  # an ordinary working Wednesday
SAT = date(2026, 3, 7)  # an ordinary Saturday
SPRING_SAT = date(2026, 2, 14)  # Saturday worked for the Spring Festival (春节调休)
NATIONAL_SUN = date(2026, 9, 20)  # Sunday worked for the National Day (国庆节调休)
NATIONAL_SAT = date(2026, 10, 10)  # Saturday worked for the National Day (国庆节调休)
NATIONAL_DAY = date(2026, 10, 1)
LABOUR_DAY = date(2026, 5, 1)
PERSON = "clerk-1"


def at(day: date, hms: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hms), HALL_TZ)


@dataclass(frozen=True)
class Half:
    status: str
    late_s: int = 0
    early_s: int = 0


N = Half("normal")


@dataclass(frozen=True)
class Case:
    name: str
    punches: tuple[str, ...]
    """``"HH:MM:SS"`` or ``"HH:MM:SS method"``."""
    am: Half
    pm: Half
    day: date = WED
    leave: tuple[tuple[str, str], ...] = ()
    ignored: tuple[str, ...] = ()
    counted_absent: tuple[bool, bool] | None = None

    def run(self, preset: str):  # noqa: ANN201
        punches = []
        for text in self.punches:
            hms, _, method = text.partition(" ")
            punches.append(Punch(at(self.day, hms), method or "face"))  # type: ignore[arg-type]
        leaves = [Interval(PERSON, at(self.day, a), at(self.day, b)) for a, b in self.leave]
        return evaluate_day(self.day, punches, leaves, POLICIES[preset], CAL)


def check(preset: str, case: Case) -> None:
    result = case.run(preset)
    got = tuple(Half(h.status, h.late_s, h.early_s) for h in result.halves)
    assert got == (case.am, case.pm), [h.facts for h in result.halves]
    assert tuple(p.at.strftime("%H:%M:%S") for p in result.ignored) == case.ignored
    if case.counted_absent is not None:
        assert tuple(h.counts_as_absent for h in result.halves) == case.counted_absent
    for half in result.halves:
        for key, citation in half.rules:  # every decided status carries its rule and a real citation
            assert citation, (key, half)
            if key.startswith("attendance."):
                assert citation == POLICIES[preset].sources[key]


# --------------------------------------------------------------------------
# Linfen — 000 篇9 六 考勤规范: 08:00–12:00, 14:30–18:00, 4 punches,
# window ±1 h, 30-min preparation before the end, late 30 min = 旷工半天
# --------------------------------------------------------------------------

L_DAY = ("07:55:00", "12:00:00", "14:25:00", "18:00:00")

LINFEN = [
    Case("four punches on time: both half-days normal (「每天签指纹4次」)", L_DAY, N, N),
    Case("sign-in at 08:00:00 exactly is on time", ("08:00:00", "12:00:00", "14:25:00", "18:00:00"), N, N),
    Case("sign-in at 08:00:01 is late by 1 s", ("08:00:01", "12:00:00", "14:25:00", "18:00:00"), Half("late", 1), N),
    Case("late 29 min 59 s is still only late", ("08:29:59", "12:00:00", "14:25:00", "18:00:00"), Half("late", 1799), N),
    Case(
        "late exactly 30 min is absent for the half-day (「迟到半小时的计旷工半天」)",
        ("08:30:00", "12:00:00", "14:25:00", "18:00:00"), Half("absent", 1800), N, counted_absent=(True, False),
    ),
    Case("sign-in at 09:00:00 is still accepted, and absent for lateness", ("09:00:00", "12:00:00", "14:25:00", "18:00:00"), Half("absent", 3600), N),
    Case(
        "sign-in at 09:00:01 is outside the ±1 h window: not accepted, missing, counted absent (「考勤机不接受考勤,计缺勤」)",
        ("09:00:01", "12:00:00", "14:25:00", "18:00:00"), Half("missing_punch"), N, ignored=("09:00:01",), counted_absent=(True, False),
    ),
    Case("sign-in at 07:00:00 opens the window", ("07:00:00", "12:00:00", "14:25:00", "18:00:00"), N, N),
    Case("sign-in at 06:59:59 is before the window: missing", ("06:59:59", "12:00:00", "14:25:00", "18:00:00"), Half("missing_punch"), N, ignored=("06:59:59",)),
    Case("sign-out at 11:30:00 is in the preparation half hour: not early (「离岗准备时间」)", ("07:55:00", "11:30:00", "14:25:00", "18:00:00"), Half("normal", 0, 1800), N),
    Case("sign-out at 11:29:59 is early by 1801 s", ("07:55:00", "11:29:59", "14:25:00", "18:00:00"), Half("early_leave", 0, 1801), N),
    Case("sign-out at 11:00:00 is accepted and early", ("07:55:00", "11:00:00", "14:25:00", "18:00:00"), Half("early_leave", 0, 3600), N),
    Case("sign-out at 10:59:59 is before the window: missing", ("07:55:00", "10:59:59", "14:25:00", "18:00:00"), Half("missing_punch"), N, ignored=("10:59:59",)),
    Case("sign-out at 13:00:00 closes the window", ("07:55:00", "13:00:00", "14:25:00", "18:00:00"), N, N),
    Case("sign-out at 13:00:01 is after the window: missing", ("07:55:00", "13:00:01", "14:25:00", "18:00:00"), Half("missing_punch"), N, ignored=("13:00:01",)),
    Case("afternoon sign-in at 14:30:00 is on time", ("07:55:00", "12:00:00", "14:30:00", "18:00:00"), N, N),
    Case("afternoon sign-in at 14:30:01 is late", ("07:55:00", "12:00:00", "14:30:01", "18:00:00"), N, Half("late", 1)),
    Case("afternoon sign-out at 17:30:00 is not early", ("07:55:00", "12:00:00", "14:25:00", "17:30:00"), N, Half("normal", 0, 1800)),
    Case("afternoon sign-out at 17:29:59 is early", ("07:55:00", "12:00:00", "14:25:00", "17:29:59"), N, Half("early_leave", 0, 1801)),
    Case("no afternoon punches and no leave: absent", ("07:55:00", "12:00:00"), N, Half("absent"), counted_absent=(False, True)),
    Case(
        "sign-in without sign-out is 缺勤半天 (「有签到、无签退…均计缺勤半天」)",
        ("07:55:00", "14:25:00", "18:00:00"), Half("missing_punch"), N, counted_absent=(True, False),
    ),
    Case("sign-out without sign-in is 缺勤半天 too", ("12:00:00", "14:25:00", "18:00:00"), Half("missing_punch"), N),
    Case("late and early in one half-day", ("08:10:00", "11:00:00", "14:25:00", "18:00:00"), Half("late_and_early_leave", 600, 3600), N),
    Case("PIN and card punches count like face punches", ("07:55:00 pin", "12:00:00 card", "14:25:00 card", "18:00:00 pin"), N, N),
    Case("an approved make-up punch fills a missed sign-out", ("07:55:00", "12:00:00 makeup", "14:25:00", "18:00:00"), N, N),
    Case("Saturday 14 Feb 2026 is a moved working day (春节调休): no punches is absent", (), Half("absent"), Half("absent"), day=SPRING_SAT),
    Case("punches on the moved working Saturday count normally", L_DAY, N, N, day=SPRING_SAT),
    Case("National Day is not a working day, punches or not", L_DAY, Half("non_working"), Half("non_working"), day=NATIONAL_DAY),
    Case("an ordinary Saturday is not a working day", (), Half("non_working"), Half("non_working"), day=SAT),
    Case("a full day of leave", (), Half("on_leave"), Half("on_leave"), leave=(("08:00:00", "18:00:00"),)),
    Case("morning on leave, afternoon worked", ("14:25:00", "18:00:00"), Half("on_leave"), N, leave=(("08:00:00", "12:00:00"),)),
    Case("on leave until 10:00: sign-in at 10:00:00 is on time", ("10:00:00", "12:00:00", "14:25:00", "18:00:00"), N, N, leave=(("08:00:00", "10:00:00"),)),
    Case("on leave until 10:00: sign-in at 10:00:01 is late", ("10:00:01", "12:00:00", "14:25:00", "18:00:00"), Half("late", 1), N, leave=(("08:00:00", "10:00:00"),)),
    Case("leave in the middle of a half-day needs no punch", L_DAY, N, N, leave=(("09:00:00", "10:00:00"),)),
]

# --------------------------------------------------------------------------
# Qujiang — 003 四(二)1: 刷脸 2 a day, in by 08:20, out after 17:00; any
# late clock-in is 迟到 (no absent limit); not punching is 旷工
# --------------------------------------------------------------------------

Q_DAY = ("08:10:00", "17:05:00")

QUJIANG = [
    Case("two face punches a day: both half-days normal (「刷脸签到考勤2次」)", Q_DAY, N, N),
    Case("clock-in at 08:20:00 is on time (「早8:20时前」)", ("08:20:00", "17:05:00"), N, N),
    Case("clock-in at 08:20:01 is late by 1 s", ("08:20:01", "17:05:00"), Half("late", 1), N),
    Case("clock-in at 11:59:59 is late, not absent: 003 sets no limit", ("11:59:59", "17:05:00"), Half("late", 13199), N),
    Case("clock-in at 12:00:00, the end of the morning, is still a late clock-in", ("12:00:00", "17:05:00"), Half("late", 13200), N),
    Case(
        "clock-in at 12:00:01 is after the morning: no clock-in, 缺卡 counted as 旷工 (「擅自不刷脸签到的视作旷工处理」)",
        ("12:00:01", "17:05:00"), Half("missing_punch"), N, ignored=("12:00:01",), counted_absent=(True, False),
    ),
    Case("clock-out at 17:00:00 is on time (「晚17:00时后」)", ("08:10:00", "17:00:00"), N, N),
    Case("clock-out at 16:59:59 is early by 1 s", ("08:10:00", "16:59:59"), N, Half("early_leave", 0, 1)),
    Case("clock-out at 13:30:00, when the afternoon begins, is early", ("08:10:00", "13:30:00"), N, Half("early_leave", 0, 12600)),
    Case("clock-out at 13:29:59, before the afternoon, is no clock-out", ("08:10:00", "13:29:59"), N, Half("missing_punch"), ignored=("13:29:59",)),
    Case("no punch at all is 旷工 for both half-days", (), Half("absent"), Half("absent"), counted_absent=(True, True)),
    Case("clock-in only: the afternoon lacks its clock-out", ("08:10:00",), N, Half("missing_punch"), counted_absent=(False, True)),
    Case("clock-out only: the morning lacks its clock-in", ("17:05:00",), Half("missing_punch"), N),
    Case("no punches are needed at lunch; extra ones change nothing", ("08:10:00", "12:00:00", "13:30:00", "17:05:00"), N, N),
    Case("a clock-out at 20:00 after serving the queue is accepted (「17:00后已经在排队等候」)", ("08:10:00", "20:00:00"), N, N),
    Case("a clock-in at 06:00 is accepted", ("06:00:00", "17:05:00"), N, N),
    Case("late in the morning and early in the afternoon are two marks", ("09:00:00", "16:00:00"), Half("late", 2400), Half("early_leave", 0, 3600)),
    Case("Sunday 20 Sep 2026 is a moved working day (国庆节调休)", Q_DAY, N, N, day=NATIONAL_SUN),
    Case("no punches on the moved working Sunday is 旷工", (), Half("absent"), Half("absent"), day=NATIONAL_SUN),
    Case("National Day is not a working day", Q_DAY, Half("non_working"), Half("non_working"), day=NATIONAL_DAY),
    Case("an ordinary Saturday is not a working day", (), Half("non_working"), Half("non_working"), day=SAT),
    Case("morning on leave: clock in by 13:30:00", ("13:30:00", "17:05:00"), Half("on_leave"), N, leave=(("08:20:00", "12:00:00"),)),
    Case("morning on leave: clock-in at 13:30:01 is late", ("13:30:01", "17:05:00"), Half("on_leave"), Half("late", 1), leave=(("08:20:00", "12:00:00"),)),
    Case("afternoon on leave: clock out from 12:00:00", ("08:10:00", "12:00:00"), N, Half("on_leave"), leave=(("13:30:00", "17:00:00"),)),
    Case("afternoon on leave: clock-out at 11:59:59 is early", ("08:10:00", "11:59:59"), Half("early_leave", 0, 1), Half("on_leave"), leave=(("13:30:00", "17:00:00"),)),
    Case("on leave until 10:00: clock-in at 10:00:00 is on time", ("10:00:00", "17:05:00"), N, N, leave=(("08:00:00", "10:00:00"),)),
    Case("on leave until 10:00: clock-in at 10:00:01 is late", ("10:00:01", "17:05:00"), Half("late", 1), N, leave=(("08:00:00", "10:00:00"),)),
    Case("on leave from 15:00: clock-out at 14:59:59 is early", ("08:10:00", "14:59:59"), N, Half("early_leave", 0, 1), leave=(("15:00:00", "17:00:00"),)),
    Case("leave in the middle of the day needs no punch", Q_DAY, N, N, leave=(("10:00:00", "11:00:00"),)),
    Case("a full day of leave", (), Half("on_leave"), Half("on_leave"), leave=(("08:20:00", "17:00:00"),)),
    Case(
        "afternoon on leave and one punch at 10:00: one punch cannot be both clock-in and clock-out",
        ("10:00:00",), Half("missing_punch", 6000), Half("on_leave"), leave=(("13:30:00", "17:00:00"),),
    ),
    Case("an approved make-up clock-in counts", ("08:00:00 makeup", "17:05:00"), N, N),
    Case("PIN and card punches count like face punches", ("08:10:00 pin", "17:05:00 card"), N, N),
]

# --------------------------------------------------------------------------
# Yuanzhou — 004 六: more than 5 min late is 迟到, 5 min early is 早退,
# late 1 h is 旷工半天; hours and window are defaults (000's ±1 h)
# --------------------------------------------------------------------------

Y_DAY = ("07:55:00", "12:00:00", "14:25:00", "18:00:00")

YUANZHOU = [
    Case("four punches on time: normal", Y_DAY, N, N),
    Case("08:05:00 is exactly 5 min late: on time (「超过…5分钟即为迟到」)", ("08:05:00", "12:00:00", "14:25:00", "18:00:00"), Half("normal", 300), N),
    Case("08:05:01 is more than 5 min late: late", ("08:05:01", "12:00:00", "14:25:00", "18:00:00"), Half("late", 301), N),
    Case("late 59 min 59 s is late", ("08:59:59", "12:00:00", "14:25:00", "18:00:00"), Half("late", 3599), N),
    Case("late exactly 1 h is absent for the half-day (「迟到1小时…计旷工半天」)", ("09:00:00", "12:00:00", "14:25:00", "18:00:00"), Half("absent", 3600), N, counted_absent=(True, False)),
    Case("09:00:01 is past the 1-h window: no sign-in, counted absent", ("09:00:01", "12:00:00", "14:25:00", "18:00:00"), Half("missing_punch"), N, ignored=("09:00:01",), counted_absent=(True, False)),
    Case("sign-in at 07:00:00 opens the window", ("07:00:00", "12:00:00", "14:25:00", "18:00:00"), N, N),
    Case("sign-in at 06:59:59 is before the window", ("06:59:59", "12:00:00", "14:25:00", "18:00:00"), Half("missing_punch"), N, ignored=("06:59:59",)),
    Case("11:55:00 is exactly 5 min early: early leave (「提前5分钟离岗即为早退」)", ("07:55:00", "11:55:00", "14:25:00", "18:00:00"), Half("early_leave", 0, 300), N),
    Case("11:55:01 is 4 min 59 s early: not early", ("07:55:00", "11:55:01", "14:25:00", "18:00:00"), Half("normal", 0, 299), N),
    Case("sign-out at 11:00:00 is accepted and early", ("07:55:00", "11:00:00", "14:25:00", "18:00:00"), Half("early_leave", 0, 3600), N),
    Case("sign-out at 10:59:59 is before the window: missing", ("07:55:00", "10:59:59", "14:25:00", "18:00:00"), Half("missing_punch"), N, ignored=("10:59:59",)),
    Case("sign-out at 13:00:00 closes the morning window", ("07:55:00", "13:00:00", "14:25:00", "18:00:00"), N, N),
    Case("13:00:01 is in no window (morning out or afternoon in)", ("07:55:00", "13:00:01", "14:25:00", "18:00:00"), Half("missing_punch"), N, ignored=("13:00:01",)),
    Case("afternoon sign-in at 14:35:00 is on time", ("07:55:00", "12:00:00", "14:35:00", "18:00:00"), N, Half("normal", 300)),
    Case("afternoon sign-in at 14:35:01 is late", ("07:55:00", "12:00:00", "14:35:01", "18:00:00"), N, Half("late", 301)),
    Case("afternoon sign-out at 17:55:00 is early", ("07:55:00", "12:00:00", "14:25:00", "17:55:00"), N, Half("early_leave", 0, 300)),
    Case("afternoon sign-out at 17:55:01 is not", ("07:55:00", "12:00:00", "14:25:00", "17:55:01"), N, Half("normal", 0, 299)),
    Case("sign-out at 19:00:00 is accepted", ("07:55:00", "12:00:00", "14:25:00", "19:00:00"), N, N),
    Case("sign-out at 19:00:01 is after the window", ("07:55:00", "12:00:00", "14:25:00", "19:00:01"), N, Half("missing_punch"), ignored=("19:00:01",)),
    Case("no afternoon punches: absent", ("07:55:00", "12:00:00"), N, Half("absent")),
    Case("late and early in one half-day", ("08:10:00", "11:50:00", "14:25:00", "18:00:00"), Half("late_and_early_leave", 600, 600), N),
    Case("Saturday 10 Oct 2026 is a moved working day (国庆节调休): no punches is absent", (), Half("absent"), Half("absent"), day=NATIONAL_SAT),
    Case("Labour Day is not a working day", Y_DAY, Half("non_working"), Half("non_working"), day=LABOUR_DAY),
    Case("afternoon on leave", ("07:55:00", "12:00:00"), N, Half("on_leave"), leave=(("14:30:00", "18:00:00"),)),
    Case("on leave from 16:00: sign-out at 16:00:00 is on time", ("07:55:00", "12:00:00", "14:25:00", "16:00:00"), N, N, leave=(("16:00:00", "18:00:00"),)),
    Case("on leave from 16:00: sign-out at 15:55:00 is early", ("07:55:00", "12:00:00", "14:25:00", "15:55:00"), N, Half("early_leave", 0, 300), leave=(("16:00:00", "18:00:00"),)),
    Case("a full day of leave in two slips that touch", (), Half("on_leave"), Half("on_leave"), leave=(("08:00:00", "12:00:00"), ("12:00:00", "18:00:00"))),
    Case("an approved make-up sign-in counts", ("08:00:00 makeup", "12:00:00", "14:25:00", "18:00:00"), N, N),
    Case("a card punch counts like a face punch", ("07:55:00 card", "12:00:00", "14:25:00 pin", "18:00:00"), N, N),
]

SCENARIOS = {"linfen": LINFEN, "qujiang-2023": QUJIANG, "yuanzhou": YUANZHOU}


@pytest.mark.parametrize("case", LINFEN, ids=[c.name for c in LINFEN])
def test_linfen_half_day_follows_000(case: Case) -> None:
    check("linfen", case)


@pytest.mark.parametrize("case", QUJIANG, ids=[c.name for c in QUJIANG])
def test_qujiang_half_day_follows_003(case: Case) -> None:
    check("qujiang-2023", case)


@pytest.mark.parametrize("case", YUANZHOU, ids=[c.name for c in YUANZHOU])
def test_yuanzhou_half_day_follows_004(case: Case) -> None:
    check("yuanzhou", case)


def test_each_preset_has_at_least_15_scenarios() -> None:
    for preset, cases in SCENARIOS.items():
        assert len(cases) >= 15, preset
        assert len({c.name for c in cases}) == len(cases), preset


# --------------------------------------------------------------------------
# What a half-day carries: facts, rules, times
# --------------------------------------------------------------------------


def test_a_late_half_day_carries_its_facts_and_rule() -> None:
    policy = POLICIES["yuanzhou"]
    day = evaluate_day(WED, [Punch(at(WED, "08:12:30"), "pin"), Punch(at(WED, "12:00:00"))], [], policy, CAL)
    morning = day.halves[0]
    assert morning.status == "late"
    assert morning.late_s == 750
    assert morning.clock_in == Punch(at(WED, "08:12:30"), "pin")
    assert morning.rules == (("attendance.late_grace_s", policy.sources["attendance.late_grace_s"]),)
    facts = dict(morning.facts)
    assert facts["session"] == "上午 08:00–12:00"
    assert facts["expected_in"] == "08:00:00"
    assert facts["clock_in"] == "08:12:30 pin"
    assert facts["late"] == "12 min 30 s"
    assert morning.start == at(WED, "08:00:00") and morning.end == at(WED, "12:00:00")


def test_punch_times_in_utc_are_read_in_hall_time() -> None:
    in_utc = datetime(2026, 3, 4, 0, 5, 1, tzinfo=timezone.utc)  # 08:05:01 in Shanghai, the same day
    day = evaluate_day(WED, [Punch(in_utc), Punch(at(WED, "12:00:00"))], [], POLICIES["yuanzhou"], CAL)
    assert (day.halves[0].status, day.halves[0].late_s) == ("late", 301)
    late_evening = datetime(2026, 3, 3, 16, 30, tzinfo=timezone.utc)  # 00:30 on 4 March in Shanghai
    assert evaluate_day(WED, [Punch(late_evening)], [], POLICIES["yuanzhou"], CAL).ignored == (Punch(late_evening),)


def test_a_naive_punch_time_is_refused() -> None:
    with pytest.raises(TypeError, match="timezone-aware"):
        evaluate_day(WED, [Punch(datetime(2026, 3, 4, 8, 0))], [], POLICIES["linfen"], CAL)


def test_a_punch_on_another_day_does_not_count() -> None:
    yesterday = WED - timedelta(days=1)
    day = evaluate_day(WED, [Punch(at(yesterday, "23:59:59")), Punch(at(WED, "17:05:00"))], [], POLICIES["qujiang-2023"], CAL)
    assert [h.status for h in day.halves] == ["missing_punch", "normal"]


def test_a_year_the_calendar_does_not_cover_is_an_error_not_a_guess() -> None:
    with pytest.raises(CalendarGapError):
        evaluate_day(date(2027, 3, 3), [], [], POLICIES["linfen"], CAL)


def test_a_hall_open_every_day_has_attendance_on_saturday() -> None:
    policy = load_policy("linfen", {"schedule": {"working_days_only": False}})
    day = evaluate_day(SAT, [], [], policy, CAL)
    assert day.working and [h.status for h in day.halves] == ["absent", "absent"]


@pytest.mark.parametrize(
    ("preset", "until", "expected"),
    [
        ("linfen", "12:59:59", ["pending", "pending"]),  # the morning's sign-out window is open until 13:00
        ("linfen", "13:00:00", ["absent", "pending"]),
        ("linfen", "19:00:00", ["absent", "absent"]),
        ("yuanzhou", "18:59:59", ["absent", "pending"]),
        ("qujiang-2023", "23:00:00", ["pending", "pending"]),  # a clock-out is accepted all evening
    ],
)
def test_a_half_day_is_pending_while_its_punch_window_is_open(preset: str, until: str, expected: list[str]) -> None:
    day = evaluate_day(WED, [], [], POLICIES[preset], CAL, until=at(WED, until))
    assert [h.status for h in day.halves] == expected


# --------------------------------------------------------------------------
# The month: counts, non-face punches, escalations at exactly their count
# --------------------------------------------------------------------------

MARCH = [d for d in (date(2026, 3, 1) + timedelta(n) for n in range(31)) if CAL.is_working_day(d)]


def month_punches(preset: str, late_days: int = 0, early_days: int = 0, absent_late_days: int = 0, method: str = "face") -> list[Punch]:
    """A March of on-time punches, with the first days late, then early, then late enough to be absent."""
    policy = POLICIES[preset]
    rules = policy.attendance
    sessions = policy.schedule.sessions
    per_day = rules.punches == "per_day"
    punches: list[Punch] = []
    for index, day in enumerate(MARCH):
        for number, session in enumerate(sessions):
            start = datetime.combine(day, session.start, HALL_TZ)
            end = datetime.combine(day, session.end, HALL_TZ)
            clock_in, clock_out = start - timedelta(minutes=5), end + timedelta(minutes=5)
            if number == 0 and index < late_days:
                clock_in = start + timedelta(seconds=rules.late_grace_s + 60)
            elif number == 0 and late_days <= index < late_days + early_days and not per_day:
                clock_out = end - timedelta(seconds=rules.early_grace_s + 60)
            elif number == 0 and late_days + early_days <= index < late_days + early_days + absent_late_days:
                assert rules.late_absent_s is not None
                clock_in = start + timedelta(seconds=rules.late_absent_s)
            if per_day and number == len(sessions) - 1 and late_days <= index < late_days + early_days:
                clock_out = end - timedelta(seconds=rules.early_grace_s + 60)
            if not per_day or number == 0:
                punches.append(Punch(clock_in, method))  # type: ignore[arg-type]
            if not per_day or number == len(sessions) - 1:
                punches.append(Punch(clock_out, method))  # type: ignore[arg-type]
    return punches


ESCALATIONS = [
    # (preset, late, early, escalations reached, half-days of absence)
    ("linfen", 2, 0, [], 0),
    ("linfen", 3, 0, ["批评教育，责令改正，扣除当月部分在岗补助"], 0),
    ("linfen", 2, 1, ["批评教育，责令改正，扣除当月部分在岗补助"], 0),
    ("linfen", 4, 0, ["批评教育，责令改正，扣除当月部分在岗补助"], 0),
    ("linfen", 3, 2, ["批评教育，责令改正，扣除当月部分在岗补助", "写出书面检查，扣除当月全部在岗补助"], 0),
    ("yuanzhou", 3, 0, [], 0),
    ("yuanzhou", 4, 0, ["计旷工半天"], 1),
    ("yuanzhou", 1, 3, ["计旷工半天"], 1),
    ("yuanzhou", 9, 0, ["计旷工半天"], 1),
    ("qujiang-2023", 12, 5, [], 0),
]


@pytest.mark.parametrize(
    ("preset", "late", "early", "reached", "absent"),
    ESCALATIONS,
    ids=[f"{p}-{la}-late-{e}-early-reaches-{len(r)}" for p, la, e, r, _ in ESCALATIONS],
)
def test_monthly_escalation_is_reached_at_exactly_its_count(preset: str, late: int, early: int, reached: list[str], absent: int) -> None:
    policy = POLICIES[preset]
    month = evaluate_month(PERSON, 2026, 3, month_punches(preset, late, early), [], policy, CAL)
    summary = month.summary
    assert (summary.late, summary.early, summary.late_or_early) == (late, early, late + early)
    assert [hit.name for hit in summary.escalations] == reached
    assert summary.absent_halfdays == absent
    for hit in summary.escalations:
        assert hit.count == late + early
        assert hit.rule == "attendance.monthly_escalations"
        assert hit.source == policy.sources["attendance.monthly_escalations"]


@pytest.mark.parametrize("preset", ["linfen", "yuanzhou"])
def test_lateness_counted_as_absence_is_not_also_counted_as_late(preset: str) -> None:
    month = evaluate_month(PERSON, 2026, 3, month_punches(preset, absent_late_days=5), [], POLICIES[preset], CAL)
    summary = month.summary
    assert summary.late == 0 and summary.escalations == ()
    assert summary.counts["absent"] == 5 and summary.absent_halfdays == 5


@pytest.mark.parametrize("preset", PRESETS)
def test_a_month_of_punches_by_pin_counts_as_attended_and_shows_non_face(preset: str) -> None:
    month = evaluate_month(PERSON, 2026, 3, month_punches(preset, method="pin"), [], POLICIES[preset], CAL)
    summary = month.summary
    assert len(MARCH) == 22
    assert summary.working_halfdays == 44 and summary.attended_halfdays == 44
    assert summary.counts["normal"] == 44 and summary.counts["non_working"] == 18
    assert set(summary.counts) == set(STATUSES)
    per_day = 2 if POLICIES[preset].attendance.punches == "per_day" else 4
    assert summary.punches["pin"] == 22 * per_day == summary.non_face
    assert summary.punches["face"] == 0


def test_a_late_and_early_half_day_counts_twice_towards_escalation() -> None:
    punches = month_punches("linfen")
    first = MARCH[0]
    punches = [p for p in punches if p.at.date() != first or p.at.hour >= 13]
    punches += [Punch(at(first, "08:10:00")), Punch(at(first, "11:00:00"))]
    summary = evaluate_month(PERSON, 2026, 3, punches, [], POLICIES["linfen"], CAL).summary
    assert summary.counts["late_and_early_leave"] == 1
    assert (summary.late, summary.early) == (1, 1)


def test_a_month_of_leave_is_on_leave_not_absent() -> None:
    leave = [Interval(PERSON, at(date(2026, 3, 1), "00:00:00"), at(date(2026, 4, 1), "00:00:00"))]
    summary = evaluate_month(PERSON, 2026, 3, [], leave, POLICIES["qujiang-2023"], CAL).summary
    assert summary.counts["on_leave"] == 44 and summary.absent_halfdays == 0


def test_someone_elses_leave_never_excuses_a_person() -> None:
    leave = [Interval("clerk-2", at(WED, "08:00:00"), at(WED, "18:00:00"))]
    with pytest.raises(ValueError, match="clerk-2"):
        evaluate_month(PERSON, 2026, 3, [], leave, POLICIES["linfen"], CAL)


# --------------------------------------------------------------------------
# Make-up punches (补卡)
# --------------------------------------------------------------------------

DEADLINES = [
    # (preset, missed day, last day to file, why)
    ("linfen", date(2026, 3, 4), date(2026, 3, 6), "Wednesday: Friday is the 2nd working day"),
    ("linfen", date(2026, 2, 13), date(2026, 2, 24), "Friday before the Spring Festival: Saturday 14 Feb (调休) is the 1st, 15–23 Feb off"),
    ("qujiang-2023", date(2026, 9, 30), date(2026, 10, 10), "eve of National Day: 8, 9 Oct and the 调休 Saturday 10 Oct"),
    ("qujiang-2023", date(2026, 3, 6), date(2026, 3, 11), "Friday: the weekend does not count"),
    ("yuanzhou", date(2026, 4, 30), date(2026, 5, 7), "eve of Labour Day: 1–5 May off"),
    ("yuanzhou", date(2026, 5, 8), date(2026, 5, 11), "Friday: Saturday 9 May is a moved working day (调休)"),
]


@pytest.mark.parametrize(("preset", "missed", "deadline", "why"), DEADLINES, ids=[d[3] for d in DEADLINES])
def test_makeup_deadline_counts_working_days_from_the_missed_day(preset: str, missed: date, deadline: date, why: str) -> None:
    policy = POLICIES[preset]
    assert makeup_deadline(missed, policy, CAL) == deadline
    claimed = at(missed, "08:00:00")
    accepted = file_makeup(PERSON, claimed, "人脸识别失败", at(deadline, "23:59:59"), policy, CAL)
    assert accepted.state == "requested" and accepted.deadline == deadline and accepted.day == missed
    with pytest.raises(MakeUpRefused) as refused:
        file_makeup(PERSON, claimed, "人脸识别失败", at(deadline + timedelta(days=1), "00:00:00"), policy, CAL)
    assert refused.value.rule == "attendance.makeup_file_working_days"
    assert refused.value.source == policy.sources["attendance.makeup_file_working_days"]
    assert deadline.isoformat() in refused.value.reason


def _filed(preset: str, day: date, state: str = "requested", person: str = PERSON) -> MakeUpRequest:
    policy = POLICIES[preset]
    request = file_makeup(person, at(day, "08:00:00"), "漏签", at(day, "09:00:00"), policy, CAL)
    if state == "approved":
        return approve_makeup(request, "督查科", at(day, "10:00:00"))
    if state == "rejected":
        return reject_makeup(request, "督查科", at(day, "10:00:00"), "监控显示未到岗")
    return request


@pytest.mark.parametrize("preset", PRESETS)
def test_makeup_over_the_monthly_limit_is_refused(preset: str) -> None:
    policy = POLICIES[preset]
    limit = policy.attendance.makeup_monthly_limit
    assert limit == 3
    days = MARCH[:limit]
    earlier = [_filed(preset, d, "approved" if i % 2 else "requested") for i, d in enumerate(days)]
    with pytest.raises(MakeUpRefused) as refused:
        file_makeup(PERSON, at(MARCH[limit], "08:00:00"), "漏签", at(MARCH[limit], "09:00:00"), policy, CAL, earlier)
    assert refused.value.rule == "attendance.makeup_monthly_limit"
    assert "limit 3" in refused.value.reason

    # A rejected request, another person's, or another month's does not count.
    rejected = [*earlier[:-1], _filed(preset, days[-1], "rejected")]
    assert file_makeup(PERSON, at(MARCH[limit], "08:00:00"), "漏签", at(MARCH[limit], "09:00:00"), policy, CAL, rejected).state == "requested"
    others = [_filed(preset, d, person="clerk-2") for d in days] + [_filed(preset, date(2026, 2, 10 + i)) for i in range(3)]
    assert file_makeup(PERSON, at(MARCH[0], "08:00:00"), "漏签", at(MARCH[0], "09:00:00"), policy, CAL, others).state == "requested"


@pytest.mark.parametrize("preset", PRESETS)
def test_an_approved_makeup_punch_repairs_the_half_day(preset: str) -> None:
    policy = POLICIES[preset]
    session = policy.schedule.sessions[0]
    punches = [p for p in month_punches(preset) if p.at.date() == WED]
    missing_in = punches[1:]  # the morning clock-in was never recorded
    before = evaluate_day(WED, missing_in, [], policy, CAL)
    assert before.halves[0].status == "missing_punch" and before.halves[0].counts_as_absent

    claimed = datetime.combine(WED, session.start, HALL_TZ) - timedelta(minutes=2)
    request = file_makeup(PERSON, claimed, "人脸识别失败，刷卡也未成功", at(WED, "10:00:00"), policy, CAL)
    with pytest.raises(MakeUpTransitionError, match="approved"):
        makeup_punch(request)
    approved = approve_makeup(request, "督查科 王", at(date(2026, 3, 5), "09:00:00"), "监控核实到岗")
    assert (approved.state, approved.decided_by, approved.note) == ("approved", "督查科 王", "监控核实到岗")
    after = evaluate_day(WED, [*missing_in, makeup_punch(approved)], [], policy, CAL)
    assert after.halves[0].status == "normal"
    assert after.halves[0].clock_in == Punch(claimed, "makeup")
    summary = evaluate_month(PERSON, 2026, 3, [*missing_in, makeup_punch(approved)], [], policy, CAL).summary
    assert summary.punches["makeup"] == 1 and summary.non_face == 1


@pytest.mark.parametrize("preset", PRESETS)
def test_makeup_decisions_follow_the_workflow(preset: str) -> None:
    request = _filed(preset, WED)
    with pytest.raises(MakeUpTransitionError, match="reason"):
        reject_makeup(request, "督查科", at(WED, "10:00:00"), "  ")
    with pytest.raises(MakeUpTransitionError, match="person"):
        approve_makeup(request, " ", at(WED, "10:00:00"))
    with pytest.raises(MakeUpTransitionError, match="before it was filed"):
        approve_makeup(request, "督查科", at(WED, "08:59:59"))
    rejected = reject_makeup(request, "督查科", at(WED, "10:00:00"), "监控显示未到岗")
    assert rejected.state == "rejected" and rejected.note == "监控显示未到岗"
    with pytest.raises(MakeUpTransitionError, match="rejected"):
        approve_makeup(rejected, "督查科", at(WED, "11:00:00"))
    with pytest.raises(MakeUpTransitionError, match="rejected"):
        makeup_punch(rejected)
    assert request.state == "requested"  # decisions return a new request


@pytest.mark.parametrize(
    ("claimed", "filed", "reason", "refusal"),
    [
        (at(SAT, "08:00:00"), at(SAT, "09:00:00"), "漏签", "not a working day"),
        (at(NATIONAL_DAY, "08:00:00"), at(NATIONAL_DAY, "09:00:00"), "漏签", "not a working day"),
        (at(WED, "17:00:00"), at(WED, "16:59:59"), "漏签", "before the punch it claims"),
        (at(WED, "08:00:00"), at(WED, "09:00:00"), "  ", "needs a reason"),
    ],
    ids=["ordinary-saturday", "national-day", "filed-before-the-claimed-time", "no-reason"],
)
def test_a_makeup_with_nothing_to_make_up_is_refused(claimed: datetime, filed: datetime, reason: str, refusal: str) -> None:
    with pytest.raises(MakeUpRefused, match=refusal):
        file_makeup(PERSON, claimed, reason, filed, POLICIES["linfen"], CAL)


def test_a_makeup_on_a_moved_working_day_is_accepted() -> None:
    request = file_makeup(PERSON, at(SPRING_SAT, "08:00:00"), "漏签", at(SPRING_SAT, "12:00:00"), POLICIES["linfen"], CAL)
    assert request.deadline == date(2026, 2, 25)  # 24 Feb is the 1st working day after the break, 25 Feb the 2nd


# --------------------------------------------------------------------------
# The policy section: the regulations' values, and validation
# --------------------------------------------------------------------------

H = 3600
VALUES = [
    ("linfen", "punches", "per_half_day"),
    ("linfen", "clock_in_before_s", H),
    ("linfen", "clock_in_after_s", H),
    ("linfen", "clock_out_before_s", H),
    ("linfen", "clock_out_after_s", H),
    ("linfen", "late_grace_s", 0),
    ("linfen", "early_grace_s", 1800),
    ("linfen", "late_absent_s", 1800),
    ("linfen", "missing_punch_absent", True),
    ("linfen", "makeup_file_working_days", 2),
    ("qujiang-2023", "punches", "per_day"),
    ("qujiang-2023", "clock_in_after_s", None),
    ("qujiang-2023", "late_grace_s", 0),
    ("qujiang-2023", "early_grace_s", 0),
    ("qujiang-2023", "late_absent_s", None),
    ("qujiang-2023", "missing_punch_absent", True),
    ("qujiang-2023", "monthly_escalations", []),
    ("yuanzhou", "late_grace_s", 300),
    ("yuanzhou", "early_grace_s", 299),
    ("yuanzhou", "late_absent_s", H),
]


@pytest.mark.parametrize(("preset", "key", "expected"), VALUES)
def test_attendance_values_equal_the_regulation(preset: str, key: str, expected: object) -> None:
    assert getattr(POLICIES[preset].attendance, key) == expected


def test_escalation_values_equal_the_regulation() -> None:
    linfen = [(e.at_least, e.absent_halfdays) for e in POLICIES["linfen"].attendance.monthly_escalations]
    yuanzhou = [(e.at_least, e.absent_halfdays) for e in POLICIES["yuanzhou"].attendance.monthly_escalations]
    assert linfen == [(3, 0), (5, 0)]  # 000 八(二): 3 次以上(含3次) 批评教育; 5 次 书面检查
    assert yuanzhou == [(4, 1)]  # 004 六(二)4: 4 次以上 计旷工半天


@pytest.mark.parametrize(
    ("overrides", "key", "reason"),
    [
        ({"attendance": {"late_absent_s": 300}}, "attendance.late_absent_s", "more than late_grace_s"),
        (
            {"attendance": {"monthly_escalations": [{"at_least": 5, "name": "检查"}, {"at_least": 3, "name": "批评"}]}},
            "attendance.monthly_escalations",
            "lowest first",
        ),
        ({"attendance": {"punches": "per_week"}}, "attendance.punches", "per_half_day"),
        ({"attendance": {"late_grace": 60}}, "attendance.late_grace", "unknown key"),
    ],
)
def test_a_bad_attendance_override_names_the_key_and_the_reason(overrides: dict, key: str, reason: str) -> None:
    hall = Path("/halls/h.toml")
    with pytest.raises(ConfigError) as caught:
        load_policy("yuanzhou", overrides, source=hall)
    message = str(caught.value)
    assert message.startswith(f"{hall}: ") and key in message and reason in message


def test_a_hall_override_of_an_attendance_value_is_cited_as_the_hall() -> None:
    hall = Path("/halls/h.toml")
    policy = load_policy("qujiang-2023", {"attendance": {"late_absent_s": 3600}}, source=hall)
    assert policy.attendance.late_absent_s == 3600
    assert policy.sources["attendance.late_absent_s"] == f"hall override in {hall}"
    day = evaluate_day(WED, [Punch(at(WED, "09:20:00")), Punch(at(WED, "17:05:00"))], [], policy, CAL)
    assert day.halves[0].status == "absent"
    assert day.halves[0].rules == (("attendance.late_absent_s", f"hall override in {hall}"),)


DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_the_attendance_docs_show_the_preset_values() -> None:
    """docs/attendance.md's table agrees with docs/policies.md, which test_policy_presets checks against the files."""
    policies = (DOCS / "policies.md").read_text(encoding="utf-8")
    table = {
        key: values.split(" | ")
        for key, values in re.findall(r"^\| `(attendance\.[a-z_]+)` \| (.*) \|$", (DOCS / "attendance.md").read_text(encoding="utf-8"), flags=re.M)
    }
    assert set(table) == {f"attendance.{key}" for key in POLICIES["linfen"].attendance.model_dump()}
    for column, preset in enumerate(["linfen", "qujiang-2023", "yuanzhou"]):
        section = policies.split(f"### `{preset}`", 1)[1].split("\n#", 1)[0]
        shown = dict(re.findall(r"^\| `(attendance\.[a-z_]+)` \| `([^`]*)`", section, flags=re.M))
        for key, values in table.items():
            assert values[column] == f"`{shown[key]}`", (preset, key)


def test_statuses_are_the_documented_ones() -> None:
    assert STATUSES == (
        "normal", "late", "early_leave", "late_and_early_leave", "missing_punch", "absent", "on_leave", "non_working", "pending",
    )

