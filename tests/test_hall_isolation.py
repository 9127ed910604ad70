"""Two halls on one database: nothing of one hall shows in the other's alerts, attendance, leave,
make-up requests, events or rejections (a district is served from one database)."""

from __future__ import annotations

from datetime import datetime

import pytest
from procs import ROOT
from sqlalchemy.orm import Session

from broker.protocol import PunchBody, device_topic, encode, make_event
from broker.timeutil import HALL_TZ
from server.attendance.leave import LeaveEntry, LeaveRegister
from server.attendance.service import AttendanceService
from server.attendance.today import TodayAttendance
from server.config.calendar import national_calendar
from server.config.district import load_district
from server.config.policy import load_policy
from server.db import AlertRow, make_engine, migrate
from server.ingest.batch import Inbound
from server.ingest.store import Store
from server.ingest.validation import check_message
from server.supervision.service import Supervisor

DISTRICT = load_district(ROOT / "config/districts/demo.toml")
DEMO, TOWN = DISTRICT.hall("demo"), DISTRICT.hall("dyz")
CALENDAR = national_calendar([2026])
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=HALL_TZ)


def at(hh: int, mm: int) -> datetime:
    return datetime(2026, 3, 2, hh, mm, tzinfo=HALL_TZ)


@pytest.fixture
def district(db_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    migrate(engine)
    store = Store(engine)
    for hall in DISTRICT.halls:
        store.seed(hall)
    seq = iter(range(1, 10_000))

    def punch(hall_id: str, terminal: str, person: str, when: datetime) -> None:
        event = make_event(hall_id=hall_id, device_id=terminal, boot=1, seq=next(seq), event_time=when, body=PunchBody(person_id=person, method="face"))
        topic, payload = device_topic(hall_id, terminal, "evt", "punch"), encode(event)
        store.ingest([Inbound(topic, payload, when, check_message(topic, payload, store.registry()))])

    yield engine, store, punch
    engine.dispose()


def _services(engine, hall):  # type: ignore[no-untyped-def]
    policy = load_policy(hall.policy.preset)
    return AttendanceService(engine, hall, policy, CALENDAR, lambda: NOON), Supervisor(engine, hall, policy, CALENDAR, lambda: NOON)


def test_one_halls_punches_leave_and_make_ups_never_reach_another_halls_attendance(district) -> None:  # type: ignore[no-untyped-def]
    engine, _, punch = district
    demo, _ = _services(engine, DEMO)
    town, _ = _services(engine, TOWN)
    punch("demo", "ft-01", "c01", at(8, 10))
    punch("dyz", "dy-ft-01", "dy-c01", at(8, 5))
    punch("dyz", "dy-ft-01", "visitor-7", at(8, 6))  # on no roster: listed where they punched, nowhere else
    LeaveRegister(engine, TOWN).add([LeaveEntry(kind="leave", person_id="dy-c02", window_id="dy-w02", start=at(0, 0), end=at(23, 59))])
    town.file("dy-c03", at(8, 0), "指纹签不上")

    demo_people = {person for person, _ in demo.people(Session(engine), []).items()}
    assert not any(p.startswith("dy-") for p in demo_people)
    demo_month = {name: result for name, _, result in demo.month(2026, 3)}
    assert "visitor-7" not in demo_month and "dy-c01" not in demo_month
    town_month = {result.person: result for _, _, result in town.month(2026, 3)}
    assert {"dy-c01", "visitor-7"} <= set(town_month) and "c01" not in town_month
    assert LeaveRegister(engine, DEMO).between(at(0, 0), at(23, 59)) == []
    assert [r.person_id for r in town.requests(None, None)] == ["dy-c03"] and demo.requests(None, None) == []
    assert demo.decide(town.requests(None, None)[0].id, True, "督查科", "") is None, "one hall cannot decide another's request"
    day, demo_today = TodayAttendance(demo).people()
    assert {p.person for p in demo_today if p.progress.arrived} == {"c01"}
    _, town_today = TodayAttendance(town).people()
    assert {p.person for p in town_today if p.progress.arrived} == {"dy-c01", "visitor-7"}


def test_one_halls_alerts_are_neither_listed_nor_acknowledged_by_another_hall(district) -> None:  # type: ignore[no-untyped-def]
    engine, _, _ = district
    _, demo = _services(engine, DEMO)
    _, town = _services(engine, TOWN)
    with Session(engine) as session, session.begin():
        for hall_id, window in (("demo", "w01"), ("dyz", "dy-w01")):
            session.add(AlertRow(hall_id=hall_id, window_id=window, type="vacant", severity="high", condition_since=at(9, 0), raised_at=at(9, 5), live=True, threshold_s=300, source="003", facts={}))
    assert [a["window_id"] for a in demo.alerts(active_only=True, limit=50)] == ["w01"]
    town_alert = town.alerts(active_only=True, limit=50)
    assert [a["window_id"] for a in town_alert] == ["dy-w01"]
    assert demo.acknowledge(town_alert[0]["id"], "demo-office") is None
    assert town.acknowledge(town_alert[0]["id"], "town-office") is not None
