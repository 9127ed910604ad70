"""The window camera: frames in; seat states, seated identity, heartbeats and evidence out.

One camera watches the staff seats of one or a few windows.  Per frame it
updates the occupancy monitor (:mod:`vision.occupancy`) and publishes each
seat's change as a ``seat`` event dated at the change's onset; a ``vacant``
change takes an evidence snapshot (blurred on the camera,
:mod:`vision.evidence`) whose id travels with the event.  While a seat is
occupied the seated person is identified now and then
(:mod:`vision.seat_identity`).  Every ``heartbeat_s`` each decided seat
repeats its state with its confidence.

A camera that cannot see says so: when the stream drops, the file ends or
the picture freezes, the seats are forgotten (no heartbeat, never
"vacant"), the device's status becomes offline with the reason — so the
server shows the window as unknown and the device fault — and the camera
is reopened with backoff.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent.config import CONFIG_DIR, CameraSpec, ConfigPath
from agent.evidence_spool import EvidenceSpool
from agent.gallery_sync import GallerySync
from broker.protocol import Ident, SeatBody, SeatHeartbeatBody
from vision.camera import Camera
from vision.evidence import jpeg, redact
from vision.faces import FaceSettings, find_faces, from_bgr
from vision.gallery import TerminalGallery
from vision.gallery_seal import TerminalKeys
from vision.occupancy import Change, Frame, OccupancyMonitor, OccupancySettings, Polygon, SeatRegion, hog_faces
from vision.seat_identity import SeatIdentity

if TYPE_CHECKING:
    from agent.runtime import AgentRuntime

log = logging.getLogger(__name__)

Emit = Callable[[SeatBody | SeatHeartbeatBody, datetime], object]
Cause = Literal["vacancy", "request"]
Snapshot = Callable[[str, str, Cause, datetime, bytes], None]
"""(evidence id, window id, cause, taken at, JPEG) → keep it for upload (:meth:`EvidenceSpool.add`)."""


class SeatSpec(BaseModel):
    """One staff seat in the camera's picture (pixels of the camera's own frame)."""

    model_config = ConfigDict(extra="forbid")

    window_id: Ident
    seat: Ident = "main"
    polygon: list[tuple[int, int]] = Field(min_length=3, max_length=64)


class WindowCameraOptions(BaseModel):
    """The ``window_camera`` source's keys in an agent file (``[[sources]] kind = "window_camera"``)."""

    model_config = ConfigDict(extra="forbid")

    camera: CameraSpec
    reference: ConfigPath = Field(description="the empty-seat picture captured by `hallwatch camera calibrate`")
    seats: list[SeatSpec] = Field(min_length=1, max_length=8)
    customer: list[list[tuple[int, int]]] = Field(default_factory=list, description="customer-side polygons: always blurred, never a seat")
    fps: float = Field(default=5.0, gt=0, le=30)
    heartbeat_s: float = Field(default=10.0, ge=1, le=3600)
    frozen_s: float = Field(default=10.0, ge=1, le=600)
    occupancy: OccupancySettings = Field(default_factory=OccupancySettings)
    face_upsample: int = Field(default=1, ge=0, le=2)
    """HOG upsampling for faces in the seats: 1 finds faces from about 40 px (a camera 1–2 m from the clerk)."""
    face_min_px: int = Field(default=60, ge=20, le=400)
    """Smallest face used to identify the seated person."""
    server_url: str | None = Field(default=None, pattern=r"^https?://")
    evidence_dir: ConfigPath | None = None
    """Where snapshots wait for upload (needs ``server_url``); none: no evidence."""
    gallery_dir: ConfigPath | None = None
    """Where the face gallery is kept (needs ``server_url``); none: the seated person is not identified."""
    identify_every_s: float = Field(default=180.0, ge=10, le=86400)
    identify_window_s: float = Field(default=10.0, ge=1, le=120)

    @field_validator("customer")
    @classmethod
    def _polygons(cls, value: list[list[tuple[int, int]]]) -> list[list[tuple[int, int]]]:
        for index, polygon in enumerate(value):
            if len(polygon) < 3:
                raise ValueError(f"customer[{index}]: a polygon needs at least 3 points")
        return value

    @model_validator(mode="after")
    def _needs_server(self) -> WindowCameraOptions:
        for name in ("evidence_dir", "gallery_dir"):
            if getattr(self, name) is not None and self.server_url is None:
                raise ValueError(f"{name} needs server_url (the HallWatch server the camera talks to)")
        keys = [(s.window_id, s.seat) for s in self.seats]
        if len(set(keys)) != len(keys):
            raise ValueError("seats: the same (window_id, seat) is listed twice")
        return self

    def regions(self) -> list[SeatRegion]:
        return [SeatRegion(s.window_id, s.seat, tuple(s.polygon)) for s in self.seats]

    def customer_polygons(self) -> list[Polygon]:
        return [tuple(p) for p in self.customer]


def load_reference(path: Path) -> Frame:
    """The empty-seat reference picture, or ValueError naming the file."""
    data = np.fromfile(str(path), dtype=np.uint8) if path.is_file() else np.zeros(0, np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ValueError(f"reference {path}: missing or not a picture (run `hallwatch camera calibrate`)")
    return image


class CalibrationMismatch(ValueError):
    """The camera's frames no longer fit its reference (another camera, or another resolution)."""


class WindowCamera:
    """Decides what to publish from frames (one thread calls :meth:`on_frame`; commands may come from another)."""

    def __init__(
        self,
        monitor: OccupancyMonitor,
        emit: Emit,
        *,
        heartbeat_s: float = 10.0,
        customer: list[Polygon] | None = None,
        identity: SeatIdentity | None = None,
        snapshot: Snapshot | None = None,
        faces: Callable[[Frame], list[tuple[int, int, int, int]]] | None = None,
    ) -> None:
        self.monitor = monitor
        self._emit = emit
        self.heartbeat_s = heartbeat_s
        self.customer = customer or []
        self.identity = identity
        self._snapshot = snapshot
        self._faces = faces or _all_faces
        self._lock = threading.Lock()
        self._seeing = False
        self._requested: list[tuple[str, str]] = []
        self._next_heartbeat: float | None = None
        self._occupant: dict[tuple[str, str], str | None] = {}
        self._state: dict[tuple[str, str], str] = {}

    def on_frame(self, frame: Frame, at: datetime) -> list[Change]:
        """Look at one frame taken at ``at`` (hall time); what changed."""
        if (frame.shape[1], frame.shape[0]) != self.monitor.size:
            size = self.monitor.size
            raise CalibrationMismatch(f"frames are {frame.shape[1]}×{frame.shape[0]}, the reference {size[0]}×{size[1]}: recalibrate (hallwatch camera calibrate)")
        t = at.timestamp()
        with self._lock:
            self._seeing = True
            requested, self._requested = self._requested, []
        for evidence_id, window_id in requested:
            self._take(frame, at, window_id, "request", evidence_id)
        changes = self.monitor.update(frame, t)
        for change in changes:
            self._publish_change(change, frame, at)
        self._identify(frame, at)
        if self._next_heartbeat is None or t >= self._next_heartbeat:
            self._next_heartbeat = t + self.heartbeat_s
            for region, state, confidence in self.monitor.states():
                if state is not None:
                    self._emit(SeatHeartbeatBody(window_id=region.window_id, seat=region.seat, state=state, confidence=confidence), at)
        return changes

    def lost(self) -> None:
        """The camera stopped delivering: forget every seat (nothing is published until it sees again)."""
        self.monitor.reset()
        with self._lock:
            self._seeing = False
        self._next_heartbeat = None
        for region in self.monitor.regions:
            key = (region.window_id, region.seat)
            self._occupant.pop(key, None)
            self._state.pop(key, None)
            if self.identity is not None:
                self.identity.left(key)

    def request_snapshot(self, window_id: str | None) -> str:
        """The server asked for a snapshot (command ``snapshot``): the next frame is taken; its evidence id.

        Taken on the frame thread, so the face detector never runs on two
        threads at once; the id is known now, for the command's answer.
        """
        if self._snapshot is None:
            raise RuntimeError("this camera keeps no evidence (no evidence_dir configured)")
        windows = sorted({r.window_id for r in self.monitor.regions})
        if window_id is not None and window_id not in windows:
            raise ValueError(f"this camera does not watch window {window_id}")
        evidence_id = uuid.uuid4().hex
        with self._lock:
            if not self._seeing:
                raise RuntimeError("the camera has no picture now")
            self._requested.append((evidence_id, window_id or windows[0]))
        return evidence_id

    # ---------------------------------------------------------- internals

    def _publish_change(self, change: Change, frame: Frame, at: datetime) -> None:
        region = change.region
        key = (region.window_id, region.seat)
        since = at - timedelta(seconds=max(0.0, at.timestamp() - change.since))
        snapshot_id = None
        previous, self._state[key] = self._state.get(key), change.state
        if change.state == "vacant":
            self._occupant.pop(key, None)
            if self.identity is not None:
                self.identity.left(key)
            if self._snapshot is not None and previous == "occupied":  # the onset of a vacancy, not a first look at an empty seat
                snapshot_id = self._take(frame, at, region.window_id, "vacancy", uuid.uuid4().hex)
        elif self.identity is not None:
            self.identity.arrived(key, at.timestamp())
        body = SeatBody(window_id=region.window_id, seat=region.seat, state=change.state, confidence=change.confidence, snapshot_id=snapshot_id)
        self._emit(body, since)

    def _identify(self, frame: Frame, at: datetime) -> None:
        if self.identity is None or not self.identity.ready:
            return
        t = at.timestamp()
        for region, state, confidence in self.monitor.states():
            key = (region.window_id, region.seat)
            if state != "occupied" or not self.identity.looking(key, t):
                continue
            ended, occupant = self.identity.observe(key, frame, region.polygon, t)
            if not ended or occupant is None or self._occupant.get(key) == occupant:
                continue
            self._occupant[key] = occupant
            self._emit(SeatBody(window_id=region.window_id, seat=region.seat, state="occupied", confidence=confidence, occupant=occupant), at)

    def _take(self, frame: Frame, at: datetime, window_id: str, cause: Cause, evidence_id: str) -> str:
        assert self._snapshot is not None
        seats = [r.polygon for r in self.monitor.regions]
        picture = jpeg(redact(frame, seats, self.customer, self._faces(frame)))
        self._snapshot(evidence_id, window_id, cause, at, picture)
        log.info("evidence %s (%s) taken for %s", evidence_id, cause, window_id)
        return evidence_id


def _all_faces(frame: Frame) -> list[tuple[int, int, int, int]]:
    """Every face in the whole frame (upsampled once), for blurring before a snapshot leaves the camera."""
    return [box for box, _, _ in find_faces(from_bgr(frame), FaceSettings(upsample=1, max_side=max(frame.shape[:2])))]


def run(
    camera_logic: WindowCamera, camera: Camera, stop: threading.Event, clock: Callable[[], datetime], on_mismatch: Callable[[str], None]
) -> None:
    """Feed the camera's frames until ``stop``; a recording is played in real time (a live camera paces itself).

    Frames that do not fit the reference stop the work (``on_mismatch`` says
    why) until the agent is restarted after a new calibration: guessing on a
    picture of another scene would be worse than saying nothing.
    """
    for frame in camera.frames(stop):
        started = time.monotonic()
        try:
            camera_logic.on_frame(frame, clock())
        except CalibrationMismatch as exc:
            camera_logic.lost()
            on_mismatch(str(exc))
            log.error("window camera stopped: %s", exc)
            stop.wait()
            return
        if camera.is_file:
            stop.wait(max(0.0, camera.period - (time.monotonic() - started)))


def window_camera_source(config_dir: Path | None = None, **options: object) -> Callable[[AgentRuntime, threading.Event], None]:
    """Entry point ``hallwatch.sources: window_camera``: camera → seat states, identity, evidence.

    Bad options, a missing reference picture or a seat outside the picture
    fail at start with the key that is wrong.  Identification needs the
    gallery keys (HALLWATCH_GALLERY_KEY_FILE, HALLWATCH_GALLERY_VERIFY_KEY_FILE).
    """
    settings = WindowCameraOptions.model_validate(options, context={CONFIG_DIR: config_dir})
    reference = load_reference(settings.reference)
    customer = settings.customer_polygons()
    face_finder = hog_faces(upsample=settings.face_upsample, min_face_px=max(20, settings.face_min_px // 2))
    OccupancyMonitor(settings.regions(), reference, settings.occupancy, customer=customer)  # checks the seats against the picture now
    keys = TerminalKeys.from_env() if settings.gallery_dir is not None else None

    def source(runtime: AgentRuntime, stop: threading.Event) -> None:
        watched = set(runtime.device.windows)
        foreign = sorted({s.window_id for s in settings.seats} - watched)
        if foreign:
            runtime.set_fault(f"配置错误 configuration: seats of windows {', '.join(foreign)} not in this device's windows", part="camera")
            log.error("window camera: seats of windows %s are not in device.windows %s", foreign, sorted(watched))
            return
        monitor = OccupancyMonitor(settings.regions(), reference, settings.occupancy, customer=customer, face_finder=face_finder)
        identity = SeatIdentity(FaceSettings(upsample=settings.face_upsample, min_face_px=settings.face_min_px), every_s=settings.identify_every_s, window_s=settings.identify_window_s) if keys else None
        spool = None
        if settings.evidence_dir is not None and settings.server_url is not None:
            spool = EvidenceSpool(settings.evidence_dir, settings.server_url, runtime.device.device_id, runtime.settings.broker)
            spool.start()
        logic = WindowCamera(
            monitor,
            lambda body, at: runtime.emit(body, at),
            heartbeat_s=settings.heartbeat_s,
            customer=customer,
            identity=identity,
            snapshot=spool.add if spool else None,
        )
        runtime.commands["snapshot"] = lambda args: logic.request_snapshot(args.get("window_id"))
        sync = None
        if identity is not None and keys is not None and settings.gallery_dir is not None and settings.server_url is not None:
            sync = GallerySync(runtime, settings.gallery_dir, settings.server_url, keys, lambda version, payload: identity.set_gallery(TerminalGallery.from_bytes(payload)))
            sync.start()

        def lost(reason: str) -> None:
            logic.lost()
            runtime.set_fault(f"摄像头无画面 camera lost: {reason}", part="camera")

        camera = Camera(settings.camera, fps=settings.fps, frozen_s=settings.frozen_s, on_lost=lost, on_back=lambda: runtime.set_fault(None, part="camera"))
        try:
            run(logic, camera, stop, runtime.clock, lambda reason: runtime.set_fault(f"需要重新标定 {reason}", part="camera"))
        finally:
            if sync is not None:
                sync.stop()
            if spool is not None:
                spool.stop()

    return source
