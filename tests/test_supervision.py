"""Window supervision scenarios, per preset, from the regulations' thresholds.

Each preset's own values (config/policies/*.toml, each citing its regulation)
drive the cases, so a table reads: "under Qujiang's rules, a pause of
pause_max_s − 1 s raises nothing and pause_max_s + 1 s raises 脱岗".
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from broker.timeutil import HALL_TZ
from server.config.calendar import national_calendar
from server.config.policy import available_presets, load_policy
from server.rules.policy import Policy
from server.rules.supervision import Interval, Observation, WindowDay, WindowPlan, evaluate_window

CAL = national_calendar([2025, 2026])
MONDAY = date(2026, 3, 2)
SUNDAY = date(2026, 3, 1)
MOVED_WORKDAY = date(2026, 2, 28)  # a Saturday worked for the Spring Festival (调休)
PLAN = WindowPlan(window="w01", roster=frozenset({"c01"}))
PRESETS = available_presets()


def policy(name: str) -> Policy:
    return load_policy(name)


def opening(p: Policy, day: date = MONDAY, session: int = 0) -> datetime:
    return datetime.combine(day, p.schedule.sessions[session].start, HALL_TZ)


def closing(p: Policy, day: date = MONDAY, session: int = 0) -> datetime:
    return datetime.combine(day, p.schedule.sessions[session].end, HALL_TZ)


_seq = iter(range(1, 10**9))


def seat(t: datetime, occupied: bool, who: str | None = "c01", historical: bool = False) -> Observation:
    return Observation(t, "seat", occupied, who if occupied else None, historical, ("cam-01", 1, next(_seq)))


def pause(t: datetime, on: bool, reason: str = "取材料") -> Observation:
    return Observation(t, "pause", on, reason if on else None, False, ("ev-01", 1, next(_seq)))


def camera(t: datetime, online: bool) -> Observation:
    return Observation(t, "camera", online, "online" if online else "offline", False, ("cam-01", 0, next(_seq)))


def login(t: datetime, who: str | None) -> Observation:
    return Observation(t, "login", who is not None, who, False, ("ev-01", 1, next(_seq)))


def morning(p: Policy, day: date = MONDAY) -> list[Observation]:
    """Camera up since dawn; the clerk sits down when the window opens."""
    dawn = datetime.combine(day, datetime.min.time(), HALL_TZ) + timedelta(hours=6)
    return [camera(dawn, True), seat(opening(p, day) - timedelta(minutes=5), True)]


def run(p: Policy, obs: list[Observation], until: datetime, plan: WindowPlan = PLAN, day: date = MONDAY) -> WindowDay:
    return evaluate_window(plan, obs, p, CAL, day, until, HALL_TZ)


def types(result: WindowDay) -> list[str]:
    return [a.type for a in result.alerts]


def state_at(result: WindowDay, t: datetime) -> str:
    return next(s.state for s in result.timeline if s.start <= t < s.end)


# --------------------------------------------------------------------------
# The scenario table: (name, builder) — builder(policy) → (observations,
# until, plan, day, expected alert types, extra check or None)
# --------------------------------------------------------------------------


def _vacancy(offset: int):
    def build(p: Policy):
        leave = opening(p) + timedelta(hours=1)
        grace = p.thresholds.vacant_grace_s
        back = leave + timedelta(seconds=grace + offset)
        obs = morning(p) + [seat(leave, False), seat(back, True)]
        return obs, closing(p), PLAN, MONDAY, ["vacant"] if offset > 0 else [], None

    return build


def _pause(offset: int):
    def build(p: Policy):
        start = opening(p) + timedelta(hours=1)
        end = start + timedelta(seconds=p.thresholds.pause_max_s + offset)
        obs = morning(p) + [pause(start, True), seat(start + timedelta(seconds=20), False), seat(end - timedelta(seconds=10), True), pause(end, False)]
        return obs, closing(p), PLAN, MONDAY, ["pause_overrun"] if offset > 0 else [], None

    return build


def _vacant_raised_exactly_at_grace(p: Policy):
    leave = opening(p) + timedelta(hours=1)
    obs = morning(p) + [seat(leave, False)]
    until = leave + timedelta(seconds=p.thresholds.vacant_grace_s + 1)

    def check(result: WindowDay) -> None:
        alert = result.alerts[0]
        assert alert.raised_at == leave + timedelta(seconds=p.thresholds.vacant_grace_s)
        assert alert.cleared_at is None and alert.live
        assert alert.rule == "thresholds.vacant_grace_s" and alert.source == p.sources["thresholds.vacant_grace_s"]
        assert dict(alert.facts)["seat"] == "vacant"

    return obs, until, PLAN, MONDAY, ["vacant"], check


def _lunch_is_not_vacancy(p: Policy):
    # Leaves at the end of the morning session, back at the start of the afternoon.
    obs = morning(p) + [seat(closing(p) - timedelta(seconds=1), False), seat(opening(p, session=1), True)]

    def check(result: WindowDay) -> None:
        assert state_at(result, closing(p) + timedelta(minutes=10)) == "closed"

    return obs, closing(p, session=1), PLAN, MONDAY, [], check


def _lunch_duty_window_is_watched(p: Policy):
    if p.schedule.extended_service is None:  # no 延时服务 in this hall: lunch stays closed
        obs = morning(p) + [seat(closing(p) + timedelta(minutes=10), False)]
        return obs, closing(p) + timedelta(hours=1), replace(PLAN, on_lunch_duty=True), MONDAY, [], None
    duty_start = datetime.combine(MONDAY, p.schedule.extended_service.start, HALL_TZ)
    obs = morning(p) + [seat(duty_start + timedelta(minutes=10), False)]
    until = duty_start + timedelta(minutes=10, seconds=p.thresholds.vacant_grace_s + 60)
    return obs, until, replace(PLAN, on_lunch_duty=True), MONDAY, ["vacant"], None


def _after_closing_is_closed(p: Policy):
    last = closing(p, session=len(p.schedule.sessions) - 1)
    obs = morning(p) + [seat(last + timedelta(minutes=1), False)]

    def check(result: WindowDay) -> None:
        assert state_at(result, last + timedelta(hours=2)) == "closed"

    return obs, last + timedelta(hours=3), PLAN, MONDAY, [], check


def _offline_camera_is_unknown_not_vacant(p: Policy):
    leave = opening(p) + timedelta(hours=1)
    obs = morning(p) + [camera(leave - timedelta(seconds=1), False), seat(leave, False, historical=True)]
    until = leave + timedelta(seconds=p.thresholds.device_fault_s + p.thresholds.vacant_grace_s + 60)

    def check(result: WindowDay) -> None:
        assert state_at(result, leave + timedelta(seconds=30)) == "unknown"

    return obs, until, PLAN, MONDAY, ["device_fault"], check


def _camera_never_seen(p: Policy):
    obs = [seat(opening(p), True)]

    def check(result: WindowDay) -> None:
        assert {s.state for s in result.timeline} <= {"closed", "unknown"}

    return obs, opening(p) + timedelta(seconds=p.thresholds.device_fault_s + 1), PLAN, MONDAY, ["device_fault"], check


def _leave_without_substitute(p: Policy):
    obs = morning(p)[:1]
    leave = Interval("c01", opening(p) - timedelta(hours=1), closing(p) + timedelta(hours=1))
    obs.append(seat(opening(p), False))
    until = opening(p) + timedelta(hours=1)
    return obs, until, replace(PLAN, leaves=(leave,)), MONDAY, ["no_substitute"], None


def _leave_with_substitute_on_duty(p: Policy):
    interval = (opening(p) - timedelta(hours=1), closing(p) + timedelta(hours=1))
    plan = replace(PLAN, leaves=(Interval("c01", *interval),), substitutes=(Interval("b07", *interval),))
    obs = morning(p)[:1] + [seat(opening(p) - timedelta(minutes=2), True, who="b07")]
    return obs, closing(p), plan, MONDAY, [], None


def _substitute_absent_is_vacant(p: Policy):
    interval = (opening(p) - timedelta(hours=1), closing(p) + timedelta(hours=1))
    plan = replace(PLAN, leaves=(Interval("c01", *interval),), substitutes=(Interval("b07", *interval),))
    obs = morning(p)[:1] + [seat(opening(p), False)]
    return obs, opening(p) + timedelta(seconds=p.thresholds.vacant_grace_s + 1), plan, MONDAY, ["vacant"], None


def _unexpected_person(offset: int):
    def build(p: Policy):
        sits = opening(p) + timedelta(hours=1)
        obs = morning(p) + [seat(sits, True, who="x99"), seat(sits + timedelta(seconds=p.thresholds.unexpected_person_s + offset), True)]
        return obs, closing(p), PLAN, MONDAY, ["unexpected_person"] if offset > 0 else [], None

    return build


def _clerk_mismatch(p: Policy):
    plan = replace(PLAN, roster=frozenset({"c01", "c13"}))
    obs = morning(p) + [login(opening(p), "c13")]
    return obs, opening(p) + timedelta(seconds=p.thresholds.clerk_mismatch_s + 1), plan, MONDAY, ["clerk_mismatch"], None


def _sunday_is_closed(p: Policy):
    obs = [camera(opening(p, SUNDAY) - timedelta(hours=1), True), seat(opening(p, SUNDAY), False)]

    def check(result: WindowDay) -> None:
        assert {s.state for s in result.timeline} == {"closed"}

    return obs, closing(p, SUNDAY), PLAN, SUNDAY, [], check


def _moved_working_day_is_a_working_day(p: Policy):
    obs = [camera(opening(p, MOVED_WORKDAY) - timedelta(hours=1), True), seat(opening(p, MOVED_WORKDAY), False)]
    until = opening(p, MOVED_WORKDAY) + timedelta(seconds=p.thresholds.vacant_grace_s + 1)
    return obs, until, PLAN, MOVED_WORKDAY, ["vacant"], None


def _replayed_vacancy_is_not_live(p: Policy):
    leave = opening(p) + timedelta(hours=1)
    obs = morning(p) + [seat(leave, False, historical=True)]

    def check(result: WindowDay) -> None:
        assert not result.alerts[0].live, "historical data never raises a live alert"

    return obs, leave + timedelta(seconds=p.thresholds.vacant_grace_s + 5), PLAN, MONDAY, ["vacant"], check


def _live_heartbeat_makes_it_live(p: Policy):
    leave = opening(p) + timedelta(hours=1)
    obs = morning(p) + [seat(leave, False, historical=True), seat(leave + timedelta(seconds=30), False)]

    def check(result: WindowDay) -> None:
        assert result.alerts[0].live

    return obs, leave + timedelta(seconds=p.thresholds.vacant_grace_s + 5), PLAN, MONDAY, ["vacant"], check


def _paused_properly_is_not_vacant(p: Policy):
    start = opening(p) + timedelta(hours=1)
    obs = morning(p) + [pause(start, True), seat(start + timedelta(seconds=10), False)]
    until = start + timedelta(seconds=min(p.thresholds.pause_max_s, 3 * p.thresholds.vacant_grace_s))

    def check(result: WindowDay) -> None:
        assert state_at(result, start + timedelta(minutes=1)) == "paused"

    return obs, until, PLAN, MONDAY, [], check


SCENARIOS = {
    "vacant grace − 1 s: nothing": _vacancy(-1),
    "vacant exactly grace: nothing": _vacancy(0),
    "vacant grace + 1 s: 空岗": _vacancy(+1),
    "空岗 raised at grace with facts, rule and source": _vacant_raised_exactly_at_grace,
    "pause max − 1 s: nothing": _pause(-1),
    "pause exactly max: nothing": _pause(0),
    "pause max + 1 s: 脱岗": _pause(+1),
    "paused properly is not vacant": _paused_properly_is_not_vacant,
    "lunch break is not vacancy": _lunch_is_not_vacancy,
    "lunch duty window is watched at lunch (if the hall has 延时服务)": _lunch_duty_window_is_watched,
    "after closing is closed": _after_closing_is_closed,
    "offline camera: unknown, device fault, never 空岗": _offline_camera_is_unknown_not_vacant,
    "camera never seen: unknown": _camera_never_seen,
    "leave without substitute": _leave_without_substitute,
    "leave with substitute on duty": _leave_with_substitute_on_duty,
    "substitute absent: 空岗": _substitute_absent_is_vacant,
    "unregistered person − 1 s: nothing": _unexpected_person(-1),
    "unregistered person + 1 s: 替岗未报备": _unexpected_person(+1),
    "evaluator clerk differs from seated clerk": _clerk_mismatch,
    "Sunday is closed": _sunday_is_closed,
    "moved working day (调休) is a working day": _moved_working_day_is_a_working_day,
    "replayed vacancy is not a live alert": _replayed_vacancy_is_not_live,
    "a live heartbeat makes it live": _live_heartbeat_makes_it_live,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("preset", PRESETS)
def test_scenario(preset: str, scenario: str) -> None:
    p = policy(preset)
    obs, until, plan, day, expected, check = SCENARIOS[scenario](p)
    result = run(p, obs, until, plan, day)
    assert types(result) == expected, f"{preset}: {scenario}: alerts {[(a.type, a.raised_at.time()) for a in result.alerts]}"
    if check:
        check(result)


@pytest.mark.parametrize("preset", PRESETS)
def test_out_of_order_and_duplicate_arrival_change_nothing(preset: str) -> None:
    p = policy(preset)
    leave = opening(p) + timedelta(hours=1)
    obs = morning(p) + [pause(leave, True), seat(leave + timedelta(seconds=5), False), seat(leave + timedelta(hours=1), True), pause(leave + timedelta(hours=1, seconds=5), False), seat(leave + timedelta(hours=2), False)]
    reference = run(p, obs, closing(p))
    shuffled = obs * 2
    random.Random(4).shuffle(shuffled)
    assert run(p, shuffled, closing(p)) == reference
    assert types(reference) == ["pause_overrun", "vacant"]


def test_timeline_bands() -> None:
    p = policy("linfen")
    leave = opening(p) + timedelta(hours=1)
    result = run(p, morning(p) + [pause(leave, True), seat(leave + timedelta(seconds=10), False), seat(leave + timedelta(minutes=10), True), pause(leave + timedelta(minutes=11), False)], closing(p, session=1))
    bands = [(s.state, s.start.time().isoformat(timespec="minutes")) for s in result.timeline]
    assert bands[:5] == [("closed", "00:00"), ("staffed", "08:00"), ("paused", "09:00"), ("staffed", "09:11"), ("closed", "12:00")]


def test_heartbeats_keep_the_seated_person() -> None:
    p = policy("qujiang-2023")
    sits = opening(p) + timedelta(hours=1)
    heartbeats = [Observation(sits + timedelta(seconds=10 * i), "seat", True, None, False, ("cam-01", 1, 10**6 + i)) for i in range(1, 60)]
    obs = morning(p) + [seat(sits, True, who="x99")] + heartbeats
    result = run(p, obs, sits + timedelta(seconds=p.thresholds.unexpected_person_s + 60))
    assert types(result) == ["unexpected_person"], "a heartbeat naming nobody does not forget who sits there"
