"""Properties of the supervision core that must hold for any input (hypothesis)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.timeutil import HALL_TZ
from server.config.calendar import national_calendar
from server.config.policy import load_policy
from server.rules.supervision import Observation, WindowPlan, evaluate_window, open_intervals

CAL = national_calendar([2026])
POLICY = load_policy("qujiang-2023")
PLAN = WindowPlan(window="w01", roster=frozenset({"c01", "c02"}), on_lunch_duty=True)
MONDAY, SUNDAY = date(2026, 3, 2), date(2026, 3, 1)


@st.composite
def days(draw, day: date = MONDAY) -> list[Observation]:  # type: ignore[no-untyped-def]
    start = datetime.combine(day, datetime.min.time(), HALL_TZ) + timedelta(hours=6)
    count = draw(st.integers(0, 60))
    observations = []
    for seq in range(count):
        kind = draw(st.sampled_from(["seat", "seat", "pause", "login", "camera"]))
        who = draw(st.sampled_from(["c01", "c02", "x99", "unknown", None]))
        observations.append(
            Observation(
                time=start + timedelta(seconds=draw(st.integers(0, 14 * 3600))),
                kind=kind,
                on=draw(st.booleans()),
                who=who,
                historical=draw(st.booleans()),
                order=("dev", 1, seq + 1),
            )
        )
    return observations


def evaluate(observations: list[Observation], day: date = MONDAY):  # type: ignore[no-untyped-def]
    until = datetime.combine(day, datetime.min.time(), HALL_TZ) + timedelta(hours=20)
    return evaluate_window(PLAN, observations, POLICY, CAL, day, until, HALL_TZ)


@settings(max_examples=200, deadline=None)
@given(days())
def test_replay_is_deterministic(observations: list[Observation]) -> None:
    assert evaluate(observations) == evaluate(list(observations))


@settings(max_examples=200, deadline=None)
@given(days(), st.randoms(use_true_random=False))
def test_arrival_order_and_duplicates_do_not_matter(observations: list[Observation], rnd) -> None:  # type: ignore[no-untyped-def]
    again = observations + rnd.sample(observations, k=len(observations) // 2)
    rnd.shuffle(again)
    assert evaluate(again) == evaluate(observations)


@settings(max_examples=200, deadline=None)
@given(days())
def test_no_alert_while_the_window_is_closed(observations: list[Observation]) -> None:
    opened = open_intervals(MONDAY, POLICY, CAL, PLAN.on_lunch_duty, HALL_TZ)
    for alert in evaluate(observations).alerts:
        assert any(a <= alert.condition_since and alert.raised_at < b for a, b in opened), alert


@settings(max_examples=100, deadline=None)
@given(days(SUNDAY))
def test_nothing_is_raised_on_a_day_off(observations: list[Observation]) -> None:
    result = evaluate(observations, SUNDAY)
    assert result.alerts == () and {s.state for s in result.timeline} == {"closed"}


@settings(max_examples=200, deadline=None)
@given(days())
def test_the_timeline_covers_the_day_without_gaps(observations: list[Observation]) -> None:
    timeline = evaluate(observations).timeline
    assert timeline[0].start.time() == datetime.min.time()
    assert all(a.end == b.start and a.state != b.state for a, b in zip(timeline, timeline[1:]))
