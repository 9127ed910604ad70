"""Finding faces in a picture and turning them into encodings, with quality gates.

dlib's HOG detector (through face_recognition) finds faces down to about
80 px; one upsample halves that at four times the cost, so it is a setting
chosen for the camera distance.  Large photos (enrolment pictures from a
phone, 4,000 px wide) are scaled down first: the encoding works on a
150 px chip anyway, and detection time grows with the pixel count.

Every face is checked before it is used — size, blur, pose, exposure — and a
rejected face says why, in Chinese for the person at the terminal and as a
code for the logs.  A bad enrolment photo must never become a template, and
a bad frame at the terminal should ask for another try, not guess.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

Image = NDArray[np.uint8]
"""An RGB picture, height × width × 3 (as face_recognition wants it)."""
Encoding = NDArray[np.float64]
"""dlib's 128-dimensional face descriptor."""

RejectCode = Literal["no_face", "several_faces", "too_small", "blurred", "turned", "too_dark", "too_bright", "unreadable"]
REASONS_ZH: dict[RejectCode, str] = {
    "no_face": "未检测到人脸",
    "several_faces": "画面中有多张人脸",
    "too_small": "人脸太小，请靠近",
    "blurred": "图像模糊，请保持不动",
    "turned": "请正对摄像头",
    "too_dark": "光线太暗",
    "too_bright": "光线太亮或逆光",
    "unreadable": "无法读取图片",
}


class FaceSettings(BaseModel):
    """Detection and quality thresholds (defaults measured on the test photos; see docs/faces.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    upsample: int = Field(default=1, ge=0, le=2)
    """HOG upsampling: 1 finds faces of ~40 px, 0 only from ~80 px but 4× faster."""
    max_side: int = Field(default=1024, ge=320, le=8192)
    """Larger pictures are scaled down to this longer side before detection."""
    min_face_px: int = Field(default=80, ge=20)
    """Smallest face box side (at the working scale) that gives a usable encoding."""
    min_sharpness: float = Field(default=12.0, ge=0)
    """Variance of the Laplacian on the face normalised to 128 × 128 grey."""
    max_yaw: float = Field(default=0.35, gt=0, le=1)
    """Nose offset from the eyes' midpoint, as a share of the eye distance."""
    min_brightness: float = Field(default=45.0, ge=0, le=255)
    max_brightness: float = Field(default=230.0, ge=0, le=255)
    max_clipped: float = Field(default=0.5, ge=0, le=1)
    """Largest share of the face's pixels that may be black (<8) or white (>247)."""


@dataclass(frozen=True)
class Quality:
    """What the gates measured on one face."""

    face_px: int
    sharpness: float
    yaw: float
    brightness: float
    clipped: float

    def score(self, settings: FaceSettings) -> float:
        """0..1 for the punch record: the weakest gate's headroom."""
        parts = (
            min(1.0, self.face_px / (2 * settings.min_face_px)),
            min(1.0, self.sharpness / (4 * settings.min_sharpness)),
            max(0.0, 1 - abs(self.yaw) / settings.max_yaw),
            1.0 - self.clipped,
        )
        return round(float(min(parts)), 3)


@dataclass(frozen=True)
class Face:
    """One usable face: its box in the original picture, its encoding and its quality."""

    box: tuple[int, int, int, int]  # top, right, bottom, left in the original picture
    encoding: Encoding
    quality: Quality
    landmarks: dict[str, list[tuple[int, int]]]  # at the working scale


@dataclass(frozen=True)
class Rejected:
    """No usable face, and why."""

    code: RejectCode
    detail: str = ""

    @property
    def reason_zh(self) -> str:
        return REASONS_ZH[self.code]


def load_image(path: Path) -> Image:
    """An RGB picture from a file; ``ValueError`` naming the file if it is not one."""
    data = np.fromfile(str(path), dtype=np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise ValueError(f"{path}: not a picture OpenCV can read")
    return from_bgr(bgr)


def from_bgr(frame: NDArray[np.uint8]) -> Image:
    """An OpenCV BGR frame as the contiguous RGB array dlib needs (a reversed view raises in dlib)."""
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def _library():  # type: ignore[no-untyped-def]
    """face_recognition, imported on first use: it loads dlib's models (~1 s), which the
    server and every command that never looks at a face should not pay for."""
    import face_recognition

    return face_recognition


def _working_scale(image: Image, max_side: int) -> tuple[Image, float]:
    side = max(image.shape[:2])
    if side <= max_side:
        return image, 1.0
    scale = max_side / side
    small = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    return small, scale


def _measure(image: Image, box: tuple[int, int, int, int], landmarks: dict[str, list[tuple[int, int]]]) -> Quality:
    top, right, bottom, left = box
    h, w = image.shape[:2]
    crop = image[max(0, top) : min(h, bottom), max(0, left) : min(w, right)]
    grey = cv2.cvtColor(cv2.resize(crop, (128, 128), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    left_eye = np.mean(landmarks["left_eye"], axis=0)
    right_eye = np.mean(landmarks["right_eye"], axis=0)
    nose = np.asarray(landmarks["nose_tip"][len(landmarks["nose_tip"]) // 2], dtype=float)
    eyes = right_eye - left_eye
    eye_distance = float(np.hypot(*eyes)) or 1.0
    # Signed offset of the nose along the eye line, from the eyes' midpoint.
    yaw = float(np.dot(nose - (left_eye + right_eye) / 2, eyes) / eye_distance**2)
    clipped = float(np.mean((grey < 8) | (grey > 247)))
    return Quality(min(bottom - top, right - left), round(sharpness, 1), round(yaw, 3), round(float(grey.mean()), 1), round(clipped, 3))


def _gate(quality: Quality, settings: FaceSettings) -> Rejected | None:
    if quality.face_px < settings.min_face_px:
        return Rejected("too_small", f"face {quality.face_px} px < {settings.min_face_px} px")
    if quality.sharpness < settings.min_sharpness:
        return Rejected("blurred", f"sharpness {quality.sharpness} < {settings.min_sharpness}")
    if abs(quality.yaw) > settings.max_yaw:
        return Rejected("turned", f"yaw {quality.yaw:+.2f} beyond ±{settings.max_yaw}")
    if quality.brightness < settings.min_brightness:
        return Rejected("too_dark", f"brightness {quality.brightness} < {settings.min_brightness}")
    if quality.brightness > settings.max_brightness or quality.clipped > settings.max_clipped:
        return Rejected("too_bright", f"brightness {quality.brightness}, clipped {quality.clipped:.0%}")
    return None


def find_faces(image: Image, settings: FaceSettings) -> list[tuple[tuple[int, int, int, int], Image, float]]:
    """Face boxes at the working scale, with that picture and its scale (cheap: no encoding)."""
    work, scale = _working_scale(image, settings.max_side)
    boxes = _library().face_locations(work, number_of_times_to_upsample=settings.upsample, model="hog")
    return [(box, work, scale) for box in boxes]


def one_face(
    image: Image, settings: FaceSettings, *, largest: bool = False, where: Callable[[tuple[int, int, int, int]], bool] | None = None
) -> Face | Rejected:
    """The single usable face of a picture (enrolment, terminal frame).

    Several faces are a rejection at enrolment (whose face is it?); a terminal
    passes ``largest=True``: the person in front is the nearest one.
    ``where(box)`` (in the picture's own pixels) keeps only the faces that
    matter — a window camera's seat — before the costly landmarks and encoding.
    """
    found = find_faces(image, settings)
    if where is not None:
        found = [f for f in found if where(tuple(round(v / f[2]) for v in f[0]))]  # type: ignore[arg-type]
    if not found:
        return Rejected("no_face")
    # A face too small to use (a poster, someone far behind) does not make the picture ambiguous.
    usable = [f for f in found if min(f[0][2] - f[0][0], f[0][1] - f[0][3]) >= settings.min_face_px] or found
    if len(usable) > 1 and not largest:
        return Rejected("several_faces", f"{len(usable)} faces")
    found = usable
    box, work, scale = max(found, key=lambda f: f[0][2] - f[0][0])
    marks = _library().face_landmarks(work, [box], model="large")[0]
    quality = _measure(work, box, marks)
    rejected = _gate(quality, settings)
    if rejected is not None:
        return rejected
    encoding = _library().face_encodings(work, [box], num_jitters=1, model="small")[0]
    original = tuple(round(v / scale) for v in box)
    return Face(original, encoding, quality, marks)  # type: ignore[arg-type]
