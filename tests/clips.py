"""Window-camera clips composed in code from the real test photos.

No public clip shows a clerk at a service window, so the scenes are drawn:
a 640×480 view from the camera above the counter, looking at the clerk — a
textured wall with a notice board and a clock, a chair back, a desk with a
monitor and a keyboard, and the counter front at the bottom where the
customers pass.  A clerk is a real photo (face and hair, cut out around the
face, about 105 px of face) on a drawn, textured shirt, and does not hold
still: a slow sway of a few pixels and breathing, every frame.

What a clip can script, with the ground truth it implies:

* a :class:`Visit` — the clerk walks in from the right (1 s), sits, may look
  down at the desk for a while (the face pitched away: the top of the head
  where the face was, which HOG does not find) or sit perfectly still facing
  the screen, and walks out (1 s);
* a coat thrown over the chair back, staying to the end;
* the lighting — a gain per frame, uniform (lights dimmed) or a field
  (sunlight from the left);
* customers passing along the counter front: backs of heads, and real faces
  turned to the camera whose heads reach into the bottom of the seat's view.

Every frame has sensor noise, and everything random is seeded: the same
clip gives the same frames.  ``truth`` says per frame whether a person is in
the seat (None while someone walks in or out: not judged).  The photos are
read from ``TESTDATA`` (../shared/testdata/faces), never copied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from conftest import TESTDATA
from vision.faces import FaceSettings, find_faces, load_image

W, H = 640, 480
FPS = 5.0
WALK_S = 1.0
"""Walking into or out of the seat takes this long."""
DESK_TOP = 360
SEAT = ((180, 40), (460, 40), (460, 330), (180, 330))
"""The clerk's seat region: the chair and where a seated clerk's head and shoulders are."""
CUSTOMER = ((0, 316), (W, 316), (W, H), (0, H))
"""The counter front, where customers pass, up to where the head of one turned to the camera reaches:
it shares the seat's bottom 14 px (under the 5 % calibration allows)."""
HEAD_TOP = 60
"""Where the top of a seated clerk's head is."""
FACE_PX = 105

BGR = tuple[int, int, int]
Gain = Callable[[float], "float | np.ndarray"]


@dataclass(frozen=True)
class Person:
    """A photo from faces/known and how to dress it."""

    photo: str
    hair: BGR
    shirt: BGR


PEOPLE = {
    "dorsey": Person("jack_dorsey/jack_dorsey_17.jpg", hair=(28, 30, 36), shirt=(92, 70, 52)),
    "zuckerberg": Person("mark_zuckerberg/mark_zuckerberg_14.jpg", hair=(40, 52, 70), shirt=(120, 110, 100)),
    "obama": Person("obama/obama.jpg", hair=(24, 26, 30), shirt=(150, 120, 60)),
    "aniston": Person("jennifer_aniston/jennifer_aniston_12.jpg", hair=(90, 150, 190), shirt=(60, 60, 140)),
}
"""Clerks and customers (their faces are found by HOG without upsampling at this size)."""


@dataclass(frozen=True)
class Visit:
    """A clerk's stay: walks in at ``arrive``, is seated from ``arrive + WALK_S``, walks out at ``leave``."""

    person: str
    arrive: float
    leave: float
    down: tuple[tuple[float, float], ...] = ()
    """Intervals spent looking down at the desk."""
    still: tuple[tuple[float, float], ...] = ()
    """Intervals spent facing the screen without moving a pixel (no sway, no breathing)."""

    def seated(self, t: float) -> bool:
        return self.arrive + WALK_S <= t < self.leave

    def walking(self, t: float) -> bool:
        return self.arrive <= t < self.arrive + WALK_S or self.leave <= t < self.leave + WALK_S


@dataclass(frozen=True)
class Pass:
    """A customer crossing the counter front, left to right or back."""

    start: float
    speed: float
    """Pixels per second; negative walks right to left."""
    person: str | None = None
    """A photo (the customer turned towards the camera), or None for the back of a head."""


@dataclass(frozen=True)
class Clip:
    """A scripted window-camera clip, rendered frame by frame."""

    name: str
    duration: float
    visits: tuple[Visit, ...]
    reference: np.ndarray
    """The empty scene under the normal lighting, as calibration captures it."""
    coat_at: float | None = None
    gain: Gain = lambda t: 1.0
    passes: tuple[Pass, ...] = ()
    fps: float = FPS
    seed: int = 0
    seat: tuple[tuple[int, int], ...] = SEAT
    customer: tuple[tuple[int, int], ...] = CUSTOMER
    faces_dir: Path = TESTDATA / "faces"

    @property
    def times(self) -> list[float]:
        """Each frame's time in seconds from the clip's start."""
        return [round(i / self.fps, 3) for i in range(round(self.duration * self.fps))]

    @property
    def truth(self) -> list[bool | None]:
        """Per frame: a person is in the seat (None while one walks in or out)."""
        return [None if any(v.walking(t) for v in self.visits) else any(v.seated(t) for v in self.visits) for t in self.times]

    def frames(self) -> Iterator[tuple[float, np.ndarray]]:
        """(time, BGR frame) for every frame, rendered as they are asked for."""
        rng = np.random.default_rng(self.seed)
        noise = _noise_bank()
        scene, coated = (_scene(coat).astype(np.float32) for coat in (False, True))
        phase = rng.uniform(0, 2 * np.pi, 4)
        for t in self.times:
            frame = (coated if self.coat_at is not None and t >= self.coat_at else scene).copy()
            for visit in self.visits:
                if visit.arrive <= t < visit.leave + WALK_S:
                    _draw_clerk(frame, self.faces_dir, visit, t, phase)
            for p in self.passes:
                _draw_customer(frame, self.faces_dir, p, t)
            gain = self.gain(t)
            frame = cv2.multiply(frame, cv2.merge([gain] * 3)) if isinstance(gain, np.ndarray) else frame * np.float32(gain)
            yield t, cv2.convertScaleAbs(cv2.add(frame, noise[int(rng.integers(len(noise)))]))


# ----------------------------------------------------------------- scenes


@lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    """Sensor noise (σ 2 grey levels), a few frames of it drawn once and picked at random per frame."""
    return np.random.default_rng(99).normal(0, 2.0, (6, H, W, 3)).astype(np.float32)


def _texture(rng: np.random.Generator, shape: tuple[int, int], colour: BGR, fine: float, coarse: float) -> np.ndarray:
    """A colour with pixel noise and soft blotches."""
    h, w = shape
    blotch = cv2.resize(rng.normal(0, coarse, (max(2, h // 24), max(2, w // 24))).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0, fine, (h, w)).astype(np.float32)
    return np.asarray(colour, np.float32) + (blotch + grain)[..., None]


@lru_cache(maxsize=2)
def _scene(coat: bool) -> np.ndarray:
    """The empty counter (with a coat over the chair back, if asked), uint8 BGR."""
    rng = np.random.default_rng(7)
    img = _texture(rng, (H, W), (168, 178, 186), fine=5, coarse=7)
    for x in range(0, W, 80):  # wall panel seams
        img[:DESK_TOP, x : x + 2] *= 0.7
    img[60:200, 480:610] = _texture(rng, (140, 130), (235, 238, 240), fine=3, coarse=2)  # notice board
    for y in range(75, 190, 12):
        img[y : y + 4, 492 : 492 + int(rng.integers(50, 105))] = (60, 55, 50)
    cv2.circle(img, (90, 80), 32, (245, 245, 245), -1)  # clock
    cv2.circle(img, (90, 80), 32, (40, 40, 40), 3)
    cv2.line(img, (90, 80), (90, 58), (30, 30, 30), 3)
    cv2.line(img, (90, 80), (106, 88), (30, 30, 30), 3)
    chair = np.zeros((H, W), np.uint8)
    cv2.rectangle(chair, (262, 130), (378, DESK_TOP), 255, -1)
    cv2.ellipse(chair, (320, 132), (58, 18), 0, 180, 360, 255, -1)
    mesh = _texture(rng, (H, W), (64, 58, 54), fine=6, coarse=3)
    mesh[::4] += 14
    mesh[:, ::4] += 14
    img[chair > 0] = mesh[chair > 0]
    if coat:
        shape = np.zeros((H, W), np.uint8)
        cv2.fillPoly(shape, [np.array([(248, 118), (392, 118), (404, 300), (384, DESK_TOP), (256, DESK_TOP), (236, 300)], np.int32)], 255)
        tweed = _texture(rng, (H, W), (50, 78, 112), fine=14, coarse=10)
        ys, xs = np.mgrid[0:H, 0:W]
        tweed += (((xs + ys) // 3) % 2 * 16 - 8)[..., None]  # herringbone-ish weave
        img[shape > 0] = tweed[shape > 0]
        cv2.line(img, (320, 122), (320, 350), (30, 45, 70), 3)  # the coat's opening
        cv2.polylines(img, [np.array([(262, 122), (300, 170), (320, 122), (340, 170), (378, 122)], np.int32)], False, (40, 58, 85), 4)
    desk = _texture(rng, (H - DESK_TOP, W), (96, 140, 178), fine=3, coarse=5)
    desk += (10 * np.sin(np.arange(H - DESK_TOP) * 0.9 + rng.normal(0, 0.4, (W, 1)))).T[..., None]
    img[DESK_TOP:] = desk
    img[400:] *= 0.78  # the counter front, below the desk's edge
    img[398:402] = (40, 40, 40)
    cv2.rectangle(img, (50, 195), (200, 330), (28, 28, 28), -1)  # monitor
    img[205:320, 60:190] = _texture(rng, (115, 130), (130, 84, 40), fine=2, coarse=3)
    for y in range(215, 310, 18):
        cv2.rectangle(img, (68, y), (68 + int(rng.integers(40, 110)), y + 9), (215, 215, 205), -1)
    cv2.rectangle(img, (112, 330), (138, DESK_TOP + 12), (40, 40, 40), -1)
    cv2.rectangle(img, (262, 370), (378, 392), (70, 70, 70), -1)  # keyboard
    for x in range(266, 376, 9):
        for y in (373, 381):
            cv2.rectangle(img, (x, y), (x + 6, y + 5), (150, 150, 150), -1)
    return np.clip(img, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------ people


@lru_cache(maxsize=16)
def _head(faces_dir: Path, person: str, face_px: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """The photo's head (BGR, alpha 0..1) scaled to a ``face_px`` face, and the face box in it (t, r, b, l)."""
    image = load_image(faces_dir / "known" / PEOPLE[person].photo)
    found = find_faces(image, FaceSettings(upsample=1, max_side=800))
    assert found, f"no face in {PEOPLE[person].photo}"
    (top, right, bottom, left), work, _ = max(found, key=lambda f: f[0][2] - f[0][0])
    scale = face_px / (bottom - top)
    bgr = cv2.cvtColor(cv2.resize(work, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
    top, right, bottom, left = (round(v * scale) for v in (top, right, bottom, left))
    f = bottom - top
    y0, x0 = top - round(0.65 * f), left - round(0.4 * f)
    y1, x1 = bottom + round(0.2 * f), right + round(0.4 * f)
    pad = f
    bgr = cv2.copyMakeBorder(bgr, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    crop = bgr[y0 + pad : y1 + pad, x0 + pad : x1 + pad].astype(np.float32)
    alpha = np.zeros(crop.shape[:2], np.float32)
    centre = ((left + right) // 2 - x0, (y0 + bottom) // 2 + round(0.05 * f) - y0)
    cv2.ellipse(alpha, centre, (round(0.64 * (right - left)), (bottom - y0) // 2 + round(0.05 * f)), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 3)
    return crop, alpha, (top - y0, right - x0, bottom - y0, left - x0)


@lru_cache(maxsize=16)
def _sprite(faces_dir: Path, person: str, down: bool) -> np.ndarray:
    """A seated clerk from the top of the head to below the desk (premultiplied BGRA), head top at row 0.

    Looking down, the head pitches forward: where the face was, the camera
    sees the top of the head (hair), a little lower.
    """
    head, alpha, (top, right, bottom, left) = _head(faces_dir, person, FACE_PX)
    rng = np.random.default_rng(len(person))
    look = PEOPLE[person]
    hh, hw = head.shape[:2]
    width, height = 3 * FACE_PX, DESK_TOP + 40 - HEAD_TOP
    f, cx, chin = FACE_PX, width // 2, bottom
    shirt = np.zeros((height, width), np.float32)
    cv2.fillPoly(shirt, [np.array([(cx - 0.4 * f, chin + 0.2 * f), (cx + 0.4 * f, chin + 0.2 * f), (cx + 1.25 * f, chin + 0.5 * f), (cx + 1.4 * f, height), (cx - 1.4 * f, height), (cx - 1.25 * f, chin + 0.5 * f)], np.int32)], 1.0)
    cloth = _texture(rng, (height, width), look.shirt, fine=8, coarse=9)
    cloth[:, ::7] += 18  # stripes
    skin = np.median(head[top + f // 3 : bottom - f // 4, left + f // 4 : right - f // 4].reshape(-1, 3), axis=0)
    neck = np.zeros((height, width), np.float32)
    cv2.rectangle(neck, (round(cx - 0.22 * f), chin - f // 4), (round(cx + 0.22 * f), round(chin + 0.3 * f)), 1.0, -1)
    img = cloth * shirt[..., None] * (1 - neck[..., None]) + skin * neck[..., None]  # premultiplied
    mask = np.maximum(shirt, neck)
    if down:
        head = head.copy()
        face = np.zeros((hh, hw), np.float32)
        cv2.ellipse(face, ((left + right) // 2, (top + bottom) // 2 - f // 8), (round(0.6 * (right - left)), round(0.72 * f)), 0, 0, 360, 1.0, -1)
        face = cv2.GaussianBlur(face, (0, 0), 5)[..., None]
        hair = _texture(rng, (hh, hw), look.hair, fine=12, coarse=6)
        hair[:, ::3] -= 10  # strands
        head = head * (1 - face) + hair * face
        y = round(0.15 * f)
    else:
        y = 0
    x = cx - hw // 2
    img[y : y + hh, x : x + hw] = img[y : y + hh, x : x + hw] * (1 - alpha[..., None]) + head * alpha[..., None]
    mask[y : y + hh, x : x + hw] = np.maximum(mask[y : y + hh, x : x + hw], alpha)
    return np.dstack([img, mask]).astype(np.float32)


def _paste(frame: np.ndarray, layer: np.ndarray, x: int, y: int, bottom: int = H) -> None:
    """Blend a premultiplied BGRA ``layer`` with its top-left at (x, y), clipped to the frame and above ``bottom``."""
    h, w = layer.shape[:2]
    fx0, fy0, fx1, fy1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, bottom)
    if fx0 >= fx1 or fy0 >= fy1:
        return
    b, g, r, a = cv2.split(layer[fy0 - y : fy1 - y, fx0 - x : fx1 - x])
    roi = frame[fy0:fy1, fx0:fx1]
    roi *= cv2.merge([1 - a] * 3)  # (numpy broadcasting over 3 channels is many times slower)
    roi += cv2.merge([b, g, r])


def _layer(img: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """BGR and alpha as one premultiplied BGRA array (one warp moves both)."""
    return np.dstack([img * alpha[..., None], alpha]).astype(np.float32)


def _draw_clerk(frame: np.ndarray, faces_dir: Path, visit: Visit, t: float, phase: np.ndarray) -> None:
    """The clerk at ``t``: seated with a sway and breathing, or walking in from / out to the right."""
    down = any(a <= t < b for a, b in visit.down)
    layer = _sprite(faces_dir, visit.person, down)
    t = next((a for a, b in visit.still if a <= t < b), t)  # frozen as it was when the stillness began
    sway_x = 3.0 * np.sin(2 * np.pi * t / 3.7 + phase[0]) + 1.5 * np.sin(2 * np.pi * t / 1.3 + phase[1])
    sway_y = 1.5 * np.sin(2 * np.pi * t / 2.9 + phase[2])
    breath = 0.012 * np.sin(2 * np.pi * t / 4.1 + phase[3])
    walk = 0.0
    if t < visit.arrive + WALK_S:
        walk = 1 - (t - visit.arrive) / WALK_S
    elif t >= visit.leave:
        walk = (t - visit.leave) / WALK_S
    matrix = np.float32([[1, 0, sway_x % 1], [0, 1 + breath, sway_y % 1]])
    layer = cv2.warpAffine(layer, matrix, (layer.shape[1] + 2, layer.shape[0] + 2))
    x = W // 2 - layer.shape[1] // 2 + int(np.floor(sway_x)) + round(walk * 380)
    y = HEAD_TOP + int(np.floor(sway_y)) - round(walk * 25)
    _paste(frame, layer, x, y, bottom=DESK_TOP)


@lru_cache(maxsize=8)
def _customer_sprite(faces_dir: Path, person: str | None) -> np.ndarray:
    """A customer's head and shoulders, seen from behind (None) or turned to the camera."""
    rng = np.random.default_rng(3)
    if person is None:
        img = _texture(rng, (150, 150), (30, 32, 36), fine=10, coarse=5)
        alpha = np.zeros((150, 150), np.float32)
        cv2.ellipse(alpha, (75, 50), (40, 48), 0, 0, 360, 1.0, -1)
        body = np.zeros((150, 150), np.float32)
        cv2.ellipse(body, (75, 150), (74, 60), 0, 180, 360, 1.0, -1)
        img = img * (1 - body[..., None]) + _texture(rng, (150, 150), (100, 80, 70), fine=8, coarse=6) * body[..., None]
        return _layer(img, np.maximum(alpha, cv2.GaussianBlur(body, (0, 0), 2)))
    head, alpha, _ = _head(faces_dir, person, 85)
    return _layer(head, alpha)


def _draw_customer(frame: np.ndarray, faces_dir: Path, p: Pass, t: float) -> None:
    walked = (t - p.start) * abs(p.speed)
    if not 0 <= walked <= W + 200:
        return
    layer = _customer_sprite(faces_dir, p.person)
    x = round(-layer.shape[1] + walked) if p.speed > 0 else round(W - walked)
    top = 385 if p.person is None else 480 - layer.shape[0]  # a face turned to the camera shows whole, the head up in the seat's view
    _paste(frame, layer, x, top + round(3 * np.sin(t * 6)))


# ---------------------------------------------------------------- scripts


def _clip(name: str, duration: float, visits: tuple[Visit, ...], faces_dir: Path, **kwargs: object) -> Clip:
    """A clip whose reference is a frame of the empty scene (its own noise, the normal lighting)."""
    empty = Clip("empty", 1 / FPS, (), reference=np.zeros((H, W, 3), np.uint8), faces_dir=faces_dir, seed=1234)
    _, reference = next(empty.frames())
    return Clip(name, duration, visits, reference, faces_dir=faces_dir, **kwargs)  # type: ignore[arg-type]


def customers_all_day(duration: float) -> tuple[Pass, ...]:
    """A customer every 6 s or so, walking either way; every third one turned to the camera."""
    rng = np.random.default_rng(5)
    faces = ("zuckerberg", "aniston", "obama")
    passes, t, i = [], 1.0, 0
    while t < duration:
        speed = float(rng.uniform(120, 220)) * (1 if i % 2 else -1)
        passes.append(Pass(round(t, 1), speed, faces[i // 3 % 3] if i % 3 == 2 else None))
        t += float(rng.uniform(3, 9))
        i += 1
    return tuple(passes)


def crowd(start: float, end: float) -> tuple[Pass, ...]:
    """A queue at the counter: a customer every 1.5 s, walking either way, three in four turned to the camera."""
    rng = np.random.default_rng(6)
    faces = ("zuckerberg", "aniston", "obama", None)
    starts = np.arange(start, end, 1.5)
    return tuple(Pass(round(float(t), 1), float(rng.uniform(90, 200)) * (1 if i % 2 else -1), faces[i % 4]) for i, t in enumerate(starts))


def _ramp(t: float, t0: float, t1: float) -> float:
    """0 before ``t0``, 1 after ``t1``, linear between."""
    return float(np.clip((t - t0) / (t1 - t0), 0.0, 1.0))


def dimmed(t0: float, t1: float, level: float) -> Gain:
    """The lights dimmed to ``level`` over ``t0``..``t1`` (and kept there)."""
    return lambda t: 1.0 - (1.0 - level) * _ramp(t, t0, t1)


SUN = (1.0 + (1 - np.linspace(0, 1, W, dtype=np.float32)) ** 1.5)[None, :].repeat(H, axis=0) - 1.0
"""Sunlight from a window on the left: extra light falling smoothly from 1 at the left edge to 0 at the right."""


def shift(faces_dir: Path = TESTDATA / "faces") -> Clip:
    """The seat empty; a clerk arrives at 17 s, sits perfectly still facing the screen 24–52 s,
    looks down at the desk for a minute (52–112 s), leaves at 120 s; ends at 137 s.

    Customers pass along the counter all the time.
    """
    visit = Visit("dorsey", arrive=17.0, leave=120.0, down=((52.0, 112.0),), still=((24.0, 52.0),))
    return _clip("shift", 137.0, (visit,), faces_dir, passes=customers_all_day(137.0), seed=1)


def steps_away(vacant_after_s: float, faces_dir: Path = TESTDATA / "faces") -> Clip:
    """Around the vacancy delay: empty until a colleague walks into the seat and straight out at 20 s;
    the clerk arrives at 30 s, steps away at 50 s for 1.5 s less than ``vacant_after_s`` and at 75 s
    for 1.5 s more (gone from the walk out to the walk back in)."""
    short, long = 50.0 + vacant_after_s - 1.5, 75.0 + vacant_after_s + 1.5
    visits = (Visit("obama", 20.0, 20.0 + WALK_S), Visit("obama", 30.0, 50.0), Visit("obama", short, 75.0), Visit("obama", long, long + 60))
    return _clip("steps-away", long + 6.0, visits, faces_dir, seed=2)


def lights_empty(faces_dir: Path = TESTDATA / "faces") -> Clip:
    """The seat empty, customers passing; the lights dim to 0.6 at 20–21 s and come back at 35–36 s;
    sunlight comes in from the left at 45–48 s (up to 1.45× at the left edge); ends at 70 s."""

    def gain(t: float) -> float | np.ndarray:
        if t < 45.0:
            return 1.0 - 0.4 * (_ramp(t, 20.0, 21.0) - _ramp(t, 35.0, 36.0))
        return 1.0 + 0.45 * _ramp(t, 45.0, 48.0) * SUN

    return _clip("lights-empty", 70.0, (), faces_dir, gain=gain, passes=customers_all_day(70.0), seed=3)


def lights_seated(faces_dir: Path = TESTDATA / "faces") -> Clip:
    """A clerk arrives at 2 s and looks down 15–45 s; the lights dim to 0.6 at 25–26 s;
    the clerk leaves in the dim light at 50 s; ends at 68 s."""
    visit = Visit("zuckerberg", arrive=2.0, leave=50.0, down=((15.0, 45.0),))
    return _clip("lights-seated", 68.0, (visit,), faces_dir, gain=dimmed(25.0, 26.0, 0.6), seed=4)


def coat_left(faces_dir: Path = TESTDATA / "faces") -> Clip:
    """A clerk arrives at 5 s, hangs a coat over the chair back at 12 s and leaves at 30 s: the coat stays,
    while a queue of customers leans over the counter (32–80 s).  Another clerk sits 85–100 s; ends at 118 s."""
    visits = (Visit("aniston", 5.0, 30.0), Visit("dorsey", 85.0, 100.0))
    return _clip("coat-left", 118.0, visits, faces_dir, coat_at=12.0, passes=crowd(32.0, 80.0), seed=5)


def customers_only(faces_dir: Path = TESTDATA / "faces") -> Clip:
    """The seat empty for 40 s while a queue of customers leans over the counter."""
    return _clip("customers", 40.0, (), faces_dir, passes=crowd(0.5, 38.0), seed=6)


def who_sits(faces_dir: Path = TESTDATA / "faces") -> Clip:
    """Three stays, each followed by 22 s of empty seat: the clerk (Dorsey) 2–30 s facing the screen;
    a stranger (Obama, whom the identity tests leave out of the gallery) 52–80 s; the clerk again
    102–130 s, looking down at the desk from the moment he sits; ends at 150 s."""
    visits = (
        Visit("dorsey", 2.0, 30.0),
        Visit("obama", 52.0, 80.0),
        Visit("dorsey", 102.0, 130.0, down=((103.0, 130.0),)),
    )
    return _clip("who-sits", 150.0, visits, faces_dir, seed=7)
