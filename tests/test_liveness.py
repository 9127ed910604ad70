"""Liveness: printed photos rejected, live faces accepted, challenges that a photo cannot answer.

Passive rates are measured on the NUAA crops in ../shared/testdata/faces
(40 live, 20 printed-photo attacks of the same 5 volunteers).  The active
check runs end to end on real photos through face_recognition: a head turn
composed from photos of one person at different yaws, and photos moved,
turned, tilted and bent in front of a simulated camera (cv2.warpPerspective
/ cv2.remap), which must never pass.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import face_recognition
import numpy as np
import pytest
from numpy.typing import NDArray

from vision.faces import Image, load_image
from vision.liveness import (
    FEATURES,
    SHIPPED_PASSIVE,
    ActiveCheck,
    ActiveOutcome,
    Challenge,
    LivenessSettings,
    PassiveCalibration,
    Sample,
    calibrate_passive,
    choose_challenge,
    decide,
    eye_aspect_ratio,
    fit_passive,
    head_yaw,
    landmark_points,
    load_samples,
    passive_check,
    passive_features,
)

SETTINGS = LivenessSettings()
BLINKING = SETTINGS.model_copy(update={"challenges": tuple(Challenge)})
FRAME_S = 0.4  # seconds between the frames fed to a challenge
Marks = NDArray[np.float64] | None

# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def samples(faces_dir: Path) -> list[Sample]:
    return load_samples(faces_dir)


@pytest.fixture(scope="module")
def calibration(samples: list[Sample]) -> PassiveCalibration:
    calibrated = calibrate_passive(samples)
    print("\npassive calibration:", json.dumps(calibrated.to_dict(), ensure_ascii=False))
    return calibrated


def _face_crop(path: Path, size: int = 400) -> Image:
    """The picture moved and scaled so its face box fills the middle half of a square frame.

    Photos of one person taken apart then line up like frames of one video
    (same place, same size), as a person standing at the terminal would.
    """
    image = load_image(path)
    scale = min(1.0, 1024 / max(image.shape[:2]))
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
    boxes = face_recognition.face_locations(small, 1)
    top, right, bottom, left = max(boxes, key=lambda b: b[2] - b[0]) if boxes else (0, small.shape[1], small.shape[0], 0)
    zoom = size / (2 * (bottom - top))
    cx, cy = (left + right) / 2, (top + bottom) / 2
    m = np.float32([[zoom, 0, size / 2 - cx * zoom], [0, zoom, size / 2 - cy * zoom]])
    return cv2.warpAffine(small, m, (size, size), borderMode=cv2.BORDER_REPLICATE)


def _marks(image: Image) -> Marks:
    """68 landmarks of the largest face, or None — what the terminal would feed."""
    boxes = face_recognition.face_locations(image, 1)
    if not boxes:
        return None
    box = max(boxes, key=lambda b: b[2] - b[0])
    return landmark_points(face_recognition.face_landmarks(image, [box], model="large")[0])


def _held_up(image: Image, *, turn: float = 0, tilt: float = 0, roll: float = 0, scale: float = 1, shift: float = 0, focal: float = 1.2) -> Image:
    """The picture as a flat print held in front of a pinhole camera (focal length in picture widths)."""
    h, w = image.shape[:2]
    f = focal * w
    ry, rx, rz = (math.radians(a) for a in (turn, tilt, roll))
    rot_y = np.array([[math.cos(ry), 0, math.sin(ry)], [0, 1, 0], [-math.sin(ry), 0, math.cos(ry)]])
    rot_x = np.array([[1, 0, 0], [0, math.cos(rx), -math.sin(rx)], [0, math.sin(rx), math.cos(rx)]])
    rot_z = np.array([[math.cos(rz), -math.sin(rz), 0], [math.sin(rz), math.cos(rz), 0], [0, 0, 1]])
    corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    spatial = np.c_[corners - [w / 2, h / 2], np.zeros(4)] @ (rot_z @ rot_x @ rot_y).T * scale
    depth = f + spatial[:, 2]
    seen = np.float32(np.c_[f * spatial[:, 0] / depth + w / 2 + shift, f * spatial[:, 1] / depth + h / 2])
    return cv2.warpPerspective(image, cv2.getPerspectiveTransform(corners, seen), (w, h), borderMode=cv2.BORDER_REPLICATE)


def _bent(image: Image, curvature: float, shift: int = 0) -> Image:
    """The picture bent round a vertical cylinder (curvature = half-width / radius), seen from the front."""
    h, w = image.shape[:2]
    radius = w / (2 * curvature)
    x = np.arange(w) - w / 2
    source = np.clip(radius * np.arcsin(np.clip(x / radius, -1, 1)), -w / 2, w / 2 - 1) + w / 2
    map_x = np.tile(source.astype(np.float32), (h, 1))
    map_y = np.tile(np.arange(h, dtype=np.float32)[:, None], (1, w))
    return cv2.remap(np.roll(image, shift, axis=1), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _run(frames: Sequence[Marks], challenge: Challenge, settings: LivenessSettings = SETTINGS) -> ActiveOutcome:
    """Feed frames FRAME_S apart, then one empty frame after the timeout so nothing stays pending."""
    check = ActiveCheck.start(challenge, settings, 0.0)
    for i, marks in enumerate(frames, start=1):
        check = check.feed(marks, i * FRAME_S)
    return check.feed(None, settings.timeout_s + 1).outcome


# ------------------------------------------------------------ passive check


def _rates(samples: list[Sample], person_prefix: str = "nuaa_") -> tuple[int, int, int, int]:
    nuaa = [s for s in samples if s.person.startswith(person_prefix)]
    live = [SHIPPED_PASSIVE.score(s.features) >= SETTINGS.passive_threshold for s in nuaa if s.live]
    spoof = [SHIPPED_PASSIVE.score(s.features) < SETTINGS.passive_threshold for s in nuaa if not s.live]
    return sum(live), len(live), sum(spoof), len(spoof)


def test_printed_photos_are_rejected_and_live_faces_accepted(samples: list[Sample]) -> None:
    live_ok, live_n, spoof_ok, spoof_n = _rates(samples)
    print(f"\nshipped passive model: prints rejected {spoof_ok}/{spoof_n} ({spoof_ok / spoof_n:.0%}), "
          f"live accepted {live_ok}/{live_n} ({live_ok / live_n:.0%})")
    assert (live_n, spoof_n) == (40, 20)
    # Measured: 19/20 prints rejected, 36/40 live accepted (these coefficients were fitted on them).
    assert spoof_ok >= 18
    assert live_ok >= 34


def test_cross_validated_rates_hold_and_the_shipped_model_is_their_refit(calibration: PassiveCalibration) -> None:
    """Leave one volunteer out: fit on the other four, decide on theirs (measured 36/40 live, 18/20 prints)."""
    assert calibration.subjects == tuple(f"nuaa_000{i}" for i in range(1, 6))
    assert calibration.cv_live_accepted >= 34 and calibration.cv_spoof_rejected >= 17
    # The constants in the module are what calibrate_passive fits on all of the data.
    for name in ("mean", "scale", "weights"):
        assert getattr(calibration.model, name) == pytest.approx(getattr(SHIPPED_PASSIVE, name), abs=2e-3), name
    assert calibration.model.bias == pytest.approx(SHIPPED_PASSIVE.bias, abs=2e-3)


def test_live_photos_from_other_cameras_are_not_rejected(calibration: PassiveCalibration) -> None:
    """Press photos of 12 other people: a different capture process, never fitted on (measured 52/52)."""
    assert calibration.other_live == 52
    assert calibration.other_live_accepted >= 50


def test_passive_check_scores_a_frame_and_its_face_box(faces_dir: Path) -> None:
    live = load_image(faces_dir / "known/nuaa_0003/0003_01_00_01_0.jpg")
    spoof = load_image(faces_dir / "spoof/nuaa_0003/0003_01_01_03_258.jpg")
    box = face_recognition.face_locations(live, 1)[0]
    alive = passive_check(live, box, SETTINGS)
    assert alive.passed and 0.5 <= alive.score <= 1
    printed = passive_check(spoof, (0, spoof.shape[1], spoof.shape[0], 0), SETTINGS)
    assert not printed.passed and 0 <= printed.score < 0.5
    assert passive_features(live, box).shape == (len(FEATURES),)
    with pytest.raises(ValueError, match="outside"):
        passive_features(live, (500, 600, 550, 520))


def test_a_refitted_model_travels_in_the_config(calibration: PassiveCalibration) -> None:
    hall = LivenessSettings.model_validate(json.loads(json.dumps({"passive_model": calibration.model.model_dump(), "passive_threshold": 0.6})))
    assert hall.passive_model == calibration.model and hall.passive_threshold == 0.6
    with pytest.raises(ValueError):
        LivenessSettings.model_validate({"passive_model": {"mean": [0.0], "scale": [1.0], "weights": [1.0], "bias": 0.0}})
    with pytest.raises(ValueError):
        LivenessSettings.model_validate({"blinks": True})


def test_fitting_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="both live and spoof"):
        fit_passive(np.ones((4, len(FEATURES))), np.array([True] * 4))


# ------------------------------------------------- active check: real photos

JACK = "known/jack_dorsey/jack_dorsey_{}.jpg"
TURNS = {
    # frontal → turned (two frames) → frontal; the person's own right is the image's left
    "jack turns right": ([JACK.format(n) for n in ("17", "61", "59", "62")], Challenge.TURN_RIGHT),
    "jack turns left": ([JACK.format(n) for n in ("17", "16", "62")], Challenge.TURN_LEFT),
    "obama turns right": (["known/obama/obama.jpg", "known/obama/obama2.jpg", "known/obama/obama.jpg"], Challenge.TURN_RIGHT),
}


@pytest.fixture(scope="module")
def turn_marks(faces_dir: Path) -> dict[str, list[Marks]]:
    cache: dict[str, Marks] = {}
    for paths, _ in TURNS.values():
        for p in paths:
            if p not in cache:
                cache[p] = _marks(_face_crop(faces_dir / p))
    return {name: [cache[p] for p in paths] for name, (paths, _) in TURNS.items()}


@pytest.mark.parametrize("name", list(TURNS))
def test_a_real_head_turn_passes(turn_marks: dict[str, list[Marks]], name: str) -> None:
    outcome = _run(turn_marks[name], TURNS[name][1])
    assert (outcome.status, outcome.reason) == ("passed", "passed"), outcome
    assert outcome.peak >= SETTINGS.turn_yaw


@pytest.mark.parametrize("name", list(TURNS))
def test_turning_the_wrong_way_fails(turn_marks: dict[str, list[Marks]], name: str) -> None:
    other = Challenge.TURN_LEFT if TURNS[name][1] is Challenge.TURN_RIGHT else Challenge.TURN_RIGHT
    outcome = _run(turn_marks[name], other)
    assert (outcome.status, outcome.reason) == ("failed", "wrong_direction"), outcome
    assert outcome.prompt_zh == "转头方向不对，请重试"


def test_a_mirrored_camera_swaps_left_and_right(turn_marks: dict[str, list[Marks]]) -> None:
    mirrored = SETTINGS.model_copy(update={"mirrored": True})
    assert _run(turn_marks["jack turns left"], Challenge.TURN_RIGHT, mirrored).status == "passed"
    assert _run(turn_marks["jack turns left"], Challenge.TURN_LEFT, mirrored).reason == "wrong_direction"


def test_a_turn_that_never_comes_back_times_out(turn_marks: dict[str, list[Marks]]) -> None:
    turned_away = turn_marks["jack turns right"][:3]
    outcome = _run(turned_away, Challenge.TURN_RIGHT)
    assert (outcome.status, outcome.reason) == ("failed", "timeout")
    assert outcome.elapsed_s > SETTINGS.timeout_s and outcome.peak >= SETTINGS.turn_yaw


def test_standing_still_times_out(turn_marks: dict[str, list[Marks]]) -> None:
    frontal = turn_marks["jack turns right"][0]
    check = ActiveCheck.start(Challenge.TURN_LEFT, SETTINGS, 100.0)
    for i in range(1, 40):
        check = check.feed(frontal, 100.0 + i * 0.25)
    assert (check.status, check.reason) == ("failed", "timeout")
    assert check.elapsed_s == pytest.approx(SETTINGS.timeout_s + 0.25)


def test_the_turn_must_happen_within_the_time_limit(turn_marks: dict[str, list[Marks]]) -> None:
    frames = turn_marks["jack turns right"]
    slow = SETTINGS.model_copy(update={"timeout_s": 3 * FRAME_S})  # the return comes at 4 × FRAME_S
    assert _run(frames, Challenge.TURN_RIGHT, slow).reason == "timeout"
    just_in_time = SETTINGS.model_copy(update={"timeout_s": 4 * FRAME_S})
    assert _run(frames, Challenge.TURN_RIGHT, just_in_time).status == "passed"


# A photo held up to the camera: one live NUAA crop (standing in for a print
# of it), two of the NUAA printed-photo attacks and one press photo.
PRINTS = [
    "known/nuaa_0005/0005_00_00_01_0.jpg",
    "spoof/nuaa_0004/0004_01_02_03_61.jpg",
    "spoof/nuaa_0005/0005_00_00_01_10.jpg",
    "known/katy_perry/katy_perry_43.jpg",
]
SWEEP = (0, 15, 30, 45, 55, 45, 30, 15, 0)
MOTIONS: dict[str, Callable[[Image], list[Image]]] = {
    "turned left and back": lambda im: [_held_up(im, turn=a) for a in SWEEP],
    "turned right and back": lambda im: [_held_up(im, turn=-a) for a in SWEEP],
    "turned left close to a wide lens": lambda im: [_held_up(im, turn=a, focal=0.6) for a in SWEEP],
    "turned right close to a wide lens": lambda im: [_held_up(im, turn=-a, focal=0.6) for a in SWEEP],
    "tilted forward and back": lambda im: [_held_up(im, tilt=a) for a in (0, 20, 40, 55, 40, 20, 0, -20, -40, -55, -40, -20, 0)],
    "moved, rotated, scaled and tilted": lambda im: [
        _held_up(im, turn=0.8 * a, tilt=0.5 * a, roll=0.3 * a, scale=1 - a / 250, shift=a / 2) for a in SWEEP
    ],
    "bent and swung": lambda im: [_bent(im, c, s) for c, s in ((0.01, 0), (0.5, 20), (1.0, 40), (1.4, 60), (1.0, 40), (0.5, 20), (0.01, 0))],
}


@pytest.fixture(scope="module")
def print_marks(faces_dir: Path) -> dict[tuple[str, str], list[Marks]]:
    marks = {}
    for source in PRINTS:
        picture = _face_crop(faces_dir / source)
        for motion, frames in MOTIONS.items():
            marks[(source, motion)] = [_marks(frame) for frame in frames(picture)]
    return marks


@pytest.mark.parametrize("source", PRINTS)
def test_a_photo_moved_turned_tilted_or_bent_never_passes(print_marks: dict[tuple[str, str], list[Marks]], source: str) -> None:
    outcomes = {
        (motion, challenge.value): _run(print_marks[(source, motion)], challenge, BLINKING)
        for motion in MOTIONS
        for challenge in Challenge
    }
    passed = [key for key, outcome in outcomes.items() if outcome.status != "failed"]
    assert passed == []
    seen = [m for m in print_marks[(source, "turned left and back")] if m is not None]
    assert len(seen) >= 6  # the face was found in most frames: the check, not the detector, said no


def test_a_photo_turned_like_a_head_is_caught_as_flat(print_marks: dict[tuple[str, str], list[Marks]]) -> None:
    """The yaw reading does move past the threshold; the parallax test is what says no."""
    caught = [
        _run(print_marks[(source, "turned left close to a wide lens")], Challenge.TURN_LEFT).reason
        for source in PRINTS
    ]
    assert "planar_motion" in caught and "passed" not in caught


def test_a_print_that_fools_the_landmarks_is_still_stopped_by_the_passive_check(faces_dir: Path) -> None:
    """Known limit of the landmark check, and why both checks run.

    Turned 30–45° close to a wide lens, this printed-photo attack makes dlib
    place its landmarks like a turned head (measured: 5 of 658 such photo
    sequences pass the turn challenge alone, see docs/liveness.md).  The
    passive check scores the still, frontal frames and rejects the print.
    """
    path = faces_dir / "spoof/nuaa_0001/0001_00_04_03_174.jpg"
    frames = [_marks(frame) for frame in MOTIONS["turned right close to a wide lens"](_face_crop(path))]
    active = _run(frames, Challenge.TURN_LEFT)
    image = load_image(path)
    boxes = face_recognition.face_locations(image, 1)
    passive = passive_check(image, max(boxes, key=lambda b: b[2] - b[0]), SETTINGS)
    result = decide(SETTINGS, [passive.score], active)
    print(f"\nactive alone: {active.status} ({active.reason}), passive score {passive.score}")
    assert not passive.passed
    assert not result.passed and result.reason in {"passive_spoof", "planar_motion", "timeout", "wrong_direction"}


# -------------------------------------------- active check: state machine units


@pytest.fixture(scope="module")
def frontal(turn_marks: dict[str, list[Marks]]) -> NDArray[np.float64]:
    marks = turn_marks["jack turns right"][0]
    assert marks is not None
    return marks


def _blink(points: NDArray[np.float64], closed: float) -> NDArray[np.float64]:
    """Move the eyelid landmarks towards each eye's centre line (closed = 0 open … 1 shut)."""
    out = points.copy()
    for lids in ((37, 38, 40, 41), (43, 44, 46, 47)):
        centre_y = points[[lids[0] - 1, lids[1] + 1]][:, 1].mean()
        out[list(lids), 1] = points[list(lids), 1] + (centre_y - points[list(lids), 1]) * closed
    return out


def _homography_of(points: NDArray[np.float64], h: NDArray[np.float64]) -> NDArray[np.float64]:
    return cv2.perspectiveTransform(points[None], h)[0]


def _feed(challenge: Challenge, frames: Sequence[Marks], settings: LivenessSettings = BLINKING, dt: float = 0.1) -> ActiveCheck:
    check = ActiveCheck.start(challenge, settings, 0.0)
    for i, marks in enumerate(frames, start=1):
        check = check.feed(marks, i * dt)
    return check


def test_a_blink_passes(frontal: NDArray[np.float64]) -> None:
    frames = [frontal, _blink(frontal, 0.3), _blink(frontal, 0.9), _blink(frontal, 0.2), frontal]
    assert eye_aspect_ratio(_blink(frontal, 0.9)) < 0.5 * eye_aspect_ratio(frontal)
    check = _feed(Challenge.BLINK, frames)
    assert (check.status, check.reason) == ("passed", "passed")
    assert check.peak < BLINKING.blink_close


def test_half_closed_eyes_or_eyes_that_stay_shut_do_not_pass(frontal: NDArray[np.float64]) -> None:
    assert _feed(Challenge.BLINK, [frontal, _blink(frontal, 0.3), frontal]).reason == "act"
    shut = _feed(Challenge.BLINK, [frontal, _blink(frontal, 0.9), _blink(frontal, 0.9)])
    assert (shut.status, shut.reason, shut.outcome.prompt_zh) == ("pending", "open_eyes", "请睁眼")


def test_a_photo_tilted_forward_does_not_blink(frontal: NDArray[np.float64]) -> None:
    """Squeezing the whole face vertically lowers the raw EAR like a blink; undoing the plane does not."""
    squash = np.array([[1, 0, 0], [0, 0.45, 120], [0, 0, 1]], dtype=np.float64)
    squeezed = _homography_of(frontal, squash)
    assert eye_aspect_ratio(squeezed) < BLINKING.blink_close * eye_aspect_ratio(frontal)
    check = _feed(Challenge.BLINK, [frontal, squeezed, frontal])
    assert check.status == "pending" and check.peak > 0.9


def test_a_face_that_jumps_or_vanishes_restarts_the_challenge(frontal: NDArray[np.float64], turn_marks: dict[str, list[Marks]]) -> None:
    turned = turn_marks["jack turns right"][1]
    assert turned is not None
    step = SETTINGS.max_jump * 200  # eye distance here is well under 200 px
    started = _feed(Challenge.TURN_RIGHT, [frontal, turned], SETTINGS)
    assert started.phase == "back"
    jumped = started.feed(turned + [step, 0], 0.3)  # a second photo slid in: back to the start
    assert (jumped.phase, jumped.reason) == ("frontal", "face_frontal") and jumped.reference is None
    gap = started.feed(None, 0.5).feed(frontal, 0.3 + SETTINGS.max_gap_s + 0.1)
    assert gap.phase == "act" and gap.status == "pending"  # a new reference, the turn is to be done again
    through = started.feed(None, 0.3).feed(frontal, 0.4)  # a missed detection within the gap is fine
    assert through.status == "passed"


def test_the_challenge_waits_for_a_frontal_face_and_then_prompts(turn_marks: dict[str, list[Marks]]) -> None:
    turned = turn_marks["jack turns right"][2]
    check = ActiveCheck.start(Challenge.TURN_LEFT, SETTINGS, 0.0).feed(turned, 0.1)
    assert (check.status, check.reason, check.outcome.prompt_zh) == ("pending", "face_frontal", "请正对摄像头")
    check = check.feed(turn_marks["jack turns right"][0], 0.2)
    assert check.outcome.prompt_zh == "请向左转头，再转回正面"
    done = _feed(Challenge.TURN_RIGHT, turn_marks["jack turns right"], SETTINGS)
    assert done.feed(None, 99.0) is done  # a decided check stays decided


def test_landmarks_come_as_face_recognition_gives_them(frontal: NDArray[np.float64]) -> None:
    p = [tuple(xy) for xy in frontal.tolist()]
    as_dict = {  # face_recognition.api.face_landmarks, model="large"
        "chin": p[0:17], "left_eyebrow": p[17:22], "right_eyebrow": p[22:27], "nose_bridge": p[27:31],
        "nose_tip": p[31:36], "left_eye": p[36:42], "right_eye": p[42:48],
        "top_lip": p[48:55] + [p[64], p[63], p[62], p[61], p[60]],
        "bottom_lip": p[54:60] + [p[48], p[60], p[67], p[66], p[65], p[64]],
    }
    assert np.array_equal(landmark_points(as_dict), frontal)
    assert abs(head_yaw(frontal)) < SETTINGS.frontal_yaw
    with pytest.raises(ValueError, match="68-point"):
        landmark_points({"nose_tip": p[:1], "left_eye": p[:1], "right_eye": p[:1]})
    with pytest.raises(ValueError, match="68 × 2"):
        landmark_points(frontal[:5])


def test_head_yaw_sign_follows_the_persons_own_left(turn_marks: dict[str, list[Marks]]) -> None:
    """jack_dorsey_59 looks towards the image's left, i.e. to his right."""
    _, right_1, right_2, _ = turn_marks["jack turns right"]
    _, left, _ = turn_marks["jack turns left"]
    assert right_1 is not None and right_2 is not None and left is not None
    assert head_yaw(right_1) < -0.25 and head_yaw(right_2) < -0.25 and head_yaw(left) > 0.25


def test_choose_challenge_draws_from_the_configured_ones() -> None:
    rng = random.Random(7)
    assert {choose_challenge(SETTINGS, rng) for _ in range(50)} == {Challenge.TURN_LEFT, Challenge.TURN_RIGHT}
    assert choose_challenge(SETTINGS.model_copy(update={"challenges": (Challenge.BLINK,)}), rng) is Challenge.BLINK


# ------------------------------------------------------------- both together

PASSED = ActiveOutcome(Challenge.TURN_LEFT, "passed", "passed", 2.4, 0.31)
PENDING = ActiveOutcome(Challenge.TURN_LEFT, "pending", "come_back", 1.2, 0.31)
FLAT = ActiveOutcome(Challenge.TURN_RIGHT, "failed", "planar_motion", 1.6, 0.08)
OFF_PASSIVE = SETTINGS.model_copy(update={"passive": False})
OFF_ACTIVE = SETTINGS.model_copy(update={"active": False})
OFF_BOTH = SETTINGS.model_copy(update={"passive": False, "active": False})


@pytest.mark.parametrize(
    ("settings", "scores", "active", "passed", "reason", "score"),
    [
        (SETTINGS, [0.9, 0.8, 0.95], PASSED, True, "passed", 0.9),
        (SETTINGS, [0.9, 0.1, 0.95], PASSED, True, "passed", 0.9),  # one blurred frame does not fail a person
        (SETTINGS, [0.5], PASSED, True, "passed", 0.5),  # exactly at the threshold passes
        (SETTINGS, [0.4999], PASSED, False, "passive_spoof", 0.4999),
        (SETTINGS, [0.2, 0.3, 0.9], PASSED, False, "passive_spoof", 0.3),
        (SETTINGS, [0.9], FLAT, False, "planar_motion", 0.9),
        (SETTINGS, [0.9], PENDING, False, "active_pending", 0.9),
        (SETTINGS, [0.9], None, False, "active_pending", 0.9),
        (SETTINGS, [], PASSED, False, "no_frames", None),
        (OFF_PASSIVE, [0.1], PASSED, True, "passed", None),
        (OFF_ACTIVE, [0.7], None, True, "passed", 0.7),
        (OFF_ACTIVE, [0.3], FLAT, False, "passive_spoof", 0.3),
        (OFF_BOTH, [], None, True, "disabled", None),
    ],
)
def test_decide_needs_every_enabled_check(
    settings: LivenessSettings, scores: list[float], active: ActiveOutcome | None, passed: bool, reason: str, score: float | None
) -> None:
    result = decide(settings, scores, active)
    assert (result.passed, result.reason, result.passive_score) == (passed, reason, score)


def test_the_result_travels_with_the_punch() -> None:
    result = decide(SETTINGS, [0.91, 0.88, 0.93], PASSED)
    message = json.loads(json.dumps(result.to_dict()))
    assert message == {
        "passed": True,
        "passive_score": 0.91,
        "passive_frames": 3,
        "active": {"challenge": "turn_left", "status": "passed", "reason": "passed", "elapsed_s": 2.4, "peak": 0.31},
        "reason": "passed",
    }
    failed = decide(SETTINGS, [0.9], FLAT)
    assert failed.to_dict()["reason"] == "planar_motion" and failed.reason_zh == "未检测到真实转头，请本人操作"
