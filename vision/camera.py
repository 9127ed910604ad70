"""Frames from a camera — USB index, RTSP URL or a video file — reopened with backoff when lost.

Shared by the face terminal and the window camera.  A recording that ends
counts as a lost camera, like a dropped stream (and is not reopened: it
would start over and replay the past as if it were now), and so does a
*frozen* one:
a real sensor never delivers two bit-identical frames (there is always some
noise), so a run of identical frames means a stalled decoder or a camera
that keeps re-sending its last picture — it cannot see, and must not be
taken for an empty seat.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import cv2
import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)


class Camera:
    """Frames at about ``fps``; ``on_lost(reason)`` when the camera is lost, ``on_back()`` when it delivers again."""

    def __init__(
        self,
        spec: str | int,
        *,
        fps: float = 5.0,
        backoff: tuple[float, float] = (0.5, 30.0),
        frozen_s: float = 10.0,
        on_lost: Callable[[str], None] | None = None,
        on_back: Callable[[], None] | None = None,
    ) -> None:
        self.spec = int(spec) if isinstance(spec, str) and spec.isdigit() else spec
        self.is_file = isinstance(self.spec, str) and "://" not in self.spec
        """A recording is read as fast as it decodes, keeping every n-th frame to match ``fps``.
        A live camera is read as it delivers, and only about ``fps`` frames a second are
        converted and handed on: the rest are grabbed and dropped, so a stream faster than
        ``fps`` never queues up behind the caller (the picture would lag further and further)."""
        self.period = 1.0 / fps
        self.backoff = backoff
        self.frozen_frames = max(2, round(frozen_s * fps))
        self.on_lost = on_lost
        self.on_back = on_back
        self.lost = 0
        self._down = False

    def frames(self, stop: threading.Event) -> Iterator[NDArray[np.uint8]]:
        delay = self.backoff[0]
        while not stop.is_set():
            capture = cv2.VideoCapture(self.spec)
            got_any, reason = False, "cannot open"
            try:
                source_fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
                step = max(1, round(source_fps * self.period)) if self.is_file and source_fps else 1
                index, same, last, due = 0, 0, None, time.monotonic()
                while capture.isOpened() and not stop.is_set():
                    if not capture.grab():
                        reason = "ended" if got_any else "cannot read"
                        break
                    index += 1
                    if (index - 1) % step or (not self.is_file and time.monotonic() < due):
                        continue
                    due = max(due + self.period, time.monotonic() - self.period)
                    ok, frame = capture.retrieve()
                    if not ok or frame is None:
                        reason = "cannot decode"
                        break
                    thumb = frame[::8, ::8].copy()
                    same = same + 1 if last is not None and np.array_equal(thumb, last) else 0
                    last = thumb
                    if same >= self.frozen_frames:
                        reason = f"frozen ({same + 1} identical frames)"
                        break
                    got_any = True
                    delay = self.backoff[0]
                    if self._down:
                        self._down = False
                        log.info("camera %s is back", self.spec)
                        if self.on_back:
                            self.on_back()
                    yield frame
            finally:
                capture.release()
            if stop.is_set():
                return
            self.lost += 1
            if not self._down:
                self._down = True
                if self.on_lost:
                    self.on_lost(reason)
            if self.is_file and reason == "ended":
                log.warning("recording %s ended; the camera stays lost", self.spec)
                stop.wait()
                return
            log.warning("camera %s lost (%s); retrying in %.1f s", self.spec, reason, delay)
            stop.wait(delay)
            delay = min(self.backoff[1], delay * 2)
