"""One server for a district of halls: every hall's routes and pages under /halls/<id>/, and a hall's user
sees only their hall — every route of another hall answers 403, its live feed closes."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from procs import ROOT
from sqlalchemy.engine import Engine
from starlette.websockets import WebSocketDisconnect

from broker.connection import BrokerSettings
from broker.timeutil import HALL_TZ
from server.config.district import load_district
from server.db import make_engine
from server.users.accounts import UserStore
from server.users.authority import COOKIE
from server.web.app import ServerSettings, create_app
from users import PASSWORD

DISTRICT_FILE = ROOT / "config/districts/demo.toml"
MONDAY_TEN = datetime(2026, 3, 2, 10, 0, tzinfo=HALL_TZ)
DISTRICT_ROUTES = ("/api/session", "/api/audit", "/api/halls", "/api/district", "/api/faces", "/api/gallery", "/api/devices/gallery")


@pytest.fixture
def district(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The district's app (lifespan not started: no broker session) and its database."""
    district = load_district(DISTRICT_FILE)
    settings = ServerSettings(hall_file=district.files[0], database_url=db_url, broker=BrokerSettings(url="mqtt://127.0.0.1:9"), data_dir=tmp_path / "data")
    app = create_app(settings, district, clock=lambda: MONDAY_TEN)
    engine = make_engine(db_url)
    yield app, engine
    engine.dispose()


def _cookie(engine: Engine, name: str, role: str, hall: str | None) -> dict[str, str]:
    users = UserStore(engine)
    users.add(name, role, PASSWORD, hall=hall)
    token, _, _ = users.login(name, PASSWORD)
    return {"Cookie": f"{COOKIE}={token}"}


def _url(path: str) -> str:
    return re.sub(r"\{[a-z_]+\}", "1", path)


def test_the_district_lists_its_halls_and_a_halls_user_only_their_own(district) -> None:  # type: ignore[no-untyped-def]
    app, engine = district
    client = TestClient(app)
    office = _cookie(engine, "district-office", "office", None)
    town = _cookie(engine, "town-office", "office", "dyz")
    halls = client.get("/api/halls", headers=office).json()
    assert halls["district"]["name"] == "曲江新区政务服务"
    assert [h["name"] for h in halls["halls"]] == ["示范政务服务大厅", "曲江街道便民服务中心", "大雁塔镇便民服务中心"]
    assert [h["id"] for h in client.get("/api/halls", headers=town).json()["halls"]] == ["dyz"]
    assert client.get("/api/halls").status_code == 401
    windows = client.get("/halls/dyz/api/windows", headers=town).json()
    assert [w["id"] for w in windows] == ["dy-w01", "dy-w02", "dy-w03"], "a hall's API lists its own windows only"
    assert client.get("/halls/qjjd/api/hall", headers=office).json()["name"] == "曲江街道便民服务中心", "the district office opens any hall"
    page = client.get("/halls/dyz/")
    assert page.status_code == 200 and "<html" in page.text.lower(), "each hall has its live page"


def test_a_halls_user_is_refused_every_route_of_another_hall(district) -> None:  # type: ignore[no-untyped-def]
    app, engine = district
    client = TestClient(app)
    town = _cookie(engine, "town-office", "office", "dyz")
    paths = app.openapi()["paths"]
    hall_routes = [
        (method.upper(), path)
        for path, operations in paths.items()
        for method in operations
        if not path.startswith(DISTRICT_ROUTES) and not path.startswith(("/halls/dyz/", "/halls/qjjd/"))
    ]
    demo = [r for r in hall_routes if r[1].startswith("/halls/demo/")]
    assert len(demo) >= 40 and len(hall_routes) == 2 * len(demo), "every route of the demo hall, prefixed and at / (the district centre)"
    for method, path in hall_routes:
        answer = client.request(method, _url(path), headers=town, json={})
        assert answer.status_code == 403, (method, path, answer.status_code)
        assert "belongs to hall dyz, not demo" in answer.json()["detail"], (method, path)
    own = client.get("/halls/dyz/api/alerts", headers=town)
    assert own.status_code == 200


def test_a_halls_user_gets_no_live_feed_of_another_hall(district) -> None:  # type: ignore[no-untyped-def]
    app, engine = district
    client = TestClient(app)
    town = _cookie(engine, "town-office", "office", "dyz")
    for path in ("/halls/demo/ws", "/ws"):
        with pytest.raises(WebSocketDisconnect):
            with client.websocket_connect(path, headers=town) as socket:
                socket.receive_json()


def test_the_district_overview_has_every_hall_worst_first_and_a_halls_user_only_theirs(district) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy.orm import Session

    from server.db import AlertRow, DeviceRow, WindowRow

    app, engine = district
    client = TestClient(app)
    office = _cookie(engine, "district-office", "office", None)
    town = _cookie(engine, "town-office", "office", "dyz")
    now = MONDAY_TEN
    with Session(engine) as session, session.begin():  # the street centre has an unattended window and an alert
        session.get(WindowRow, "qj-w02").state = "vacant"
        session.get(WindowRow, "qj-w01").state = "staffed"
        session.get(DeviceRow, "dy-cam-01").status = "offline"
        session.add(AlertRow(hall_id="qjjd", window_id="qj-w02", type="vacant", severity="high", condition_since=now, raised_at=now, live=True, threshold_s=300, source="003", facts={}))
    overview = client.get("/api/district/overview", headers=office).json()
    assert overview["day"] == "2026-03-02"
    rows = overview["halls"]
    assert [r["id"] for r in rows] == ["qjjd", "dyz", "demo"], "most alerts first, then vacant windows, absences, devices down"
    street = rows[0]
    assert street["name"] == "曲江街道便民服务中心" and street["page"] == "/halls/qjjd/"
    assert street["active_alerts"] == 1 and street["windows"]["vacant"] == 1 and street["windows"]["staffed"] == 1
    assert set(street["attendance"]) == {"expected", "arrived", "late", "absent"} and set(street["ratings"]) == {"rated", "bad", "open_orders"}
    assert rows[1]["devices"]["offline"] == 1
    assert [r["id"] for r in client.get("/api/district/overview", headers=town).json()["halls"]] == ["dyz"]
    assert client.get("/api/district/overview").status_code == 401
    page = client.get("/district.html")
    assert page.status_code == 200 and "区级总览" in page.text


def test_the_district_ranks_its_halls_by_satisfaction_then_bad_ratings(district) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy.orm import Session

    from server.db import RatingRow

    app, engine = district
    client = TestClient(app)
    office = _cookie(engine, "district-office", "office", None)
    town = _cookie(engine, "town-office", "office", "dyz")
    given = [("demo", "w01", 5), ("demo", "w02", 5), ("qjjd", "qj-w01", 5), ("qjjd", "qj-w02", 1)]
    with Session(engine) as session, session.begin():
        for number, (hall, window, level) in enumerate(given, 1):
            session.add(RatingRow(
                hall_id=hall, msg_id=f"m{number}", origin="device", window_id=window, level=level, cases=[], day=MONDAY_TEN.date(), rated_at=MONDAY_TEN,
                device_id="ev", boot=1, seq=number, historical=False, stored_at=MONDAY_TEN, signals=[],
            ))  # fmt: skip
    ranking = client.get("/api/district/ratings", params={"from": "2026-03-02", "to": "2026-03-02"}, headers=office).json()
    rows = [(h["id"], h["rank"], h["rated"], h["satisfaction_rate"]) for h in ranking["halls"]]
    assert rows == [("demo", 1, 2, 1.0), ("qjjd", 2, 2, 0.5), ("dyz", None, 0, None)], "a hall without ratings is listed, unranked"
    assert [h["id"] for h in client.get("/api/district/ratings", params={"from": "2026-03-02", "to": "2026-03-02"}, headers=town).json()["halls"]] == ["dyz"]
    assert client.get("/api/district/ratings", params={"from": "2026-03-03", "to": "2026-03-02"}, headers=office).status_code == 422
