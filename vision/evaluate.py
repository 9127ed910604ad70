"""How well identification works on a folder of photos (``hallwatch faces evaluate DIR``).

The folder is laid out like ``../shared/testdata/faces``::

    known/<person>/*.jpg      people who may be enrolled
    strangers/<person>/*.jpg  people never enrolled (optional)

Enrolled probes: each usable photo of a person with at least two is left out
in turn, the rest is the gallery (calibrated on itself, as the server does),
and the photo is identified.  Strangers: each known person is left out in
turn (their photos become stranger probes against everyone else's gallery),
plus the ``strangers/`` folder against the whole gallery.  Beside it, the
same folds with raw face_recognition at tolerance 0.6: any template within
0.6 is a match, the nearest one names the person.

Every photo is one frame; the terminal's vote over several frames is not
part of these figures (it only makes them stricter).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vision.calibration import calibrate
from vision.faces import Encoding, Face, FaceSettings, Rejected, load_image, one_face
from vision.identify import Gallery, identify

PICTURES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
RAW_TOLERANCE = 0.6


@dataclass(frozen=True)
class Photo:
    person: str
    path: Path
    encoding: Encoding | None
    rejected: str | None


@dataclass
class Tally:
    """Outcomes of one method over the probes."""

    enrolled_probes: int = 0
    identified: int = 0
    wrong: int = 0
    retries: int = 0  # not identified: ambiguous, unknown, or sent to 1:1 verification
    stranger_probes: int = 0
    stranger_accepts: int = 0
    wrong_cases: list[str] = field(default_factory=list)
    accepted_strangers: list[str] = field(default_factory=list)

    def rates(self) -> dict[str, float]:
        n, s = self.enrolled_probes or 1, self.stranger_probes or 1
        return {
            "identified": self.identified / n,
            "wrong": self.wrong / n,
            "retries": self.retries / n,
            "stranger_far": self.stranger_accepts / s,
        }


@dataclass
class Evaluation:
    photos: list[Photo]
    calibrated: Tally
    raw: Tally
    outcomes: Counter[str]
    thresholds_seen: list[tuple[float, float]]

    def meets_targets(self) -> bool:
        r = self.calibrated.rates()
        return r["stranger_far"] <= 0.01 and r["identified"] >= 0.95 and r["retries"] <= 0.05 and self.calibrated.wrong == 0


def read_folder(root: Path, settings: FaceSettings, progress: Callable[[Path], None] | None = None) -> list[Photo]:
    """Every photo under known/ and strangers/, encoded once (rejections kept with their reason)."""
    if not (root / "known").is_dir():
        raise ValueError(f"{root}: no known/ folder (expected known/<person>/*.jpg, optionally strangers/<person>/*.jpg)")
    photos = []
    for group in ("known", "strangers"):
        for path in sorted((root / group).glob("*/*")):
            if path.suffix.lower() not in PICTURES:
                continue
            try:
                found: Face | Rejected = one_face(load_image(path), settings, largest=True)
            except ValueError:
                found = Rejected("unreadable")
            person = f"{group}/{path.parent.name}"
            if isinstance(found, Rejected):
                photos.append(Photo(person, path, None, f"{found.code} {found.detail}".strip()))
            else:
                photos.append(Photo(person, path, found.encoding, None))
            if progress:
                progress(path)
    return photos


def _gallery(photos: list[Photo]) -> Gallery:
    templates: dict[str, list[Encoding]] = {}
    for photo in photos:
        if photo.encoding is not None:
            templates.setdefault(photo.person, []).append(photo.encoding)
    return Gallery(templates)


def _raw(probe: Encoding, gallery: Gallery) -> str | None:
    """face_recognition's own way: compare_faces at 0.6, the nearest match names the person."""
    if not len(gallery):
        return None
    d = np.linalg.norm(gallery.matrix - probe, axis=1)
    if d.min() > RAW_TOLERANCE:
        return None
    owner = int(np.searchsorted(gallery.starts, int(d.argmin()), side="right") - 1)
    return gallery.people[owner]


def evaluate(photos: list[Photo], target_far: float = 0.01, progress: Callable[[], None] | None = None) -> Evaluation:
    """Both methods over the same folds (see the module docstring)."""
    known = [p for p in photos if p.person.startswith("known/") and p.encoding is not None]
    strangers = [p for p in photos if p.person.startswith("strangers/") and p.encoding is not None]
    calibrated, raw, outcomes, seen = Tally(), Tally(), Counter[str](), []
    usable = Counter(p.person for p in known)
    rejected_known = [p for p in photos if p.person.startswith("known/") and p.encoding is None and usable[p.person] >= 1]
    for photo in rejected_known:  # a photo the quality gates refuse is a retry at the terminal
        for tally in (calibrated, raw):
            tally.enrolled_probes += 1
            tally.retries += 1
        outcomes["rejected_by_quality"] += 1

    for index, probe in enumerate(known):
        if usable[probe.person] < 2:
            continue
        gallery = _gallery(known[:index] + known[index + 1 :])
        cal = calibrate(gallery, target_far)
        seen.append((cal.thresholds.threshold, cal.thresholds.margin))
        assert probe.encoding is not None
        decision = identify(probe.encoding, gallery.flagged(cal.verify_only), cal.thresholds)
        outcomes[decision.outcome] += 1
        calibrated.enrolled_probes += 1
        if decision.accepted and decision.person_id == probe.person:
            calibrated.identified += 1
        elif decision.accepted:
            calibrated.wrong += 1
            calibrated.wrong_cases.append(f"{probe.path.name} → {decision.person_id}")
        else:
            calibrated.retries += 1
        named = _raw(probe.encoding, gallery)
        raw.enrolled_probes += 1
        if named == probe.person:
            raw.identified += 1
        elif named is not None:
            raw.wrong += 1
            raw.wrong_cases.append(f"{probe.path.name} → {named}")
        else:
            raw.retries += 1
        if progress:
            progress()

    folds = [(person, [p for p in known if p.person != person], [p for p in known if p.person == person]) for person in sorted(usable)]
    if strangers:
        folds.append(("strangers/", known, strangers))
    for _, enrolled, probes in folds:
        gallery = _gallery(enrolled)
        cal = calibrate(gallery, target_far)
        gallery = gallery.flagged(cal.verify_only)
        for probe in probes:
            assert probe.encoding is not None
            decision = identify(probe.encoding, gallery, cal.thresholds)
            calibrated.stranger_probes += 1
            raw.stranger_probes += 1
            if decision.accepted:
                calibrated.stranger_accepts += 1
                calibrated.accepted_strangers.append(f"{probe.path.name} → {decision.person_id}")
            named = _raw(probe.encoding, gallery)
            if named is not None:
                raw.stranger_accepts += 1
                raw.accepted_strangers.append(f"{probe.path.name} → {named}")
        if progress:
            progress()
    return Evaluation(photos, calibrated, raw, outcomes, seen)

