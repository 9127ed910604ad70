"""The review API over a stored day: the bands the rules saw, raised alerts, ratings, and occupancy per hour."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from test_supervisor import HALL, MONDAY_0900, Hall, seat

from broker.protocol import RatingBody
from server.config.calendar import national_calendar
from server.review.api import review_router


def _client(hall: Hall) -> TestClient:
    app = FastAPI()
    app.include_router(review_router(hall.engine, HALL, hall.policy, national_calendar([2026]), hall.clock, lambda: None))
    return TestClient(app)


def _day(hall: Hall) -> None:
    """w02 (camera cam-01): seated before opening, away 09:30–10:00 (an alert), back, rated at 10:15."""
    hall.birth("cam-01", "window_camera")
    hall.send("cam-01", seat("occupied"), MONDAY_0900 - timedelta(minutes=50))
    hall.send("cam-01", seat("vacant"), MONDAY_0900 + timedelta(minutes=30))
    hall.tick(MONDAY_0900 + timedelta(minutes=40))  # the vacancy is raised live
    hall.send("cam-01", seat("occupied"), MONDAY_0900 + timedelta(minutes=60))
    hall.send("ev-02", RatingBody(window_id="w02", level=2, clerk_id="c02", ticket="A001"), MONDAY_0900 + timedelta(minutes=75))
    hall.tick(MONDAY_0900 + timedelta(hours=9))


def test_a_day_shows_the_bands_the_rules_saw_with_its_alert_and_rating(db_url: str) -> None:
    hall = Hall(db_url)
    _day(hall)
    day = _client(hall).get("/api/review/day", params={"day": "2026-03-02", "window": "w02"}).json()
    [w02] = day["windows"]
    bands = [(b["state"], b["from"][11:16], b["to"][11:16]) for b in w02["bands"]]
    assert ("closed", "00:00", "08:20") == bands[0], "closed before the morning session"
    assert ("staffed", "08:20", "09:30") in bands and ("vacant", "09:30", "10:00") in bands and ("staffed", "10:00", "12:00") in bands
    [alert] = w02["alerts"]
    assert alert["type"] == "vacant" and alert["cleared_at"].startswith("2026-03-02T10:00")
    assert [(r["at"][11:16], r["level"]) for r in w02["ratings"]] == [("10:15", 2)]


def test_occupancy_per_hour_counts_open_time_only(db_url: str) -> None:
    hall = Hall(db_url)
    _day(hall)
    client = _client(hall)
    report = client.get("/api/review/occupancy", params={"from": "2026-03-02", "to": "2026-03-02"}).json()
    hours = {h["hour"]: h for h in report["days"][0]["windows"]["w02"]}
    assert hours[8]["open_s"] == 40 * 60 and hours[8]["occupancy"] == 1.0, "08:20–09:00 open, all of it staffed"
    assert hours[9]["occupancy"] == 0.5 and hours[9]["vacant_s"] == 30 * 60
    assert hours[10]["occupancy"] == 1.0
    assert 7 not in hours and 0 not in hours, "closed hours are not rows"
    assert client.get("/api/review/occupancy", params={"from": "2026-03-02", "to": "2026-04-02"}).status_code == 422, "at most 31 days"
    assert client.get("/api/review/occupancy", params={"from": "2026-03-02", "to": "2026-03-01"}).status_code == 422
    assert client.get("/api/review/day", params={"day": "2026-03-02", "window": "w99"}).status_code == 404
