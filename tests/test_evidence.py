"""Evidence snapshots: upload, viewing, retention, snapshot requests, the camera's spool, redaction.

Real pieces throughout: a SQLite database file migrated to head, the
pictures as real files, a real Mosquitto ``passwd`` file for the cameras'
logins, real JPEGs, a real uvicorn server for the camera-side spool, and
real photos (with dlib's HOG detector) for the redaction.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from agent.evidence_spool import EvidenceSpool
from broker.config_file import ConfigError
from broker.connection import BrokerSettings
from broker.mosquitto import BrokerAuthFiles
from broker.protocol import Command, decode
from broker.timeutil import HALL_TZ
from server.users.admin_token import admin_token
from server.users.authority import Authority
from server.users.accounts import UserStore
from users import session_headers
from server.db import make_engine, migrate
from server.evidence.api import MAX_BYTES, MAX_SIDE, check_picture, evidence_router
from server.evidence.service import EvidenceStore
from server.ingest.validation import KnownDevice
from vision.evidence import jpeg, redact
from vision.faces import FaceSettings, find_faces, from_bgr

from frames import GREY, terminal_frame
from mosquitto_proc import free_port
from procs import AppServer, wait_for

HALL = "demo"
TOKEN = b"evidence-admin-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN.decode()}"}
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=HALL_TZ)
TAKEN = "2026-03-02T01:30:00+00:00"  # 09:30 in the hall
RETENTION_DAYS = 30

REGISTRY = {
    "cam-01": KnownDevice(HALL, "window_camera", frozenset({"w01"})),
    "cam-02": KnownDevice(HALL, "window_camera", frozenset({"w02"})),
    "cam-03": KnownDevice(HALL, "window_camera", frozenset({"w01", "w03"})),
    "ft-01": KnownDevice(HALL, "face_terminal", frozenset()),
    "ev-01": KnownDevice(HALL, "evaluator", frozenset({"w01"})),
    "cam-09": KnownDevice("other-hall", "window_camera", frozenset({"w01"})),
}


def _picture(seed: int, size: tuple[int, int] = (120, 160)) -> bytes:
    """A real JPEG with its own content (random noise, so every seed differs)."""
    rng = np.random.default_rng(seed)
    return jpeg(rng.integers(0, 256, (*size, 3), np.uint8))


class Clock:
    """An injected hall clock that the test moves."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class CountingClock:
    """One second later at every call: ``received_at`` then tells the order of the uploads."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            self.calls += 1
            return NOW + timedelta(seconds=self.calls)


@dataclass
class Sink:
    """``send_command``: what the server would publish to each device."""

    sent: list[tuple[str, bytes]] = field(default_factory=list)

    def __call__(self, device_id: str, payload: bytes) -> None:
        self.sent.append((device_id, payload))


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path}/db/hallwatch.db")
    migrate(engine)
    yield engine
    engine.dispose()


@dataclass
class Accounts:
    passwd: Path
    passwords: dict[str, str]

    def login(self, device_id: str) -> tuple[str, str]:
        return device_id, self.passwords[device_id]


@pytest.fixture
def accounts(tmp_path: Path) -> Accounts:
    auth = BrokerAuthFiles(tmp_path / "auth")
    passwords = {d: auth.add_device(k.hall_id, d, kind=k.kind) for d, k in REGISTRY.items()}  # type: ignore[arg-type]
    auth.add_server(HALL)
    return Accounts(auth.passwd_path, passwords)


@dataclass
class Hall:
    client: TestClient
    store: EvidenceStore
    accounts: Accounts
    clock: Clock
    sink: Sink

    @property
    def directory(self) -> Path:
        return self.store.directory

    def files(self) -> list[str]:
        return sorted(p.name for p in self.directory.iterdir()) if self.directory.exists() else []

    def upload(self, picture: bytes, *, login: str | None = "cam-01", **params: str) -> Any:
        query = {"id": "evidence-0001", "device": "cam-01", "window_id": "w01", "taken_at": TAKEN, "cause": "vacancy"} | params
        auth = self.accounts.login(login) if login else None
        return self.client.post("/api/evidence", params=query, content=picture, auth=auth, headers={"Content-Type": "image/jpeg"})


def _app(store: EvidenceStore, accounts: Accounts, token: bytes | None, sink: Sink) -> TestClient:
    app = FastAPI()
    app.include_router(evidence_router(store, HALL, lambda: REGISTRY, accounts.passwd, Authority(UserStore(store.engine), token), sink))
    return TestClient(app)


@pytest.fixture
def hall(engine: Engine, accounts: Accounts, tmp_path: Path) -> Hall:
    clock = Clock()
    store = EvidenceStore(engine, tmp_path / "data" / "evidence", RETENTION_DAYS, clock)
    sink = Sink()
    return Hall(_app(store, accounts, TOKEN, sink), store, accounts, clock, sink)


# --------------------------------------------------------------------------
# Upload and viewing
# --------------------------------------------------------------------------


def test_a_camera_uploads_once_and_the_office_sees_the_same_bytes(hall: Hall) -> None:
    picture = _picture(1)
    first = hall.upload(picture)
    assert first.status_code == 201 and first.json() == {"id": "evidence-0001", "stored": True}

    again = hall.upload(picture)  # the camera retries (its answer was lost)
    assert again.status_code == 200 and again.json() == {"id": "evidence-0001", "stored": False}
    other = hall.upload(_picture(2))  # same id, other bytes: the first picture stays
    assert other.status_code == 200 and other.json()["stored"] is False
    assert hall.files() == ["evidence-0001.jpg"], "one file"
    path = hall.directory / "evidence-0001.jpg"
    assert path.read_bytes() == picture
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(hall.directory.stat().st_mode) == 0o700

    shown = hall.client.get("/api/evidence/evidence-0001", headers=BEARER)
    assert shown.status_code == 200 and shown.content == picture
    assert shown.headers["content-type"] == "image/jpeg" and shown.headers["cache-control"] == "no-store"

    listing = hall.client.get("/api/evidence", headers=BEARER)
    assert listing.status_code == 200
    assert listing.json() == [
        {
            "id": "evidence-0001",
            "device_id": "cam-01",
            "window_id": "w01",
            "taken_at": "2026-03-02T09:30:00+08:00",
            "received_at": "2026-03-02T10:00:00+08:00",
            "cause": "vacancy",
            "size": len(picture),
            "sha256": hashlib.sha256(picture).hexdigest(),
        }
    ], "one row, times in hall time"


def test_one_id_uploaded_many_times_at_once_is_stored_once_without_an_error(db_url: str, tmp_path: Path) -> None:
    """A camera that retries while its first upload is still being stored: one picture, the others told
    "stored already", no half-written file left, on SQLite and PostgreSQL."""
    engine = make_engine(db_url)
    migrate(engine)
    store = EvidenceStore(engine, tmp_path / "evidence", RETENTION_DAYS, Clock())
    start = threading.Barrier(8)
    pictures = [_picture(seed) for seed in range(8)]

    def upload(picture: bytes) -> bool:
        start.wait()
        return store.add("evidence-race-01", "cam-01", "w01", datetime.fromisoformat(TAKEN), "vacancy", picture)

    with ThreadPoolExecutor(8) as pool:
        stored = list(pool.map(upload, pictures))
    assert stored.count(True) == 1, stored
    kept = store.get("evidence-race-01")
    assert kept is not None and kept[1] == pictures[stored.index(True)], "the row and the file are the same upload"
    assert kept[0].sha256 == hashlib.sha256(kept[1]).hexdigest()
    assert sorted(p.name for p in store.directory.iterdir()) == ["evidence-race-01.jpg"]
    engine.dispose()


def test_a_picture_whose_file_failed_after_its_row_is_put_in_place_by_the_retry(hall: Hall) -> None:
    """The disk refuses the file once its row is stored (here: a folder in the way); the upload fails, the
    camera keeps the picture and retries; the retry of the same picture fills the row, another does not."""
    store, picture, taken = hall.store, _picture(3), datetime.fromisoformat(TAKEN)
    blocker = store.path("evidence-fault-01")
    blocker.mkdir(parents=True)
    with pytest.raises(OSError):
        store.add("evidence-fault-01", "cam-01", "w01", taken, "vacancy", picture)
    blocker.rmdir()
    assert store.get("evidence-fault-01") is None and not list(store.directory.glob(".*.part")), "no picture yet, nothing half-written"
    assert store.add("evidence-fault-01", "cam-01", "w01", taken, "vacancy", _picture(4)) is False
    assert store.get("evidence-fault-01") is None, "other bytes never fill the row"
    assert store.add("evidence-fault-01", "cam-01", "w01", taken, "vacancy", picture) is False, "stored already"
    kept = store.get("evidence-fault-01")
    assert kept is not None and kept[1] == picture
    assert sorted(p.name for p in store.directory.iterdir()) == ["evidence-fault-01.jpg"]


def test_the_listing_is_newest_first_and_filters_by_window(hall: Hall) -> None:
    uploads = [
        ("evidence-0001", "cam-01", "w01", "2026-03-02T09:00:00+08:00"),
        ("evidence-0002", "cam-02", "w02", "2026-03-02T09:10:00+08:00"),
        ("evidence-0003", "cam-03", "w03", "2026-03-02T08:00:00+08:00"),
        ("evidence-0004", "cam-03", "w01", "2026-03-02T09:20:00+08:00"),
    ]
    for seed, (evidence_id, device, window, taken) in enumerate(uploads):
        answer = hall.upload(_picture(seed), login=device, id=evidence_id, device=device, window_id=window, taken_at=taken, cause="request")
        assert answer.status_code == 201, answer.text

    def ids(**params: Any) -> list[str]:
        response = hall.client.get("/api/evidence", params=params, headers=BEARER)
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()]

    assert ids() == ["evidence-0004", "evidence-0002", "evidence-0001", "evidence-0003"]
    assert ids(window_id="w01") == ["evidence-0004", "evidence-0001"]
    assert ids(limit=2) == ["evidence-0004", "evidence-0002"]
    assert ids(window_id="w01", limit=1) == ["evidence-0004"]
    assert ids(window_id="w99") == []
    assert hall.client.get("/api/evidence", params={"limit": 0}, headers=BEARER).status_code == 422
    assert hall.client.get("/api/evidence", params={"limit": 1001}, headers=BEARER).status_code == 422


def _too_big() -> bytes:
    return b"\xff\xd8" + bytes(MAX_BYTES - 1)


def _truncated() -> bytes:
    picture = _picture(3)
    return picture[: len(picture) // 2]


REFUSED: dict[str, tuple[dict[str, Any], Any, int, str]] = {
    # case: (upload arguments, picture, status, what the message says)
    "no password": ({"login": None}, _picture, 401, "log in with the device's broker username and password"),
    "a face terminal": ({"login": "ft-01", "device": "ft-01"}, _picture, 403, "ft-01 is not a window camera of this hall"),
    "an evaluator": ({"login": "ev-01", "device": "ev-01"}, _picture, 403, "ev-01 is not a window camera of this hall"),
    "another hall's camera": ({"login": "cam-09", "device": "cam-09"}, _picture, 403, "cam-09 is not a window camera of this hall"),
    "a window it does not watch": ({"window_id": "w02"}, _picture, 403, "cam-01 does not watch window w02"),
    "as another camera": ({"device": "cam-02", "window_id": "w02"}, _picture, 403, "logged in as cam-01, uploading as cam-02"),
    "taken_at without offset": ({"taken_at": "2026-03-02T09:30:00"}, _picture, 422, "taken_at: give the UTC offset"),
    "not a JPEG": ({}, lambda: cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes(), 422, "picture: not a JPEG"),
    "an empty body": ({}, lambda: b"", 422, "picture: not a JPEG"),
    "a JPEG that does not decode": ({}, _truncated, 422, "picture: the JPEG does not decode"),
    "over 2 MiB": ({}, _too_big, 413, f"at most {MAX_BYTES}"),
    "4097 px wide": ({}, lambda: jpeg(np.zeros((8, MAX_SIDE + 1, 3), np.uint8)), 422, f"4097×8, at most {MAX_SIDE} px a side"),
    "4097 px high": ({}, lambda: jpeg(np.zeros((MAX_SIDE + 1, 8, 3), np.uint8)), 422, f"8×4097, at most {MAX_SIDE} px a side"),
    "id too short": ({"id": "evid-07"}, _picture, 422, "id"),
    "id too long": ({"id": "e" * 65}, _picture, 422, "id"),
    "id with capitals": ({"id": "Evidence-0001"}, _picture, 422, "id"),
    "id as a path": ({"id": "../../etc/passwd"}, _picture, 422, "id"),
    "an unknown cause": ({"cause": "curiosity"}, _picture, 422, "cause"),
}


@pytest.mark.parametrize(("arguments", "make", "status", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_an_upload_is_refused_saying_why(hall: Hall, arguments: dict[str, Any], make: Any, status: int, message: str) -> None:
    picture = make(0) if make is _picture else make()
    answer = hall.upload(picture, **arguments)
    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    if isinstance(detail, str):
        assert message in detail
    else:  # FastAPI's own validation: it names the parameter
        assert any(message in e["loc"] for e in detail), detail
    assert hall.files() == [] and hall.store.list(None, 10) == [], "nothing is kept"


def test_a_wrong_password_or_an_unknown_account_is_401(hall: Hall) -> None:
    query = {"id": "evidence-0001", "device": "cam-01", "window_id": "w01", "taken_at": TAKEN, "cause": "vacancy"}
    for auth in [("cam-01", "wrong"), ("cam-01", hall.accounts.passwords["cam-02"]), ("nobody", "x")]:
        answer = hall.client.post("/api/evidence", params=query, content=_picture(0), auth=auth)
        assert answer.status_code == 401 and answer.json()["detail"] == "wrong device username or password"
        assert answer.headers["www-authenticate"] == 'Basic realm="hallwatch evidence"'
    assert hall.files() == []


@pytest.mark.parametrize(
    ("evidence_id", "rows", "cols", "pad_to"),
    [("e" * 8, 8, 8, None), ("e" * 64, 8, 8, None), ("evidence-side", 8, MAX_SIDE, None), ("evidence-tall", MAX_SIDE, 8, None), ("evidence-2mib", 64, 64, MAX_BYTES)],
    ids=["id of 8", "id of 64", "4096 px wide", "4096 px high", "exactly 2 MiB"],
)
def test_uploads_at_the_limits_are_accepted(hall: Hall, evidence_id: str, rows: int, cols: int, pad_to: int | None) -> None:
    picture = _picture(5, (rows, cols))
    if pad_to is not None:  # bytes after the end-of-image marker: still a JPEG that decodes
        picture += bytes(pad_to - len(picture))
        assert len(picture) == MAX_BYTES
    answer = hall.upload(picture, id=evidence_id)
    assert answer.status_code == 201, answer.text
    assert hall.client.get(f"/api/evidence/{evidence_id}", headers=BEARER).content == picture


def test_check_picture_accepts_the_redacted_jpeg_a_camera_makes() -> None:
    check_picture(jpeg(np.full((480, 640, 3), GREY, np.uint8)))


def test_viewing_needs_the_permission_evidence_view_or_the_admin_token(hall: Hall) -> None:
    assert hall.upload(_picture(1)).status_code == 201
    office, patrol = session_headers(hall.store.engine, "office"), session_headers(hall.store.engine, "patrol")
    for path in ["/api/evidence", "/api/evidence/evidence-0001"]:
        bare = hall.client.get(path)
        assert bare.status_code == 401 and bare.json()["detail"].startswith("log in first")
        assert bare.headers["www-authenticate"] == "Bearer"
        assert hall.client.get(path, headers=office).status_code == 200
        refused = hall.client.get(path, headers=patrol)
        assert refused.status_code == 403 and "evidence.view" in refused.json()["detail"]
        assert hall.client.get(path, headers={"Authorization": "Bearer not-the-token"}).status_code == 401
        assert hall.client.get(path, headers={"Authorization": f"Basic {TOKEN.decode()}"}).status_code == 401
        assert hall.client.get(path, auth=hall.accounts.login("cam-01")).status_code == 401, "a camera cannot view"
        assert hall.client.get(path, headers=BEARER).status_code == 200

    missing = hall.client.get("/api/evidence/evidence-9999", headers=BEARER)
    assert missing.status_code == 404
    assert missing.json()["detail"] == "no evidence evidence-9999 (never received, or past the retention period)"
    assert hall.client.get("/api/evidence/NOT-AN-ID", headers=BEARER).status_code == 422


def test_without_an_admin_token_only_users_view_and_cameras_still_upload(engine: Engine, accounts: Accounts, tmp_path: Path) -> None:
    store = EvidenceStore(engine, tmp_path / "evidence", RETENTION_DAYS, Clock())
    sink = Sink()
    client = _app(store, accounts, None, sink)
    query = {"id": "evidence-0001", "device": "cam-01", "window_id": "w01", "taken_at": TAKEN, "cause": "vacancy"}
    assert client.post("/api/evidence", params=query, content=_picture(1), auth=accounts.login("cam-01")).status_code == 201
    for answer in [
        client.get("/api/evidence", headers=BEARER),
        client.get("/api/evidence/evidence-0001", headers=BEARER),
        client.post("/api/evidence/request", params={"window_id": "w01"}, headers=BEARER),
    ]:
        assert answer.status_code == 401, "no token is configured: a bearer token is nobody"
    assert sink.sent == []
    assert client.get("/api/evidence", headers=session_headers(engine, "office")).status_code == 200


def test_an_empty_admin_token_file_does_not_open_viewing_to_everyone(engine: Engine, accounts: Accounts, tmp_path: Path) -> None:
    token_file = tmp_path / "admin.token"
    token_file.write_text("\n")
    token_file.chmod(0o600)
    try:
        token = admin_token(token_file)
    except ConfigError:
        return  # refusing the file at start is a fine answer too
    store = EvidenceStore(engine, tmp_path / "evidence", RETENTION_DAYS, Clock())
    client = _app(store, accounts, token, Sink())
    assert client.get("/api/evidence", headers={"Authorization": "Bearer "}).status_code == 401


# --------------------------------------------------------------------------
# Retention
# --------------------------------------------------------------------------


def _keep(store: EvidenceStore, evidence_id: str, age: timedelta) -> None:
    assert store.add(evidence_id, "cam-01", "w01", store.clock() - age, "vacancy", _picture(len(evidence_id)), "demo")


def _ids(store: EvidenceStore) -> list[str]:
    return sorted(e["id"] for e in store.list(None, 100))


def test_purge_deletes_older_than_retention_and_keeps_one_exactly_retention_days_old(hall: Hall) -> None:
    store = hall.store
    _keep(store, "evidence-old", timedelta(days=RETENTION_DAYS, seconds=1))
    _keep(store, "evidence-boundary", timedelta(days=RETENTION_DAYS))
    _keep(store, "evidence-young", timedelta(days=RETENTION_DAYS - 1))
    assert hall.client.get("/api/evidence/evidence-old", headers=BEARER).status_code == 200

    assert store.purge() == 1
    assert _ids(store) == ["evidence-boundary", "evidence-young"], "exactly 30 days old is not yet older than 30 days"
    assert hall.files() == ["evidence-boundary.jpg", "evidence-young.jpg"], "the file goes with the row"
    assert hall.client.get("/api/evidence/evidence-old", headers=BEARER).status_code == 404
    assert store.purge() == 0

    hall.clock.now += timedelta(microseconds=1)
    assert store.purge() == 1
    assert _ids(store) == ["evidence-young"] and hall.files() == ["evidence-young.jpg"]


def test_tick_purges_at_once_then_at_most_once_an_hour(hall: Hall) -> None:
    store = hall.store
    _keep(store, "evidence-old", timedelta(days=RETENTION_DAYS + 1))
    _keep(store, "evidence-young", timedelta(days=RETENTION_DAYS - 1))
    store.tick()  # the first sweep purges
    assert _ids(store) == ["evidence-young"]

    hall.clock.now += timedelta(days=2)  # now the young one has expired too
    store.tick()  # but the last purge was a moment ago
    assert _ids(store) == ["evidence-young"] and hall.files() == ["evidence-young.jpg"]
    assert store.purge() == 1 and hall.files() == []


@pytest.mark.parametrize("days", [0, -1])
def test_a_retention_under_one_day_is_refused(engine: Engine, tmp_path: Path, days: int) -> None:
    with pytest.raises(ValueError, match="at least one day"):
        EvidenceStore(engine, tmp_path / "evidence", days)
    EvidenceStore(engine, tmp_path / "evidence", 1)


# --------------------------------------------------------------------------
# Snapshot requests
# --------------------------------------------------------------------------


def test_a_snapshot_request_goes_to_each_camera_of_the_hall_watching_the_window(hall: Hall) -> None:
    answer = hall.client.post("/api/evidence/request", params={"window_id": "w01"}, headers=BEARER)
    assert answer.status_code == 202, answer.text
    assert [d for d, _ in hall.sink.sent] == ["cam-01", "cam-03"], "not another hall's camera, not the evaluator"
    commands = [decode(payload, Command) for _, payload in hall.sink.sent]
    for command in commands:
        assert command.name == "snapshot" and command.args == {"window_id": "w01"}
        assert command.issued_at == NOW
    assert len({c.cmd_id for c in commands}) == 2
    assert answer.json() == {"window_id": "w01", "commands": [{"device_id": d, "cmd_id": c.cmd_id} for (d, _), c in zip(hall.sink.sent, commands)]}


def test_a_snapshot_request_is_refused_for_an_unknown_window_or_without_the_token(hall: Hall) -> None:
    unknown = hall.client.post("/api/evidence/request", params={"window_id": "w99"}, headers=BEARER)
    assert unknown.status_code == 404 and unknown.json()["detail"] == "no window camera watches window w99"
    bare = hall.client.post("/api/evidence/request", params={"window_id": "w01"})
    assert bare.status_code == 401
    wrong = hall.client.post("/api/evidence/request", params={"window_id": "w01"}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    as_camera = hall.client.post("/api/evidence/request", params={"window_id": "w01"}, auth=hall.accounts.login("cam-01"))
    assert as_camera.status_code == 401
    assert hall.client.post("/api/evidence/request", params={"window_id": "W 01"}, headers=BEARER).status_code == 422
    assert hall.sink.sent == []


# --------------------------------------------------------------------------
# The camera's spool, against a real server
# --------------------------------------------------------------------------


def HttpServer(store: EvidenceStore, passwd: Path, port: int) -> AppServer:
    """The evidence router on a real uvicorn."""
    app = FastAPI()
    app.include_router(evidence_router(store, HALL, lambda: REGISTRY, passwd, Authority(UserStore(store.engine), TOKEN), Sink()))
    return AppServer(app, port)


@dataclass
class Camera:
    spool: EvidenceSpool
    server_store: EvidenceStore
    http: AppServer
    password_file: Path

    def received(self) -> list[str]:
        """The ids the server has, in the order they arrived."""
        return [e["id"] for e in sorted(self.server_store.list(None, 100), key=lambda e: e["received_at"])]

    def spooled(self) -> list[str]:
        return sorted(p.name for p in self.spool.directory.iterdir())


@pytest.fixture
def camera(engine: Engine, accounts: Accounts, tmp_path: Path):  # type: ignore[no-untyped-def]
    """cam-01's spool pointed at a server that is not running yet (``camera.http.start()``)."""
    server_store = EvidenceStore(engine, tmp_path / "server-evidence", RETENTION_DAYS, CountingClock())
    http = HttpServer(server_store, accounts.passwd, free_port())
    password_file = tmp_path / "cam-01.password"
    password_file.write_text(accounts.passwords["cam-01"] + "\n")
    password_file.chmod(0o600)
    broker = BrokerSettings(username="cam-01", password_file=password_file)
    spool = EvidenceSpool(tmp_path / "camera" / "evidence", http.url, "cam-01", broker, max_files=3, backoff_s=(0.05, 0.2))
    yield Camera(spool, server_store, http, password_file)
    spool.stop()
    if http.thread.is_alive():
        http.stop()


TAKEN_AT = NOW - timedelta(minutes=10)
# Names in reverse alphabetical order, so an upload order by name would show.
SPOOLED = ["evid-c-first", "evid-b-second", "evid-a-third"]


def test_pictures_wait_on_disk_until_the_server_is_there_then_go_in_order(camera: Camera) -> None:
    spool = camera.spool
    spool.start()
    for n, evidence_id in enumerate(SPOOLED):
        spool.add(evidence_id, "w01", "vacancy", TAKEN_AT + timedelta(seconds=n), _picture(n))
        time.sleep(0.02)  # apart by more than a coarse file-time tick
    assert [p.stem for p in spool.pending()] == SPOOLED
    for path in spool.directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    assert stat.S_IMODE(spool.directory.stat().st_mode) == 0o700

    time.sleep(0.5)  # several failed attempts (connection refused) meanwhile
    assert [p.stem for p in spool.pending()] == SPOOLED and spool.uploaded == 0, "nothing is lost while the server is away"
    assert camera.spooled() == sorted(f"{i}.{ext}" for i in SPOOLED for ext in ("jpg", "json"))

    camera.http.start()
    wait_for(lambda: spool.uploaded == 3, 15, "the three pictures to be uploaded")
    assert camera.received() == SPOOLED, "in the order they were taken"
    assert camera.spooled() == [], "the spool folder ends empty"
    for n, evidence_id in enumerate(SPOOLED):
        found = camera.server_store.get(evidence_id)
        assert found is not None and found[1] == _picture(n)
        assert (found[0].device_id, found[0].window_id, found[0].cause) == ("cam-01", "w01", "vacancy")
        assert found[0].taken_at == TAKEN_AT + timedelta(seconds=n)
    assert spool.dropped == 0


def test_a_picture_the_server_refuses_is_dropped_and_the_next_still_goes(camera: Camera) -> None:
    camera.http.start()
    spool = camera.spool
    spool.add("evid-not-mine", "w02", "vacancy", TAKEN_AT, _picture(1))  # cam-01 does not watch w02: 403
    time.sleep(0.02)
    spool.add("evid-mine-0001", "w01", "vacancy", TAKEN_AT, _picture(2))
    spool.start()
    wait_for(lambda: camera.spooled() == [], 15, "the spool to empty")
    assert camera.received() == ["evid-mine-0001"]
    assert spool.uploaded == 1


def test_a_wrong_password_is_retried_and_the_new_password_is_used(camera: Camera) -> None:
    camera.http.start()
    spool = camera.spool
    right = camera.password_file.read_text()
    camera.password_file.write_text("not-the-password\n")
    spool.add("evid-rekeyed-01", "w01", "vacancy", TAKEN_AT, _picture(1))
    spool.start()
    time.sleep(0.6)  # 401 every time: kept, retried
    assert [p.stem for p in spool.pending()] == ["evid-rekeyed-01"] and camera.received() == []
    camera.password_file.write_text(right)
    wait_for(lambda: camera.spooled() == [], 15, "the upload with the right password")
    assert camera.received() == ["evid-rekeyed-01"]


def test_the_spool_is_bounded_and_drops_the_oldest_first(camera: Camera) -> None:
    spool = camera.spool  # max_files=3
    ids = [f"evid-bounded-{n}" for n in range(5)]
    for n, evidence_id in enumerate(ids):
        spool.add(evidence_id, "w01", "vacancy", TAKEN_AT + timedelta(seconds=n), _picture(n))
        time.sleep(0.02)
    assert spool.dropped == 2
    assert [p.stem for p in spool.pending()] == ids[2:]
    assert camera.spooled() == sorted(f"{i}.{ext}" for i in ids[2:] for ext in ("jpg", "json")), "no picture without its description"

    camera.http.start()
    spool.start()
    wait_for(lambda: spool.uploaded == 3, 15, "the three kept pictures")
    assert camera.received() == ids[2:]
    assert camera.spooled() == []


def test_pictures_spooled_within_one_file_time_tick_keep_their_order(camera: Camera) -> None:
    spool = camera.spool
    for n, evidence_id in enumerate(SPOOLED):
        spool.add(evidence_id, "w01", "vacancy", TAKEN_AT + timedelta(seconds=n), _picture(n))
    tick = time.time_ns() // 10**9 * 10**9  # as a filesystem with one-second file times records them
    for path in spool.directory.iterdir():
        os.utime(path, ns=(tick, tick))
    assert [p.stem for p in spool.pending()] == SPOOLED


# --------------------------------------------------------------------------
# Redaction, on real photos
# --------------------------------------------------------------------------

Box = tuple[int, int, int, int]


def _detail(image: np.ndarray, where: np.ndarray | None = None) -> float:
    """Variance of the Laplacian (fine detail), over the whole image or the pixels ``where`` is true."""
    laplacian = cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F)
    return float((laplacian if where is None else laplacian[where]).var())


def _eroded(mask: np.ndarray) -> np.ndarray:
    """The mask without its 3-pixel rim (the Laplacian there sees the border, not the content)."""
    return cv2.erode(mask.astype(np.uint8) * 255, np.ones((7, 7), np.uint8)) > 0


def _faces(frame: np.ndarray) -> list[Box]:
    found = find_faces(from_bgr(frame), FaceSettings())
    assert all(scale == 1.0 for _, _, scale in found)
    return [box for box, _, _ in found]


def _centre_in(box: Box, faces: list[Box]) -> bool:
    top, right, bottom, left = box
    return any(left <= (f[1] + f[3]) / 2 <= right and top <= (f[0] + f[2]) / 2 <= bottom for f in faces)


def _grown(box: Box, share: float, shape: tuple[int, ...]) -> tuple[slice, slice]:
    top, right, bottom, left = box
    dy, dx = round((bottom - top) * share), round((right - left) * share)
    return slice(max(0, top - dy), min(shape[0], bottom + dy)), slice(max(0, left - dx), min(shape[1], right + dx))


@pytest.fixture(scope="module")
def two_clerks(faces_dir: Path) -> tuple[np.ndarray, Box, Box]:
    """A 640×480 frame: one person on the left (the staff seat), one on the right (a passer-by)."""
    known = faces_dir / "known"
    frame = np.full((480, 640, 3), GREY, np.uint8)
    frame[:, 10:310] = terminal_frame(known / "jack_dorsey" / "jack_dorsey_16.jpg")[:, 170:470]
    frame[:, 330:630] = terminal_frame(known / "obama" / "obama.jpg")[:, 170:470]
    faces = sorted(_faces(frame), key=lambda b: b[3])
    assert len(faces) == 2, f"HOG finds both faces in the composed frame: {faces}"
    seated, passer = faces
    assert seated[1] < 320 < passer[3]
    return frame, seated, passer


SEAT = ((0, 0), (320, 0), (320, 479), (0, 479))
CUSTOMER = ((330, 330), (639, 330), (639, 479))  # a triangle: the counter's customer side


def test_redact_pixelates_the_passer_by_and_the_customer_side_and_nothing_else(two_clerks: tuple[np.ndarray, Box, Box]) -> None:
    frame, seated, passer = two_clerks
    before = frame.copy()
    out = redact(frame, [SEAT], [CUSTOMER], [seated, passer])
    assert np.array_equal(frame, before), "the camera's frame itself is left alone"
    assert out.shape == frame.shape and out.dtype == frame.dtype

    # The seated clerk: bit-identical.
    top, right, bottom, left = seated
    assert np.array_equal(out[top:bottom, left:right], frame[top:bottom, left:right])
    assert np.array_equal(out[:, :320], frame[:, :320]), "the whole seat side is untouched"

    # The passer-by: pixels changed, detail gone, no face for HOG.
    top, right, bottom, left = passer
    face_before, face_after = frame[top:bottom, left:right], out[top:bottom, left:right]
    assert (face_before != face_after).any(axis=2).mean() > 0.8
    assert _detail(face_after) < 0.33 * _detail(face_before), (_detail(face_before), _detail(face_after))
    after = _faces(out)
    assert not _centre_in(passer, after), f"a face is still found where the passer-by was: {after}"
    assert _centre_in(seated, after), "the seated clerk is still recognisable"

    # The customer side: pixelated inside the polygon.
    mask = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.asarray(CUSTOMER, np.int32)], 255)
    inside = mask > 0
    assert (frame[inside] != out[inside]).any(axis=1).mean() > 0.5
    photo = _eroded(inside) & _eroded(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) != GREY)  # the photo's part, not the grey
    assert photo.sum() > 5000
    assert _detail(out, photo) < 0.33 * _detail(frame, photo), (_detail(frame, photo), _detail(out, photo))

    # Everything else: unchanged (the face box may be padded, by at most half its size).
    allowed = inside.copy()
    allowed[_grown(passer, 0.5, frame.shape)] = True
    changed = (frame != out).any(axis=2)
    assert not (changed & ~allowed).any(), f"{int((changed & ~allowed).sum())} pixels changed outside the redacted areas"


def test_redact_keeps_faces_whose_centre_is_in_a_seat_and_blurs_all_without_seats(two_clerks: tuple[np.ndarray, Box, Box]) -> None:
    frame, seated, passer = two_clerks
    both_seated = redact(frame, [SEAT, ((320, 0), (639, 0), (639, 479), (320, 479))], [], [seated, passer])
    assert np.array_equal(both_seated, frame), "faces in seats and no customer side: nothing to hide"

    no_seats = redact(frame, [], [], [seated, passer])
    for box in (seated, passer):
        top, right, bottom, left = box
        assert _detail(no_seats[top:bottom, left:right]) < 0.33 * _detail(frame[top:bottom, left:right])
    assert not any(_centre_in(box, _faces(no_seats)) for box in (seated, passer))


def test_the_redacted_jpeg_is_accepted_and_stored_as_sent(hall: Hall, two_clerks: tuple[np.ndarray, Box, Box]) -> None:
    frame, seated, passer = two_clerks
    picture = jpeg(redact(frame, [SEAT], [CUSTOMER], [seated, passer]))
    decoded = cv2.imdecode(np.frombuffer(picture, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == frame.shape
    assert hall.upload(picture).status_code == 201
    assert hall.client.get("/api/evidence/evidence-0001", headers=BEARER).content == picture
