"""The face clock-in terminal: camera frames in, punches out.

One person stands in front of the terminal for a second or two; the terminal
looks at a few frames a second, and only when several frames agree on one
enrolled person (and the liveness check passes) does it punch — once per
person per debounce period, so standing there longer does not punch twice.
A stranger, a photo, or an undecided face never produces a punch: the
person is asked to try again or to use their staff number and PIN.

Punches go to the agent's outbox (``emit``), so a terminal without network
keeps punching and the punches arrive later, marked historical.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import NDArray

from pydantic import BaseModel, ConfigDict, Field

from agent.config import CONFIG_DIR, CameraSpec, ConfigPath
from agent.gallery_sync import GallerySync
from broker.protocol import PunchBody
from vision.camera import Camera
from vision.faces import Face, FaceSettings, Image, Rejected, from_bgr, one_face
from vision.gallery import TerminalGallery, verify_pin
from vision.gallery_seal import TerminalKeys
from vision.identify import Decision, FrameVote, Gallery, identify, verify
from vision.liveness import PROMPTS_ZH, REASONS_ZH, ActiveCheck, ActiveOutcome, LivenessSettings, choose_challenge, decide, passive_check

if TYPE_CHECKING:
    from agent.runtime import AgentRuntime

log = logging.getLogger(__name__)

Feedback = Literal[
    "punched", "again", "retry", "unknown", "challenge", "spoof", "use_pin", "no_gallery", "camera_lost", "pin_failed", "verify_failed", "pin_locked"
]
MESSAGES_ZH: dict[Feedback, str] = {
    "punched": "打卡成功",
    "again": "已打卡，无需重复",
    "retry": "未能确认，请正对摄像头重试",
    "challenge": "活体检测",
    "unknown": "未识别，请重试或使用工号和密码打卡",
    "spoof": "活体检测未通过",
    "use_pin": "请输入工号确认身份",
    "no_gallery": "人脸库未就绪，请使用工号和密码打卡",
    "camera_lost": "摄像头故障，请使用工号和密码打卡",
    "pin_failed": "工号或密码错误",
    "verify_failed": "人脸与工号不符，请重试",
    "pin_locked": "密码错误次数过多，请稍后再试",
}


@dataclass(frozen=True)
class TerminalSettings:
    debounce_s: float = 60.0
    vote_need: int = 3
    vote_frames: int = 5
    pin_max_failures: int = 5
    pin_lock_s: float = 300.0


@dataclass
class _Attempt:
    """One person's try: the frames' passive scores and qualities, then the challenge."""

    passive: list[float] = field(default_factory=list)
    quality: list[float] = field(default_factory=list)
    identified: Decision | None = None
    challenge: ActiveCheck | None = None


class FaceTerminal:
    """Decides punches from frames (thread-safe: frames and PIN entry may come from two threads).

    An attempt: frames vote on who it is (each frame also scored by the
    passive liveness check); once they agree, the active challenge (turn
    the head left or right, drawn at random) runs over the next frames;
    when it passes, the face must still be the same person, and both
    liveness checks must pass (:func:`vision.liveness.decide`) — then the
    punch.  ``liveness=None`` switches both checks off (a terminal that
    only has the staff-number path, or tests of identification alone).
    """

    def __init__(
        self,
        settings: TerminalSettings,
        face_settings: FaceSettings,
        emit: Callable[[PunchBody, datetime], object],
        *,
        liveness: LivenessSettings | None = None,
        feedback: Callable[[Feedback, str], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.face_settings = face_settings
        self._emit = emit
        self._liveness = liveness
        self._feedback = feedback or (lambda kind, text: log.info("%s: %s", kind, text))
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._gallery: TerminalGallery | None = None
        self._matcher: Gallery | None = None
        self._vote = FrameVote(settings.vote_need, settings.vote_frames)
        self._attempt = _Attempt()
        self._last_punch: dict[str, datetime] = {}
        self._pin_failures: dict[str, list[datetime]] = {}

    @property
    def gallery_version(self) -> int | None:
        return self._gallery.version if self._gallery else None

    def set_gallery(self, gallery: TerminalGallery) -> None:
        """Run this gallery from now on (the sync hands over each verified version)."""
        matcher = gallery.matcher()
        with self._lock:
            self._gallery, self._matcher = gallery, matcher
            self._restart()
            known = {p.person_id for p in gallery.people}
            self._last_punch = {p: t for p, t in self._last_punch.items() if p in known}

    def _restart(self) -> None:
        self._vote = FrameVote(self.settings.vote_need, self.settings.vote_frames)
        self._attempt = _Attempt()

    def _say(self, kind: Feedback, detail: str = "") -> None:
        self._feedback(kind, MESSAGES_ZH[kind] + (f"：{detail}" if detail else ""))

    # ------------------------------------------------------------- frames

    def on_frame(self, frame_bgr: NDArray[np.uint8], at: datetime) -> Decision | None:
        """Look at one frame; returns the decision once an attempt is over (punched or not)."""
        with self._lock:
            if self._gallery is None or self._matcher is None:
                self._say("no_gallery")
                return None
            image = from_bgr(frame_bgr)
            found = one_face(image, self.face_settings, largest=True)
            attempt = self._attempt
            if attempt.challenge is not None:
                return self._challenge_frame(found if isinstance(found, Face) else None, image, at)
            if isinstance(found, Rejected):
                if found.code != "no_face":
                    self._say("retry", found.reason_zh)
                return None
            self._score(image, found)
            decision = self._vote.add(identify(found.encoding, self._matcher, self._gallery.thresholds))
            if decision is None:
                return None
            if not decision.accepted:
                self._say({"unknown": "unknown", "verify": "use_pin"}.get(decision.outcome, "retry"))  # type: ignore[arg-type]
                self._restart()
                return decision
            attempt.identified = decision
            if self._liveness is not None and self._liveness.active:
                challenge = choose_challenge(self._liveness, self._rng)
                attempt.challenge = ActiveCheck.start(challenge, self._liveness, at.timestamp()).feed(found.landmarks, at.timestamp())
                self._say("challenge", PROMPTS_ZH[challenge])
                return None
            return self._finish(at, None)

    def _score(self, image: Image, face: Face) -> None:
        if self._liveness is not None and self._liveness.passive:
            self._attempt.passive.append(passive_check(image, face.box, self._liveness).score)
        self._attempt.quality.append(face.quality.score(self.face_settings))

    def _challenge_frame(self, face: Face | None, image: Image, at: datetime) -> Decision | None:
        attempt = self._attempt
        assert attempt.challenge is not None and attempt.identified is not None
        attempt.challenge = attempt.challenge.feed(face.landmarks if face else None, at.timestamp())
        outcome = attempt.challenge.outcome
        if outcome.status == "pending":
            return None
        if outcome.status == "failed" or face is None:
            self._say("spoof", REASONS_ZH.get(outcome.reason, outcome.reason))
            decision, self._attempt = attempt.identified, _Attempt()
            self._vote = FrameVote(self.settings.vote_need, self.settings.vote_frames)
            return decision
        # Back to the front: it must still be the person identified (no swap during the turn).
        assert self._matcher is not None and self._gallery is not None
        again = identify(face.encoding, self._matcher, self._gallery.thresholds)
        if not again.accepted or again.person_id != attempt.identified.person_id:
            self._say("retry")
            self._restart()
            return again
        self._score(image, face)
        return self._finish(at, outcome)

    def _finish(self, at: datetime, active: ActiveOutcome | None) -> Decision:
        attempt, decision = self._attempt, self._attempt.identified
        assert decision is not None and decision.person_id is not None
        self._restart()
        if self._liveness is not None:
            result = decide(self._liveness, attempt.passive, active)
            if not result.passed:
                self._say("spoof", result.reason_zh)
                return decision
            score = result.passive_score
        else:
            score = None
        body = PunchBody(
            person_id=decision.person_id,
            method="face",
            distance=round(decision.distance, 4),
            margin=round(min(decision.margin, 9.0), 4),
            liveness=score,
            challenge=active.challenge.value if active else None,  # type: ignore[arg-type]
            quality=round(min(attempt.quality), 3) if attempt.quality else None,
        )
        self._punch(body, at)
        return decision

    def _punch(self, body: PunchBody, at: datetime) -> None:
        last = self._last_punch.get(body.person_id)
        if last is not None and at - last < timedelta(seconds=self.settings.debounce_s):
            self._say("again")
            return
        self._last_punch[body.person_id] = at
        self._emit(body, at)
        person = self._gallery.by_id(body.person_id) if self._gallery else None
        self._say("punched", (person.name if person and person.name else body.person_id))

    def camera_lost(self) -> None:
        """The camera stopped delivering: say so (the PIN path still works)."""
        self._say("camera_lost")

    # ------------------------------------------------- staff number + face

    def punch_with_staff_no(self, staff_no: str, frame_bgr: NDArray[np.uint8], at: datetime) -> bool:
        """1:1 verification: the face compared only with the claimed person's own templates.

        For look-alikes (whom identification sends here) and for anyone the
        vote keeps asking to retry.  Failures count towards the same lock as
        wrong PINs, so guessing staff numbers in front of the camera is slow.
        """
        with self._lock:
            if self._locked(staff_no, at):
                return False
            person = self._gallery.by_staff_no(staff_no) if self._gallery else None
            image = from_bgr(frame_bgr)
            face = one_face(image, self.face_settings, largest=True)
            if person is None or self._matcher is None or self._gallery is None or isinstance(face, Rejected):
                self._fail(staff_no, at, "verify_failed")
                return False
            ok, distance = verify(face.encoding, self._matcher, person.person_id, self._gallery.thresholds.threshold)
            score = passive_check(image, face.box, self._liveness).score if self._liveness is not None and self._liveness.passive else None
            if self._liveness is not None and score is not None and score < self._liveness.passive_threshold:
                self._say("spoof")
                return False
            if not ok:
                self._fail(staff_no, at, "verify_failed")
                return False
            self._pin_failures.pop(staff_no, None)
            body = PunchBody(person_id=person.person_id, method="face", distance=round(distance, 4), liveness=score, quality=face.quality.score(self.face_settings))
            self._punch(body, at)
            return True

    def _locked(self, staff_no: str, at: datetime) -> bool:
        window = timedelta(seconds=self.settings.pin_lock_s)
        failures = [t for t in self._pin_failures.get(staff_no, []) if at - t < window]
        self._pin_failures[staff_no] = failures
        if len(failures) >= self.settings.pin_max_failures:
            self._say("pin_locked")
            return True
        return False

    def _fail(self, staff_no: str, at: datetime, kind: Feedback) -> None:
        self._pin_failures.setdefault(staff_no, []).append(at)
        self._say(kind)

    # ---------------------------------------------------------------- PIN

    def punch_with_pin(self, staff_no: str, pin: str, at: datetime) -> bool:
        """A punch by staff number and PIN (no face); failures are limited per staff number."""
        with self._lock:
            if self._locked(staff_no, at):
                return False
            person = self._gallery.by_staff_no(staff_no) if self._gallery else None
            if person is None or not person.pin_hash or not verify_pin(person.pin_hash, pin):
                self._fail(staff_no, at, "pin_failed")
                return False
            self._pin_failures.pop(staff_no, None)
            self._punch(PunchBody(person_id=person.person_id, method="pin"), at)
            return True


def run(terminal: FaceTerminal, camera: Camera, stop: threading.Event, clock: Callable[[], datetime]) -> None:
    """Feed the camera's frames to the terminal until ``stop`` (the agent source's body; the camera paces itself)."""
    for frame in camera.frames(stop):
        terminal.on_frame(frame, clock())


class FaceTerminalOptions(BaseModel):
    """The ``face_terminal`` source's keys in an agent file (``[[sources]] kind = "face_terminal"``)."""

    model_config = ConfigDict(extra="forbid")

    camera: CameraSpec
    server_url: str = Field(pattern=r"^https?://", description="the HallWatch server, for the gallery download")
    gallery_dir: ConfigPath
    fps: float = Field(default=5.0, gt=0, le=30)
    debounce_s: float = Field(default=60.0, ge=0, le=3600)
    vote_need: int = Field(default=3, ge=1, le=10)
    vote_frames: int = Field(default=5, ge=1, le=20)
    upsample: int = Field(default=1, ge=0, le=2)
    liveness_passive: bool = True
    liveness_active: bool = True
    """The head-turn challenge; off only where people cannot be asked to move (it is the stronger check)."""
    challenge_timeout_s: float = Field(default=8.0, gt=0, le=60)


def face_terminal_source(config_dir: Path | None = None, **options: object) -> Callable[[AgentRuntime, threading.Event], None]:
    """Entry point ``hallwatch.sources: face_terminal``: camera → decisions → punches, gallery kept in sync.

    Keys come from HALLWATCH_GALLERY_KEY_FILE and HALLWATCH_GALLERY_VERIFY_KEY_FILE
    (bad options or keys fail at start, naming the key or file).
    """
    settings = FaceTerminalOptions.model_validate(options, context={CONFIG_DIR: config_dir})
    keys = TerminalKeys.from_env()

    def source(runtime: AgentRuntime, stop: threading.Event) -> None:
        terminal = FaceTerminal(
            TerminalSettings(debounce_s=settings.debounce_s, vote_need=settings.vote_need, vote_frames=settings.vote_frames),
            FaceSettings(upsample=settings.upsample),
            lambda body, at: runtime.emit(body, at),
            liveness=LivenessSettings(passive=settings.liveness_passive, active=settings.liveness_active, timeout_s=settings.challenge_timeout_s),
        )
        sync = GallerySync(runtime, settings.gallery_dir, settings.server_url, keys, lambda version, payload: terminal.set_gallery(TerminalGallery.from_bytes(payload)))
        sync.start()
        camera = Camera(settings.camera, fps=settings.fps, on_lost=lambda reason: terminal.camera_lost())
        try:
            run(terminal, camera, stop, runtime.clock)
        finally:
            sync.stop()

    return source
