"""The window camera on the real video: seat events dated at their onset, heartbeats,
evidence, a lost camera, calibration — and the whole chain through Mosquitto to the server."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from mosquitto_proc import free_port, start_mosquitto
from procs import ROOT, AppServer, wait_for

from agent.config import load_agent_settings
from agent.runtime import AgentRuntime
from agent.sources import load_sources
from broker.connection import BrokerSettings
from broker.mosquitto import BrokerAuthFiles
from broker.protocol import SeatBody, SeatHeartbeatBody
from broker.timeutil import HALL_TZ
from conftest import TESTDATA, require, require_executable
from server.web.app import ServerSettings, create_app
from server.config.hall import load_hall
from vision.occupancy import OccupancyMonitor, OccupancySettings, SeatRegion
from vision.seat_camera import WindowCamera

VIDEO = TESTDATA / "video" / "one-by-one-person-detection.mp4"
TABLE = ((370, 60), (540, 60), (540, 360), (370, 360))
STANDING = OccupancySettings(occupied_after_s=1.0, vacant_after_s=3.0)
"""People at a standing table step away and back within seconds; a seated clerk uses the defaults."""
T0 = datetime(2026, 3, 2, 9, 10, tzinfo=HALL_TZ)  # a Monday, the hall open


def _video_frames(first: int, last: int, step: int = 2) -> list[tuple[float, np.ndarray]]:
    """(seconds into the video, frame) for frames first..last, every ``step``-th (10 fps → 5 fps)."""
    require(VIDEO.is_file(), f"test video not found at {VIDEO}")
    capture = cv2.VideoCapture(str(VIDEO))
    out = []
    index = 0
    while index <= last:
        ok, frame = capture.read()
        if not ok:
            break
        if index >= first and (index - first) % step == 0:
            out.append((index / 10.0, frame))
        index += 1
    capture.release()
    return out


class Published:
    """What the camera logic emitted, and the snapshots it kept (the real sinks' signatures)."""

    def __init__(self) -> None:
        self.events: list[tuple[SeatBody | SeatHeartbeatBody, datetime]] = []
        self.snapshots: list[tuple[str, str, str, datetime, bytes]] = []

    def emit(self, body: SeatBody | SeatHeartbeatBody, at: datetime) -> None:
        self.events.append((body, at))

    def keep(self, evidence_id: str, window_id: str, cause: str, at: datetime, picture: bytes) -> None:
        self.snapshots.append((evidence_id, window_id, cause, at, picture))

    def seats(self) -> list[tuple[str, float, str | None]]:
        return [(b.state, (at - T0).total_seconds(), b.snapshot_id) for b, at in self.events if isinstance(b, SeatBody)]

    def heartbeats(self) -> list[tuple[float, str]]:
        return [((at - T0).total_seconds(), b.state) for b, at in self.events if isinstance(b, SeatHeartbeatBody)]


@pytest.fixture(scope="module")
def first_visit() -> list[tuple[float, np.ndarray]]:
    """Seconds 0–22.8 of the video: the table empty, one person from about 7 s to 18 s, empty again."""
    return _video_frames(0, 228)


def _camera(frames: list[tuple[float, np.ndarray]], published: Published) -> WindowCamera:
    monitor = OccupancyMonitor([SeatRegion("w01", "main", TABLE)], frames[0][1], STANDING)
    return WindowCamera(monitor, published.emit, heartbeat_s=10.0, snapshot=published.keep, customer=[((0, 380), (767, 380), (767, 431), (0, 431))])


def test_seat_events_are_dated_when_the_change_began_and_a_vacancy_carries_a_snapshot(first_visit: list[tuple[float, np.ndarray]]) -> None:
    published = Published()
    camera = _camera(first_visit, published)
    for second, frame in first_visit:
        camera.on_frame(frame, T0 + timedelta(seconds=second))
    (empty, at_start, no_snapshot), (arrived, at_arrival, none), (left, at_leaving, snapshot_id) = published.seats()
    assert (empty, at_start, no_snapshot) == ("vacant", 0.0, None), "a seat empty from the start: decided, but no vacancy began, no snapshot"
    assert (arrived, none, left) == ("occupied", None, "vacant")
    assert 6.0 <= at_arrival <= 8.0, "dated at the first sighting, not when hysteresis decided"
    assert 17.0 <= at_leaving <= 19.5, "dated at the last sighting"
    [(evidence_id, window_id, cause, taken_at, picture)] = published.snapshots
    assert (evidence_id, window_id, cause) == (snapshot_id, "w01", "vacancy")
    assert (taken_at - T0).total_seconds() == pytest.approx(at_leaving + STANDING.vacant_after_s, abs=0.5), "taken when the vacancy was decided"
    image = cv2.imdecode(np.frombuffer(picture, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (432, 768, 3)
    strip = image[390:432].astype(float)
    assert cv2.Laplacian(strip, cv2.CV_64F).var() < 0.3 * cv2.Laplacian(first_visit[-1][1][390:432].astype(float), cv2.CV_64F).var(), "the customer side is pixelated"


def test_heartbeats_repeat_the_decided_state_and_none_comes_before_a_decision(first_visit: list[tuple[float, np.ndarray]]) -> None:
    published = Published()
    camera = _camera(first_visit, published)
    for second, frame in first_visit:
        camera.on_frame(frame, T0 + timedelta(seconds=second))
    beats = published.heartbeats()
    [(decided, first_state)] = [(t, s) for s, t, _ in published.seats()[:1]]  # (state, time)
    assert beats, "heartbeats are sent"
    assert all(b - a == pytest.approx(10.0, abs=0.21) for (a, _), (b, _) in zip(beats, beats[1:])), "every heartbeat_s"
    for t, state in beats:
        changes = [(at, s) for s, at, _ in published.seats() if at <= t]
        assert changes, f"no heartbeat at {t} s before the seat was decided"
    occupied = [t for t, s in beats if s == "occupied"]
    assert occupied and all(8.0 <= t <= 22.0 for t in occupied), "an occupied heartbeat only while the person is there (decided at ≥ 8 s, undecided until vacant ≈ 21 s)"


def test_a_lost_camera_forgets_its_seats_and_never_reports_vacant(first_visit: list[tuple[float, np.ndarray]]) -> None:
    published = Published()
    camera = _camera(first_visit, published)
    visit = [(s, f) for s, f in first_visit if s <= 12.0]
    for second, frame in visit:
        camera.on_frame(frame, T0 + timedelta(seconds=second))
    assert [s for s, _, _ in published.seats()] == ["vacant", "occupied"]
    camera.lost()
    assert [state for _, state, _ in camera.monitor.states()] == [None], "undecided: nothing is claimed while blind"
    with pytest.raises(RuntimeError, match="no picture"):
        camera.request_snapshot("w01")
    before = len(published.events)
    # It sees again (the person has left meanwhile): nothing until hysteresis decides afresh.
    empty = [(s, f) for s, f in first_visit if s >= 19.4]
    camera.on_frame(empty[0][1], T0 + timedelta(seconds=empty[0][0]))
    assert published.events[before:] == [], "no seat event or heartbeat straight after the camera is back"
    for second, frame in empty[1:]:
        camera.on_frame(frame, T0 + timedelta(seconds=second))
    *_, (state, since, snapshot_id) = published.seats()
    assert len(published.seats()) == 3 and state == "vacant" and since == empty[0][0], "vacant again only once seen empty for vacant_after_s, from when it saw again"
    assert snapshot_id is None, "the vacancy began while the camera was blind: no onset to show"


def test_a_requested_snapshot_is_taken_on_the_next_frame_for_a_watched_window(first_visit: list[tuple[float, np.ndarray]]) -> None:
    published = Published()
    camera = _camera(first_visit, published)
    camera.on_frame(first_visit[0][1], T0)
    with pytest.raises(ValueError, match="does not watch window w09"):
        camera.request_snapshot("w09")
    evidence_id = camera.request_snapshot("w01")
    assert published.snapshots == [], "taken on the frame thread, not the command's"
    camera.on_frame(first_visit[1][1], T0 + timedelta(seconds=0.2))
    assert [(e, w, c) for e, w, c, _, _ in published.snapshots] == [(evidence_id, "w01", "request")]
    without = WindowCamera(camera.monitor, published.emit)
    with pytest.raises(RuntimeError, match="no evidence_dir"):
        without.request_snapshot("w01")


# --------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------


def _recording(path: Path, first: int, last: int) -> Path:
    """Frames first..last of the real video as a 10 fps recording (what a camera would have stored)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (768, 432))
    for _, frame in _video_frames(first, last, step=1):
        writer.write(frame)
    writer.release()
    return path


def _agent_file(tmp_path: Path, camera: Path, seats: str, *, extra: str = "", options: str = "", broker: str = "mqtt://127.0.0.1:1883") -> Path:
    path = tmp_path / "cam-01.toml"
    path.write_text(
        f"""
heartbeat_s = 5
[device]
hall_id = "demo"
device_id = "cam-01"
kind = "window_camera"
windows = ["w01", "w02", "w03"]
[broker]
url = "{broker}"
{extra}
[outbox]
path = "cam-01.db"
[[sources]]
kind = "window_camera"
camera = "{camera}"
reference = "{tmp_path / 'cam' / 'reference.png'}"
fps = 5
heartbeat_s = 10
{options}
customer = [[[0, 380], [767, 380], [767, 431], [0, 431]]]
{seats}
[sources.occupancy]
occupied_after_s = 1.0
vacant_after_s = 3.0
"""
    )
    return path


TABLE_SEAT = """[[sources.seats]]
window_id = "w01"
polygon = [[370, 60], [540, 60], [540, 360], [370, 360]]"""


def _calibrate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server.cli", "camera", "calibrate", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_calibration_takes_the_empty_seat_draws_the_regions_and_checks_them(tmp_path: Path) -> None:
    video = _recording(tmp_path / "table.avi", 0, 100)
    agent_file = _agent_file(tmp_path, video, TABLE_SEAT)
    done = _calibrate(str(agent_file), "--frames", "10")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "calibration passed" in done.stdout
    reference = cv2.imread(str(tmp_path / "cam" / "reference.png"))
    drawing = cv2.imread(str(tmp_path / "cam" / "reference-regions.png"))
    assert reference.shape == drawing.shape == (432, 768, 3)
    assert (drawing[60, 380:530] != reference[60, 380:530]).any(), "the seat's outline is drawn"
    assert _calibrate(str(agent_file), "--check-only").returncode == 0

    # A seat hanging out of the picture, and one on top of the customer side: refused, named, nothing written.
    (tmp_path / "cam" / "reference.png").unlink()
    bad = TABLE_SEAT + """
[[sources.seats]]
window_id = "w02"
polygon = [[700, 300], [800, 300], [800, 420], [700, 420]]"""
    done = _calibrate(str(_agent_file(tmp_path, video, bad)), "--frames", "10")
    assert done.returncode == 1
    assert "w02/main" in done.stdout and "inside the picture" in done.stdout and "no overlap" in done.stdout
    assert "calibration failed" in done.stdout and not (tmp_path / "cam" / "reference.png").exists()


def test_calibration_refuses_a_seat_with_someone_moving_in_it(tmp_path: Path) -> None:
    video = _recording(tmp_path / "table.avi", 0, 200)
    done = _calibrate(str(_agent_file(tmp_path, video, TABLE_SEAT)), "--frames", "15", "--at", "7.0")
    assert done.returncode == 1, done.stdout
    assert "still while captured" in done.stdout and "FAILED" in done.stdout


def test_calibration_names_a_missing_camera_and_a_file_without_a_window_camera(tmp_path: Path) -> None:
    done = _calibrate(str(_agent_file(tmp_path, tmp_path / "nothing.avi", TABLE_SEAT)))
    assert done.returncode == 2 and "gave no frame" in done.stdout
    other = tmp_path / "ft.toml"
    other.write_text('[device]\nhall_id = "demo"\ndevice_id = "ft-01"\nkind = "face_terminal"\n[outbox]\npath = "x.db"\n')
    done = _calibrate(str(other))
    assert done.returncode == 2 and "no [[sources]] entry" in done.stdout


# --------------------------------------------------------------------------
# The whole chain: recording → agent → Mosquitto → server
# --------------------------------------------------------------------------


class HallClock:
    """The hall's clock for agent and server alike: a Monday morning, running at real speed."""

    def __init__(self, start: datetime) -> None:
        self.start, self.began = start, time.monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.began)


@pytest.mark.mosquitto
def test_a_camera_whose_recording_ends_makes_its_window_unknown_and_the_server_shows_the_fault(tmp_path: Path) -> None:
    require_executable("mosquitto")
    auth = BrokerAuthFiles(tmp_path / "auth")
    secrets = {}
    for name, password in (("server", auth.add_server("demo")), ("cam-01", auth.add_device("demo", "cam-01", kind="window_camera"))):
        secrets[name] = tmp_path / f"{name}.secret"
        secrets[name].write_text(password + "\n")
        secrets[name].chmod(0o600)
    token = tmp_path / "admin.token"
    token.write_text("evidence-viewer-token\n")
    token.chmod(0o600)
    admin = {"Authorization": "Bearer evidence-viewer-token"}
    video = _recording(tmp_path / "table.avi", 50, 228)  # 5 s – 22.8 s of the video: empty, a visit of ~12 s, empty
    clock = HallClock(T0)
    with start_mosquitto(tmp_path, auth=auth) as broker:
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        settings = ServerSettings(
            hall_file=ROOT / "config/halls/demo.toml",
            database_url=f"sqlite:///{tmp_path / 'hw.db'}",
            broker=BrokerSettings(url=broker.url, username="hallwatch-server", password_file=secrets["server"]),
            data_dir=tmp_path / "server",
            passwd_file=auth.passwd_path,
            admin_token_file=token,
        )
        server = AppServer(create_app(settings, load_hall(settings.hall_file), clock), port).start()
        agent_file = _agent_file(
            tmp_path,
            video,
            TABLE_SEAT,
            options=f'server_url = "{api}"\nevidence_dir = "{tmp_path / "spool"}"',
            extra=f'username = "cam-01"\npassword_file = "{secrets["cam-01"]}"',
            broker=broker.url,
        )
        assert _calibrate(str(agent_file), "--frames", "10").returncode == 0
        agent_settings = load_agent_settings(agent_file)
        runtime = AgentRuntime(agent_settings, clock=clock, sources=load_sources(agent_settings))
        runtime.start()
        try:

            def seat_events() -> list[dict]:
                return sorted((e for e in httpx.get(f"{api}/api/events", params={"limit": 500, "type": "seat"}, headers=admin).json()), key=lambda e: e["event_time"])

            def device() -> dict:
                return next(d for d in httpx.get(f"{api}/api/devices", headers=admin).json() if d["id"] == "cam-01")

            wait_for(lambda: any(e["body"]["state"] == "occupied" for e in seat_events()), 30, "the visit to be seen")
            asked = httpx.post(f"{api}/api/evidence/request", params={"window_id": "w01"}, headers=admin)
            assert asked.status_code == 202, asked.text
            [command] = asked.json()["commands"]
            assert command["device_id"] == "cam-01"
            ack = wait_for(
                lambda: next((e["body"] for e in httpx.get(f"{api}/api/events", params={"type": "ack"}, headers=admin).json() if e["body"]["ref_id"] == command["cmd_id"]), None),
                15,
                "the snapshot command's answer",
            )
            assert ack["ok"], ack
            fault = wait_for(lambda: device()["reason"], 60, "the camera's fault once the recording ends")
            assert device()["status"] == "offline" and "camera lost: ended" in fault and "摄像头无画面" in fault

            (arrived, left) = [(e["body"]["state"], e["body"]["snapshot_id"]) for e in seat_events()]
            assert arrived == ("occupied", None), "the person arrives within the first seconds: no vacancy decided before"
            assert left[0] == "vacant" and left[1], "the vacancy comes with a snapshot; nothing after the recording ended"
            window = wait_for(lambda: next((w for w in httpx.get(f"{api}/api/windows", headers=admin).json() if w["id"] == "w01" and w["state"] == "unknown"), None), 15, "w01 unknown")
            assert window["camera_status"] == "offline" and window["state"] != "vacant"

            shelf = wait_for(lambda: (lambda got: got if len(got) == 2 else None)(httpx.get(f"{api}/api/evidence", headers=admin).json()), 30, "both pictures uploaded")
            assert {(p["id"], p["cause"]) for p in shelf} == {(left[1], "vacancy"), (ack["detail"], "request")}
            picture = httpx.get(f"{api}/api/evidence/{left[1]}", headers=admin)
            assert picture.headers["content-type"] == "image/jpeg"
            assert cv2.imdecode(np.frombuffer(picture.content, np.uint8), cv2.IMREAD_COLOR).shape == (432, 768, 3)
            assert httpx.get(f"{api}/api/evidence/{left[1]}").status_code == 401, "evidence is not public"
            assert list((tmp_path / "spool").iterdir()) == [], "nothing left waiting on the camera"
        finally:
            runtime.stop()
            server.stop()


def test_frames_of_another_size_stop_the_camera_with_a_fault_instead_of_guessing(first_visit: list[tuple[float, np.ndarray]], tmp_path: Path) -> None:
    from vision.camera import Camera
    from vision.seat_camera import run

    video = tmp_path / "other.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for _, frame in first_visit[:20]:
        writer.write(cv2.resize(frame, (640, 480)))
    writer.release()
    published = Published()
    camera = _camera(first_visit, published)  # calibrated at 768×432
    faults: list[str] = []
    stop = threading.Event()
    worker = threading.Thread(target=run, args=(camera, Camera(str(video), fps=5), stop, lambda: T0, faults.append))
    worker.start()
    wait_for(lambda: faults, 15, "the mismatch to be reported")
    stop.set()
    worker.join(10)
    assert faults == ["frames are 640×480, the reference 768×432: recalibrate (hallwatch camera calibrate)"]
    assert published.events == [], "nothing published from a picture that does not fit"


# --------------------------------------------------------------------------
# Seated identity, on a composed clip with real faces
# --------------------------------------------------------------------------


def test_the_seated_person_is_named_a_stranger_is_unknown_and_a_hidden_face_names_nobody(faces_dir: Path) -> None:
    from clips import SEAT, who_sits
    from frames import enrolled_gallery

    from vision.faces import FaceSettings
    from vision.occupancy import hog_faces
    from vision.seat_identity import SeatIdentity

    clip = who_sits(faces_dir)
    gallery = enrolled_gallery(faces_dir, leave_out=lambda photo: photo.startswith("known/obama/") or photo == "known/jack_dorsey/jack_dorsey_17.jpg")
    identity = SeatIdentity(FaceSettings(upsample=0, min_face_px=60), every_s=180.0, window_s=10.0)
    identity.set_gallery(gallery)
    monitor = OccupancyMonitor([SeatRegion("w01", "main", SEAT)], clip.reference, face_finder=hog_faces())
    published = Published()
    camera = WindowCamera(monitor, published.emit, heartbeat_s=600.0, identity=identity)
    for t, frame in clip.frames():
        camera.on_frame(frame, T0 + timedelta(seconds=t))
    seats = [(b.state, b.occupant, round((at - T0).total_seconds())) for b, at in published.events if isinstance(b, SeatBody)]
    named = [(who, at) for state, who, at in seats if who is not None]
    assert [who for who, _ in named] == ["jack_dorsey", "unknown"], seats
    assert 4 <= named[0][1] <= 15 and 54 <= named[1][1] <= 67, "named within the look at arrival (up to 10 s)"
    assert [s for s, _, _ in seats] == ["occupied", "occupied", "vacant", "occupied", "occupied", "vacant", "occupied", "vacant"], "the clerk from 2 s: no vacancy decided before"
    assert all(who is None for state, who, at in seats if at >= 100), "looking down the whole stay: not visible, nobody is named"


def test_a_live_stream_faster_than_fps_is_thinned_not_queued(tmp_path: Path) -> None:
    """A stream delivering faster than ``fps`` (here a recording read as if live, as fast as it decodes)
    hands on about ``fps`` frames a second: the rest are grabbed and dropped, never queued."""
    from vision.camera import Camera

    video = _recording(tmp_path / "fast.avi", 0, 300)
    stop = threading.Event()
    camera = Camera(str(video), fps=5, on_lost=lambda reason: stop.set())
    camera.is_file = False  # read it the way a live camera is read
    handed, started = 0, time.monotonic()
    for _ in camera.frames(stop):
        handed += 1
    elapsed = time.monotonic() - started
    assert 1 <= handed <= 2 + elapsed * 5, f"{handed} frames handed on in {elapsed:.2f} s of a 301-frame stream"
