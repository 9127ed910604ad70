"""好差评 rules, pure: deadlines in working days across the 2026 holidays, the work-order
lifecycle, one rating per transaction, default ratings, fraud signals and statistics.

Deadlines are checked table by table against the national calendar of 2026 with its
moved working days (调休), each at its boundary one second either side; the 2026
dates were read from ``chinese-calendar``:

* 元旦 1–3 Jan off, Sunday 4 Jan worked;
* 春节 15–23 Feb off, Saturdays 14 and 28 Feb worked;
* 清明 4–6 Apr off;
* 劳动节 1–5 May off, Saturday 9 May worked;
* 端午 19–21 Jun off;
* 中秋 25–27 Sep off, Sunday 20 Sep worked; 国庆 1–7 Oct off, Saturday 10 Oct worked.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.timeutil import HALL_TZ
from server.config.calendar import national_calendar
from server.config.policy import load_policy
from server.rules import ratings as rules
from server.rules.calendar import CalendarGapError
from server.rules.ratings import (
    Rating,
    Ticket,
    TransitionError,
    WorkOrder,
    act,
    deadline_instant,
    device_rating,
    evaluate_window_day,
    mark_duplicates,
    never_below,
    new_work_order,
    order_deadlines,
    overdue,
    overdue_alerts,
    resolve,
    statistics,
    timeliness,
    withdraw,
)
from server.rules.supervision import Observation

CAL = national_calendar([2025, 2026])
QUJIANG = load_policy("qujiang-2023")  # 10 working days to call back and handle (003 四(六)6)
SHORT = load_policy("qujiang-2023", {"deadlines": {"callback_working_days": 1, "rectify_working_days": 5}})
"""The other provinces' shape (DOMAIN.md): call back within 1 working day, handle within 5."""


def at(day: date, hh: int = 10, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), HALL_TZ)


def bad(when: datetime, window: str = "w01", clerk: str = "c01", level: int = 1, ticket: str | None = "A001") -> Rating:
    return device_rating(window, level, when, clerk=clerk, ticket=ticket, order=("ev-01", 1, int(when.timestamp())))


def order_for(when: datetime, policy=QUJIANG) -> WorkOrder:  # type: ignore[no-untyped-def]
    return new_work_order(bad(when), policy, order_deadlines(when, policy, CAL))


# ---------------------------------------------------------------------------
# Deadlines: the end of the N-th working day after the day of the rating
# ---------------------------------------------------------------------------

# (case, day of the rating, call back within 1 working day, handle within 5)
SHORT_DEADLINES = [
    ("ordinary Tuesday", date(2026, 3, 3), date(2026, 3, 4), date(2026, 3, 10)),
    ("Friday: the weekend does not count", date(2026, 3, 6), date(2026, 3, 9), date(2026, 3, 13)),
    ("New Year's Eve 2025: 1–3 Jan off, Sunday 4 Jan worked (调休)", date(2025, 12, 31), date(2026, 1, 4), date(2026, 1, 8)),
    ("Spring Festival: Saturday 14 Feb worked, then 15–23 Feb off", date(2026, 2, 13), date(2026, 2, 14), date(2026, 2, 27)),
    ("rated on the moved Saturday 14 Feb: due on the moved Saturday 28 Feb", date(2026, 2, 14), date(2026, 2, 24), date(2026, 2, 28)),
    ("Qingming: 4–6 Apr off", date(2026, 4, 3), date(2026, 4, 7), date(2026, 4, 13)),
    ("Labour Day: 1–5 May off, Saturday 9 May worked", date(2026, 4, 30), date(2026, 5, 6), date(2026, 5, 11)),
    ("Dragon Boat: 19–21 Jun off", date(2026, 6, 18), date(2026, 6, 22), date(2026, 6, 26)),
    ("Sunday 20 Sep worked for National Day (调休)", date(2026, 9, 18), date(2026, 9, 20), date(2026, 9, 24)),
    ("Mid-Autumn then National Day: 25–27 Sep and 1–7 Oct off", date(2026, 9, 24), date(2026, 9, 28), date(2026, 10, 9)),
    ("eve of National Day: Saturday 10 Oct worked", date(2026, 9, 30), date(2026, 10, 8), date(2026, 10, 13)),
    ("rated on a holiday (1 Oct): the day itself never counts", date(2026, 10, 1), date(2026, 10, 8), date(2026, 10, 13)),
]

# (case, day of the rating, 10 working days to call back and handle — Qujiang)
QUJIANG_DEADLINES = [
    ("Spring Festival", date(2026, 2, 13), date(2026, 3, 5)),
    ("Qingming", date(2026, 4, 3), date(2026, 4, 20)),
    ("Labour Day", date(2026, 4, 30), date(2026, 5, 18)),
    ("Dragon Boat", date(2026, 6, 18), date(2026, 7, 3)),
    ("Sunday 20 Sep worked", date(2026, 9, 18), date(2026, 10, 9)),
    ("Mid-Autumn", date(2026, 9, 24), date(2026, 10, 15)),
    ("National Day (the example in docs/ratings.md)", date(2026, 9, 30), date(2026, 10, 20)),
]


@pytest.mark.parametrize(("case", "rated", "callback", "rectify"), SHORT_DEADLINES, ids=[c[0] for c in SHORT_DEADLINES])
def test_short_deadlines(case: str, rated: date, callback: date, rectify: date) -> None:
    assert order_deadlines(at(rated, 16, 59), SHORT, CAL) == (callback, rectify)


@pytest.mark.parametrize(("case", "rated", "due"), QUJIANG_DEADLINES, ids=[c[0] for c in QUJIANG_DEADLINES])
def test_qujiang_ten_working_days(case: str, rated: date, due: date) -> None:
    assert order_deadlines(at(rated), QUJIANG, CAL) == (due, due)


@pytest.mark.parametrize(("case", "rated", "callback", "rectify"), SHORT_DEADLINES, ids=[c[0] for c in SHORT_DEADLINES])
def test_overdue_one_second_either_side_of_each_deadline(case: str, rated: date, callback: date, rectify: date) -> None:
    order = order_for(at(rated, 9), SHORT)
    last_second = at(callback, 23, 59, 59)
    assert overdue(order, last_second) == ()
    assert overdue(order, deadline_instant(callback)) == ("callback",)
    assert overdue(order, deadline_instant(callback) + timedelta(seconds=1)) == ("callback",)

    called = act(order, "call_back", "人社局 王", "已电话回访，群众反映等候时间长", last_second)
    assert timeliness(called, last_second) == "open"
    assert overdue(called, at(rectify, 23, 59, 59)) == ()
    assert overdue(called, deadline_instant(rectify)) == ("rectify",)

    on_time = act(called, "rectify", "人社局 王", "已约谈，增开窗口", at(rectify, 23, 59, 59))
    assert timeliness(on_time, deadline_instant(rectify) + timedelta(days=30)) == "on_time"
    late = act(called, "rectify", "人社局 王", "已约谈，增开窗口", deadline_instant(rectify))
    assert timeliness(late, deadline_instant(rectify)) == "late"


def test_a_call_back_one_second_late_makes_the_order_late_even_if_handled_in_time() -> None:
    order = order_for(at(date(2026, 3, 3)), SHORT)  # call back by Wed 4 Mar, handle by Tue 10 Mar
    late_call = act(order, "call_back", "王", "回访", deadline_instant(date(2026, 3, 4)) + timedelta(seconds=1))
    assert overdue(late_call, late_call.history[-1].at) == ()  # called back: no longer overdue…
    handled = act(late_call, "close", "王", "核实无问题，已向群众解释", at(date(2026, 3, 5)))
    assert timeliness(handled, at(date(2026, 3, 20))) == "late"  # …but late for the on-time rate


def test_the_day_of_the_rating_is_the_hall_local_day() -> None:
    thursday_night = datetime(2026, 3, 5, 23, 59, 59, tzinfo=HALL_TZ)
    friday_0000_in_utc = datetime(2026, 3, 5, 16, 0, 0, tzinfo=timezone.utc)  # 00:00 Friday in Beijing
    assert order_deadlines(thursday_night, SHORT, CAL)[0] == date(2026, 3, 6)
    assert order_deadlines(friday_0000_in_utc, SHORT, CAL)[0] == date(2026, 3, 9)


def test_a_deadline_beyond_the_calendar_raises_and_the_order_waits_for_it() -> None:
    with pytest.raises(CalendarGapError, match="2027"):
        order_deadlines(at(date(2026, 12, 30)), QUJIANG, CAL)
    order = new_work_order(bad(at(date(2026, 12, 30))), QUJIANG, None)
    assert (order.callback_due, order.rectify_due) == (None, None)
    assert overdue(order, at(date(2026, 12, 30)) + timedelta(days=60)) == ()


# ---------------------------------------------------------------------------
# The work-order lifecycle
# ---------------------------------------------------------------------------

T0 = at(date(2026, 3, 3), 10)


def walk(*steps: tuple[str, str]) -> WorkOrder:
    """An order taken through (action, actor) steps, a minute apart."""
    order = order_for(T0)
    for minutes, (action, actor) in enumerate(steps, 1):
        order = act(order, action, actor, f"{action} 情况说明", T0 + timedelta(minutes=minutes))
    return order


ALL_ACTIONS = ("call_back", "rectify", "close", "appeal", "uphold", "overturn")
# (how the order got there, the actions then allowed)
LIFECYCLE = [
    ("assigned", (), {"call_back", "appeal"}),
    ("called back", (("call_back", "部门"),), {"rectify", "close", "appeal"}),
    ("rectified", (("call_back", "部门"), ("rectify", "部门")), {"close"}),
    ("closed", (("call_back", "部门"), ("rectify", "部门"), ("close", "督查科")), set()),
    ("closed after verifying (核实无问题)", (("call_back", "部门"), ("close", "督查科")), set()),
    ("appealed", (("appeal", "部门"),), {"uphold", "overturn"}),
    ("upheld before the call back", (("appeal", "部门"), ("uphold", "督查科")), {"call_back"}),
    ("upheld after the call back", (("call_back", "部门"), ("appeal", "部门"), ("uphold", "督查科")), {"rectify", "close"}),
    ("overturned", (("appeal", "部门"), ("overturn", "督查科")), set()),
]


@pytest.mark.parametrize(("case", "steps", "allowed"), LIFECYCLE, ids=[c[0] for c in LIFECYCLE])
def test_each_status_allows_exactly_its_actions(case: str, steps: tuple, allowed: set[str]) -> None:
    order = walk(*steps)
    assert set(rules.next_actions(order)) == allowed
    later = T0 + timedelta(hours=1)
    for action in ALL_ACTIONS:
        if action in allowed:
            assert act(order, action, "督查科 李", "说明", later).status == rules._TARGET[action]
        else:
            with pytest.raises(TransitionError, match=f"cannot {action}"):
                act(order, action, "督查科 李", "说明", later)


def test_every_step_keeps_its_time_actor_and_note() -> None:
    order = walk(("call_back", "人社局 王"), ("rectify", "人社局 王"), ("close", "督查科 李"))
    assert [(s.status, s.actor) for s in order.history] == [
        ("assigned", "hallwatch"),
        ("called_back", "人社局 王"),
        ("rectified", "人社局 王"),
        ("closed", "督查科 李"),
    ]
    assert order.history[0].at == T0 and order.history[1].at == T0 + timedelta(minutes=1)
    assert order.history[2].note == "rectify 情况说明"
    assert order.called_back_at == T0 + timedelta(minutes=1) and order.handled_at == T0 + timedelta(minutes=2)
    assert order.final_at == T0 + timedelta(minutes=3)


@pytest.mark.parametrize(
    ("actor", "note", "when", "reason"),
    [
        ("", "说明", T0 + timedelta(minutes=1), "actor"),
        ("王", "  ", T0 + timedelta(minutes=1), "without a note"),
        ("王", "说明", T0 - timedelta(seconds=1), "before the order's last step"),
    ],
)
def test_a_step_needs_an_actor_a_note_and_time_moving_forward(actor: str, note: str, when: datetime, reason: str) -> None:
    with pytest.raises(TransitionError, match=reason):
        act(order_for(T0), "call_back", actor, note, when)


def test_the_appellant_does_not_decide_the_appeal() -> None:
    appealed = walk(("appeal", "人社局 王"))
    with pytest.raises(TransitionError, match="人社局 王 appealed and cannot also decide"):
        act(appealed, "overturn", "人社局 王", "恶意差评", T0 + timedelta(hours=1))
    assert act(appealed, "overturn", "督查科 李", "经核实系误评", T0 + timedelta(hours=1)).status == "overturned"


def test_an_appeal_does_not_stop_the_deadlines() -> None:
    order = order_for(at(date(2026, 3, 3)), SHORT)
    appealed = act(order, "appeal", "部门", "群众误按", at(date(2026, 3, 3), 11))
    assert overdue(appealed, deadline_instant(date(2026, 3, 4))) == ("callback",)
    overturned = act(appealed, "overturn", "督查科", "经核实系误按", deadline_instant(date(2026, 3, 4)) + timedelta(hours=9))
    assert overdue(overturned, at(date(2026, 4, 1))) == ()
    assert timeliness(overturned, at(date(2026, 4, 1))) is None  # out of the rates


def test_withdraw_is_the_systems_and_only_from_an_open_order() -> None:
    withdrawn = withdraw(order_for(T0), T0 + timedelta(minutes=5), "同一事项已有更早的评价")
    assert (withdrawn.status, withdrawn.history[-1].actor) == ("withdrawn", "hallwatch")
    with pytest.raises(TransitionError, match="already withdrawn"):
        withdraw(withdrawn, T0 + timedelta(minutes=6), "again")
    assert rules.next_actions(withdrawn) == ()


def test_only_a_counted_real_bad_rating_opens_an_order() -> None:
    for rating in (
        bad(T0, level=3),
        Rating("w01", 1, T0, T0.date(), origin="default"),
        Rating("w01", 1, T0, T0.date(), counted=False),
    ):
        with pytest.raises(ValueError, match="only a counted real 差评"):
            new_work_order(rating, QUJIANG, None)
    order = new_work_order(bad(T0, level=2), QUJIANG, order_deadlines(T0, QUJIANG, CAL))
    assert (order.status, order.level, order.history[0].note) == ("assigned", 2, "不满意（★2）评价，系统自动生成差评工单")


# ---------------------------------------------------------------------------
# One rating per transaction (一事一评)
# ---------------------------------------------------------------------------


def rated(when: datetime, level: int = 5, ticket: str | None = None, cases: tuple[str, ...] = (), window: str = "w01", seq: int = 1) -> Rating:
    return device_rating(window, level, when, clerk="c01", ticket=ticket, cases=cases, order=("ev-01", 1, seq))


DUPLICATES = [
    ("the same ticket twice: the second is a duplicate", [rated(T0, 5, "A1"), rated(T0 + timedelta(minutes=1), 1, "A1", seq=2)], [None, 0]),
    ("the same ticket number on another day is another transaction", [rated(T0, 5, "A1"), rated(T0 + timedelta(days=1), 1, "A1", seq=2)], [None, None]),
    ("a batch (批量业务) is rated once: a case of it again is a duplicate", [rated(T0, 4, None, ("C1", "C2")), rated(T0 + timedelta(minutes=2), 1, None, ("C2",), seq=2)], [None, 0]),
    ("a ticket's case rated alone is the same transaction", [rated(T0, 4, "A1", ("C1",)), rated(T0 + timedelta(minutes=2), 2, None, ("C1",), seq=2)], [None, 0]),
    ("ratings without ticket or case are all counted", [rated(T0), rated(T0, seq=2)], [None, None]),
    ("the earliest counts, whatever the list order", [rated(T0 + timedelta(minutes=5), 1, "A1", seq=2), rated(T0, 5, "A1")], [1, None]),
    (
        "a duplicate's own keys are taken too",
        [rated(T0, 5, "A1"), rated(T0 + timedelta(minutes=1), 3, "A1", ("C9",), seq=2), rated(T0 + timedelta(minutes=2), 1, None, ("C9",), seq=3)],
        [None, 0, 0],
    ),
    (
        "a real rating beats the default, dated earlier or not",
        [Rating("w01", 4, T0, T0.date(), ticket="A1", origin="default"), rated(T0 + timedelta(minutes=1), 2, "A1")],
        [1, None],
    ),
]


@pytest.mark.parametrize(("case", "ratings", "expected"), DUPLICATES, ids=[c[0] for c in DUPLICATES])
def test_one_rating_per_transaction(case: str, ratings: list[Rating], expected: list[int | None]) -> None:
    assert list(resolve(ratings)) == expected
    assert [r.counted for r in mark_duplicates(ratings)] == [e is None for e in expected]


def test_a_default_rating_is_due_after_the_policys_days_and_never_once_rated() -> None:
    finished = at(date(2026, 3, 3), 10, 30)
    ticket = Ticket("w01", "A1", date(2026, 3, 3), at(date(2026, 3, 3), 10), finished, "c01", ("C1",))
    due = finished + timedelta(days=QUJIANG.ratings.default_after_days)  # type: ignore[arg-type]
    assert rules.due_default(ticket, False, QUJIANG, due - timedelta(seconds=1)) is None
    given_ = rules.due_default(ticket, False, QUJIANG, due)
    assert given_ is not None
    assert (given_.origin, given_.level, given_.rated_at, given_.day, given_.keys) == ("default", 4, finished, date(2026, 3, 3), ticket.keys)
    assert rules.due_default(ticket, True, QUJIANG, due + timedelta(days=1)) is None
    unfinished = replace(ticket, finished_at=None)
    assert rules.due_default(unfinished, False, QUJIANG, due + timedelta(days=30)) is None


def test_a_default_level_must_never_be_bad() -> None:
    from broker.config_file import ConfigError

    with pytest.raises(ConfigError, match="default_level"):
        load_policy("qujiang-2023", {"ratings": {"default_level": 2}})


# ---------------------------------------------------------------------------
# Fraud signals
# ---------------------------------------------------------------------------

DAY = date(2026, 3, 3)
W = "w02"


def seat(when: datetime, occupied: bool, who: str | None = None, seq: int = 0) -> Observation:
    return Observation(when, "seat", occupied, who, False, ("cam-01", 1, seq or int(when.timestamp())))


def camera(when: datetime, online: bool = True) -> Observation:
    return Observation(when, "camera", online, "online" if online else "offline", False, ("cam-01", 0, int(when.timestamp())))


MORNING = [camera(at(DAY, 7, 50)), seat(at(DAY, 8, 30), True, "c02"), seat(at(DAY, 10), False)]
GATEWAY = [(at(DAY, 7, 50), True)]


def signals_of(ratings: list[Rating], observations=MORNING, tickets=None, gateway=GATEWAY, policy=QUJIANG, until=None):  # type: ignore[no-untyped-def]
    until = until or at(DAY, 23)
    return evaluate_window_day(W, DAY, ratings, tickets or {}, observations, gateway, policy, until)


def on_w02(when: datetime, level: int = 5, clerk: str | None = "c02", ticket: str | None = "B1", seq: int = 1, historical: bool = False) -> Rating:
    return device_rating(W, level, when, clerk=clerk, ticket=ticket, historical=historical, order=("ev-02", 1, seq))


SERVED = {"B1": Ticket(W, "B1", DAY, at(DAY, 9, 50), at(DAY, 9, 58))}


@pytest.mark.parametrize(
    ("case", "rated_at", "observations", "expected"),
    [
        ("seat empty exactly the grace (60 s): fine", at(DAY, 10, 1, 0), MORNING, set()),
        ("one second more: a rating while the seat is vacant", at(DAY, 10, 1, 1), MORNING, {"seat_vacant"}),
        ("clerk seated", at(DAY, 9, 59), MORNING, set()),
        ("camera offline: unknown, no signal", at(DAY, 10, 30), MORNING + [camera(at(DAY, 9, 59), False)], set()),
        ("camera never heard of: no signal", at(DAY, 10, 30), MORNING[1:], set()),
    ],
)
def test_rating_while_the_seat_is_vacant(case: str, rated_at: datetime, observations: list[Observation], expected: set[str]) -> None:
    result = signals_of([on_w02(rated_at)], observations, SERVED)
    assert result.signals[0] == expected


@pytest.mark.parametrize(
    ("case", "occupant", "clerk", "expected"),
    [
        ("the evaluator's clerk is the one seated", "c02", "c02", set()),
        ("credited to c02, c13 seen in the seat", "c13", "c02", {"clerk_mismatch"}),
        ("a stranger in the seat is not this signal (the supervisor's unexpected_person)", "unknown", "c02", set()),
        ("nobody identified: no signal", None, "c02", set()),
        ("nobody logged in on the evaluator: no signal", "c13", None, set()),
    ],
)
def test_rating_credited_to_another_clerk(case: str, occupant: str | None, clerk: str | None, expected: set[str]) -> None:
    observations = [camera(at(DAY, 7, 50)), seat(at(DAY, 8, 30), True, occupant)]
    assert signals_of([on_w02(at(DAY, 9, 59), clerk=clerk)], observations, SERVED).signals[0] == expected


OTHER_WINDOW = {"B1": Ticket("w05", "B1", DAY, at(DAY, 9, 50), at(DAY, 9, 58))}
CALLED_LATER = {"B1": Ticket(W, "B1", DAY, at(DAY, 9, 56), None)}
WAIT = timedelta(seconds=QUJIANG.ratings.ticket_wait_s)
WHEN = at(DAY, 9, 55)
NO_QUEUE = load_policy("linfen")  # ticket_required = false: the hall has no queue system


@pytest.mark.parametrize(
    ("case", "ticket", "tickets", "gateway", "policy", "until", "expected"),
    [
        ("ticket called here before the rating", "B1", SERVED, GATEWAY, QUJIANG, WHEN + WAIT, set()),
        ("no ticket on the rating: at once", None, SERVED, GATEWAY, QUJIANG, WHEN + timedelta(seconds=1), {"no_ticket"}),
        ("unknown ticket, 1 s before the wait ends: not yet", "B9", SERVED, GATEWAY, QUJIANG, WHEN + WAIT - timedelta(seconds=1), set()),
        ("unknown ticket when the wait ends", "B9", SERVED, GATEWAY, QUJIANG, WHEN + WAIT, {"no_ticket"}),
        ("ticket called to another window", "B1", OTHER_WINDOW, GATEWAY, QUJIANG, WHEN + WAIT, {"no_ticket"}),
        ("ticket called only after the rating", "B1", CALLED_LATER, GATEWAY, QUJIANG, WHEN + WAIT, {"no_ticket"}),
        ("queue gateway offline: silence is no evidence", None, {}, [(at(DAY, 7, 50), True), (at(DAY, 9), False)], QUJIANG, WHEN + WAIT, set()),
        ("no queue gateway at the window", None, {}, None, QUJIANG, WHEN + WAIT, set()),
        ("the hall's policy requires no ticket", None, {}, GATEWAY, NO_QUEUE, WHEN + WAIT, set()),
    ],
)
def test_rating_with_no_customer_served(case: str, ticket, tickets, gateway, policy, until, expected) -> None:  # type: ignore[no-untyped-def]
    result = signals_of([on_w02(WHEN, ticket=ticket)], tickets=tickets, gateway=gateway, policy=policy, until=until)
    assert result.signals[0] == expected


def burst(gap_s: float, count: int = 5) -> list[Rating]:
    return [on_w02(at(DAY, 9) + timedelta(seconds=gap_s * i), ticket=f"B{i}", seq=i + 1) for i in range(count)]


def test_a_burst_is_burst_count_ratings_within_the_window_both_ends_included() -> None:
    window_s = QUJIANG.ratings.burst_window_s
    inside = signals_of(burst(window_s / 4), observations=[], gateway=None)  # 5 ratings, first to last exactly 180 s
    assert all("burst" in s for s in inside.signals)
    [alert] = inside.alerts
    assert (alert.type, alert.condition_since, alert.raised_at) == ("rating_burst", at(DAY, 9), at(DAY, 9, 3))
    assert dict(alert.facts)["count"] == "5" and alert.rule == "ratings.burst_count" and alert.threshold_s == window_s
    outside = signals_of(burst((window_s + 1) / 4), observations=[], gateway=None)  # 181 s
    assert not any(outside.signals) and outside.alerts == ()
    assert signals_of(burst(1, count=4), observations=[], gateway=None).alerts == ()


def test_a_days_signal_alert_lists_its_ratings_and_clears_at_midnight() -> None:
    ratings = [on_w02(at(DAY, 10, 5), ticket=None, seq=1), on_w02(at(DAY, 10, 20), ticket=None, seq=2, historical=True)]
    running = signals_of(ratings, MORNING, until=at(DAY, 11))
    by_type = {a.type: a for a in running.alerts}
    assert set(by_type) == {"rating_seat_vacant", "rating_no_ticket"}
    vacant = by_type["rating_seat_vacant"]
    assert (vacant.raised_at, vacant.cleared_at, vacant.live) == (at(DAY, 10, 5), None, True)
    assert dict(vacant.facts) == {"count": "2", "times": "10:05:00, 10:20:00", "tickets": "（无）, （无）", "clerks": "c02"}
    assert vacant.source.startswith("HallWatch default") and vacant.rule == "ratings.seat_vacant_grace_s"
    midnight = datetime.combine(DAY + timedelta(days=1), time.min, HALL_TZ)
    assert signals_of(ratings, MORNING, until=midnight - timedelta(seconds=1)).alerts[0].cleared_at is None
    assert all(a.cleared_at == midnight for a in signals_of(ratings, MORNING, until=midnight).alerts)
    replayed = signals_of([ratings[1]], MORNING)
    assert all(not a.live for a in replayed.alerts), "a replayed rating never raises a live alert"


def month_of(levels: list[int]) -> list[Rating]:
    start = at(date(2026, 3, 2), 9)
    return [device_rating("w12", level, start + timedelta(minutes=10 * i), ticket=f"L{i}", order=("ev-12", 1, i + 1)) for i, level in enumerate(levels)]


def test_a_window_whose_ratings_never_fall_below_the_level() -> None:
    n = QUJIANG.ratings.never_below_min_count
    until = at(date(2026, 3, 31), 12)
    assert never_below("w12", date(2026, 3, 1), month_of([5] * (n - 1)), QUJIANG, until) is None
    assert never_below("w12", date(2026, 3, 1), month_of([5] * (n - 1) + [4]), QUJIANG, until) is None
    ratings = month_of([5] * n + [5, 4, 5])
    alert = never_below("w12", date(2026, 3, 1), ratings, QUJIANG, until)
    assert alert is not None
    assert (alert.type, alert.raised_at, alert.cleared_at) == ("rating_never_below", ratings[n - 1].rated_at, ratings[n + 1].rated_at)
    assert dict(alert.facts) == {"count": str(n + 1), "month": "2026-03", "level": "≥5 非常满意"}
    still = never_below("w12", date(2026, 3, 1), month_of([5] * n), QUJIANG, until)
    assert still is not None and still.cleared_at is None
    ended = never_below("w12", date(2026, 3, 1), month_of([5] * n), QUJIANG, at(date(2026, 4, 1), 0))
    assert ended is not None and ended.cleared_at == at(date(2026, 4, 1), 0)
    duplicates = [r if i % 2 else replace(r, counted=False) for i, r in enumerate(month_of([5] * n))]
    assert never_below("w12", date(2026, 3, 1), duplicates, QUJIANG, until) is None, "duplicates are not ratings"


def test_overdue_orders_make_one_alert_per_window_until_the_last_is_done() -> None:
    first = order_for(at(date(2026, 3, 3)), SHORT)  # call back due Wed 4 Mar
    second = order_for(at(date(2026, 3, 4)), SHORT)  # call back due Thu 5 Mar
    first, second = replace(first, id=1), replace(second, id=2)
    thursday = deadline_instant(date(2026, 3, 4))
    friday = deadline_instant(date(2026, 3, 5))
    first_called = act(first, "call_back", "王", "回访", friday + timedelta(hours=10))
    second_called = act(second, "call_back", "王", "回访", friday + timedelta(hours=11))
    [open_] = overdue_alerts("w01", [first, second], SHORT, friday + timedelta(hours=9))
    assert (open_.raised_at, open_.cleared_at, dict(open_.facts)["count"]) == (thursday, None, "2")
    assert dict(open_.facts)["orders"] == "1:回访, 2:回访"
    [done] = overdue_alerts("w01", [first_called, second_called], SHORT, friday + timedelta(hours=12))
    assert (done.raised_at, done.cleared_at) == (thursday, friday + timedelta(hours=11))
    assert done.rule == "deadlines.callback_working_days" and done.source
    assert overdue_alerts("w01", [first], SHORT, thursday - timedelta(seconds=1)) == ()


def test_rating_alerts_are_never_drafted_as_patrol_findings() -> None:
    from server.rules.patrol import draft_findings

    day = signals_of([on_w02(at(DAY, 10, 5), ticket=None)], MORNING, until=at(DAY, 11))
    overdue_ = overdue_alerts("w01", [order_for(at(date(2026, 3, 3)), SHORT)], SHORT, at(date(2026, 3, 20)))
    alerts = list(day.alerts) + list(overdue_)
    assert {a.type for a in alerts} == {"rating_seat_vacant", "rating_no_ticket", "work_order_overdue"}
    assert draft_findings(alerts, at(DAY, 0), at(date(2026, 3, 21))) == ()


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------

DEPTS = {"w01": "市场监管局", "w02": "市场监管局", "w03": "人社局"}


def test_statistics_leave_default_ratings_duplicates_and_overturned_ratings_out_of_every_rate() -> None:
    ratings = [
        rated(T0, 5, "A1", seq=1),
        rated(T0 + timedelta(minutes=1), 1, "A1", seq=2),  # a second press: duplicate
        rated(T0 + timedelta(minutes=5), 4, "A2", seq=3),
        rated(T0 + timedelta(minutes=9), 2, "A3", seq=4),  # bad, overturned on appeal below
        rated(T0 + timedelta(minutes=12), 1, "A4", seq=5),  # bad, its order closed in time
        Rating("w01", 4, T0, T0.date(), clerk="c01", ticket="A5", origin="default"),
    ]
    ratings = [replace(r, id=i) for i, r in enumerate(mark_duplicates(ratings), 1)]
    overturned = act(act(order_for(ratings[3].rated_at), "appeal", "部门", "误按", T0 + timedelta(hours=1)), "overturn", "督查科", "误按属实", T0 + timedelta(hours=2))
    overturned = replace(overturned, rating_id=4)
    closed = act(act(order_for(ratings[4].rated_at), "call_back", "部门", "回访", T0 + timedelta(hours=1)), "close", "督查科", "已解释", T0 + timedelta(hours=2))
    closed = replace(closed, rating_id=5)
    [row] = statistics(ratings, [overturned, closed], "window", "month", DEPTS, QUJIANG, T0 + timedelta(days=1))
    assert (row.key, row.period, row.rated, row.levels) == ("w01", "2026-03", 3, (1, 1, 0, 0, 1))
    assert (row.satisfied, row.bad, row.defaults, row.duplicates, row.overturned) == (2, 1, 1, 1, 1)
    assert row.satisfaction_rate == pytest.approx(2 / 3) and row.bad_rate == pytest.approx(1 / 3)
    assert (row.work_orders, row.handled, row.on_time, row.late) == (1, 1, 1, 0)
    assert row.rectification_rate == 1.0 and row.on_time_rate == 1.0 and row.rank == 1
    only_defaults = statistics([ratings[5]], [], "window", "day", DEPTS, QUJIANG, T0)
    assert (only_defaults[0].defaults, only_defaults[0].rated, only_defaults[0].satisfaction_rate, only_defaults[0].rank) == (1, 0, None, None)


def test_rankings_per_period_with_ties_and_groupings() -> None:
    def on(window: str, level: int, minutes: int, clerk: str = "c01") -> Rating:
        return device_rating(window, level, T0 + timedelta(minutes=minutes), clerk=clerk, ticket=f"T{minutes}", order=("ev", 1, minutes))

    ratings = [on("w01", 5, 1), on("w01", 2, 2), on("w02", 5, 3, "c02"), on("w02", 1, 4, "c02"), on("w03", 5, 5, "c03"), on("w03", 5, 6, "c03")]
    rows = statistics(ratings, [], "window", "day", DEPTS, QUJIANG, T0 + timedelta(hours=1))
    assert [(r.key, r.rank) for r in rows] == [("w03", 1), ("w01", 2), ("w02", 2)]
    departments = statistics(ratings, [], "department", "month", DEPTS, QUJIANG, T0 + timedelta(hours=1))
    assert [(r.key, r.rated, r.rank) for r in departments] == [("人社局", 2, 1), ("市场监管局", 4, 2)]
    clerks = statistics(ratings, [], "clerk", "month", DEPTS, QUJIANG, T0 + timedelta(hours=1))
    assert {r.key: r.bad for r in clerks} == {"c01": 1, "c02": 1, "c03": 0}
    total = rules.totals(rows, "2026-03-03")
    assert (total.rated, total.bad, total.satisfaction_rate, total.rank) == (6, 2, pytest.approx(4 / 6), None)


def test_never_below_flag_on_month_rows() -> None:
    n = QUJIANG.ratings.never_below_min_count
    [month] = statistics(month_of([5] * n), [], "window", "month", {"w12": "综合受理"}, QUJIANG, at(date(2026, 4, 1)))
    assert month.never_below is True
    [lower] = statistics(month_of([5] * n + [3]), [], "window", "month", {"w12": "综合受理"}, QUJIANG, at(date(2026, 4, 1)))
    assert lower.never_below is False
    days = statistics(month_of([5] * 3), [], "window", "day", {"w12": "综合受理"}, QUJIANG, at(date(2026, 4, 1)))
    assert {r.never_below for r in days} == {None}


# ---------------------------------------------------------------------------
# Arrival order never changes what counts
# ---------------------------------------------------------------------------

ratings_strategy = st.lists(
    st.tuples(
        st.sampled_from(["w01", "w02", "w03"]),
        st.integers(1, 5),
        st.integers(0, 3 * 24 * 60),  # minutes into three days
        st.sampled_from([None, "A1", "A2", "A3"]),
        st.lists(st.sampled_from(["C1", "C2", "C3"]), max_size=2, unique=True),
        st.booleans(),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(ratings_strategy, st.randoms(use_true_random=False))
def test_the_statistics_do_not_depend_on_arrival_order(raw, rnd: random.Random) -> None:  # type: ignore[no-untyped-def]
    ratings = [
        Rating(w, level, T0 + timedelta(minutes=m), (T0 + timedelta(minutes=m)).date(), "c01", ticket, tuple(cases), "default" if default and ticket else "device", order=("ev", 1, i))
        for i, (w, level, m, ticket, cases, default) in enumerate(raw)
    ]
    shuffled = list(ratings)
    rnd.shuffle(shuffled)
    first = statistics(mark_duplicates(ratings), [], "window", "day", DEPTS, QUJIANG, T0 + timedelta(days=5))
    second = statistics(mark_duplicates(shuffled), [], "window", "day", DEPTS, QUJIANG, T0 + timedelta(days=5))
    assert first == second
    counted = {r.order for r in mark_duplicates(ratings) if r.counted}
    assert counted == {r.order for r in mark_duplicates(shuffled) if r.counted}
    keys = [k for r in mark_duplicates(ratings) if r.counted and r.origin == "device" for k in r.keys]
    assert len(keys) == len(set(keys)), "no transaction is counted twice"
