"""Face pipeline on the real photos: quality gates, open-set identification, calibration, voting."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vision.calibration import calibrate
from vision.evaluate import Evaluation, Photo, evaluate, read_folder
from vision.faces import Face, FaceSettings, Rejected, load_image, one_face
from vision.identify import Decision, FrameVote, Gallery, Thresholds, decide, identify, verify

SETTINGS = FaceSettings()


@pytest.fixture(scope="module")
def photos(faces_dir: Path) -> list[Photo]:
    return read_folder(faces_dir, SETTINGS)


@pytest.fixture(scope="module")
def evaluation(photos: list[Photo]) -> Evaluation:
    return evaluate(photos, target_far=0.01)


def _face(path: Path, **kwargs: bool) -> Face | Rejected:
    return one_face(load_image(path), SETTINGS, **kwargs)


# ------------------------------------------------------------------ gates


def test_pictures_without_a_face_are_rejected_as_such(faces_dir: Path) -> None:
    for path in sorted((faces_dir / "noface").iterdir()):
        found = _face(path)
        assert isinstance(found, Rejected) and found.code == "no_face", path.name
        assert found.reason_zh == "未检测到人脸"


def test_every_known_photo_passes_the_gates(photos: list[Photo]) -> None:
    assert [p.path.name for p in photos if p.rejected] == []
    assert len([p for p in photos if p.person.startswith("known/")]) == 87


def test_a_blurred_photo_is_rejected_with_its_reason(faces_dir: Path) -> None:
    image = load_image(faces_dir / "known/scarlett_johansson/scarlett_johansson_08.jpg")
    assert isinstance(one_face(image, SETTINGS), Face)
    blurred = cv2.GaussianBlur(image, (0, 0), 9)
    found = one_face(blurred, SETTINGS)
    assert isinstance(found, Rejected) and found.code == "blurred", found
    assert "sharpness" in found.detail and found.reason_zh == "图像模糊，请保持不动"


def test_a_face_too_small_is_rejected_and_one_pixel_bigger_is_not(faces_dir: Path) -> None:
    image = load_image(faces_dir / "known/obama/obama.jpg")
    face = one_face(image, SETTINGS)
    assert isinstance(face, Face)
    size = face.quality.face_px
    at_limit = SETTINGS.model_copy(update={"min_face_px": size})
    above = SETTINGS.model_copy(update={"min_face_px": size + 1})
    assert isinstance(one_face(image, at_limit), Face)
    small = one_face(image, above)
    assert isinstance(small, Rejected) and small.code == "too_small" and small.reason_zh == "人脸太小，请靠近"


def test_a_dark_picture_is_rejected_as_too_dark(faces_dir: Path) -> None:
    image = load_image(faces_dir / "known/nuaa_0003/0003_01_00_01_215.jpg")
    dark = (image.astype(np.float32) * 0.45).astype(np.uint8)
    found = one_face(dark, SETTINGS)
    assert isinstance(found, Rejected) and found.code in ("too_dark", "no_face"), found


def test_two_faces_refuse_enrolment_but_a_terminal_takes_the_nearer_one(faces_dir: Path) -> None:
    a = load_image(faces_dir / "known/nuaa_0003/0003_01_00_01_215.jpg")
    b = cv2.resize(load_image(faces_dir / "known/nuaa_0005/0005_00_00_02_197.jpg"), (a.shape[1], a.shape[0]))
    pair = np.ascontiguousarray(np.hstack([a, b]))
    found = one_face(pair, SETTINGS)
    assert isinstance(found, Rejected) and found.code == "several_faces"
    big = np.ascontiguousarray(np.hstack([cv2.resize(a, (a.shape[1] * 3 // 2, a.shape[0] * 3 // 2)), np.pad(b, ((0, a.shape[0] // 2), (0, 0), (0, 0)))]))
    nearest = one_face(big, SETTINGS, largest=True)
    assert isinstance(nearest, Face) and nearest.box[3] < a.shape[1] * 3 // 2, "the larger (left) face was taken"


def test_an_unreadable_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="broken.jpg"):
        load_image(bad)


# --------------------------------------------------------- identification


def test_evaluation_meets_the_targets_where_raw_face_recognition_does_not(evaluation: Evaluation) -> None:
    cal, raw = evaluation.calibrated.rates(), evaluation.raw.rates()
    assert evaluation.calibrated.wrong == 0, evaluation.calibrated.wrong_cases
    assert cal["stranger_far"] <= 0.01, evaluation.calibrated.accepted_strangers
    assert cal["identified"] >= 0.95 and cal["retries"] <= 0.05
    assert evaluation.calibrated.stranger_probes == 92 and evaluation.calibrated.enrolled_probes == 87
    # The library's default accepts strangers as somebody: the reason all of this exists.
    assert raw["stranger_far"] > 0.3
    assert evaluation.meets_targets()


def _gallery(photos: list[Photo], people: set[str] | None = None) -> Gallery:
    templates: dict[str, list[np.ndarray]] = {}
    for p in photos:
        if p.encoding is not None and p.person.startswith("known/") and (people is None or p.person in people):
            templates.setdefault(p.person, []).append(p.encoding)
    return Gallery(templates)


def test_a_stranger_is_never_identified_but_raw_matching_names_someone(photos: list[Photo]) -> None:
    gallery = _gallery(photos)
    limits = calibrate(gallery).thresholds
    for probe in (p for p in photos if p.person.startswith("strangers/")):
        assert probe.encoding is not None
        decision = identify(probe.encoding, gallery, limits)
        assert not decision.accepted, (probe.path.name, decision)
        assert decision.outcome in ("unknown", "ambiguous")


def test_calibration_reports_its_estimate_and_the_limits_of_a_small_gallery(photos: list[Photo]) -> None:
    cal = calibrate(_gallery(photos), target_far=0.01)
    assert 0.3 <= cal.thresholds.threshold <= 0.6 and cal.thresholds.margin >= 0.1
    assert cal.stranger_probes == 87 and cal.stranger_accepts == 0 and cal.genuine_probes == 87
    assert cal.far_upper95 == pytest.approx(3 / 87)
    assert any("cannot show a rate under 1.0%" in w for w in cal.warnings), "87 probes cannot prove 1 %"
    assert cal.lookalikes == ()
    one = calibrate(_gallery(photos, {"known/obama"}))
    assert any("fewer than two people" in w for w in one.warnings)


def test_look_alike_pairs_are_listed_and_sent_to_one_to_one_verification(photos: list[Photo]) -> None:
    gallery = _gallery(photos)
    rng = np.random.default_rng(7)
    twin = [e + rng.normal(0, 0.005, 128) for e in gallery.templates("known/nuaa_0002")]
    templates = {p: list(gallery.templates(p)) for p in gallery.people} | {"known/twin": twin}
    cal = calibrate(Gallery(templates))
    assert [(a, b) for a, b, _ in cal.lookalikes] == [("known/nuaa_0002", "known/twin")]
    flagged = Gallery(templates, cal.verify_only)
    probe = next(p for p in photos if p.person == "known/nuaa_0002")
    assert probe.encoding is not None
    decision = identify(probe.encoding, flagged, cal.thresholds)
    assert decision.outcome in ("verify", "ambiguous") and not decision.accepted
    ok, distance = verify(probe.encoding, flagged, "known/nuaa_0002", cal.thresholds.threshold)
    assert ok and distance < cal.thresholds.threshold
    assert not verify(probe.encoding, flagged, "known/nuaa_0003", cal.thresholds.threshold)[0]


def test_threshold_and_margin_are_exact_boundaries() -> None:
    people = ("a", "b")
    limits = Thresholds(0.5, 0.125)  # binary fractions: the boundaries are exact
    assert decide(np.array([0.5, 0.625]), people, limits).outcome == "identified"
    assert decide(np.array([0.5000001, 0.7]), people, limits).outcome == "unknown"
    assert decide(np.array([0.375, 0.4999999]), people, limits).outcome == "ambiguous"
    assert decide(np.array([0.375, 0.5]), people, limits).outcome == "identified"
    assert decide(np.array([0.4]), ("a",), limits).outcome == "identified"
    assert decide(np.array([]), (), limits).outcome == "unknown"


# ----------------------------------------------------------------- voting


def _d(outcome: str, person: str | None, distance: float = 0.3) -> Decision:
    return Decision(outcome, person, distance, 0.2)  # type: ignore[arg-type]


def test_three_agreeing_frames_identify() -> None:
    vote = FrameVote(need=3, frames=5)
    assert vote.add(_d("identified", "a")) is None
    assert vote.add(_d("unknown", None)) is None
    assert vote.add(_d("identified", "a", 0.28)) is None
    final = vote.add(_d("identified", "a", 0.31))
    assert final is not None and final.accepted and final.person_id == "a" and final.distance == 0.28


def test_a_frame_naming_someone_else_spoils_the_vote() -> None:
    vote = FrameVote(need=3, frames=5)
    vote.add(_d("identified", "a"))
    final = vote.add(_d("identified", "b"))
    assert final is not None and final.outcome == "ambiguous" and not final.accepted


def test_too_few_agreeing_frames_ask_to_try_again_and_strangers_stay_unknown() -> None:
    vote = FrameVote(need=3, frames=4)
    for decision in (_d("identified", "a"), _d("ambiguous", "a"), _d("unknown", None)):
        assert vote.add(decision) is None
    final = vote.add(_d("identified", "a"))
    assert final is not None and final.outcome == "ambiguous"
    stranger = FrameVote(need=2, frames=2)
    stranger.add(_d("unknown", "a", 0.7))
    final = stranger.add(_d("unknown", "a", 0.8))
    assert final is not None and final.outcome == "unknown"
