"""Ratings, work orders and their alerts over a real database (SQLite and PostgreSQL).

Events go through the store as the ingest writer commits them, then to the
ratings service as the writer's follower; the API is the router the server
includes; alerts are read back through the supervisor's alert feed, where
the hall office sees them.
"""

from __future__ import annotations

import io
from datetime import date, datetime, time, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from test_supervisor import HALL, Hall

from broker.protocol import DeviceStatus, RatingBody, SeatBody, TicketBody, device_topic, encode, make_event
from broker.timeutil import HALL_TZ
from server.config.hall import HallConfig
from server.users.authority import Authority
from server.users.accounts import UserStore
from users import session_headers, sign_in
from server.db import AlertRow, Base, RatingKeyRow, RatingRow, TicketRow, WorkOrderRow
from server.ratings.api import ratings_router
from server.ratings.service import NotFound, RatingsService
from server.ratings.signals import SIGNAL_TYPES
from server.ratings.sheet import ORDERS_SHEET_COLUMNS, stats_columns
from server.ingest.batch import Changes, Inbound
from server.ingest.validation import check_message
from server.supervision.service import Supervisor

TUESDAY = date(2026, 3, 3)
SEP30 = date(2026, 9, 30)
EAST = HALL.model_copy(
    update={
        "hall": HALL.hall.model_copy(update={"id": "east", "name": "东区政务服务大厅"}),
        "windows": [w.model_copy(update={"id": "e" + w.id[1:]}) for w in HALL.windows],
        "devices": [d.model_copy(update={"id": "e" + d.id, "windows": ["e" + w[1:] for w in d.windows]}) for d in HALL.devices],
    }
)
"""A second hall of the district, the demo hall's model: window and device ids of its own (unique across the
district), queue tickets numbered as in every hall (A001...)."""


def at(day: date, hh: int = 10, mm: int = 0, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), HALL_TZ)


class RatedHall(Hall):
    """The demo hall's store, supervisor and ratings service over one database, on a hand-moved clock."""

    config: HallConfig = HALL

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.start_ratings()

    def start_ratings(self) -> None:
        """(Re)start the ratings service, as a server start does."""
        self.ratings = RatingsService(self.engine, self.config, self.policy, self.supervisor.calendar, self.clock, self.supervisor.load_days)
        self.pushed: list[dict] = []

    def event(self, device: str, body, at: datetime, historical: bool = False) -> tuple[str, bytes]:  # type: ignore[no-untyped-def]
        """A new event of this hall's device: its topic and payload (next seq)."""
        self.seq += 1
        hall_id = self.config.hall.id
        event = make_event(hall_id=hall_id, device_id=device, boot=1, seq=self.seq, event_time=at, body=body).model_copy(update={"historical": historical})
        return device_topic(hall_id, device, "evt", event.type), encode(event)

    def birth(self, device: str, kind: str, state: str = "online") -> None:
        hall_id = self.config.hall.id
        status = DeviceStatus(hall_id=hall_id, device_id=device, kind=kind, boot=1, state=state, time=self.clock(), heartbeat_s=10, software="t")  # type: ignore[arg-type]
        self.ingest([(device_topic(hall_id, device, "status"), encode(status))])

    def device(self, kind: str, window: str) -> str:
        """The hall's device of ``kind`` serving ``window`` (its evaluator, its queue gateway)."""
        return next(d.id for d in self.config.devices if d.kind == kind and window in d.windows)

    def empty(self) -> None:
        """Forget every event, rating and alert, and start the service again (a new hall on the same database)."""
        with Session(self.engine) as session, session.begin():
            for table in ("work_order_steps", "work_orders", "rating_keys", "ratings", "tickets", "alerts", "events"):
                session.execute(Base.metadata.tables[table].delete())
        self.start_ratings()

    def ingest(self, batch: list[tuple[str, bytes]]) -> None:
        registry = self.store.registry()
        changes = self.store.ingest([Inbound(topic, payload, self.clock(), check_message(topic, payload, registry)) for topic, payload in batch])
        self.supervisor.observe(changes.events, list(changes.devices), changes.repeats)
        self.ratings.follow(changes, False)
        self.pushed += changes.alerts

    def rate(self, when: datetime, level: int, ticket: str | None = "B0001", window: str = "w02", clerk: str | None = "c02", cases: list[str] | None = None, historical: bool = False) -> None:
        self.clock.now = max(self.clock.now, when)
        self.send(self.device("evaluator", window), RatingBody(window_id=window, level=level, clerk_id=clerk, ticket=ticket, cases=cases or []), when, historical)

    def ticket(self, when: datetime, ticket: str, state: str, window: str = "w02", cases: list[str] | None = None) -> None:
        self.clock.now = max(self.clock.now, when)
        self.send(self.device("queue_gateway", window), TicketBody(window_id=window, ticket=ticket, state=state, clerk_id="c02", cases=cases or []), when)  # type: ignore[arg-type]

    def sweep(self, when: datetime) -> list[dict]:
        """One ingest sweep at ``when``: the alert changes it pushes."""
        self.clock.now = when
        changes = Changes()
        self.ratings.follow(changes, True)
        self.pushed += changes.alerts
        return changes.alerts

    def feed(self, type_: str) -> list[dict]:
        """The hall's alert feed (GET /api/alerts), alerts of one type."""
        return [a for a in self.supervisor.alerts(active_only=False, limit=100) if a["type"] == type_]


class EastHall(RatedHall):
    """The second hall (:data:`EAST`) on the demo hall's database and clock: its own supervisor, ratings service and ingest writer."""

    config = EAST

    def __init__(self, demo: RatedHall) -> None:
        self.engine, self.clock, self.store, self.policy = demo.engine, demo.clock, demo.store, demo.policy
        self.store.seed(EAST)
        self.supervisor = Supervisor(self.engine, EAST, self.policy, demo.supervisor.calendar, self.clock)
        self.seq = 0  # its devices are its own: their (device, boot, seq) never meet the demo hall's
        self.start_ratings()


@pytest.fixture
def hall(db_url: str) -> RatedHall:
    hall = RatedHall(db_url)
    yield hall
    hall.engine.dispose()


@pytest.fixture
def api(hall: RatedHall) -> TestClient:
    app = FastAPI()
    app.include_router(ratings_router(hall.ratings, Authority(UserStore(hall.engine), None)))
    with TestClient(app) as client:
        yield sign_in(client, hall.engine, "viewer")  # reading; each step is taken as its actor (``as_``)


ROLE_OF = {"督查科李": "office", "市场监管局王": "lead", "王": "lead", "人社局张": "lead"}
DEPARTMENT_OF = {"人社局张": "人社局"}
"""The window leads of 市场监管局 (the rated window w02's, the default) and of another department."""


@pytest.fixture
def as_(hall: RatedHall):  # type: ignore[no-untyped-def]
    """The session headers of a user named ``name``: the actor a step records is the logged-in user."""
    return lambda name: session_headers(hall.engine, ROLE_OF[name], name, DEPARTMENT_OF.get(name))


def test_the_migration_creates_exactly_the_models_tables(hall: RatedHall) -> None:
    with hall.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    ours = [d for d in diffs if any(t in repr(d) for t in ("ratings", "rating_keys", "tickets", "work_order"))]
    assert ours == []


def test_a_second_rating_for_the_same_ticket_is_stored_once_and_reported(hall: RatedHall, api: TestClient) -> None:
    hall.ticket(at(TUESDAY, 9, 50), "B0001", "called")
    hall.ticket(at(TUESDAY, 9, 58), "B0001", "finished")
    hall.rate(at(TUESDAY, 10), 5)
    topic, payload = hall.event("ev-02", RatingBody(window_id="w02", level=5, clerk_id="c02", ticket="B0001"), at(TUESDAY, 10, 1))
    hall.ingest([(topic, payload)])
    hall.ingest([(topic, payload)])  # the broker delivers the same message again: the store drops it
    hall.rate(at(TUESDAY, 10, 2), 1)  # a second press for the same ticket

    with Session(hall.engine) as session:
        assert session.scalar(select(func.count()).select_from(RatingRow)) == 3
        assert session.scalar(select(func.count()).select_from(WorkOrderRow)) == 0, "a duplicate 差评 opens no work order"
    params = {"from": "2026-03-03", "to": "2026-03-03"}
    duplicates = api.get("/api/ratings", params=params | {"counted": "false"}).json()
    counted = api.get("/api/ratings", params=params | {"counted": "true"}).json()
    assert [(r["level"], r["ticket"], r["counted"]) for r in counted] == [(5, "B0001", True)]
    assert [r["level"] for r in duplicates] == [1, 5] and all(d["duplicate_of"] == counted[0]["id"] for d in duplicates)
    [row] = api.get("/api/ratings/stats", params=params | {"by": "window", "period": "day"}).json()["rows"]
    assert (row["key"], row["rated"], row["duplicates"], row["satisfaction_rate"], row["bad"]) == ("w02", 1, 2, 1.0, 0)


def test_an_earlier_rating_arriving_late_takes_over_and_the_work_order_follows(hall: RatedHall) -> None:
    hall.ticket(at(TUESDAY, 9, 50), "B0001", "called")
    hall.rate(at(TUESDAY, 10, 5), 1)  # counted for now: a work order opens
    [order] = hall.ratings.orders(None, None, False, 10)
    assert order[0].status == "assigned"
    hall.rate(at(TUESDAY, 10, 0), 5, historical=True)  # the evaluator's outbox delivers an earlier rating late
    [(withdrawn, rating)] = hall.ratings.orders(None, None, False, 10)
    assert (withdrawn.status, rating.level) == ("withdrawn", 1)
    assert withdrawn.history[-1].note.startswith("同一事项已有更早的评价")

    hall.rate(at(TUESDAY, 11, 0), 2, ticket="B0002")
    hall.rate(at(TUESDAY, 10, 59), 1, ticket="B0002", historical=True)  # earlier and also bad: the order moves to it
    moved = [o for o, r in hall.ratings.orders(None, None, False, 10) if r.ticket == "B0002"]
    assert [(o.status, o.level) for o in moved] == [("assigned", 1)]


def test_bad_rating_work_order_through_the_api(hall: RatedHall, api: TestClient, as_) -> None:
    hall.ticket(at(SEP30, 15, 50), "B0001", "called")
    hall.rate(at(SEP30, 16), 2, cases=["330802-2026-000481", "330802-2026-000482"])
    [order] = api.get("/api/work-orders").json()
    assert (order["status"], order["status_zh"], order["level_zh"]) == ("assigned", "待回访", "不满意")
    assert order["cases"] == ["330802-2026-000481", "330802-2026-000482"]
    # 10 working days after 30 Sep 2026 across the National Day break (Saturday 10 Oct worked): 20 Oct.
    assert (order["callback_due"], order["rectify_due"]) == ("2026-10-20", "2026-10-20")
    assert [a["name"] for a in order["actions"]] == ["call_back", "appeal"]

    hall.clock.now = at(date(2026, 10, 8), 9)
    url = f"/api/work-orders/{order['id']}"
    refused = api.post(f"{url}/close", json={"note": "办结"}, headers=as_("督查科李"))
    assert refused.status_code == 409 and "cannot close" in refused.json()["detail"]
    assert api.post(f"{url}/call_back", json={"note": ""}, headers=as_("市场监管局王")).status_code == 422
    assert api.post(f"{url}/archive", json={"note": "x"}, headers=as_("王")).status_code == 422
    assert api.post("/api/work-orders/999/call_back", json={"note": "x"}, headers=as_("王")).status_code == 404
    foreign = api.post(f"{url}/call_back", json={"note": "x"}, headers=as_("人社局张"))
    assert foreign.status_code == 403 and "window w02) belongs to 市场监管局" in foreign.json()["detail"], "another department's lead"
    called = api.post(f"{url}/call_back", json={"note": "已电话回访：等候时间较长"}, headers=as_("市场监管局王")).json()
    assert called["status"] == "called_back" and called["called_back_at"] == "2026-10-08T09:00:00+08:00"
    hall.clock.now = at(date(2026, 10, 9), 9)
    api.post(f"{url}/rectify", json={"note": "已约谈，高峰期增开窗口"}, headers=as_("市场监管局王"))
    closed = api.post(f"{url}/close", json={"note": "已反馈群众"}, headers=as_("督查科李")).json()
    assert closed["status"] == "closed" and closed["timeliness"] == "on_time" and closed["actions"] == []
    assert [(s["status"], s["actor"]) for s in closed["history"]] == [
        ("assigned", "hallwatch"), ("called_back", "市场监管局王"), ("rectified", "市场监管局王"), ("closed", "督查科李")
    ]  # fmt: skip
    assert api.get(url).json() == closed


def test_an_overdue_work_order_raises_an_alert_cleared_when_it_is_closed(hall: RatedHall, api: TestClient, as_) -> None:
    hall.ticket(at(SEP30, 15, 50), "B0001", "called")
    hall.rate(at(SEP30, 16), 1)
    due = datetime.combine(date(2026, 10, 21), time.min, HALL_TZ)  # 20 Oct is the last day
    assert hall.sweep(due - timedelta(seconds=1)) == [] and hall.feed("work_order_overdue") == []
    [raised] = [a for a in hall.sweep(due + timedelta(seconds=61)) if a["type"] == "work_order_overdue"]
    assert (raised["state"], raised["raised_at"], raised["window_id"], raised["name_zh"]) == ("active", due.isoformat(), "w02", "差评工单超期未办")
    assert raised["rule"] == "deadlines.callback_working_days" and raised["source"].startswith("003")
    [shown] = hall.feed("work_order_overdue")
    assert shown["id"] == raised["id"], "the overdue alert is in the hall's alert feed"
    assert hall.supervisor.acknowledge(raised["id"], "督查科 李")["state"] == "acknowledged"
    assert [o["id"] for o in api.get("/api/work-orders", params={"overdue": "true"}).json()] == [1]

    order = api.get("/api/work-orders").json()[0]
    hall.clock.now = due + timedelta(hours=9)
    api.post(f"/api/work-orders/{order['id']}/call_back", json={"note": "回访"}, headers=as_("王"))
    api.post(f"/api/work-orders/{order['id']}/close", json={"note": "已办结"}, headers=as_("督查科李"))
    [cleared] = hall.sweep(due + timedelta(hours=9, seconds=5))
    assert (cleared["state"], cleared["cleared_at"], cleared["acknowledged_by"]) == ("cleared", (due + timedelta(hours=9)).isoformat(), "督查科 李")
    assert hall.sweep(due + timedelta(hours=12)) == [], "nothing raised again"
    stats = api.get("/api/ratings/stats", params={"from": "2026-09-01", "to": "2026-09-30"}).json()["rows"][0]
    assert (stats["work_orders"], stats["handled"], stats["late"], stats["on_time_rate"], stats["rectification_rate"]) == (1, 1, 1, 0.0, 1.0)


def test_a_finished_ticket_left_unrated_gets_the_default_rating_kept_apart(hall: RatedHall, api: TestClient) -> None:
    hall.ticket(at(TUESDAY, 9, 50), "B0007", "called")
    hall.ticket(at(TUESDAY, 10, 10), "B0007", "finished", cases=["C-1"])
    hall.rate(at(TUESDAY, 11), 4, ticket="B0008")
    days = hall.policy.ratings.default_after_days
    hall.sweep(at(TUESDAY, 10, 10) + timedelta(days=days) - timedelta(minutes=2))
    assert api.get("/api/ratings", params={"from": "2026-03-03", "to": "2026-03-03", "origin": "default"}).json() == []
    hall.sweep(at(TUESDAY, 10, 10) + timedelta(days=days, seconds=1))
    [default] = api.get("/api/ratings", params={"from": "2026-03-03", "to": "2026-03-03", "origin": "default"}).json()
    assert (default["level"], default["origin_zh"], default["rated_at"], default["ticket"], default["counted"]) == (4, "系统默认", "2026-03-03T10:10:00+08:00", "B0007", True)
    [row] = api.get("/api/ratings/stats", params={"from": "2026-03-03", "to": "2026-03-03"}).json()["rows"]
    assert (row["rated"], row["defaults"], row["satisfaction_rate"]) == (1, 1, 1.0)

    hall.rate(at(TUESDAY, 10, 12), 3, ticket=None, cases=["C-1"], historical=True)  # the real rating, found late
    [row] = api.get("/api/ratings/stats", params={"from": "2026-03-03", "to": "2026-03-03"}).json()["rows"]
    assert (row["rated"], row["defaults"], row["satisfaction_rate"]) == (2, 0, 0.5), "a real rating always beats the default"


def test_fraud_signals_show_with_the_alerts_and_in_the_statistics(hall: RatedHall, api: TestClient) -> None:
    hall.clock.now = at(TUESDAY, 7, 50)
    hall.birth("cam-01", "window_camera")
    hall.birth("qg-01", "queue_gateway")
    hall.send("cam-01", SeatBody(window_id="w02", state="occupied", confidence=0.9, occupant="c02"), at(TUESDAY, 8, 30))
    hall.ticket(at(TUESDAY, 9, 0), "B0001", "called")
    hall.rate(at(TUESDAY, 9, 10), 5)  # a served citizen: no signal
    hall.send("cam-01", SeatBody(window_id="w02", state="vacant", confidence=0.9), at(TUESDAY, 10))
    hall.rate(at(TUESDAY, 10, 5), 5, ticket=None)  # nobody in the seat, no ticket: the clerk pressed it
    pushed = {a["type"]: a for a in hall.pushed}
    assert set(pushed) >= {"rating_seat_vacant", "rating_no_ticket"}
    vacant = pushed["rating_seat_vacant"]
    assert (vacant["name_zh"], vacant["state"], vacant["live"], vacant["raised_at"]) == ("评价时窗口无人在岗", "active", True, at(TUESDAY, 10, 5).isoformat())
    assert vacant["facts"]["times"] == "10:05:00" and vacant["rule"] == "ratings.seat_vacant_grace_s"
    assert [a["id"] for a in hall.feed("rating_no_ticket")] == [pushed["rating_no_ticket"]["id"]]
    hall.supervisor.tick(every_window=True)  # the supervision core reconciles only its own alert types
    assert hall.feed("rating_seat_vacant")[0]["state"] == "active"

    hall.rate(at(TUESDAY, 10, 6), 5, ticket="B0099")  # a ticket the queue system never called
    assert "B0099" not in hall.feed("rating_no_ticket")[0]["facts"]["tickets"], "not before the wait"
    hall.sweep(at(TUESDAY, 10, 6) + timedelta(seconds=hall.policy.ratings.ticket_wait_s + 60))
    assert hall.feed("rating_no_ticket")[0]["facts"]["tickets"] == "（无）, B0099"

    suspect = api.get("/api/ratings", params={"from": "2026-03-03", "to": "2026-03-03", "signal": "seat_vacant"}).json()
    assert [(r["rated_at"], [s["name"] for s in r["signals"]]) for r in suspect] == [
        (at(TUESDAY, 10, 6).isoformat(), ["no_ticket", "seat_vacant"]),
        (at(TUESDAY, 10, 5).isoformat(), ["no_ticket", "seat_vacant"]),
    ]
    [row] = api.get("/api/ratings/stats", params={"from": "2026-03-03", "to": "2026-03-03", "by": "clerk"}).json()["rows"]
    assert (row["key"], row["rated"], row["suspect"], row["signals"]["seat_vacant"], row["signals"]["no_ticket"]) == ("c02", 3, 2, 2, 2)

    midnight = datetime.combine(TUESDAY + timedelta(days=1), time.min, HALL_TZ)
    cleared = hall.sweep(midnight + timedelta(minutes=5))
    assert {(a["type"], a["cleared_at"]) for a in cleared} == {("rating_seat_vacant", midnight.isoformat()), ("rating_no_ticket", midnight.isoformat())}


def test_a_late_ticket_withdraws_its_no_ticket_alert(hall: RatedHall) -> None:
    hall.clock.now = at(TUESDAY, 7, 50)
    hall.birth("qg-01", "queue_gateway")
    hall.rate(at(TUESDAY, 10), 5, ticket="B0042")
    hall.sweep(at(TUESDAY, 10, 10))
    [raised] = hall.feed("rating_no_ticket")
    assert raised["state"] == "active"
    hall.ticket(at(TUESDAY, 9, 55), "B0042", "called")  # the queue gateway's outbox catches up
    [withdrawn] = hall.feed("rating_no_ticket")
    assert withdrawn["cleared_at"] == withdrawn["raised_at"] and "withdrawn" in withdrawn["facts"]


def test_a_follow_that_fails_midway_loses_no_alert_and_counts_no_rating_twice(hall: RatedHall, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database refuses the transaction that writes an alert: the next sweep writes it, from what is stored."""
    import server.ratings.signals as held

    hall.clock.now = at(TUESDAY, 7, 50)
    hall.birth("cam-01", "window_camera")
    hall.send("cam-01", SeatBody(window_id="w02", state="vacant", confidence=0.9), at(TUESDAY, 9))
    reconcile = held.reconcile_alerts
    calls = []

    def refused_once(*args: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("disk I/O error")
        return reconcile(*args)

    monkeypatch.setattr(held, "reconcile_alerts", refused_once)
    with pytest.raises(RuntimeError):
        hall.rate(at(TUESDAY, 10, 5), 5, ticket=None)
    assert hall.feed("rating_seat_vacant") == []
    hall.sweep(at(TUESDAY, 10, 6))
    [alert] = hall.feed("rating_seat_vacant")
    assert (alert["state"], alert["raised_at"], alert["facts"]["count"]) == ("active", at(TUESDAY, 10, 5).isoformat(), "1")
    with Session(hall.engine) as session:
        assert session.scalars(select(RatingRow.signals)).all() == [["seat_vacant"]]


def test_the_statistics_sheet_opens_and_has_the_rows(hall: RatedHall, api: TestClient) -> None:
    for minute, (window, level) in enumerate([("w01", 5), ("w01", 4), ("w02", 1), ("w03", 5)]):
        hall.rate(at(TUESDAY, 10, minute), level, ticket=f"T{minute}", window=window, clerk=f"c0{window[-1]}")
    response = api.get("/api/ratings/stats.xlsx", params={"by": "window", "period": "month", "from": "2026-03-01", "to": "2026-03-31"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(response.content))
    stats, orders = book["好差评统计"], book["差评工单"]
    assert stats["A1"].value == "示范政务服务大厅政务服务“好差评”统计表"
    assert [c.value for c in stats[3]] == list(stats_columns("window"))
    table = [[c.value for c in row] for row in stats.iter_rows(min_row=4, max_row=7)]
    assert [r[:5] for r in table[:3]] == [
        [1, "2026-03", "1号窗口", "市场监管局", 2],
        [2, "2026-03", "3号窗口", "人社局", 1],
        [3, "2026-03", "2号窗口", "市场监管局", 1],
    ]
    assert (table[3][0], table[3][1], table[3][4]) == ("合计", "2026-03-01—2026-03-31", 4)
    header = list(stats_columns("window"))
    assert table[0][header.index("满意率")] == 1.0 and stats.cell(row=4, column=header.index("满意率") + 1).number_format == "0.0%"
    assert table[2][header.index("差评率")] == 1.0 and table[2][header.index("排名")] == 3
    assert [c.value for c in orders[3]] == list(ORDERS_SHEET_COLUMNS)
    [order_row] = [[c.value for c in row] for row in orders.iter_rows(min_row=4, max_row=4)]
    assert order_row[3:7] == ["2号窗口", "市场监管局", "c02", "非常不满意（★1）"] and order_row[13] == "待回访"


def test_stats_and_list_validation(api: TestClient) -> None:
    bad_range = api.get("/api/ratings/stats", params={"from": "2026-03-10", "to": "2026-03-01"})
    assert bad_range.status_code == 422 and "before from" in bad_range.text
    too_long = api.get("/api/ratings/stats", params={"from": "2025-01-01", "to": "2026-03-01"})
    assert too_long.status_code == 422 and "at most 366 days" in too_long.text
    assert api.get("/api/ratings/stats", params={"by": "floor"}).status_code == 422
    unknown = api.get("/api/ratings", params={"window": "w99"})
    assert unknown.status_code == 422 and "w01" in unknown.text
    assert api.get("/api/work-orders", params={"status": "lost"}).status_code == 422


def test_arrival_order_does_not_change_the_statistics(db_url: str) -> None:
    events = [
        (at(TUESDAY, 10, 0), 5, "B1", []),
        (at(TUESDAY, 10, 1), 1, "B1", []),  # a second press: never counted, whichever arrives first
        (at(TUESDAY, 10, 20), 2, "B2", ["C1", "C2"]),
        (at(TUESDAY, 10, 30), 5, None, ["C2"]),  # a case of the batch rated again
        (at(TUESDAY, 11, 0), 4, "B3", []),
    ]
    results = []
    hall = RatedHall(db_url)
    for arrival in (events, list(reversed(events))):
        hall.empty()
        for when, level, ticket, cases in arrival:
            hall.rate(when, level, ticket=ticket, cases=cases, historical=True)
        rows = hall.ratings.stats("window", "day", TUESDAY, TUESDAY).rows
        orders = sorted((o.status, o.level, r.ticket) for o, r in hall.ratings.orders(None, None, False, 10))
        results.append((rows, orders))
    hall.engine.dispose()
    (forward, forward_orders), (backward, backward_orders) = results
    assert forward == backward
    [row] = forward
    assert (row.rated, row.duplicates, row.bad, row.work_orders) == (3, 2, 1, 1)
    assert forward_orders == [("assigned", 2, "B2")]
    # Backwards, B1's second press came first and opened an order, withdrawn when the first press arrived.
    assert backward_orders == [("assigned", 2, "B2"), ("withdrawn", 1, "B1")]


def test_two_halls_on_one_database_never_see_each_others_ratings_tickets_or_work_orders(hall: RatedHall) -> None:
    """Both halls' queue systems number A001, A007...: each hall's transactions, orders and alerts are its own."""
    east = EastHall(hall)
    hall.clock.now = at(TUESDAY, 7, 50)
    hall.birth("qg-01", "queue_gateway")
    east.birth("eqg-01", "queue_gateway")
    hall.ticket(at(TUESDAY, 9, 30), "A007", "called")
    hall.ticket(at(TUESDAY, 9, 40), "A007", "finished")  # left unrated in the demo hall: its default falls due
    hall.ticket(at(TUESDAY, 9, 50), "A001", "called")
    hall.ticket(at(TUESDAY, 9, 58), "A001", "finished")
    hall.rate(at(TUESDAY, 10), 5, ticket="A001")
    east.ticket(at(TUESDAY, 10), "A001", "called", window="e02")
    east.ticket(at(TUESDAY, 10, 4), "A001", "finished", window="e02")
    east.rate(at(TUESDAY, 10, 5), 1, ticket="A001", window="e02")  # the same number, another transaction: a 差评 that counts
    east.ticket(at(TUESDAY, 10, 6), "A002", "called", window="e02")
    east.ticket(at(TUESDAY, 10, 9), "A002", "finished", window="e02")  # left unrated in east: its default is east's
    hall.rate(at(TUESDAY, 10, 10), 1, ticket="A001")  # a second press in the demo hall: a duplicate there (一事一评)
    east.rate(at(TUESDAY, 10, 20), 5, ticket="A007", window="e02")  # a number east never called (the demo hall did)
    after_wait = at(TUESDAY, 10, 20) + timedelta(seconds=hall.policy.ratings.ticket_wait_s + 60)
    hall.sweep(after_wait)
    east.sweep(after_wait)

    day = {"start": TUESDAY, "end": TUESDAY, "window": None, "clerk": None, "origin": None, "counted": None, "signal": None, "limit": 100}
    assert sorted((r.window_id, r.ticket, r.level, r.duplicate_of is None) for r, _ in hall.ratings.ratings(**day)) == [("w02", "A001", 1, False), ("w02", "A001", 5, True)]
    assert sorted((r.window_id, r.ticket, r.level, r.duplicate_of is None) for r, _ in east.ratings.ratings(**day)) == [("e02", "A001", 1, True), ("e02", "A007", 5, True)]
    [demo_row] = hall.ratings.stats("window", "day", TUESDAY, TUESDAY).rows
    assert (demo_row.key, demo_row.rated, demo_row.duplicates, demo_row.bad, demo_row.work_orders) == ("w02", 1, 1, 0, 0)
    [east_row] = east.ratings.stats("window", "day", TUESDAY, TUESDAY).rows
    assert (east_row.key, east_row.rated, east_row.duplicates, east_row.bad, east_row.work_orders) == ("e02", 2, 0, 1, 1)
    assert hall.ratings.orders(None, None, False, 10) == [] and hall.ratings.orders_between(TUESDAY, TUESDAY) == []
    [(order, rating)] = east.ratings.orders(None, None, False, 10)
    assert (order.window, order.status, rating.ticket) == ("e02", "assigned", "A001")
    assert [o.id for o, _ in east.ratings.orders_between(TUESDAY, TUESDAY)] == [order.id]
    with pytest.raises(NotFound):
        hall.ratings.get_order(order.id)  # the demo hall's API cannot read or step east's order
    assert [(a["type"], a["window_id"]) for a in east.pushed] == [("rating_no_ticket", "e02")]
    assert hall.pushed == []

    assert order.callback_due is not None
    due = datetime.combine(order.callback_due + timedelta(days=1), time.min, HALL_TZ) + timedelta(minutes=1)
    assert hall.sweep(due) == []
    assert [(a["type"], a["window_id"]) for a in east.sweep(due) if a["state"] == "active"] == [("work_order_overdue", "e02")]
    defaults = {**day, "origin": "default"}
    assert [(r.window_id, r.ticket) for r, _ in hall.ratings.ratings(**defaults)] == [("w02", "A007")], "east's rating of its A007 is not the demo hall's"
    assert [(r.window_id, r.ticket) for r, _ in east.ratings.ratings(**defaults)] == [("e02", "A002")]
    assert [(a["type"], a["window_id"]) for a in east.feed("work_order_overdue") + east.feed("rating_no_ticket")] == [("work_order_overdue", "e02"), ("rating_no_ticket", "e02")]
    assert hall.feed("work_order_overdue") + hall.feed("rating_no_ticket") == [], "the demo hall's alert feed shows none of east's"

    hall_of = {w.id: HALL.hall.id for w in HALL.windows} | {w.id: EAST.hall.id for w in EAST.windows}
    ratings_alerts = AlertRow.type.in_((*SIGNAL_TYPES, "rating_never_below", "work_order_overdue"))
    with Session(hall.engine) as session:
        for model, where in ((RatingRow, True), (TicketRow, True), (WorkOrderRow, True), (AlertRow, ratings_alerts)):
            stored = session.execute(select(model.window_id, model.hall_id).where(where)).all()
            assert stored and all(hall_id == hall_of[window_id] for window_id, hall_id in stored), model.__tablename__
        assert sorted(session.execute(select(TicketRow.hall_id, TicketRow.ticket, TicketRow.window_id)).all()) == [
            ("demo", "A001", "w02"), ("demo", "A007", "w02"), ("east", "A001", "e02"), ("east", "A002", "e02")
        ]  # fmt: skip
        keys = session.execute(select(RatingKeyRow.hall_id, RatingRow.hall_id).join(RatingRow, RatingRow.id == RatingKeyRow.rating_id)).all()
        assert keys and all(key_hall == rating_hall for key_hall, rating_hall in keys)
