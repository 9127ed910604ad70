"""Calibrating a window camera: the empty-seat reference, a drawing of the regions, and checks.

Installers get one chance to set a camera up well, so calibration checks
what later makes presence unreliable and says which seat and why: a region
partly outside the picture, too small to judge, too dark or blown out to
see, overlapping another seat or the customer side, too little background
left to measure the lighting, or something moving in the seat while the
reference was taken (it must be empty).  The reference is the per-pixel
median of several frames, so sensor noise and a passer-by do not stay in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from vision.occupancy import Frame, OccupancyMonitor, OccupancySettings, Polygon, SeatRegion

MIN_BLOCKS = 12
"""A seat must span at least this many comparison blocks to be judged (a head is about 4)."""
MIN_BACKGROUND_BLOCKS = 24
"""Blocks outside every seat and customer region, to measure the lighting on."""
MAX_UNSEEN = 0.3
"""Largest share of a seat that may be black (<16) or blown out (>240) in the reference."""
MAX_OVERLAP = 0.05
MAX_MOVING = 0.01
"""Largest share of a seat's pixels that may move while the reference is taken."""


@dataclass(frozen=True)
class Check:
    """One calibration check: what, for which seat (or the camera), passed or not, and the measured value."""

    subject: str
    name: str
    ok: bool
    detail: str


def grab(capture: cv2.VideoCapture, frames: int, at_s: float | None = None) -> list[Frame]:
    """``frames`` consecutive frames (from ``at_s`` seconds into a recording); ValueError if none come."""
    if at_s is not None:
        capture.set(cv2.CAP_PROP_POS_MSEC, at_s * 1000.0)
    taken: list[Frame] = []
    for _ in range(frames):
        ok, frame = capture.read()
        if not ok or frame is None:
            break
        taken.append(frame)
    if not taken:
        raise ValueError("the camera gave no frame (check the index, URL or file, and --at)")
    return taken


def median_frame(frames: Sequence[Frame]) -> Frame:
    """The per-pixel median: noise and anything that moved through are left out."""
    return np.median(np.stack(frames), axis=0).astype(np.uint8) if len(frames) > 1 else frames[0].copy()


def draw(reference: Frame, regions: Sequence[SeatRegion], customer: Sequence[Polygon], checks: Sequence[Check] = ()) -> Frame:
    """The reference with each seat outlined and named (green, red where a check failed) and the customer side hatched."""
    out = reference.copy()
    failed = {c.subject for c in checks if not c.ok}
    for polygon in customer:
        points = np.asarray(polygon, np.int32)
        overlay = out.copy()
        cv2.fillPoly(overlay, [points], (255, 160, 0))
        out = cv2.addWeighted(overlay, 0.35, out, 0.65, 0)
        cv2.polylines(out, [points], True, (255, 160, 0), 2)
    for region in regions:
        name = f"{region.window_id}/{region.seat}"
        colour = (0, 0, 255) if name in failed else (0, 200, 0)
        points = np.asarray(region.polygon, np.int32)
        cv2.polylines(out, [points], True, colour, 2)
        x, y = points.min(axis=0)
        cv2.putText(out, name, (int(x) + 4, max(16, int(y) - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, 2, cv2.LINE_AA)
    return out


def check(frames: Sequence[Frame], regions: Sequence[SeatRegion], customer: Sequence[Polygon], settings: OccupancySettings | None = None) -> list[Check]:
    """Every calibration check for these regions on these frames (the reference is their median)."""
    settings = settings or OccupancySettings()
    reference = median_frame(frames)
    h, w = reference.shape[:2]
    checks: list[Check] = []
    grey = cv2.cvtColor(reference, cv2.COLOR_BGR2GRAY)
    masks = {}
    for region in regions:
        name = f"{region.window_id}/{region.seat}"
        outside = [(x, y) for x, y in region.polygon if not (0 <= x < w and 0 <= y < h)]
        checks.append(Check(name, "inside the picture", not outside, f"points outside {w}×{h}: {outside}" if outside else f"all {len(region.polygon)} points inside"))
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [np.asarray(region.polygon, np.int32)], 255)
        masks[name] = mask > 0
        try:
            blocks = OccupancyMonitor([region], reference, settings).coverage()[(region.window_id, region.seat)]
        except ValueError as exc:
            blocks, detail = 0, str(exc)
        else:
            detail = f"{blocks} blocks of {settings.block_px} px (at least {MIN_BLOCKS})"
        checks.append(Check(name, "large enough", blocks >= MIN_BLOCKS, detail))
        pixels = grey[masks[name]]
        unseen = float(((pixels < 16) | (pixels > 240)).mean()) if pixels.size else 1.0
        checks.append(Check(name, "visible", unseen <= MAX_UNSEEN, f"{unseen:.0%} black or blown out (at most {MAX_UNSEEN:.0%})"))
        moving = _moving_share(frames, masks[name], settings.motion_level)
        checks.append(Check(name, "still while captured", moving <= MAX_MOVING, f"{moving:.1%} of the seat moved (at most {MAX_MOVING:.0%}); the seat must be empty"))
    customer_mask = np.zeros((h, w), np.uint8)
    for polygon in customer:
        cv2.fillPoly(customer_mask, [np.asarray(polygon, np.int32)], 255)
    names = list(masks)
    for name in names:
        area = max(1, int(masks[name].sum()))
        worst = max([float((masks[name] & masks[other]).sum()) / area for other in names if other != name] + [0.0])
        with_customer = float((masks[name] & (customer_mask > 0)).sum()) / area
        checks.append(Check(name, "no overlap", worst <= MAX_OVERLAP and with_customer <= MAX_OVERLAP, f"{worst:.0%} shared with another seat, {with_customer:.0%} with the customer side (at most {MAX_OVERLAP:.0%})"))
    try:
        background = OccupancyMonitor(list(regions), reference, settings, customer=customer).background_blocks()
    except ValueError:
        background = 0
    checks.append(Check("camera", "background for lighting", background >= MIN_BACKGROUND_BLOCKS, f"{background} usable blocks outside the seats and the customer side (at least {MIN_BACKGROUND_BLOCKS})"))
    return checks


def _moving_share(frames: Sequence[Frame], mask: np.ndarray, level: int) -> float:
    if len(frames) < 2 or not mask.any():
        return 0.0
    greys = [cv2.GaussianBlur(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), (5, 5), 0).astype(np.int16) for f in frames]
    moved = np.zeros(mask.shape, bool)
    for previous, current in zip(greys, greys[1:]):
        moved |= np.abs(current - previous) > level
    return float(moved[mask].mean())
