"""Camera frames composed from the real test photos (no public clip shows a clerk at a terminal)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vision.faces import load_image

GREY = 110


def terminal_frame(path: Path) -> np.ndarray:
    """The photo placed in a 640×480 BGR frame, scaled to 300 px on its longer side."""
    image = cv2.cvtColor(load_image(path), cv2.COLOR_RGB2BGR)
    scale = 300 / max(image.shape[:2])
    image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)))
    frame = np.full((480, 640, 3), GREY, np.uint8)
    y, x = (480 - image.shape[0]) // 2, (640 - image.shape[1]) // 2
    frame[y : y + image.shape[0], x : x + image.shape[1]] = image
    return frame
