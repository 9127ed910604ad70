"""The supervisor adapter on SQLite and PostgreSQL: events in, alerts kept, acknowledged, cleared, replayed."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from procs import ROOT

from broker.protocol import DeviceStatus, PauseBody, SeatBody, SeatHeartbeatBody, device_topic, encode, make_event
from broker.timeutil import HALL_TZ
from server.config.calendar import national_calendar
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import EventRow, make_engine, migrate
from server.config.hall import load_hall
from server.config.policy import load_policy
from server.ingest.batch import Inbound
from server.ingest.store import Store
from server.supervision.service import Supervisor
from server.ingest.validation import check_message

HALL = load_hall(ROOT / "config/halls/demo.toml")
MONDAY_0900 = datetime(2026, 3, 2, 9, 0, tzinfo=HALL_TZ)


class HallClock:
    """A hand-moved hall clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Hall:
    """Store + supervisor of the demo hall over a real database."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        migrate(self.engine)
        self.clock = HallClock(MONDAY_0900 - timedelta(hours=2))
        self.store = Store(self.engine, clock=self.clock)
        self.store.seed(HALL)
        self.policy = load_policy(HALL.policy.preset)
        self.supervisor = Supervisor(self.engine, HALL, self.policy, national_calendar([2026]), self.clock)
        self.seq = 0

    def event(self, device: str, body, at: datetime, historical: bool = False) -> tuple[str, bytes]:  # type: ignore[no-untyped-def]
        """A new event's topic and payload (next seq)."""
        self.seq += 1
        event = make_event(hall_id="demo", device_id=device, boot=1, seq=self.seq, event_time=at, body=body)
        event = event.model_copy(update={"historical": historical})
        return device_topic("demo", device, "evt", event.type), encode(event)

    def send(self, device: str, body, at: datetime, historical: bool = False) -> None:  # type: ignore[no-untyped-def]
        self.ingest([self.event(device, body, at, historical)])

    def birth(self, device: str, kind: str, state: str = "online") -> None:
        status = DeviceStatus(hall_id="demo", device_id=device, kind=kind, boot=1, state=state, time=self.clock(), heartbeat_s=10, software="t")  # type: ignore[arg-type]
        self._ingest(device_topic("demo", device, "status"), encode(status))

    def _ingest(self, topic: str, payload: bytes) -> None:
        self.ingest([(topic, payload)])

    def ingest(self, batch: list[tuple[str, bytes]]) -> None:
        """One writer batch, as the ingest thread commits it."""
        registry = self.store.registry()
        changes = self.store.ingest([Inbound(topic, payload, self.clock(), check_message(topic, payload, registry)) for topic, payload in batch])
        self.supervisor.observe(changes.events, list(changes.devices), changes.repeats)

    def seat_rows(self) -> list[tuple[str, str, bool, bool]]:
        """(type, state, historical, repeat) of w02's stored seat rows, in arrival order."""
        with Session(self.engine) as session:
            rows = session.scalars(select(EventRow).where(EventRow.window_id == "w02").order_by(EventRow.id)).all()
            return [(r.type, r.body["state"], r.historical, r.repeat) for r in rows]

    def tick(self, at: datetime):  # type: ignore[no-untyped-def]
        """Evaluate at ``at``; the alerts of w02 (cameras of other windows are never seen)."""
        self.clock.now = at
        alerts, windows = self.supervisor.tick(every_window=True)
        return [a for a in alerts if a["window_id"] == "w02"], windows

    def alerts(self, window: str = "w02") -> list[dict]:
        return [a for a in self.supervisor.alerts(active_only=False, limit=100) if a["window_id"] == window]


@pytest.fixture
def hall(db_url: str) -> Hall:
    return Hall(db_url)


def seat(state: str, who: str | None = "c02") -> SeatBody:
    return SeatBody(window_id="w02", state=state, confidence=0.9, occupant=who if state == "occupied" else None)  # type: ignore[arg-type]


def _morning(hall: Hall) -> None:
    hall.birth("cam-01", "window_camera")
    hall.send("cam-01", seat("occupied"), MONDAY_0900 - timedelta(minutes=30))
    hall.send("cam-01", seat("vacant"), MONDAY_0900)


def test_vacancy_is_raised_acknowledged_and_cleared(hall: Hall) -> None:
    _morning(hall)
    grace = hall.policy.thresholds.vacant_grace_s
    alerts, windows = hall.tick(MONDAY_0900 + timedelta(seconds=grace))
    assert alerts == [] and windows["w02"].state == "vacant"
    assert windows["w02"].state_since == MONDAY_0900

    alerts, _ = hall.tick(MONDAY_0900 + timedelta(seconds=grace + 1))
    [alert] = alerts
    assert (alert["type"], alert["name_zh"], alert["state"], alert["live"]) == ("vacant", "空岗", "active", True)
    assert alert["raised_at"] == (MONDAY_0900 + timedelta(seconds=grace)).isoformat()
    assert alert["rule"] == "thresholds.vacant_grace_s" and "003" in alert["source"]
    assert alert["facts"]["seat"] == "vacant"

    acked = hall.supervisor.acknowledge(alert["id"], "督查科 王")
    assert acked is not None and acked["state"] == "acknowledged" and acked["acknowledged_by"] == "督查科 王"

    back = MONDAY_0900 + timedelta(minutes=10)
    hall.send("cam-01", seat("occupied"), back)
    alerts, windows = hall.tick(back + timedelta(seconds=5))
    assert [(a["state"], a["cleared_at"]) for a in alerts] == [("cleared", back.isoformat())]
    assert windows["w02"].state == "staffed"
    assert hall.alerts()[0]["acknowledged_by"] == "督查科 王", "acknowledgement kept after clearing"


def test_one_active_alert_per_window_and_type(hall: Hall) -> None:
    _morning(hall)
    hall.tick(MONDAY_0900 + timedelta(minutes=5))
    hall.tick(MONDAY_0900 + timedelta(minutes=6))
    assert len(hall.alerts()) == 1
    hall.send("cam-01", seat("occupied"), MONDAY_0900 + timedelta(minutes=7))
    hall.send("cam-01", seat("vacant"), MONDAY_0900 + timedelta(minutes=20))
    hall.tick(MONDAY_0900 + timedelta(minutes=30))
    states = sorted(a["state"] for a in hall.alerts())
    assert states == ["active", "cleared"]


def test_a_late_event_withdraws_an_alert_it_disproves(hall: Hall) -> None:
    _morning(hall)
    [alert], _ = hall.tick(MONDAY_0900 + timedelta(minutes=5))
    # The camera's occupied event from 09:01 arrives late (out of order).
    hall.send("cam-01", seat("occupied"), MONDAY_0900 + timedelta(minutes=1))
    [withdrawn], _ = hall.tick(MONDAY_0900 + timedelta(minutes=6))
    assert withdrawn["id"] == alert["id"] and withdrawn["state"] == "cleared"
    assert "withdrawn" in withdrawn["facts"]


def test_replayed_vacancy_is_kept_but_not_live(hall: Hall) -> None:
    hall.birth("cam-01", "window_camera")
    hall.send("cam-01", seat("occupied"), MONDAY_0900 - timedelta(minutes=30), historical=True)
    hall.send("cam-01", seat("vacant"), MONDAY_0900, historical=True)
    [alert], _ = hall.tick(MONDAY_0900 + timedelta(minutes=5))
    assert alert["live"] is False


def test_pause_within_limit_raises_nothing(hall: Hall) -> None:
    hall.birth("cam-01", "window_camera")
    hall.send("cam-01", seat("occupied"), MONDAY_0900 - timedelta(minutes=30))
    hall.send("ev-02", PauseBody(window_id="w02", paused=True, source="evaluator", reason="取材料"), MONDAY_0900)
    hall.send("cam-01", seat("vacant"), MONDAY_0900 + timedelta(seconds=20))
    alerts, windows = hall.tick(MONDAY_0900 + timedelta(seconds=hall.policy.thresholds.pause_max_s))
    assert alerts == [] and windows["w02"].state == "paused"
    [overrun], _ = hall.tick(MONDAY_0900 + timedelta(seconds=hall.policy.thresholds.pause_max_s + 1))
    assert overrun["type"] == "pause_overrun" and overrun["facts"]["pause_reason"] == "取材料"


def test_offline_camera_makes_the_window_unknown_from_when_it_went(hall: Hall) -> None:
    _morning(hall)
    hall.tick(MONDAY_0900 + timedelta(seconds=30))
    went = MONDAY_0900 + timedelta(minutes=1)
    hall.clock.now = went
    hall.birth("cam-01", "window_camera", state="offline")
    alerts, windows = hall.tick(went + timedelta(minutes=10))
    assert windows["w02"].state == "unknown" and windows["w02"].state_since == went
    assert {a["type"] for a in alerts} == {"device_fault"}, "never 空岗 while the camera is away"


def test_replay_is_byte_identical_and_shows_a_changed_policy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/hw.db"
    hall = Hall(url)
    _morning(hall)
    hall.tick(MONDAY_0900 + timedelta(minutes=5))
    hall.send("cam-01", seat("occupied"), MONDAY_0900 + timedelta(minutes=8))
    hall.tick(MONDAY_0900 + timedelta(minutes=9))

    def replay(*extra: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "server.cli", "replay", "2026-03-02", "--db", url, *extra], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    first, second = replay(), replay()
    assert first == second, "the same day under the same policy gives the same bytes"
    report = json.loads(first)
    vacancy = ["w02", "vacant", (MONDAY_0900 + timedelta(seconds=hall.policy.thresholds.vacant_grace_s)).isoformat()]
    assert [a for a in report["alerts"] if a["window"] == "w02"][0]["type"] == "vacant"
    assert vacancy not in report["compared_with_raised"]["no_longer"]
    lenient = json.loads(replay("--set", "thresholds.vacant_grace_s=600"))
    assert vacancy in lenient["compared_with_raised"]["no_longer"], "an 8-minute absence is no 空岗 with a 10-minute grace"
    assert lenient["policy"] == report["policy"]


def test_scheduled_round_drafts_findings_from_the_alerts(hall: Hall) -> None:
    from server.patrol.service import AUTO_OFFICER, PatrolService

    patrols = PatrolService(hall.engine, HALL, hall.policy, national_calendar([2026]), hall.clock)
    _morning(hall)
    hall.tick(MONDAY_0900 + timedelta(minutes=10))
    first = hall.policy.patrols.rounds[0]
    hall.clock.now = datetime.combine(MONDAY_0900.date(), first.at, HALL_TZ) - timedelta(seconds=1)
    assert patrols.start_due_rounds() == [], "not before its time"
    hall.clock.now += timedelta(seconds=2)
    [opened] = patrols.start_due_rounds()
    assert patrols.start_due_rounds() == [], "once a day"
    drafts = [f for f in patrols.findings_of_round(opened.round.id) if f.window == "w02"]
    assert [(f.category, f.status) for f in drafts] == [("vacant", "draft")]
    assert (opened.round.officer, opened.round.name) == (AUTO_OFFICER, first.name)


def beat(state: str) -> SeatHeartbeatBody:
    return SeatHeartbeatBody(window_id="w02", state=state, confidence=0.9)  # type: ignore[arg-type]


def test_repeated_heartbeats_are_kept_flagged_and_not_read_back(hall: Hall) -> None:
    hall.birth("cam-01", "window_camera")
    t = MONDAY_0900
    hall.send("cam-01", seat("occupied"), t - timedelta(seconds=10), historical=True)
    hall.send("cam-01", beat("occupied"), t - timedelta(seconds=9), historical=True)
    hall.send("cam-01", beat("occupied"), t - timedelta(seconds=8))  # the fact turns live: needed
    hall.ingest([hall.event("cam-01", beat("occupied"), t + timedelta(seconds=s)) for s in range(5)])
    hall.send("cam-01", seat("vacant"), t + timedelta(seconds=5))
    hall.send("cam-01", beat("vacant"), t + timedelta(seconds=6))
    assert hall.seat_rows() == [
        ("seat", "occupied", True, False),
        ("seat_heartbeat", "occupied", True, True),
        ("seat_heartbeat", "occupied", False, False),
        *[("seat_heartbeat", "occupied", False, True)] * 5,
        ("seat", "vacant", False, False),
        ("seat_heartbeat", "vacant", False, True),
    ], "every heartbeat is stored (nothing lost); only the repeats are flagged"
    with Session(hall.engine) as session:
        loaded = hall.supervisor.load_day(session, "w02", MONDAY_0900.date())
    assert [(o.kind, o.on, o.historical) for o in sorted(loaded, key=lambda o: o.time) if o.kind == "seat"] == [
        ("seat", True, True), ("seat", True, False), ("seat", False, False)
    ]
    # The seated person survives the heartbeats (they name nobody).
    _, windows = hall.tick(t + timedelta(seconds=2))
    assert windows["w02"].state == "staffed"


def test_a_redelivered_event_does_not_hide_the_next_heartbeat(hall: Hall) -> None:
    """A redelivery in the same batch as a new heartbeat: the flag follows what was stored."""
    hall.birth("cam-01", "window_camera")
    occupied = hall.event("cam-01", seat("occupied"), MONDAY_0900)
    hall.ingest([occupied])
    hall.send("cam-01", seat("vacant"), MONDAY_0900 + timedelta(minutes=1))
    # The occupied event comes again (an unacknowledged delivery), then a heartbeat saying occupied:
    # against what is stored (vacant) the heartbeat is news, not a repeat.
    hall.ingest([occupied, hall.event("cam-01", beat("occupied"), MONDAY_0900 + timedelta(minutes=10))])
    assert hall.seat_rows()[-1] == ("seat_heartbeat", "occupied", False, False)
    assert len(hall.seat_rows()) == 3, "the redelivery was stored once"
    _, windows = hall.tick(MONDAY_0900 + timedelta(minutes=10, seconds=1))
    assert windows["w02"].state == "staffed"
    # ... and the other way: a redelivered heartbeat does not make the next real repeat look new.
    hall.ingest([hall.event("cam-01", beat("occupied"), MONDAY_0900 + timedelta(minutes=11))])
    assert hall.seat_rows()[-1][3] is True
