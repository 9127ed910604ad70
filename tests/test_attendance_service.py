"""Attendance from stored punches, over HTTP, on SQLite and PostgreSQL: today as it happens, a month's
statuses, the monthly sheet, and make-up punches (补卡) filed, refused with their rule, approved."""

from __future__ import annotations

from datetime import datetime
from io import BytesIO

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from procs import ROOT
from sqlalchemy.orm import Session

from broker.protocol import PunchBody, device_topic, encode, make_event
from broker.timeutil import HALL_TZ
from server.attendance.api import attendance_router
from server.users.authority import Authority
from server.users.accounts import UserStore
from users import sign_in
from server.attendance.service import AttendanceService
from server.attendance.today import TodayAttendance
from server.config.calendar import national_calendar
from server.db import LeaveRow, make_engine, migrate
from server.config.hall import load_hall
from server.config.policy import load_policy
from server.ingest.batch import Inbound
from server.ingest.store import Store
from server.ingest.validation import check_message
from server.rules.attendance import Punch

HALL = load_hall(ROOT / "config/halls/demo.toml")
POLICY = load_policy("qujiang-2023")  # two punches a day, no grace: 「早8:20时前、晚17:00时后」


def at(day: int, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2026, 3, day, hh, mm, ss, tzinfo=HALL_TZ)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def hall(db_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    migrate(engine)
    store = Store(engine)
    store.seed(HALL)
    clock = Clock(at(2, 18, 0))
    service = AttendanceService(engine, HALL, POLICY, national_calendar([2026]), clock)
    app = FastAPI()
    today = TodayAttendance(service)
    app.include_router(attendance_router(service, today, Authority(UserStore(engine), None)))
    seq = iter(range(1, 10_000))

    def punch(person: str, when: datetime, method: str = "face") -> None:
        event = make_event(hall_id="demo", device_id="ft-01", boot=1, seq=next(seq), event_time=when, body=PunchBody(person_id=person, method=method))  # type: ignore[arg-type]
        topic, payload = device_topic("demo", "ft-01", "evt", "punch"), encode(event)
        changes = store.ingest([Inbound(topic, payload, when, check_message(topic, payload, store.registry()))])
        today.follow(changes, False)  # as the ingest thread does after each committed batch

    with TestClient(app) as client:
        yield sign_in(client, engine, "office", "督查科王"), punch, engine, clock


def _person(month: list[dict], person: str) -> dict:
    return next(p for p in month if p["person_id"] == person)


def _halves(month: list[dict], person: str, day: str) -> list[tuple[str, int, int]]:
    days = _person(month, person)["days"]
    return [(h["status"], h["late_s"], h["early_s"]) for h in next(d for d in days if d["day"] == day)["halves"]]


def test_a_month_from_stored_punches_and_leave(hall) -> None:  # type: ignore[no-untyped-def]
    client, punch, engine, clock = hall
    punch("c01", at(2, 8, 15))
    punch("c01", at(2, 17, 5))
    punch("c02", at(2, 8, 20, 1))  # one second late
    punch("c02", at(2, 17, 0), method="pin")
    with Session(engine) as session, session.begin():
        session.add(LeaveRow(hall_id="demo", kind="leave", person_id="c04", window_id="w04", start=at(2, 0, 0), end=at(3, 0, 0), note="病假"))
    clock.now = at(3, 7, 0)  # 003 sets no punch window: a day's clock-out stays open until midnight
    month = client.get("/api/attendance/2026/3").json()
    assert {p["person_id"] for p in month} >= {"c01", "c02", "c03", "c04", "c05", "c13"}
    assert all(s == "normal" for s, _, _ in _halves(month, "c01", "2026-03-02"))
    assert _halves(month, "c02", "2026-03-02")[0] == ("late", 1, 0)
    assert {s for s, _, _ in _halves(month, "c03", "2026-03-02")} <= {"absent", "missing_punch"}, "no punch at all"
    assert {s for s, _, _ in _halves(month, "c04", "2026-03-02")} == {"on_leave"}
    assert _person(month, "c02")["summary"]["punches"]["pin"] == 1
    # Later days of the month have not happened yet (the clock is 3 March, 07:00).
    assert {s for s, _, _ in _halves(month, "c01", "2026-03-03")} == {"pending"}
    assert client.get("/api/attendance/2026/13").status_code == 422


def test_today_counts_arrivals_and_lateness_while_the_day_is_still_pending(hall) -> None:  # type: ignore[no-untyped-def]
    client, punch, engine, clock = hall
    clock.now = at(2, 9, 0)
    punch("c01", at(2, 8, 15))
    punch("c02", at(2, 8, 31))  # late (003: by 08:20)
    first = client.get("/api/attendance/today").json()
    assert first["day"] == "2026-03-02"
    assert first["summary"] == {"expected": first["summary"]["expected"], "arrived": 2, "late": 1, "absent": 0}, "003: a clock-in counts (late) until the day's end"
    assert first["summary"]["expected"] >= 6, "everyone on a roster is expected on a working Monday"
    c01 = next(p for p in first["people"] if p["person_id"] == "c01")
    assert c01["progress"]["arrived"] and {h["status"] for h in c01["day"]["halves"]} == {"pending"}, "the day is not judged before it ends"
    punch("c03", at(2, 8, 19))  # after the day was first read: comes in through the ingest follower
    punch("c03", at(2, 8, 19))  # the terminal re-sent it (a new msg_id): the same punch, still one arrival
    with Session(engine) as session, session.begin():
        session.add(LeaveRow(hall_id="demo", kind="leave", person_id="c04", window_id="w04", start=at(2, 0, 0), end=at(3, 0, 0), note="病假"))
    clock.now = at(2, 17, 30)  # the clock-in window has closed: who has not come is absent so far
    second = client.get("/api/attendance/today").json()["summary"]
    assert second == {"expected": first["summary"]["expected"] - 1, "arrived": 3, "late": 1, "absent": first["summary"]["expected"] - 4}
    clock.now = at(3, 8, 0)  # the next morning: a new day, nobody has arrived yet
    assert client.get("/api/attendance/today").json()["summary"]["arrived"] == 0


def test_today_counts_a_punch_once_when_its_batch_is_followed_after_the_day_was_read(db_url: str) -> None:
    """The ingest follower runs after the commit: a question in between has read the punch already."""
    engine = make_engine(db_url)
    migrate(engine)
    store = Store(engine)
    store.seed(HALL)
    service = AttendanceService(engine, HALL, load_policy("linfen"), national_calendar([2026]), Clock(at(2, 9, 0)))  # punch windows around each time
    today = TodayAttendance(service)
    event = make_event(hall_id="demo", device_id="ft-01", boot=1, seq=1, event_time=at(2, 3, 0), body=PunchBody(person_id="c01", method="face"))
    topic, payload = device_topic("demo", "ft-01", "evt", "punch"), encode(event)
    changes = store.ingest([Inbound(topic, payload, at(2, 3, 0), check_message(topic, payload, store.registry()))])
    today.people()  # reads the stored punch (03:00: outside every punch window, listed as ignored)
    today.follow(changes, False)
    _, people = today.people()
    assert [p.day.ignored for p in people if p.person == "c01"] == [(Punch(at(2, 3, 0), "face"),)]
    engine.dispose()


def test_the_monthly_sheet_downloads_as_xlsx(hall) -> None:  # type: ignore[no-untyped-def]
    client, punch, _, _ = hall
    punch("c02", at(2, 8, 25))
    punch("c02", at(2, 17, 1))
    reply = client.get("/api/attendance/2026/3/sheet.xlsx")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(BytesIO(reply.content)).active
    cells = [str(c.value) for row in sheet.iter_rows() for c in row if c.value is not None]
    assert any(HALL.hall.name in c for c in cells) and any("2026" in c for c in cells)
    assert "迟" in cells or any(c.startswith("迟") for c in cells), "c02's late morning is marked"


def test_make_up_punch_filed_refused_with_its_rule_and_approved(hall) -> None:  # type: ignore[no-untyped-def]
    client, punch, _, clock = hall
    punch("c05", at(2, 8, 10))  # clocked in, the clock-out was not recognised
    clock.now = at(5, 10, 0)  # Thursday: within 3 working days of Monday
    filed = client.post("/api/attendance/makeups", json={"person_id": "c05", "claimed_at": at(2, 17, 2).isoformat(), "reason": "人脸识别失败"})
    assert filed.status_code == 201, filed.text
    request = filed.json()
    assert request["state"] == "requested" and request["deadline"] == "2026-03-05"
    approved = client.post(f"/api/attendance/makeups/{request['id']}/approve", json={}).json()
    assert approved["state"] == "approved" and approved["decided_by"] == "督查科王", "the decider is the logged-in user"
    assert client.post(f"/api/attendance/makeups/{request['id']}/reject", json={"note": "n"}).status_code == 409
    month = client.get("/api/attendance/2026/3").json()
    assert all(s == "normal" for s, _, _ in _halves(month, "c05", "2026-03-02"))
    assert _person(month, "c05")["summary"]["punches"]["makeup"] == 1

    clock.now = at(6, 9, 0)  # Friday: one working day too late for Monday's punch
    late = client.post("/api/attendance/makeups", json={"person_id": "c03", "claimed_at": at(2, 8, 15).isoformat(), "reason": "忘记打卡"})
    assert late.status_code == 422
    detail = late.json()["detail"]
    assert detail["rule"] == "attendance.makeup_file_working_days" and "after the deadline 2026-03-05" in detail["reason"]
    assert [r["person_id"] for r in client.get("/api/attendance/makeups", params={"state": "approved"}).json()] == ["c05"]
    assert client.post("/api/attendance/makeups/999/approve", json={}).status_code == 404
    naive = client.post("/api/attendance/makeups", json={"person_id": "c03", "claimed_at": "2026-03-05T08:15:00", "reason": "x"})
    assert naive.status_code == 422, "a time without its zone is refused"


def test_the_sheet_from_the_command_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from server.cli import app

    out = tmp_path / "march.xlsx"
    result = CliRunner().invoke(app, ["attendance", "sheet", "2026-03", "--out", str(out), "--db", f"sqlite:///{tmp_path / 'hw.db'}"])
    assert result.exit_code == 0, result.output
    assert load_workbook(out).active.max_row > 12, "one row per clerk of the demo hall"
    bad = CliRunner().invoke(app, ["attendance", "sheet", "March", "--out", str(out)])
    assert bad.exit_code == 2 and "'March' is not YYYY-MM" in bad.output
