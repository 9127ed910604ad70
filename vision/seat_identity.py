"""Who sits in the staff seat: a short look by vote, at every arrival and every few minutes.

The supervision core needs the seated person to tell a registered clerk from
an unregistered substitute (替岗未报备) and to compare with the clerk logged
in on the evaluator.  A window camera sees the clerk from further away and at
worse angles than a clock-in terminal, so one frame is never trusted: a
*look* collects the usable faces (the same quality gates as enrolment) whose
centre lies in the seat for up to ``window_s`` and lets them vote
(:class:`vision.identify.FrameVote`).  The answer is

* a person id — the vote agreed on one enrolled person;
* ``UNKNOWN_OCCUPANT`` — every voting face matched nobody in the gallery;
* ``None`` — not visible: no usable face in the look, a look-alike who can
  only be confirmed 1:1 at the terminal, or frames that disagreed.  The
  camera never guesses; the last answer stands.

Pure computation on frames and times; the gallery is handed in by the
gallery sync.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from broker.protocol import UNKNOWN_OCCUPANT
from vision.faces import Face, FaceSettings, from_bgr, one_face
from vision.gallery import TerminalGallery
from vision.identify import FrameVote, Gallery, Thresholds, identify
from vision.occupancy import Frame, Polygon, inside

SeatKey = tuple[str, str]
"""(window id, seat)."""


@dataclass
class _Look:
    started: float
    vote: FrameVote


class SeatIdentity:
    """Looks at the occupied seats when one is due; answers per seat when a look ends."""

    def __init__(self, face_settings: FaceSettings, *, every_s: float = 180.0, window_s: float = 10.0, vote_need: int = 3, vote_frames: int = 5) -> None:
        self.face_settings = face_settings
        self.every_s = every_s
        self.window_s = window_s
        self.vote_need = vote_need
        self.vote_frames = vote_frames
        self._gallery: Gallery | None = None
        self._thresholds: Thresholds | None = None
        self._looks: dict[SeatKey, _Look] = {}
        self._next: dict[SeatKey, float] = {}

    def set_gallery(self, gallery: TerminalGallery) -> None:
        """Identify against this gallery from now on; looks in progress start over."""
        self._gallery, self._thresholds = gallery.matcher(), gallery.thresholds
        for look in self._looks.values():
            look.vote = FrameVote(self.vote_need, self.vote_frames)

    @property
    def ready(self) -> bool:
        return self._gallery is not None

    def arrived(self, key: SeatKey, t: float) -> None:
        """The seat became occupied: look now."""
        self._next[key] = t

    def left(self, key: SeatKey) -> None:
        """The seat became vacant (or the camera was lost): forget it."""
        self._next.pop(key, None)
        self._looks.pop(key, None)

    def looking(self, key: SeatKey, t: float) -> bool:
        """Whether this frame should be searched for the seat's face (a look is due or running)."""
        if key in self._looks:
            return True
        due = self._next.get(key)
        if due is None or t < due or self._gallery is None:
            return False
        self._looks[key] = _Look(t, FrameVote(self.vote_need, self.vote_frames))
        return True

    def observe(self, key: SeatKey, frame: Frame, polygon: Polygon, t: float) -> tuple[bool, str | None]:
        """Feed one frame to the seat's running look: (look ended, answer)."""
        look = self._looks.get(key)
        if look is None or self._gallery is None or self._thresholds is None:
            return False, None
        face = seat_face(frame, polygon, self.face_settings)
        decision = look.vote.add(identify(face.encoding, self._gallery, self._thresholds)) if face is not None else None
        if decision is None and t - look.started < self.window_s:
            return False, None
        del self._looks[key]
        self._next[key] = t + self.every_s
        if decision is None or decision.outcome in ("ambiguous", "verify"):
            return True, None
        return True, decision.person_id if decision.accepted else UNKNOWN_OCCUPANT


def seat_face(frame: Frame, polygon: Polygon, settings: FaceSettings) -> Face | None:
    """The largest usable face whose centre lies in the seat (searched in the seat's padded box only)."""
    points = np.asarray(polygon)
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    pad_x, pad_y = (x1 - x0) // 4, (y1 - y0) // 4
    x0, y0 = max(0, int(x0 - pad_x)), max(0, int(y0 - pad_y))
    crop = np.ascontiguousarray(frame[y0 : int(y1 + pad_y), x0 : int(x1 + pad_x)])

    def in_seat(box: tuple[int, int, int, int]) -> bool:
        top, right, bottom, left = box
        return inside(polygon, x0 + (left + right) / 2, y0 + (top + bottom) / 2)

    found = one_face(from_bgr(crop), settings, largest=True, where=in_seat)  # a neighbour's face is never encoded
    return found if isinstance(found, Face) else None
