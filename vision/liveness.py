"""Is the face at the terminal a living person, or a printed photo held up to the camera?

Two independent checks, both configurable (:class:`LivenessSettings`):

* **Passive** — one frame and its face box.  A recaptured print has gone
  through a printer and a second camera: it loses fine detail (the energy
  of the finest band-pass levels drops), its dynamic range is squeezed
  between paper white and ink black, and its colours fade.  Six numbers
  measure that on the face normalised to 128 × 128 px (so the face's size in
  the frame does not count directly); a logistic regression turns them into
  a score in [0, 1].  The shipped coefficients were fitted on the NUAA
  crops in the shared test data; :func:`calibrate_passive` refits them from
  a hall's own terminal images.
* **Active** — a challenge–response over frames of 68-point landmarks: turn
  the head left or right and back, or blink.  A photo can be moved, turned,
  tilted or bent in front of the camera, but its landmarks then move as one
  flat picture does: one homography of the reference frame explains the
  eyes, brows and mouth, *and the nose with them*.  A real head is 3-D: the
  nose tip swings out of that plane.  So a turn counts only by the part of
  the yaw change that a planar motion cannot explain (nose parallax), and a
  blink only when the eyes close *after* undoing the planar motion (a print
  tilted forward makes the eyes look narrower, never closed).
  :class:`ActiveCheck` is a pure state machine: feed landmarks and a
  timestamp, get a new state whose ``status`` is pending, passed or failed.

:func:`decide` combines both into a :class:`LivenessResult` that travels
with the punch (``to_dict``).  Rates and limits: ``docs/liveness.md``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from vision.faces import FaceSettings, Image, find_faces, load_image

Box = tuple[int, int, int, int]
"""top, right, bottom, left — as face_recognition gives it."""
Points = NDArray[np.float64]
"""68 × 2 landmark coordinates (dlib's 68-point order)."""
LandmarkInput = Mapping[str, Sequence[tuple[float, float]]] | NDArray[np.float64]
"""``face_recognition.face_landmarks(..., model="large")`` output for one face, or a 68 × 2 array."""

PICTURES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}

# ---------------------------------------------------------------------------
# Passive check
# ---------------------------------------------------------------------------

FEATURES = ("dog_0_1", "dog_1_2", "dog_2_4", "dog_4_8", "contrast", "saturation_spread")
"""log energy of four difference-of-Gaussian bands (σ 0→1, 1→2, 2→4, 4→8 px at 128 px),
grey std / mean, std of HSV saturation."""
_FACE_PX = 128
_SIGMAS = (1.0, 2.0, 4.0, 8.0)


class PassiveModel(BaseModel):
    """A logistic regression over standardised :data:`FEATURES`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mean: tuple[float, ...] = Field(min_length=len(FEATURES), max_length=len(FEATURES))
    scale: tuple[float, ...] = Field(min_length=len(FEATURES), max_length=len(FEATURES))
    weights: tuple[float, ...] = Field(min_length=len(FEATURES), max_length=len(FEATURES))
    bias: float

    def score(self, features: NDArray[np.float64]) -> float:
        z = (np.asarray(features, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        return float(1.0 / (1.0 + math.exp(-(float(z @ np.asarray(self.weights)) + self.bias))))


SHIPPED_PASSIVE = PassiveModel(
    # Fitted by calibrate_passive(load_samples(../shared/testdata/faces)): the
    # 5 NUAA volunteers, 40 live webcam crops + 20 printed-photo attacks,
    # L2 = 1.0, live and spoof weighted equally, threshold 0.5.
    # Leave-one-subject-out (fit on 4 people, decide on the 5th):
    #   live accepted 36/40 (90 %), prints rejected 18/20 (90 %).
    # These all-data coefficients on the same 60: 36/40 (90 %) and 19/20 (95 %).
    # Live photos of the 12 other people (press photos, not fitted on): 52/52.
    mean=(2.6515, 2.9584, 3.8646, 4.409, 0.4699, 0.1171),
    scale=(0.9005, 0.6432, 0.5103, 0.5322, 0.1869, 0.0293),
    weights=(1.7056, 1.0194, 0.0673, -0.4822, 0.7772, 0.4325),
    bias=0.9574,
)


def passive_features(image: Image, box: Box) -> NDArray[np.float64]:
    """The :data:`FEATURES` of the face in ``box`` of an RGB ``image``.

    The face is resampled to 128 × 128 first, so band energies compare faces
    of different sizes; a face much smaller than 128 px is upsampled and
    loses fine detail, which reads as "print" — the safe side.
    """
    top, right, bottom, left = box
    h, w = image.shape[:2]
    crop = image[max(0, top) : min(h, bottom), max(0, left) : min(w, right)]
    if crop.size == 0:
        raise ValueError(f"face box {box} is outside the {w}×{h} image")
    face = cv2.resize(crop, (_FACE_PX, _FACE_PX), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY).astype(np.float64)
    levels = [grey] + [cv2.GaussianBlur(grey, (0, 0), s) for s in _SIGMAS]
    bands = [math.log(float(np.mean((a - b) ** 2)) + 1e-6) for a, b in zip(levels, levels[1:])]
    contrast = float(grey.std()) / max(float(grey.mean()), 1.0)
    saturation = cv2.cvtColor(face, cv2.COLOR_RGB2HSV)[..., 1].astype(np.float64) / 255.0
    return np.array([*bands, contrast, float(saturation.std())])


@dataclass(frozen=True)
class PassiveResult:
    score: float
    passed: bool


def passive_check(image: Image, box: Box, settings: LivenessSettings) -> PassiveResult:
    """Score one frame's face (higher is more alive) and decide at the configured threshold."""
    score = settings.passive_model.score(passive_features(image, box))
    return PassiveResult(round(score, 4), score >= settings.passive_threshold)


def fit_passive(features: NDArray[np.float64], live: NDArray[np.bool_], l2: float = 1.0) -> PassiveModel:
    """L2-regularised logistic regression (Newton's method), live and spoof weighted equally.

    Sixty images do not support anything bigger: six standardised inputs and
    a penalty keep the weights small enough to transfer to the next person.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(live, dtype=np.float64)
    if y.min() == y.max():
        raise ValueError("fitting needs both live and spoof examples")
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.c_[(x - mean) / scale, np.ones(len(x))]
    sample_weight = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean())) / len(y)
    penalty = np.diag([l2 / len(y)] * x.shape[1] + [0.0])
    w = np.zeros(z.shape[1])
    for _ in range(100):
        p = 1 / (1 + np.exp(-(z @ w)))
        gradient = z.T @ (sample_weight * (p - y)) + penalty @ w
        hessian = (z * (sample_weight * p * (1 - p))[:, None]).T @ z + penalty
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    def rounded(values: NDArray[np.float64]) -> tuple[float, ...]:  # stored as config: 4 digits are plenty
        return tuple(round(float(v), 4) for v in values)

    return PassiveModel(mean=rounded(mean), scale=rounded(scale), weights=rounded(w[:-1]), bias=round(float(w[-1]), 4))


@dataclass(frozen=True)
class Sample:
    """One picture of the calibration folder."""

    person: str
    path: Path
    live: bool
    features: NDArray[np.float64] = field(repr=False)


@dataclass(frozen=True)
class PassiveCalibration:
    """A refitted passive model and how well it separates live faces from prints."""

    model: PassiveModel
    threshold: float
    subjects: tuple[str, ...]
    live: int
    spoof: int
    cv_live_accepted: int
    cv_spoof_rejected: int
    fit_live_accepted: int
    fit_spoof_rejected: int
    other_live: int
    other_live_accepted: int
    cv_errors: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        def pct(part: int, whole: int) -> float | None:
            return round(100 * part / whole, 1) if whole else None

        return {
            "model": self.model.model_dump(),
            "threshold": self.threshold,
            "subjects": list(self.subjects),
            "live": self.live,
            "spoof": self.spoof,
            "cv_live_accepted_pct": pct(self.cv_live_accepted, self.live),
            "cv_spoof_rejected_pct": pct(self.cv_spoof_rejected, self.spoof),
            "fit_live_accepted_pct": pct(self.fit_live_accepted, self.live),
            "fit_spoof_rejected_pct": pct(self.fit_spoof_rejected, self.spoof),
            "other_live": self.other_live,
            "other_live_accepted_pct": pct(self.other_live_accepted, self.other_live),
            "cv_errors": list(self.cv_errors),
        }


def load_samples(folder: Path, face_settings: FaceSettings | None = None) -> list[Sample]:
    """Features of every picture under ``known/`` and ``strangers/`` (live) and ``spoof/`` (attacks), one folder a person.

    The largest detected face is used; a picture where none is found counts
    as a tight face crop (the whole picture is the face box), as the NUAA
    crops are.
    """
    settings = face_settings or FaceSettings()
    samples = []
    for kind, live in (("known", True), ("strangers", True), ("spoof", False)):
        for path in sorted((folder / kind).glob("*/*")):
            if path.suffix.lower() not in PICTURES:
                continue
            image = load_image(path)
            found = find_faces(image, settings)
            if found:
                box, work, _ = max(found, key=lambda f: f[0][2] - f[0][0])
            else:
                box, work = (0, image.shape[1], image.shape[0], 0), image
            samples.append(Sample(path.parent.name, path, live, passive_features(work, box)))
    return samples


def calibrate_passive(samples: Sequence[Sample], threshold: float = 0.5, l2: float = 1.0) -> PassiveCalibration:
    """Fit on everyone who has attack pictures; report leave-one-subject-out rates first.

    Each person with a ``spoof/`` folder is left out in turn: the model is
    fitted on the others' live and spoof pictures and decides on theirs, so
    no picture is judged by a model that saw it (or its owner).  The model
    returned is then fitted on all of them.  Live pictures of people without
    attacks are not fitted on; they show whether other cameras' faces pass.
    """
    subjects = tuple(sorted({s.person for s in samples if not s.live}))
    used = [s for s in samples if s.person in subjects]
    if len(subjects) < 2:
        raise ValueError("calibration needs spoof pictures of at least two people")
    x = np.array([s.features for s in used])
    y = np.array([s.live for s in used])
    cv_pass = np.zeros(len(used), dtype=bool)
    for person in subjects:
        held = np.array([s.person == person for s in used])
        model = fit_passive(x[~held], y[~held], l2)
        cv_pass[held] = [model.score(f) >= threshold for f in x[held]]
    model = fit_passive(x, y, l2)
    fit_pass = np.array([model.score(f) >= threshold for f in x])
    others = [s for s in samples if s.person not in subjects and s.live]
    return PassiveCalibration(
        model=model,
        threshold=threshold,
        subjects=subjects,
        live=int(y.sum()),
        spoof=int((~y).sum()),
        cv_live_accepted=int((cv_pass & y).sum()),
        cv_spoof_rejected=int((~cv_pass & ~y).sum()),
        fit_live_accepted=int((fit_pass & y).sum()),
        fit_spoof_rejected=int((~fit_pass & ~y).sum()),
        other_live=len(others),
        other_live_accepted=sum(model.score(s.features) >= threshold for s in others),
        cv_errors=tuple(f"{s.path.parent.parent.name}/{s.person}/{s.path.name}" for s, ok in zip(used, cv_pass) if ok != s.live),
    )


# ---------------------------------------------------------------------------
# Landmark geometry
# ---------------------------------------------------------------------------

_EYES = list(range(36, 48))
_RIGID = list(range(17, 27)) + _EYES + list(range(48, 60))
"""Brows, eyes and outer lips: nearly one plane on a face; the nose is not in it."""
_NOT_EYES = list(range(17, 36)) + list(range(48, 60))
"""Brows, nose and outer lips: what stays put while the eyes blink."""


def landmark_points(landmarks: LandmarkInput) -> Points:
    """A 68 × 2 array from face_recognition's dict (68-point "large" model) or an array."""
    if not isinstance(landmarks, Mapping):
        points = np.asarray(landmarks, dtype=np.float64)
    else:
        try:
            top, bottom = list(landmarks["top_lip"]), list(landmarks["bottom_lip"])
            points = np.array(
                [*landmarks["chin"], *landmarks["left_eyebrow"], *landmarks["right_eyebrow"], *landmarks["nose_bridge"],
                 *landmarks["nose_tip"], *landmarks["left_eye"], *landmarks["right_eye"], *top[:7], *bottom[1:6],
                 top[11], top[10], top[9], top[8], top[7], bottom[10], bottom[9], bottom[8]],
                dtype=np.float64,
            )  # face_recognition splits dlib's 48-67 mouth points into two overlapping lip lists
        except KeyError as missing:
            raise ValueError(f"68-point landmarks needed (face_landmarks model='large'), no {missing}") from None
    if points.shape != (68, 2):
        raise ValueError(f"68 × 2 landmarks needed, got {points.shape}")
    return points


def _eye_frame(points: Points) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    """Midpoint of the eyes, unit vector along the eye line (image left → right), eye distance."""
    left, right = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
    distance = float(np.hypot(*(right - left))) or 1.0
    return (left + right) / 2, (right - left) / distance, distance


def head_yaw(points: Points) -> float:
    """Where the nose tip sits between the cheek contours: 0 frontal, ±1 profile.

    Positive when the nose points to the right of an unmirrored camera
    image, i.e. the person has turned to *their* left.  Measured along the
    eye line, so tilting the head sideways (roll) does not count.
    """
    _, u, _ = _eye_frame(points)
    left, right, nose = float(points[1] @ u), float(points[15] @ u), float(points[30] @ u)
    width = right - left
    return ((nose - left) - (right - nose)) / width if width > 0 else 0.0


def eye_aspect_ratio(points: Points) -> float:
    """Soukupová & Čech's EAR, both eyes averaged: ≈0.3 open, <0.15 closed."""
    def ear(eye: Points) -> float:
        vertical = np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4])
        return float(vertical / (2 * np.linalg.norm(eye[0] - eye[3]) or 1.0))

    return (ear(points[36:42]) + ear(points[42:48])) / 2


def _face_shape(points: Points) -> float:
    """Eye distance over the eyes-to-mouth height: a print turned away shrinks it."""
    middle, u, distance = _eye_frame(points)
    height = abs(float((points[48:60].mean(axis=0) - middle) @ np.array([-u[1], u[0]])))
    return distance / height if height > 0 else 0.0


def _homography(src: Points, dst: Points) -> NDArray[np.float64] | None:
    h, _ = cv2.findHomography(src, dst, 0)
    return None if h is None else np.asarray(h, dtype=np.float64)


def _warp(h: NDArray[np.float64], points: Points) -> Points:
    return cv2.perspectiveTransform(points[None], h)[0]


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------


class Challenge(StrEnum):
    TURN_LEFT = "turn_left"
    TURN_RIGHT = "turn_right"
    BLINK = "blink"


PROMPTS_ZH: dict[Challenge, str] = {
    Challenge.TURN_LEFT: "请向左转头，再转回正面",
    Challenge.TURN_RIGHT: "请向右转头，再转回正面",
    Challenge.BLINK: "请眨眼",
}


class LivenessSettings(BaseModel):
    """Which checks run and their thresholds (defaults measured as in docs/liveness.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    passive: bool = True
    passive_threshold: float = Field(default=0.5, ge=0, le=1)
    passive_model: PassiveModel = SHIPPED_PASSIVE
    """Refit for a hall's own camera with :func:`calibrate_passive`."""
    active: bool = True
    challenges: tuple[Challenge, ...] = Field(default=(Challenge.TURN_LEFT, Challenge.TURN_RIGHT), min_length=1)
    """One is drawn at random per attempt, so a prepared video of one answer is not enough.  Blink is
    off by default: the test data has no closed-eye frames to check its thresholds on a real blink."""
    timeout_s: float = Field(default=8.0, gt=0)
    frontal_yaw: float = Field(default=0.15, gt=0, le=1)
    """|yaw| of the frame the challenge starts from."""
    turn_yaw: float = Field(default=0.25, gt=0, le=1)
    """Yaw change that a planar motion cannot explain (nose parallax) and that counts as a turn
    (≈ 20° of head turn; real 20–35° turns measured 0.26–0.37, photos turned like a head mostly < 0.25)."""
    return_yaw: float = Field(default=0.1, gt=0, le=1)
    """Back within this of the starting yaw completes the turn."""
    max_planar_share: float = Field(default=0.4, ge=0, le=1)
    """A yaw change of ``turn_yaw`` or more of which a planar motion explains a larger share fails the
    check: a photo turned or tilted (real turns measured ≤ 0.34, photos mostly 0.5–0.8)."""
    min_shape_ratio: float = Field(default=0.85, gt=0, le=1)
    """Eye distance / eye-to-mouth height versus the start frame must stay within [this, 1 / this] for a
    frame to count as a turn or a blink: a head turning 20–30° keeps 0.87–1.0 (measured 0.85–1.04),
    a photo turned or tilted by 35° or more leaves it, and that is where dlib's landmarks start to
    imitate a turned head."""
    blink_close: float = Field(default=0.5, gt=0, lt=1)
    """Eyes count as closed at this share of their open EAR (after undoing planar motion)."""
    blink_open: float = Field(default=0.85, gt=0, le=1)
    """…and open again at this share."""
    max_jump: float = Field(default=0.6, gt=0)
    """Largest move of the face between frames, in eye distances; more restarts the challenge (a swapped photo)."""
    max_gap_s: float = Field(default=1.0, gt=0)
    """Longest time without a face before the challenge restarts."""
    mirrored: bool = False
    """True when the camera delivers mirrored frames (then the person's left is the image's left)."""


def choose_challenge(settings: LivenessSettings, rng: random.Random) -> Challenge:
    """The terminal's random pick (the caller owns the generator, so tests can seed it)."""
    return rng.choice(settings.challenges)


# ---------------------------------------------------------------------------
# Active check
# ---------------------------------------------------------------------------

Status = Literal["pending", "passed", "failed"]
Phase = Literal["frontal", "act", "back"]

REASONS_ZH: dict[str, str] = {
    "face_frontal": "请正对摄像头",
    "act": "",  # the challenge's own prompt
    "come_back": "请转回正面",
    "open_eyes": "请睁眼",
    "passed": "活体检测通过",
    "timeout": "超时，请重试",
    "wrong_direction": "转头方向不对，请重试",
    "planar_motion": "未检测到真实转头，请本人操作",
    "passive_spoof": "疑似照片或屏幕，请本人操作",
    "active_pending": "动作检测未完成",
    "no_frames": "未取得人脸图像",
    "disabled": "",
}


@dataclass(frozen=True)
class ActiveOutcome:
    """Where a challenge stands, for the prompt on screen and for the punch record."""

    challenge: Challenge
    status: Status
    reason: str
    elapsed_s: float
    peak: float
    """Turn: largest non-planar yaw in the asked direction; blink: lowest EAR share of open."""

    @property
    def prompt_zh(self) -> str:
        return PROMPTS_ZH[self.challenge] if self.reason == "act" else REASONS_ZH.get(self.reason, "")

    def to_dict(self) -> dict[str, object]:
        return {"challenge": self.challenge.value, "status": self.status, "reason": self.reason,
                "elapsed_s": round(self.elapsed_s, 2), "peak": round(self.peak, 3)}


@dataclass(frozen=True, eq=False)
class ActiveCheck:
    """One challenge as an immutable state: ``check = check.feed(landmarks, t)`` per frame.

    Phases: wait for a frontal face (it becomes the reference), then the
    action (turn past ``turn_yaw`` in the asked direction, or close the
    eyes), then back (face front again, or eyes open) — within
    ``timeout_s`` of the start.  Turning the other way fails at once, and
    so does a turn that a planar motion explains (a photo turned or
    tilted).  A face that jumps or vanishes restarts from the frontal
    phase, so two photos swapped in front of the camera do not make a turn.
    """

    challenge: Challenge
    settings: LivenessSettings
    started_at: float
    status: Status = "pending"
    reason: str = "face_frontal"
    phase: Phase = "frontal"
    reference: Points | None = None
    last_centre: NDArray[np.float64] | None = None
    last_seen: float | None = None
    elapsed_s: float = 0.0
    peak: float = 0.0
    open_ear: float = 0.0

    @classmethod
    def start(cls, challenge: Challenge, settings: LivenessSettings, at: float) -> ActiveCheck:
        return cls(challenge, settings, at, peak=1.0 if challenge is Challenge.BLINK else 0.0)

    @property
    def outcome(self) -> ActiveOutcome:
        return ActiveOutcome(self.challenge, self.status, self.reason, self.elapsed_s, self.peak)

    def feed(self, landmarks: LandmarkInput | None, at: float) -> ActiveCheck:
        """The next state after a frame at time ``at`` (seconds); ``None`` when no face was found."""
        if self.status != "pending":
            return self
        state = replace(self, elapsed_s=at - self.started_at)
        if state.elapsed_s > self.settings.timeout_s:
            return replace(state, status="failed", reason="timeout")
        if landmarks is None:
            return state
        points = landmark_points(landmarks)
        centre, _, eye_distance = _eye_frame(points)
        restart = (self.last_seen is not None and at - self.last_seen > self.settings.max_gap_s) or (
            self.last_centre is not None and float(np.hypot(*(centre - self.last_centre))) > self.settings.max_jump * eye_distance
        )
        state = replace(state, last_centre=centre, last_seen=at)
        if restart or state.reference is None:
            if abs(head_yaw(points)) > self.settings.frontal_yaw:
                return replace(state, phase="frontal", reason="face_frontal", reference=None)
            return replace(state, phase="act", reason="act", reference=points, open_ear=eye_aspect_ratio(points))
        if self.challenge is Challenge.BLINK:
            return state._blink(points)
        return state._turn(points)

    def _turn(self, points: Points) -> ActiveCheck:
        assert self.reference is not None
        s = self.settings
        wanted = (1.0 if self.challenge is Challenge.TURN_LEFT else -1.0) * (-1.0 if s.mirrored else 1.0)
        change = head_yaw(points) - head_yaw(self.reference)
        if self.phase == "back":
            return replace(self, status="passed", reason="passed") if abs(change) <= s.return_yaw else self
        h = _homography(self.reference[_RIGID], points[_RIGID])
        if h is None:
            return self
        planar = head_yaw(_warp(h, self.reference)) - head_yaw(self.reference)
        parallax = change - planar
        shape = _face_shape(points) / _face_shape(self.reference)
        flat_enough = s.min_shape_ratio <= shape <= 1 / s.min_shape_ratio

        def turned(sign: float) -> bool:
            return flat_enough and sign * parallax >= s.turn_yaw and sign * planar <= s.max_planar_share * sign * change

        state = replace(self, peak=max(self.peak, wanted * parallax))
        if turned(wanted):
            return replace(state, phase="back", reason="come_back")
        if turned(-wanted):
            return replace(state, status="failed", reason="wrong_direction")
        if abs(change) >= s.turn_yaw and planar * math.copysign(1.0, change) > s.max_planar_share * abs(change):
            # It looks turned, but the way a flat picture does: the nose moved with the plane.
            return replace(state, status="failed", reason="planar_motion")
        return state

    def _blink(self, points: Points) -> ActiveCheck:
        assert self.reference is not None
        s = self.settings
        h = _homography(self.reference[_NOT_EYES], points[_NOT_EYES])
        if h is None:
            return self
        rectified = points.copy()
        rectified[_EYES] = _warp(np.linalg.inv(h), points[_EYES])
        ear = eye_aspect_ratio(rectified)
        if self.phase == "back":
            return replace(self, status="passed", reason="passed") if ear >= s.blink_open * self.open_ear else self
        open_ear = max(self.open_ear, ear)
        state = replace(self, open_ear=open_ear, peak=min(self.peak, ear / open_ear))
        # A blink happens in a still face; a photo tilted or turned squeezes the eyes with everything else.
        shape = _face_shape(points) / _face_shape(self.reference)
        still = abs(head_yaw(points) - head_yaw(self.reference)) <= s.return_yaw
        if still and s.min_shape_ratio <= shape <= 1 / s.min_shape_ratio and ear <= s.blink_close * open_ear:
            return replace(state, phase="back", reason="open_eyes")
        return state


# ---------------------------------------------------------------------------
# Both checks together
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LivenessResult:
    """The decision that travels with the punch."""

    passed: bool
    passive_score: float | None
    """Median over the frames scored (None when the passive check is off)."""
    passive_frames: int
    active: ActiveOutcome | None
    reason: str

    @property
    def reason_zh(self) -> str:
        return REASONS_ZH.get(self.reason, self.reason)

    def to_dict(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "passive_score": self.passive_score,
            "passive_frames": self.passive_frames,
            "active": self.active.to_dict() if self.active else None,
            "reason": self.reason,
        }


def decide(settings: LivenessSettings, passive_scores: Sequence[float], active: ActiveOutcome | None) -> LivenessResult:
    """Both enabled checks must pass.

    The passive score is the median over frames: one frame blurred by
    motion should not fail a person, and a print scores low in all of them.
    Score still, frontal frames (the challenge's start and end), not the
    frames in the middle of a head turn.
    """
    score = round(float(np.median(passive_scores)), 4) if settings.passive and len(passive_scores) else None
    reason = "passed"
    if settings.active and (active is None or active.status != "passed"):
        reason = "active_pending" if active is None or active.status == "pending" else active.reason
    elif settings.passive and score is None:
        reason = "no_frames"
    elif settings.passive and score is not None and score < settings.passive_threshold:
        reason = "passive_spoof"
    elif not settings.passive and not settings.active:
        reason = "disabled"
    return LivenessResult(reason in {"passed", "disabled"}, score, len(passive_scores) if settings.passive else 0,
                          active if settings.active else None, reason)
