"""Evidence snapshots that show the seat and nobody else.

An alert's snapshot must prove an empty seat (or who sat in it) without
exposing the citizens at the counter: the customer side is blurred always,
and every face outside the staff seats is blurred too (a colleague passing
behind, a citizen leaning in).  A face inside a staff seat is the person the
evidence is about and stays visible.  Blurring happens on the camera, before
the picture is stored or sent, so an unblurred picture never leaves the
device.  Pixelation (not a mild blur) is used because a light Gaussian blur
of a face can be partly undone.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from vision.occupancy import Box, Frame, Polygon, inside

MOSAIC_CELLS = 12
"""A blurred area is rebuilt from this many cells across: no face survives it."""


def _pixelated(image: Frame) -> Frame:
    h, w = image.shape[:2]
    cells = (max(1, min(MOSAIC_CELLS, w // 4)), max(1, min(MOSAIC_CELLS, h // 4)))
    small = cv2.resize(image, cells, interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def redact(frame: Frame, seats: Sequence[Polygon], customer: Sequence[Polygon], faces: Sequence[Box]) -> Frame:
    """A copy of ``frame`` with the customer side and every face not in a staff seat pixelated."""
    out = frame.copy()
    h, w = frame.shape[:2]
    if customer:
        mask = np.zeros((h, w), np.uint8)
        for polygon in customer:
            cv2.fillPoly(mask, [np.asarray(polygon, np.int32)], 255)
        ys, xs = np.nonzero(mask)
        if len(ys):
            y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
            blurred = _pixelated(out[y0:y1, x0:x1])
            region = out[y0:y1, x0:x1]
            keep = mask[y0:y1, x0:x1] > 0
            region[keep] = blurred[keep]
    for top, right, bottom, left in faces:
        cx, cy = (left + right) / 2, (top + bottom) / 2
        if any(inside(seat, cx, cy) for seat in seats):
            continue
        pad_y, pad_x = (bottom - top) // 3, (right - left) // 3
        y0, y1 = max(0, top - pad_y), min(h, bottom + pad_y)
        x0, x1 = max(0, left - pad_x), min(w, right + pad_x)
        if y1 > y0 and x1 > x0:
            out[y0:y1, x0:x1] = _pixelated(out[y0:y1, x0:x1])
    return out


def jpeg(frame: Frame, quality: int = 80) -> bytes:
    """The picture as JPEG bytes (what is stored and sent)."""
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("the frame cannot be encoded as JPEG")
    return data.tobytes()
