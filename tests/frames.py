"""Camera frames composed from the real test photos (no public clip shows a clerk at a terminal)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from vision.calibration import calibrate
from vision.faces import Face, FaceSettings, load_image, one_face
from vision.gallery import Person, TerminalGallery
from vision.identify import Gallery

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


def enrolled_gallery(faces_dir: Path, *, leave_out: Callable[[str], bool], extra: Callable[[str], dict[str, object]] | None = None, version: int = 7) -> TerminalGallery:
    """A calibrated gallery of faces/known, without the photos ``leave_out("known/<person>/<file>")`` is true for.

    ``extra(person_id)`` gives a person's name, staff number and PIN hash
    (keyword arguments of :class:`vision.gallery.Person`); default: none.
    """
    templates: dict[str, list[np.ndarray]] = {}
    for folder in sorted((faces_dir / "known").iterdir()):
        for path in sorted(folder.iterdir()):
            if leave_out(f"known/{folder.name}/{path.name}"):
                continue
            face = one_face(load_image(path), FaceSettings())
            assert isinstance(face, Face), path
            templates.setdefault(folder.name, []).append(face.encoding)
    cal = calibrate(Gallery(templates))
    details = extra or (lambda person_id: {})
    people = tuple(
        Person(person_id=p, templates=np.asarray(e, dtype=np.float32), **{"name": None, "staff_no": None, "pin_hash": None, **details(p)})  # type: ignore[arg-type]
        for p, e in sorted(templates.items())
    )
    return TerminalGallery(version, cal.thresholds, people, cal.verify_only)
