"""Is the staff seat occupied?  Per-seat presence from a window camera's frames.

No single cue is enough.  A face disappears when the clerk looks down at the
keyboard; motion stops when they read; a difference from the empty seat is
also there when a coat hangs on the chair, and a naive difference lights up
when the lights change.  So four signals are combined per seat region:

* **change from the empty-seat reference** — block by block, lighting-robust:
  textured blocks are compared by their correlation with the reference
  (unchanged by brightness and contrast), flat blocks by their brightness
  after the frame's lighting is divided out.  The lighting is a smooth gain
  field (a plane) fitted on the blocks outside every seat and customer
  region, so both a light switched on and sunlight creeping across the wall
  are taken out;
* **motion** between consecutive frames, after the same lighting correction;
* **a face** (dlib HOG through face_recognition) whose centre lies in the
  region, looked for only while the region differs from the empty seat;
* **stillness** as negative evidence: a changed region that has not moved
  for ``still_s`` and shows no face is an object, not a person; after
  ``absorb_s`` it becomes part of the reference (the coat is now "the chair").

The customer areas (the counter front, where customers stand and lean in)
are cut out of every seat region, and a face centred in one is not the
clerk's: the camera looks over the customers' heads, and a seat polygon
drawn down to the desk would otherwise take a customer's head moving in
front of a coat on the chair for the clerk.

A person is *seen* when a face is in the region, or the region is changed
and moved within ``still_s``.  Hysteresis turns sightings into a state:
occupied after ``occupied_after_s`` of sightings, vacant after
``vacant_after_s`` without one.  Before either has happened the state is
unknown (None), and it is never guessed: the camera source publishes nothing
for a seat it has not decided, and reports itself offline when it cannot see.

Pure computation on arrays (no camera, no clock): times are passed in, so
the same frames give the same states, in tests and in the benchmark.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from vision.faces import FaceSettings, find_faces, from_bgr

Frame = NDArray[np.uint8]
"""A BGR camera frame, height × width × 3."""
Polygon = tuple[tuple[int, int], ...]
Box = tuple[int, int, int, int]
"""top, right, bottom, left (face_recognition's order), in frame pixels."""
FaceFinder = Callable[[Frame], list[Box]]
"""Face boxes in a BGR crop."""
SeatState = Literal["occupied", "vacant"]


class OccupancySettings(BaseModel):
    """How presence is decided (defaults measured on the test clips; see docs/window-cameras.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    occupied_after_s: float = Field(default=2.0, ge=0, le=60)
    """Sightings this long (gaps under ``gap_s`` allowed) make the seat occupied."""
    vacant_after_s: float = Field(default=15.0, ge=0, le=600)
    """This long without a sighting makes it vacant."""
    gap_s: float = Field(default=1.0, ge=0, le=10)
    """A missed sighting this short does not restart the occupied count."""
    still_s: float = Field(default=10.0, ge=0, le=600)
    """A changed region still counts as a person this long after its last motion (a clerk reading)."""
    absorb_s: float = Field(default=120.0, ge=5, le=86400)
    """A changed region with no motion and no face this long joins the reference (an object left)."""
    face_every_s: float = Field(default=2.0, gt=0, le=600)
    """How often to look for a face in a changed region; a face found holds for 1.5 × this."""
    recheck_s: float = Field(default=1.0, gt=0, le=60)
    """Without motion anywhere, the reference comparison is repeated only this often."""
    work_width: int = Field(default=640, ge=160, le=1920)
    """Frames are scaled to this width first (regions are given in the camera's own pixels)."""
    block_px: int = Field(default=16, ge=4, le=64)
    changed_share: float = Field(default=0.15, gt=0, le=1)
    """Share of a region's blocks that differ from the reference for "something is there"."""
    motion_share: float = Field(default=0.003, gt=0, le=1)
    """Share of a region's pixels that moved for "it moved"."""
    motion_level: int = Field(default=14, ge=1, le=255)
    """Grey levels a pixel must change by (after the lighting correction) to count as moved."""
    texture_var: float = Field(default=40.0, ge=0)
    """Grey variance above which a block is compared by correlation rather than brightness."""
    min_correlation: float = Field(default=0.5, ge=-1, le=1)
    flat_tolerance: float = Field(default=0.18, gt=0, le=5)
    """Relative brightness difference (after the lighting correction) that changes a flat block."""
    textured_tolerance: float = Field(default=0.4, gt=0, le=5)
    """The same for a textured block whose pattern still correlates (a much darker copy)."""


@dataclass(frozen=True)
class SeatRegion:
    """One staff seat: which window it belongs to and its polygon in the camera's pixels."""

    window_id: str
    seat: str
    polygon: Polygon


@dataclass(frozen=True)
class Signals:
    """What one frame showed in one region (kept for logs, calibration and tests)."""

    changed: float
    motion: float
    face: bool
    seen: bool


@dataclass(frozen=True)
class Change:
    """A seat's decided state changed (or was decided for the first time)."""

    region: SeatRegion
    state: SeatState
    confidence: float
    at: float
    """When the state was decided (the frame that completed the hysteresis)."""
    since: float
    """When it began: the first sighting for occupied, the last one for vacant.

    Hysteresis decides late by design; publishing the onset keeps the
    server's timeline true to the second instead of shifted by the delay.
    For a vacancy the last sighting is the last face or movement: the
    ``still_s`` of doubt a motionless change is given (a clerk reading) is
    not counted once it ran out, so a seat left with a coat on the chair is
    dated from when its owner left, not ``still_s`` later.
    """


@dataclass
class _Track:
    """One seat's memory between frames."""

    region: SeatRegion
    blocks: NDArray[np.bool_]
    pixels: NDArray[np.uint8]
    bounds: tuple[int, int, int, int]  # y0, y1, x0, x1 at the working scale
    state: SeatState | None = None
    confidence: float = 0.0
    first_seen: float | None = None
    unseen_since: float | None = None
    last_motion: float | None = None
    last_face: float | None = None
    last_face_look: float | None = None
    still_since: float | None = None
    signals: Signals = field(default_factory=lambda: Signals(0.0, 0.0, False, False))


def _mask(shape: tuple[int, int], polygons: Sequence[Polygon], scale: float) -> NDArray[np.uint8]:
    mask = np.zeros(shape, np.uint8)
    for polygon in polygons:
        points = np.round(np.asarray(polygon, np.float64) * scale).astype(np.int32)
        cv2.fillPoly(mask, [points], 255)
    return mask


def inside(polygon: Polygon, x: float, y: float) -> bool:
    """Whether the point lies in (or on) the polygon."""
    return cv2.pointPolygonTest(np.asarray(polygon, np.float32), (float(x), float(y)), False) >= 0


class OccupancyMonitor:
    """Presence with hysteresis for the seats one camera watches.

    ``reference`` is the empty-seat frame captured at calibration (BGR, the
    camera's own size).  ``face_finder`` finds face boxes in a BGR crop
    (:func:`hog_faces` in production; None leaves the face signal out).
    """

    def __init__(
        self,
        regions: Sequence[SeatRegion],
        reference: Frame,
        settings: OccupancySettings | None = None,
        *,
        customer: Sequence[Polygon] = (),
        face_finder: FaceFinder | None = None,
    ) -> None:
        if not regions:
            raise ValueError("a window camera needs at least one seat region")
        self.settings = settings or OccupancySettings()
        self.size = (reference.shape[1], reference.shape[0])
        self.scale = min(1.0, self.settings.work_width / reference.shape[1])
        self._face_finder = face_finder
        b = self.settings.block_px
        ref = self._grey(reference)
        self.grid = (ref.shape[0] // b, ref.shape[1] // b)
        h, w = self.grid[0] * b, self.grid[1] * b
        self._shape = (h, w)
        self._customer = tuple(customer)
        self._customer_mask = _mask((h, w), self._customer, self.scale)
        self._tracks = [self._track(r) for r in regions]
        outside = _mask((h, w), [r.polygon for r in regions] + list(customer), self.scale)
        self._background = cv2.resize(outside, (self.grid[1], self.grid[0]), interpolation=cv2.INTER_AREA) < 64
        ys, xs = np.mgrid[0 : self.grid[0], 0 : self.grid[1]]
        self._design = np.stack([np.ones(self.grid, np.float32), xs / self.grid[1], ys / self.grid[0]], axis=-1).astype(np.float32)
        self._set_reference(ref[:h, :w])
        self._previous: tuple[NDArray[np.float32], float] | None = None
        """The last frame (half scale) and its median brightness."""
        self._changed: NDArray[np.bool_] | None = None
        self._compared_at: float | None = None

    # ----------------------------------------------------------- set-up

    def _grey(self, frame: Frame) -> NDArray[np.float32]:
        if self.scale < 1.0:
            frame = cv2.resize(frame, None, fx=self.scale, fy=self.scale, interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        return cv2.GaussianBlur(grey, (5, 5), 0).astype(np.float32)

    def _track(self, region: SeatRegion) -> _Track:
        pixels = cv2.bitwise_and(_mask(self._shape, [region.polygon], self.scale), cv2.bitwise_not(self._customer_mask))
        if not pixels.any():
            raise ValueError(f"seat {region.window_id}/{region.seat}: the polygon covers no pixel of the frame outside the customer areas")
        blocks = cv2.resize(pixels, (self.grid[1], self.grid[0]), interpolation=cv2.INTER_AREA) >= 128
        if not blocks.any():
            raise ValueError(f"seat {region.window_id}/{region.seat}: the polygon is smaller than one {self.settings.block_px} px block")
        ys, xs = np.nonzero(pixels)
        return _Track(region, blocks, pixels[::2, ::2] > 0, (int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1))  # type: ignore[arg-type]

    def _stats(self, grey: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        size = (self.grid[1], self.grid[0])
        mean = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        square = cv2.resize(grey * grey, size, interpolation=cv2.INTER_AREA)
        return mean, np.maximum(square - mean * mean, 0.0)

    def _set_reference(self, grey: NDArray[np.float32]) -> None:
        self._reference = grey.copy()
        self._ref_mean, self._ref_var = self._stats(self._reference)

    # ------------------------------------------------------------ frames

    @property
    def regions(self) -> list[SeatRegion]:
        return [t.region for t in self._tracks]

    def reset(self) -> None:
        """Forget what was seen (the camera was lost): every seat is undecided again."""
        self._tracks = [self._track(t.region) for t in self._tracks]
        self._previous = self._changed = self._compared_at = None

    def update(self, frame: Frame, t: float) -> list[Change]:
        """Look at one frame taken at ``t`` (seconds, any fixed origin); the seats whose state changed."""
        if (frame.shape[1], frame.shape[0]) != self.size:
            raise ValueError(f"frame is {frame.shape[1]}×{frame.shape[0]}, the reference {self.size[0]}×{self.size[1]}: recalibrate")
        h, w = self._shape
        grey = self._grey(frame)[:h, :w]
        moved = self._motion(grey)
        if self._changed is None or self._compared_at is None or moved.any() or t - self._compared_at >= self.settings.recheck_s:
            self._changed = self._compare(grey)
            self._compared_at = t
        changes = []
        for track in self._tracks:
            change = self._observe(track, frame, grey, moved, t)
            if change is not None:
                changes.append(change)
        return changes

    def signals(self) -> dict[tuple[str, str], Signals]:
        """The last frame's signals per (window, seat)."""
        return {(t.region.window_id, t.region.seat): t.signals for t in self._tracks}

    def coverage(self) -> dict[tuple[str, str], int]:
        """How many comparison blocks each seat spans (calibration refuses seats too small to judge)."""
        return {(t.region.window_id, t.region.seat): int(t.blocks.sum()) for t in self._tracks}

    def background_blocks(self) -> int:
        """Blocks outside every seat and customer region that the lighting is measured on."""
        return int(self._background.sum())

    def states(self) -> list[tuple[SeatRegion, SeatState | None, float]]:
        """Each seat's decided state (None = not decided yet) and its confidence."""
        return [(t.region, t.state, t.confidence) for t in self._tracks]

    # ---------------------------------------------------------- signals

    def _motion(self, grey: NDArray[np.float32]) -> NDArray[np.bool_]:
        """Pixels (at half scale) that moved since the last frame, with a lighting step divided out."""
        small = grey[::2, ::2]
        level = float(np.median(small[::4, ::4]))  # the frame's brightness; a sample is as good and 16× cheaper
        previous, self._previous = self._previous, (small, level)
        if previous is None:
            return np.zeros(small.shape, np.bool_)
        last, last_level = previous
        return np.abs(small - last * (level / max(last_level, 1.0))) > self.settings.motion_level

    def _gain(self, mean: NDArray[np.float32]) -> NDArray[np.float32]:
        """The lighting as a plane of gains over the frame, fitted on the background blocks."""
        ratio = mean / np.maximum(self._ref_mean, 4.0)
        usable = self._background & (self._ref_mean > 12) & (mean > 4)
        if usable.sum() < 12:
            return np.full(self.grid, float(np.median(ratio)), np.float32)
        x, y = self._design[usable], ratio[usable]
        keep = np.ones(len(y), np.bool_)
        for _ in range(2):  # refit without the outliers (a person passing behind, a screen)
            coef, *_ = np.linalg.lstsq(x[keep], y[keep], rcond=None)
            residual = np.abs(x @ coef - y)
            keep = residual <= max(3 * float(np.median(residual)), 0.02)
        return np.clip(self._design @ coef, 0.1, 10.0).astype(np.float32)

    def _compare(self, grey: NDArray[np.float32]) -> NDArray[np.bool_]:
        """Blocks that differ from the empty-seat reference."""
        s = self.settings
        mean, var = self._stats(grey)
        gain = self._gain(mean)
        size = (self.grid[1], self.grid[0])
        cross = cv2.resize(grey * self._reference, size, interpolation=cv2.INTER_AREA) - mean * self._ref_mean
        var_now = var / (gain * gain)
        correlation = cross / np.sqrt(np.maximum(var * self._ref_var, 1e-6))
        brightness = np.abs(mean / gain - self._ref_mean) / np.maximum(self._ref_mean, 20.0)
        textured = (self._ref_var > s.texture_var) | (var_now > s.texture_var)
        return np.where(textured, (correlation < s.min_correlation) | (brightness > s.textured_tolerance), brightness > s.flat_tolerance)

    def _face_in(self, track: _Track, frame: Frame) -> bool:
        if self._face_finder is None:
            return False
        y0, y1, x0, x1 = (round(v / self.scale) for v in track.bounds)
        pad_y, pad_x = (y1 - y0) // 4, (x1 - x0) // 4
        y0, x0 = max(0, y0 - pad_y), max(0, x0 - pad_x)
        crop = frame[y0 : y1 + pad_y, x0 : x1 + pad_x]
        for top, right, bottom, left in self._face_finder(np.ascontiguousarray(crop)):
            x, y = x0 + (left + right) / 2, y0 + (top + bottom) / 2
            if inside(track.region.polygon, x, y) and not any(inside(c, x, y) for c in self._customer):
                return True
        return False

    def _observe(self, track: _Track, frame: Frame, grey: NDArray[np.float32], moved: NDArray[np.bool_], t: float) -> Change | None:
        s = self.settings
        assert self._changed is not None
        changed = float(self._changed[track.blocks].mean())
        mask = track.pixels[: moved.shape[0], : moved.shape[1]]
        motion = float(moved[: mask.shape[0], : mask.shape[1]][mask].mean()) if mask.any() else 0.0
        something = changed >= s.changed_share
        if motion >= s.motion_share and something:
            track.last_motion = t
            track.still_since = None
        elif something and track.still_since is None:
            track.still_since = t
        elif not something:
            track.still_since = None
        face = False
        if something and (track.last_face_look is None or t - track.last_face_look >= s.face_every_s):
            track.last_face_look = t
            if self._face_in(track, frame):
                track.last_face = t
        if track.last_face is not None and t - track.last_face <= 1.5 * s.face_every_s:
            face = something
        moving = track.last_motion is not None and t - track.last_motion <= s.still_s
        seen = face or (something and moving)
        if something and not seen and track.still_since is not None and t - track.still_since >= s.absorb_s:
            self._absorb(track, grey)
        track.signals = Signals(round(changed, 3), round(motion, 4), face, seen)
        return self._decide(track, seen, changed, face, t)

    def _absorb(self, track: _Track, grey: NDArray[np.float32]) -> None:
        """The still, faceless thing in the seat becomes part of the empty seat (in this region only)."""
        b = self.settings.block_px
        mean, _ = self._stats(grey)
        gain = cv2.resize(self._gain(mean), (self._shape[1], self._shape[0]), interpolation=cv2.INTER_NEAREST)
        pixels = np.kron(track.blocks.astype(np.uint8), np.ones((b, b), np.uint8)).astype(np.bool_)
        reference = self._reference.copy()
        reference[pixels] = grey[pixels] / gain[pixels]
        self._set_reference(reference)
        track.still_since = None
        self._changed = self._compare(grey)

    def _decide(self, track: _Track, seen: bool, changed: float, face: bool, t: float) -> Change | None:
        s = self.settings
        if seen:
            if track.first_seen is None or (track.unseen_since is not None and t - track.unseen_since > s.gap_s):
                track.first_seen = t
            track.unseen_since = None
        elif track.unseen_since is None:
            track.unseen_since = t
        if face:
            confidence = 0.95
        elif seen:
            confidence = 0.6 + 0.3 * min(1.0, changed / (3 * s.changed_share))
        else:
            confidence = 0.95 if changed < s.changed_share / 2 else 0.7
        state, since = track.state, t
        if seen and state != "occupied" and track.first_seen is not None and t - track.first_seen >= s.occupied_after_s:
            state, since = "occupied", track.first_seen
        elif not seen and state != "vacant" and track.unseen_since is not None and t - track.unseen_since >= s.vacant_after_s:
            evidence = [v for v in (track.last_motion, track.last_face) if v is not None]
            state, since = "vacant", max(evidence, default=track.unseen_since)
            track.first_seen = None
        track.confidence = round(confidence, 2)
        if state == track.state:
            return None
        track.state = state
        assert state is not None
        return Change(track.region, state, track.confidence, t, since)


def hog_faces(upsample: int = 0, min_face_px: int = 40) -> FaceFinder:
    """Face boxes from dlib's HOG detector (through face_recognition) in a BGR crop.

    ``upsample`` 0 finds faces from about 80 px and costs a quarter of 1 (which
    finds them from about 40 px): choose it for the camera's distance.
    """

    settings = FaceSettings(upsample=upsample, min_face_px=min_face_px)

    def find(crop: Frame) -> list[Box]:
        boxes = [box for box, _, _ in find_faces(from_bgr(crop), settings)]  # crops are below max_side: scale 1
        return [b for b in boxes if min(b[2] - b[0], b[1] - b[3]) >= min_face_px]

    return find
