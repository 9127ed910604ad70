"""Reading stored days in bulk (replay, start-up, camera reloads) gives exactly
what reading them one window at a time gives — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from procs import ROOT
from test_supervisor import Hall

from broker.protocol import ClerkLoginBody, PauseBody, RatingBody, SeatBody, SeatHeartbeatBody
from broker.timeutil import HALL_TZ
from server.supervision import service as supervisor_module
from server.db import LeaveRow
from server.config.hall import HallConfig, load_hall
from server.rules.supervision import Observation, evaluate_window
from server.supervision.service import window_cameras
from sqlalchemy.orm import Session

HALL = load_hall(ROOT / "config/halls/demo.toml")
DAY = datetime(2026, 3, 2, tzinfo=HALL_TZ).date()  # a Monday
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=HALL_TZ)
SUNDAY = MONDAY - timedelta(days=1)
UNTIL = datetime(2026, 3, 3, tzinfo=HALL_TZ)


class StoredHall(Hall):
    """The demo hall's database, filled through the store as ingest fills it, from the Saturday before."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.clock.now = SUNDAY - timedelta(days=1)

    def status(self, device: str, kind: str, state: str, at: datetime) -> None:
        """A birth or will at ``at``: a device_health row when the state changes."""
        self.clock.now = at
        self.birth(device, kind, state)


def seat(window: str, state: str, who: str | None = None) -> SeatBody:
    return SeatBody(window_id=window, state=state, confidence=0.9, occupant=who)  # type: ignore[arg-type]


def beat(window: str, state: str) -> SeatHeartbeatBody:
    return SeatHeartbeatBody(window_id=window, state=state, confidence=0.9)  # type: ignore[arg-type]


@pytest.fixture
def stored(db_url: str) -> StoredHall:
    """Two days of a few windows: facts from before the day (older and newer),
    the day's changes and heartbeats (repeats among them), a rating, the next
    day's first event, camera health before and during the day, leave."""
    hall = StoredHall(db_url)
    hall.status("cam-01", "window_camera", "online", SUNDAY - timedelta(hours=2))
    hall.status("cam-02", "window_camera", "online", SUNDAY - timedelta(hours=2))
    for window, clerk, evaluator in (("w02", "c02", "ev-02"), ("w04", "c04", "ev-04")):
        hall.send("cam-01" if window == "w02" else "cam-02", seat(window, "occupied", clerk), SUNDAY - timedelta(hours=1))
        hall.send("cam-01" if window == "w02" else "cam-02", seat(window, "vacant"), SUNDAY + timedelta(hours=8))  # the newer fact wins
        hall.send(evaluator, PauseBody(window_id=window, paused=True, source="evaluator", reason="取材料"), SUNDAY - timedelta(minutes=50))
        hall.send(evaluator, ClerkLoginBody(window_id=window, clerk_id=clerk), SUNDAY - timedelta(minutes=55))
        hall.send(evaluator, ClerkLoginBody(window_id=window, clerk_id=None), SUNDAY + timedelta(hours=8, minutes=1))
    # The day: w02 with heartbeats (the repeats are flagged at ingest), w04 with a historical replay.
    hall.send("cam-01", seat("w02", "occupied", "c02"), MONDAY - timedelta(minutes=40))
    for s in range(6):
        hall.send("cam-01", beat("w02", "occupied"), MONDAY - timedelta(minutes=40) + timedelta(seconds=s + 1))
    hall.send("ev-02", ClerkLoginBody(window_id="w02", clerk_id="c02"), MONDAY - timedelta(minutes=39))
    hall.send("ev-02", RatingBody(window_id="w02", level=5, clerk_id="c02"), MONDAY)
    hall.send("ev-02", PauseBody(window_id="w02", paused=False, source="evaluator"), MONDAY + timedelta(minutes=1))
    hall.send("cam-02", seat("w04", "occupied", "c04"), MONDAY - timedelta(minutes=30), historical=True)
    hall.send("cam-02", beat("w04", "occupied"), MONDAY - timedelta(minutes=29))  # turns the fact live: kept
    hall.status("cam-01", "window_camera", "offline", MONDAY + timedelta(hours=2))
    hall.status("cam-01", "window_camera", "online", MONDAY + timedelta(hours=2, minutes=5))
    hall.send("cam-01", seat("w02", "vacant"), MONDAY + timedelta(days=1))  # tomorrow: not this day
    with Session(hall.engine) as session, session.begin():
        session.add(LeaveRow(hall_id="demo", kind="leave", person_id="c02", window_id="w02", start=MONDAY - timedelta(hours=2), end=MONDAY + timedelta(hours=8)))
        session.add(LeaveRow(hall_id="demo", kind="substitute", person_id="c13", window_id="w02", start=MONDAY - timedelta(hours=2), end=MONDAY + timedelta(hours=8)))
        session.add(LeaveRow(hall_id="demo", kind="leave", person_id="c04", window_id="w04", start=SUNDAY - timedelta(hours=2), end=SUNDAY + timedelta(hours=8)))
    return hall


def facts(observations: list[Observation]) -> list[tuple[Any, ...]]:
    """The observations as comparable tuples, in a fixed order (a load's order carries no meaning)."""
    return sorted((o.time, o.kind, o.on, o.who or "", o.historical, o.order, o.evidence or "") for o in observations)


WINDOWS = [w.id for w in HALL.windows]


@pytest.mark.parametrize("chunk", [5, 500])
def test_bulk_load_equals_window_by_window(stored: StoredHall, chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor_module, "_CHUNK", chunk)  # 12 windows: three chunks, or one
    with Session(stored.engine) as session:
        bulk = stored.supervisor.load_days(session, WINDOWS, DAY)
        single = {window_id: stored.supervisor.load_day(session, window_id, DAY) for window_id in WINDOWS}
    assert list(bulk) == WINDOWS
    assert {w: facts(o) for w, o in bulk.items()} == {w: facts(o) for w, o in single.items()}


def test_a_day_is_its_rows_and_the_facts_it_began_with(stored: StoredHall) -> None:
    with Session(stored.engine) as session:
        days = stored.supervisor.load_days(session, ["w02", "w03", "w04", "w05"], DAY)

    def of(window: str, kind: str) -> list[tuple[Any, ...]]:
        return sorted((o.time, o.on, o.who, o.historical) for o in days[window] if o.kind == kind)

    # The last fact of each kind before the day (not the older ones), then the day's; the six
    # heartbeats repeat the seat fact (flagged), the rating and tomorrow's event are not the day's.
    assert of("w02", "seat") == [(SUNDAY + timedelta(hours=8), False, None, False), (MONDAY - timedelta(minutes=40), True, "c02", False)]
    assert of("w02", "pause") == [(SUNDAY - timedelta(minutes=50), True, "取材料", False), (MONDAY + timedelta(minutes=1), False, None, False)]
    assert of("w02", "login") == [(SUNDAY + timedelta(hours=8, minutes=1), False, None, False), (MONDAY - timedelta(minutes=39), True, "c02", False)]
    assert of("w02", "camera") == [
        (SUNDAY - timedelta(hours=2), True, "online", False),
        (MONDAY + timedelta(hours=2), False, "offline", False),
        (MONDAY + timedelta(hours=2, minutes=5), True, "online", False),
    ]
    assert len(days["w02"]) == 9
    assert facts(days["w03"]) == facts([o for o in days["w02"] if o.kind == "camera"]), "one camera watches w01–w03"
    assert of("w04", "seat") == [
        (SUNDAY + timedelta(hours=8), False, None, False),
        (MONDAY - timedelta(minutes=30), True, "c04", True),
        (MONDAY - timedelta(minutes=29), True, None, False),  # the heartbeat that turns a replayed fact live is read
    ]
    assert [(o.kind, o.on) for o in days["w05"]] == [("camera", True)]


def test_bulk_plans_equal_window_by_window(stored: StoredHall) -> None:
    with Session(stored.engine) as session:
        plans = stored.supervisor.plans(session, WINDOWS, DAY)
        assert plans == {window_id: stored.supervisor.plan(session, window_id, DAY) for window_id in WINDOWS}
    assert [i.person for i in plans["w02"].leaves] == ["c02"] and [i.person for i in plans["w02"].substitutes] == ["c13"]
    assert plans["w04"].leaves == (), "Sunday's leave is not Monday's"
    assert plans["w01"].roster == frozenset({"c01", "c13"}) and plans["w01"].on_lunch_duty


@pytest.mark.parametrize("chunk", [5, 500])
def test_replay_evaluates_every_window_as_one_by_one(stored: StoredHall, chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor_module, "_CHUNK", chunk)
    supervisor = stored.supervisor
    with Session(stored.engine) as session:
        bulk = list(supervisor.evaluate_days(session, WINDOWS, DAY, UNTIL))
        one_by_one = [
            evaluate_window(supervisor.plan(session, w, DAY), supervisor.load_day(session, w, DAY), supervisor.policy, supervisor.calendar, DAY, UNTIL, HALL_TZ)
            for w in WINDOWS
        ]
    assert bulk == one_by_one
    assert [d.window for d in bulk] == WINDOWS
    assert any(d.alerts for d in bulk), "the stored day raises something (the comparison is not empty)"


def test_each_window_gets_the_camera_camera_of_names() -> None:
    two_cameras = HallConfig.model_validate(
        {
            "hall": {"id": "h", "name": "h"},
            "windows": [{"id": w, "name": w, "department": "d"} for w in ("a", "b", "c")],
            "devices": [
                {"id": "ev-a", "kind": "evaluator", "windows": ["a"]},
                {"id": "cam-1", "kind": "window_camera", "windows": ["b", "a"]},
                {"id": "cam-2", "kind": "window_camera", "windows": ["a", "c"]},
            ],
        }
    )
    for hall in (HALL, two_cameras):
        assert window_cameras(hall) == {w.id: hall.camera_of(w.id) for w in hall.windows}
    assert window_cameras(two_cameras) == {"a": "cam-1", "b": "cam-1", "c": "cam-2"}
