"""Incremental rules equal the full evaluation: random days fed in random batches and orders.

Ingest keeps each window's day (and month) up to date event by event instead
of judging the whole day again after every batch (issue 16: the cost per
event must not grow with the day).  The full evaluations stay the reference;
these properties feed random days — late and historical events, ties, clocks
that run ahead, a clock going back — in random batch sizes and orders, and
after every batch compare the incremental state with the reference run on
everything fed so far.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.timeutil import HALL_TZ
from server.config.policy import load_policy
from server.rules.rating_signals import DaySignals, MonthRatings
from server.rules.ratings import (
    Rating,
    Ticket,
    device_rating,
    evaluate_window_day,
    never_below,
)
from server.config.calendar import national_calendar
from server.rules.attendance import Punch, evaluate_day
from server.rules.live_attendance import LiveDay
from server.rules.live_supervision import LiveWindow
from server.rules.supervision import Interval, Observation, WindowPlan, evaluate_window

DAY = date(2026, 3, 3)
W = "w02"
POLICY = load_policy("qujiang-2023", {"ratings": {"burst_count": 3, "burst_window_s": 120, "ticket_wait_s": 300, "never_below_min_count": 3}})
TICKETS = ("A1", "A2", "A3", "B1")
CLERKS = (None, "c01", "c02")


def moment(step: int) -> datetime:
    """Half-minute steps from 08:00: close enough for ties, bursts and waits to matter."""
    return datetime.combine(DAY, time(8), HALL_TZ) + timedelta(seconds=30 * step)


steps = st.integers(0, 120)


@st.composite
def ratings(draw: st.DrawFn, count: int) -> list[Rating]:
    found = []
    for seq in range(count):
        rating = device_rating(
            W, draw(st.integers(1, 5)), moment(draw(steps)), clerk=draw(st.sampled_from(CLERKS)), ticket=draw(st.sampled_from((None, *TICKETS))),
            historical=draw(st.booleans()), order=("ev-02", 1, draw(st.integers(0, 3)) * 1000 + seq),
        )  # fmt: skip
        if draw(st.integers(0, 9)) == 0:
            rating = replace(rating, origin="default")
        found.append(rating)
    return found


@st.composite
def window_days(draw: st.DrawFn) -> tuple[list[tuple[str, object]], list[int], list[int], bool]:
    """Everything one window's day can be told, shuffled; batch sizes; the clock at each batch."""
    items: list[tuple[str, object]] = [("rating", r) for r in draw(ratings(draw(st.integers(0, 25))))]
    for seq in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(("seat", "camera")))
        on = draw(st.booleans())
        who = draw(st.sampled_from(CLERKS + ("?",))) if kind == "seat" and on else ("online" if on else "offline")
        items.append((kind, Observation(moment(draw(steps)), kind, on, who, draw(st.booleans()), ("cam-02", 1, seq))))  # type: ignore[arg-type]
    for _ in range(draw(st.integers(0, 6))):
        called = moment(draw(steps))
        finished = called + timedelta(seconds=30 * draw(st.integers(0, 10))) if draw(st.booleans()) else None
        items.append(("ticket", Ticket(draw(st.sampled_from((W, "w03"))), draw(st.sampled_from(TICKETS)), DAY, called, finished)))
    gateway = draw(st.booleans())
    for _ in range(draw(st.integers(0, 3)) if gateway else 0):
        items.append(("gateway", (moment(draw(steps)), draw(st.booleans()))))
    items = draw(st.permutations(items))
    batches = draw(st.lists(st.integers(1, 6), min_size=1, max_size=12))
    clocks = sorted(draw(st.lists(st.integers(0, 200), min_size=len(batches), max_size=len(batches))))
    if len(clocks) > 2 and draw(st.booleans()):
        clocks[-1] = clocks[0]  # the clock went back
    return items, batches, clocks, gateway


@settings(max_examples=300, deadline=None)
@given(window_days())
def test_day_signals_kept_per_event_equal_the_full_evaluation_after_every_batch(feed: tuple[list[tuple[str, object]], list[int], list[int], bool]) -> None:
    items, batches, clocks, has_gateway = feed
    tickets: dict[str, Ticket] = {}
    state = DaySignals(W, DAY, POLICY, tickets, [] if has_gateway else None)
    fed_ratings: list[Rating] = []
    observations: list[Observation] = []
    gateway: list[tuple[datetime, bool]] = []
    at = 0
    for size, clock in zip(batches, clocks, strict=True):
        for kind, item in items[at : at + size]:
            if kind == "rating":
                assert state.add_rating(item) == len(fed_ratings)  # type: ignore[arg-type]
                fed_ratings.append(item)  # type: ignore[arg-type]
            elif kind == "ticket":
                tickets[item.ticket] = item  # type: ignore[attr-defined]
                state.ticket_changed(item.ticket)  # type: ignore[attr-defined]
            elif kind == "gateway":
                gateway.append(item)  # type: ignore[arg-type]
                state.gateway_change(*item)  # type: ignore[misc]
            else:
                observations.append(item)  # type: ignore[arg-type]
                state.observe(item)  # type: ignore[arg-type]
        at += size
        until = moment(clock)
        before = state.signals()
        changed, alerts = state.advance(until)
        full = evaluate_window_day(W, DAY, fed_ratings, tickets, observations, gateway if has_gateway else None, POLICY, until)
        assert state.signals() == full.signals
        assert alerts == full.alerts
        assert changed == {h: s for h, s in enumerate(full.signals) if s != before[h]}


@st.composite
def months(draw: st.DrawFn) -> tuple[list[Rating], list[int], list[int]]:
    """A window's ratings around a month's end (some of the next month), then changes of which count."""
    found = []
    for seq in range(draw(st.integers(0, 14))):
        day = draw(st.sampled_from((date(2026, 3, 30), date(2026, 3, 31), date(2026, 4, 1))))
        rated = datetime.combine(day, time(9), HALL_TZ) + timedelta(minutes=draw(st.integers(0, 30)))
        rating = replace(device_rating(W, draw(st.sampled_from((3, 4, 5, 5, 5))), rated, order=("ev-02", 1, seq)), id=seq + 1)
        found.append(replace(rating, origin="default") if draw(st.integers(0, 9)) == 0 else rating)
    flips = draw(st.lists(st.integers(0, max(len(found) - 1, 0)), max_size=8)) if found else []
    clocks = draw(st.lists(st.integers(0, 60 * 24 * 3), min_size=1, max_size=6))
    return found, flips, clocks


@settings(max_examples=300, deadline=None)
@given(months())
def test_never_below_kept_per_rating_equals_the_full_evaluation_as_ratings_arrive_and_stop_counting(feed: tuple[list[Rating], list[int], list[int]]) -> None:
    found, flips, clocks = feed
    state = MonthRatings(W, date(2026, 3, 1), POLICY)
    current: dict[int, Rating] = {}
    operations: list[Rating | tuple[str, int]] = [*found, *(("flip", i) for i in flips)]
    start = datetime.combine(date(2026, 3, 30), time(0), HALL_TZ)
    for index, operation in enumerate(operations):
        if isinstance(operation, tuple):
            rating = current.get(found[operation[1]].id)  # type: ignore[arg-type]
            if rating is None:
                continue
            operation = replace(rating, counted=not rating.counted)
        current[operation.id] = operation  # type: ignore[index]
        state.put(operation)
        until = start + timedelta(minutes=clocks[index % len(clocks)])
        assert state.alert(until) == never_below(W, date(2026, 3, 1), sorted(current.values(), key=lambda r: r.id), POLICY, until)  # type: ignore[arg-type, return-value]


MONDAY = date(2026, 3, 2)
CALENDAR = national_calendar([2026])


def minute(step: int) -> datetime:
    """Minutes from 07:00 on Monday: before opening, the sessions, lunch, the evening, past midnight."""
    return datetime.combine(MONDAY, time(7), HALL_TZ) + timedelta(minutes=step)


minutes = st.integers(-8 * 60, 18 * 60)  # from 23:00 the day before to 01:00 the day after


@st.composite
def supervised_days(draw: st.DrawFn) -> tuple[WindowPlan, list[Observation], list[int], list[int]]:
    """A window's plan and day of observations (duplicates, replayed copies and all), shuffled; batch sizes; clocks."""
    roster = draw(st.sampled_from((("c01",), ("c01", "c02"))))
    leave = [Interval("c01", minute(a), minute(a + draw(st.integers(1, 300)))) for a in draw(st.lists(st.integers(0, 600), max_size=1))]
    cover = [Interval("c03", minute(a), minute(a + draw(st.integers(1, 300)))) for a in draw(st.lists(st.integers(0, 600), max_size=1))]
    plan = WindowPlan(window="w01", roster=frozenset(roster), substitutes=tuple(cover), leaves=tuple(leave), on_lunch_duty=draw(st.booleans()))
    observations = []
    for seq in range(draw(st.integers(0, 40))):
        kind = draw(st.sampled_from(("seat", "seat", "seat", "pause", "login", "camera")))
        observation = Observation(
            minute(draw(minutes)), kind, draw(st.booleans()), draw(st.sampled_from(("c01", "c02", "c03", "x99", None))),
            draw(st.booleans()), ("dev", 1, seq + 1) if draw(st.integers(0, 5)) else ("", 0, 0),
        )  # fmt: skip
        observations.append(observation)
        if draw(st.integers(0, 6)) == 0:
            observations.append(replace(observation, historical=not observation.historical))  # delivered twice: live and replayed
    observations = draw(st.permutations(observations))
    batches = draw(st.lists(st.integers(1, 8), min_size=1, max_size=10))
    clocks = sorted(draw(st.lists(minutes, min_size=len(batches), max_size=len(batches))))
    if len(clocks) > 2 and draw(st.booleans()):
        clocks[-1] = clocks[0]  # the clock went back
    return plan, observations, batches, clocks


@settings(max_examples=300, deadline=None)
@given(supervised_days())
def test_supervision_held_live_equals_the_full_evaluation_after_every_batch(feed: tuple[WindowPlan, list[Observation], list[int], list[int]]) -> None:
    plan, observations, batches, clocks = feed
    policy = load_policy("qujiang-2023")
    live = LiveWindow(plan, policy, CALENDAR, MONDAY, HALL_TZ)
    at = 0
    for size, clock in zip(batches, clocks, strict=True):
        for observation in observations[at : at + size]:
            live.add(observation)
        at += size
        until = minute(clock)
        full = evaluate_window(plan, observations[:at], policy, CALENDAR, MONDAY, until, HALL_TZ)
        current, alerts = live.advance(until)
        assert alerts == full.alerts
        assert current == (full.timeline[-1] if full.timeline else None)
        assert live.timeline() == full.timeline


PRESETS = {name: load_policy(name) for name in ("qujiang-2023", "yuanzhou", "linfen")}
SATURDAY = date(2026, 3, 7)


@st.composite
def person_days(draw: st.DrawFn) -> tuple[str, date, list[Interval], list[Interval], list[Punch], list[int], list[int], int]:
    """A person's punches around a day (the evening before and the morning after too), shuffled; leave before
    and after a change the adapter answers by starting over; batch sizes and clocks."""
    preset = draw(st.sampled_from(sorted(PRESETS)))
    day = draw(st.sampled_from((MONDAY, MONDAY, SATURDAY)))
    base = datetime.combine(day, time(7), HALL_TZ)

    def leave() -> list[Interval]:
        return [Interval("c01", base + timedelta(minutes=a), base + timedelta(minutes=a + draw(st.integers(10, 400)))) for a in draw(st.lists(st.integers(0, 600), max_size=2))]

    punches = [
        Punch(base + timedelta(minutes=draw(minutes)), draw(st.sampled_from(("face", "face", "pin", "card", "makeup"))))
        for _ in range(draw(st.integers(0, 14)))
    ]
    punches += [punches[i] for i in draw(st.lists(st.integers(0, len(punches) - 1), max_size=3))] if punches else []  # re-sent
    punches = draw(st.permutations(punches))
    batches = draw(st.lists(st.integers(1, 5), min_size=1, max_size=8))
    clocks = sorted(draw(st.lists(minutes, min_size=len(batches), max_size=len(batches))))
    return preset, day, leave(), leave(), punches, batches, clocks, draw(st.integers(0, len(batches)))


@settings(max_examples=300, deadline=None)
@given(person_days())
def test_attendance_held_per_punch_equals_the_full_evaluation_after_every_batch(feed: tuple[str, date, list[Interval], list[Interval], list[Punch], list[int], list[int], int]) -> None:
    preset, day, leave, changed_leave, punches, batches, clocks, change_at = feed
    policy = PRESETS[preset]
    live = LiveDay(day, leave, policy, CALENDAR)
    at = 0
    for index, (size, clock) in enumerate(zip(batches, clocks, strict=True)):
        if index == change_at:  # leave registered or withdrawn: the adapter starts the day over
            leave = changed_leave
            live = LiveDay(day, leave, policy, CALENDAR, punches[:at])
        for punch in punches[at : at + size]:
            live.add(punch)
        at += size
        until = datetime.combine(day, time(7), HALL_TZ) + timedelta(minutes=clock)
        assert live.result(until) == evaluate_day(day, punches[:at], leave, policy, CALENDAR, until)
        assert live.result() == evaluate_day(day, punches[:at], leave, policy, CALENDAR)
