"""The clock-in terminal on video composed from the real photos: one punch per person, none for strangers."""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from frames import enrolled_gallery, terminal_frame

from broker.protocol import PunchBody
from broker.timeutil import HALL_TZ
from vision.faces import FaceSettings, Face, load_image, one_face
from vision.gallery import TerminalGallery, hash_pin
from vision.liveness import Challenge, LivenessSettings
from vision.camera import Camera
from vision.terminal import FaceTerminal, Feedback, TerminalSettings, run

SETTINGS = FaceSettings()
T0 = datetime(2026, 3, 2, 8, 25, tzinfo=HALL_TZ)
PROBE = "known/nuaa_0003/0003_01_00_01_490.jpg"  # never enrolled: the terminal sees a new picture


@pytest.fixture(scope="module")
def gallery(faces_dir: Path) -> TerminalGallery:
    return enrolled_gallery(
        faces_dir,
        leave_out=lambda photo: photo == PROBE,
        extra=lambda p: {"name": f"职员{p[-1]}", "staff_no": p[-4:] if p.startswith("nuaa") else None, "pin_hash": hash_pin("2468") if p == "nuaa_0003" else None},
    )


def _portrait(path: Path) -> np.ndarray:
    """The person as a terminal camera frames them: head and shoulders, the face ~180 px."""
    image = load_image(path)
    face = one_face(image, SETTINGS, largest=True)
    assert isinstance(face, Face), path
    top, right, bottom, left = face.box
    side = int(2.2 * (bottom - top))
    cy, cx = (top + bottom) // 2, (left + right) // 2
    padded = cv2.copyMakeBorder(image, side, side, side, side, cv2.BORDER_CONSTANT, value=(110, 110, 110))
    crop = padded[cy + side - side // 2 : cy + side + side // 2, cx + side - side // 2 : cx + side + side // 2]
    frame = np.full((480, 640, 3), 110, np.uint8)
    frame[40:440, 120:520] = cv2.cvtColor(cv2.resize(crop, (400, 400)), cv2.COLOR_RGB2BGR)
    return frame


class Recorder:
    """Collects what the terminal emits and says (the terminal's two outputs)."""

    def __init__(self) -> None:
        self.punches: list[tuple[PunchBody, datetime]] = []
        self.said: list[Feedback] = []

    def emit(self, body: PunchBody, at: datetime) -> None:
        self.punches.append((body, at))

    def feedback(self, kind: Feedback, text: str) -> None:
        assert text
        self.said.append(kind)


def _terminal(gallery: TerminalGallery | None, recorder: Recorder, **settings: float) -> FaceTerminal:
    terminal = FaceTerminal(TerminalSettings(**settings), SETTINGS, recorder.emit, feedback=recorder.feedback)  # type: ignore[arg-type]
    if gallery is not None:
        terminal.set_gallery(gallery)
    return terminal


def test_a_clerk_standing_there_punches_once_with_the_evidence(gallery: TerminalGallery, faces_dir: Path) -> None:
    recorder = Recorder()
    terminal = _terminal(gallery, recorder, debounce_s=60)
    frame = terminal_frame(faces_dir / PROBE)
    for i in range(15):  # three seconds at 5 fps
        terminal.on_frame(frame, T0 + timedelta(seconds=i / 5))
    [(punch, at)] = recorder.punches
    assert (punch.person_id, punch.method) == ("nuaa_0003", "face")
    assert punch.distance is not None and punch.distance <= gallery.thresholds.threshold
    assert punch.margin is not None and punch.margin >= gallery.thresholds.margin
    assert punch.quality is not None and 0 < punch.quality <= 1
    assert punch.liveness is None and punch.challenge is None, "liveness off in this terminal"
    assert at == T0 + timedelta(seconds=2 / 5), "decided on the third agreeing frame"
    assert recorder.said[0] == "punched" and "again" in recorder.said
    # After the debounce period the same person punches again (clocking out).
    terminal.on_frame(frame, T0 + timedelta(seconds=61))
    terminal.on_frame(frame, T0 + timedelta(seconds=61.2))
    terminal.on_frame(frame, T0 + timedelta(seconds=61.4))
    assert len(recorder.punches) == 2


@pytest.mark.parametrize("stranger", ["elon_musk", "jeff_bezos"])
def test_a_stranger_never_produces_a_punch(gallery: TerminalGallery, faces_dir: Path, stranger: str) -> None:
    recorder = Recorder()
    terminal = _terminal(gallery, recorder)
    for path in sorted((faces_dir / "strangers" / stranger).iterdir()):
        frame = terminal_frame(path)
        for i in range(5):
            terminal.on_frame(frame, T0 + timedelta(seconds=i))
    assert recorder.punches == []
    assert set(recorder.said) <= {"unknown", "retry"} and recorder.said


def test_without_a_gallery_nothing_is_guessed(faces_dir: Path) -> None:
    recorder = Recorder()
    terminal = _terminal(None, recorder)
    terminal.on_frame(terminal_frame(faces_dir / PROBE), T0)
    assert recorder.punches == [] and recorder.said == ["no_gallery"]


def test_a_failed_liveness_check_stops_the_punch(gallery: TerminalGallery, faces_dir: Path) -> None:
    recorder = Recorder()
    strict = LivenessSettings(passive_threshold=0.999, active=False)
    terminal = FaceTerminal(TerminalSettings(), SETTINGS, recorder.emit, liveness=strict, feedback=recorder.feedback)
    terminal.set_gallery(gallery)
    for i in range(6):
        terminal.on_frame(terminal_frame(faces_dir / PROBE), T0 + timedelta(seconds=i))
    assert recorder.punches == [] and set(recorder.said) == {"spoof"}


TURN_RIGHT = ["jack_dorsey_17.jpg", "jack_dorsey_61.jpg", "jack_dorsey_59.jpg", "jack_dorsey_62.jpg"]  # frontal → right → front


def test_a_clerk_who_turns_their_head_when_asked_punches_with_the_challenge(gallery: TerminalGallery, faces_dir: Path) -> None:
    recorder = Recorder()
    liveness = LivenessSettings(challenges=(Challenge.TURN_RIGHT,))
    terminal = FaceTerminal(TerminalSettings(), SETTINGS, recorder.emit, liveness=liveness, feedback=recorder.feedback)
    terminal.set_gallery(gallery)
    frames = [_portrait(faces_dir / "known/jack_dorsey" / name) for name in TURN_RIGHT]
    t = T0
    for frame in [frames[0]] * 3 + [frames[1], frames[2], frames[3], frames[3]]:
        terminal.on_frame(frame, t)
        t += timedelta(seconds=0.4)
    assert recorder.said[0] == "challenge", recorder.said
    [(punch, _)] = recorder.punches
    assert punch.person_id == "jack_dorsey" and punch.challenge == "turn_right"
    assert punch.liveness is not None and punch.liveness >= liveness.passive_threshold


def test_a_printed_photo_moved_in_front_of_the_camera_never_punches(gallery: TerminalGallery, faces_dir: Path) -> None:
    """A print of an enrolled volunteer, waved, tilted and turned: identified maybe, never punched."""
    recorder = Recorder()
    terminal = FaceTerminal(TerminalSettings(), SETTINGS, recorder.emit, liveness=LivenessSettings(), feedback=recorder.feedback, rng=random.Random(3))
    terminal.set_gallery(gallery)
    base = terminal_frame(faces_dir / "spoof/nuaa_0003/0003_01_02_03_74.jpg")
    h, w = base.shape[:2]
    t = T0
    for step in range(40):
        shift = 25 * np.sin(step / 3)
        squeeze = 40 * np.sin(step / 5)  # the paper turned about its vertical axis
        corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        moved = np.float32([[shift, squeeze], [w + shift, -squeeze], [w + shift, h + squeeze], [shift, h - squeeze]])
        frame = cv2.warpPerspective(base, cv2.getPerspectiveTransform(corners, moved), (w, h), borderValue=(110, 110, 110))
        terminal.on_frame(frame, t)
        t += timedelta(seconds=0.25)
    assert recorder.punches == []
    assert "spoof" in recorder.said or set(recorder.said) <= {"unknown", "retry", "challenge"}


def test_staff_number_and_pin_punch_and_repeated_failures_lock(gallery: TerminalGallery) -> None:
    recorder = Recorder()
    terminal = _terminal(gallery, recorder, pin_max_failures=3, pin_lock_s=300)
    assert terminal.punch_with_pin("0003", "2468", T0)
    assert recorder.punches[0][0] == PunchBody(person_id="nuaa_0003", method="pin")
    for i in range(3):
        assert not terminal.punch_with_pin("0003", "0000", T0 + timedelta(minutes=2, seconds=i))
    assert not terminal.punch_with_pin("0003", "2468", T0 + timedelta(minutes=3)), "locked"
    assert recorder.said[-1] == "pin_locked"
    assert terminal.punch_with_pin("0003", "2468", T0 + timedelta(minutes=8)), "the lock expires"
    assert not terminal.punch_with_pin("9999", "2468", T0), "unknown staff number"


def test_a_recorded_camera_feed_punches_and_its_end_is_a_lost_camera(gallery: TerminalGallery, faces_dir: Path, tmp_path: Path) -> None:
    video = tmp_path / "entrance.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    empty = np.full((480, 640, 3), 110, np.uint8)
    for frame in [empty] * 10 + [terminal_frame(faces_dir / PROBE)] * 20 + [empty] * 10:
        writer.write(frame)
    writer.release()
    recorder = Recorder()
    terminal = _terminal(gallery, recorder)
    stop = threading.Event()
    lost = threading.Event()
    camera = Camera(str(video), fps=5, backoff=(0.05, 0.05), on_lost=lambda reason: lost.set())
    thread = threading.Thread(target=run, args=(terminal, camera, stop, lambda: T0))
    thread.start()
    assert lost.wait(60), "the end of the recording is reported as a lost camera"
    stop.set()
    thread.join(10)
    assert [p.person_id for p, _ in recorder.punches] == ["nuaa_0003"]
    missing = Camera(str(tmp_path / "none.avi"), backoff=(0.01, 0.02))
    stop = threading.Event()
    frames = missing.frames(stop)
    threading.Timer(0.2, stop.set).start()
    assert list(frames) == [] and missing.lost >= 2, "a camera that cannot be opened is retried with backoff"


def test_a_look_alike_is_sent_to_staff_number_and_verified_one_to_one(gallery: TerminalGallery, faces_dir: Path) -> None:
    flagged = TerminalGallery(gallery.version, gallery.thresholds, gallery.people, frozenset({"nuaa_0003", "nuaa_0002"}))
    recorder = Recorder()
    terminal = _terminal(flagged, recorder)
    frame = terminal_frame(faces_dir / PROBE)
    for i in range(3):
        terminal.on_frame(frame, T0 + timedelta(seconds=i / 5))
    assert recorder.punches == [] and recorder.said[-1] == "use_pin", "never identified from the face alone"
    assert not terminal.punch_with_staff_no("0002", frame, T0 + timedelta(seconds=1)), "someone else's staff number"
    assert recorder.said[-1] == "verify_failed"
    assert terminal.punch_with_staff_no("0003", frame, T0 + timedelta(seconds=2))
    [(punch, _)] = recorder.punches
    assert (punch.person_id, punch.method) == ("nuaa_0003", "face") and punch.distance is not None and punch.margin is None
