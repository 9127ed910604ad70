"""Window-camera benchmark: frames per second per core, CPU load at 5 fps, windows per edge box.

    .venv/bin/python bench/occupancy.py [--realtime-s 60] [--upsample 1] [--quick] [--json FILE] [--no-save]

Input: the real video ../shared/testdata/video/one-by-one-person-detection.mp4
(768 × 432, 10 fps, 139 s; people step up to a standing table one at a
time, mostly with their back to the camera).  Every frame is scaled to
640 × 480 with ``cv2.resize`` and every second one is kept (10 fps → 5 fps,
what a window camera samples); the seat polygons are scaled the same way.
Two layouts: **1 seat region** (the table) and **4 seat regions** (the table
plus three non-overlapping rectangles on the wall and the floor, each its own
window); both with a customer polygon along the bottom edge.

1. **Per-frame cost** of the production path, ``WindowCamera.on_frame`` →
   ``OccupancyMonitor.update`` (default ``OccupancySettings``, faces by
   ``hog_faces(upsample)``), heartbeats every 10 s into a list; no evidence,
   no identity.  The frames are decoded once into memory first, so decoding
   is not in these figures.  Per frame: CPU time (``time.process_time``, all
   threads of the process) and wall time; mean, p95, max, and **frames per
   second per core** = frames / CPU seconds.  Where the time goes is counted
   from outside: the face finder is wrapped (calls, CPU), and so is the
   monitor's reference comparison (it is skipped when nothing moved and
   ``recheck_s`` has not passed: the "cheap" frame).  Both layouts are run
   with HOG upsample 0 and 1 (the ``face_upsample`` key of a window camera
   defaults to 1; ``--upsample`` chooses the one the real-time run uses).
2. **Baselines, same run, same frames**: decoding (``VideoCapture.read``, per
   source frame) and the resize to 640 × 480; and the simplest presence
   detector: grey conversion, full-frame ``cv2.absdiff`` against the
   reference, ``cv2.threshold`` and ``cv2.countNonZero``.
3. **CPU load at 5 fps in real time**, in a fresh process per layout (so its
   memory is a camera process's, not this one's): the production loop
   ``vision.seat_camera.run`` over ``vision.camera.Camera`` on the video file
   (decoded live, every second frame kept, scaled to 640 × 480), paced at 5
   fps for ``--realtime-s`` seconds (at most 135: the video's length).  Load =
   the process's CPU seconds / wall seconds, in % of one core, split into
   decoding and the camera logic; normalised to exactly 5 fps (``run`` sleeps
   one period after the logic, so it delivers slightly fewer).
4. **Windows per 2-core edge box**: cameras = floor(2 cores × 0.7 / load of
   one camera) — 30 % is left for the agent's MQTT, outbox, gallery sync and
   the OS — and windows = cameras × seat regions per camera.  A second row
   adds **seated identity**: ``vision.seat_identity.seat_face`` timed on a
   640 × 480 frame whose seat holds a real photo (../shared/testdata/faces/
   known/obama) with the face scaled to ~120 px, plus ``identify`` against
   500 people × 5 templates (synthetic encodings: matching time depends on
   the size only), amortised as a look of ``identify_window_s`` (10 s) at 5
   fps every ``identify_every_s`` (180 s) per occupied seat, every frame of
   the look searched (worst case; a usable face ends the look after at most
   5 frames, the rest of a long look is detection only — also shown).
5. **Memory**: tracemalloc peak of a 4-region monitor and camera logic over
   the first 60 s of frames (dlib's own C++ allocations are not traced); the
   peak RSS (``VmHWM``) of each real-time process (the whole camera process: Python,
   OpenCV, dlib's models) and of this process (which holds the decoded frames).

Single process per measurement.  The figures are for this machine; the
decode figures are for this file (H.264, 768 × 432): a camera's stream at
another size or rate costs what its decoder costs.  Run on an otherwise idle
machine: the table records the load average and how much CPU other processes
used during the run.  Prints a Markdown table and writes it to
``bench/results/occupancy-<date>.md`` (``--quick``: ``occupancy-<date>-quick.md``).
``--json FILE`` also writes every figure as JSON (``bench.machine.write_json``; the
keys are listed in docs/benchmarks-cameras.md).  ``--quick`` is the CI smoke run:
every measurement on the first 40 s of video, real-time runs of 10 s, 3
repetitions; nothing is checked against absolute times.  Without the test data
or without face_recognition / dlib the script exits with status 2 and a
one-line reason.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import resource
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _missing_library() -> str | None:
    """Why the camera and face libraries cannot be used, or None.  ``face_recognition`` itself calls
    ``quit()`` (exit status 0) when its models are missing, so they are imported first."""
    for name in ("numpy", "cv2", "dlib", "face_recognition_models", "face_recognition"):
        try:
            importlib.import_module(name)
        except Exception as exc:  # an ImportError, or pkg_resources missing under face_recognition_models
            return f"{name} cannot be imported ({type(exc).__name__}: {exc})".replace("\n", " ")
    return None


if (_why := _missing_library()) is not None:
    print(f"occupancy benchmark: {_why}; install face_recognition and dlib as README.md says", file=sys.stderr)
    raise SystemExit(2)

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench.machine import code_version, machine_info, markdown_table, write_json  # noqa: E402
from broker.timeutil import HALL_TZ  # noqa: E402
from vision.camera import Camera  # noqa: E402
from vision.faces import Face, FaceSettings, load_image, one_face  # noqa: E402
from vision.identify import Gallery, Thresholds, identify  # noqa: E402
from vision.occupancy import OccupancyMonitor, OccupancySettings, Polygon, SeatRegion, hog_faces  # noqa: E402
from vision.seat_camera import WindowCamera, WindowCameraOptions, run  # noqa: E402
from vision.seat_identity import seat_face  # noqa: E402

TESTDATA = ROOT.parent / "shared" / "testdata"
VIDEO = TESTDATA / "video" / "one-by-one-person-detection.mp4"
FACE_PHOTO = TESTDATA / "faces" / "known" / "obama" / "obama.jpg"
RESULTS = ROOT / "bench" / "results"
SIZE = (640, 480)
NATIVE = (768, 432)
FPS = 5.0
T0 = datetime(2026, 3, 2, 9, 10, tzinfo=HALL_TZ)
MAX_REALTIME_S = 135.0

# Regions in the video's own pixels (768 × 432), scaled to 640 × 480 by `scaled`.
TABLE = ((370, 60), (540, 60), (540, 360), (370, 360))
OTHERS = (
    ((130, 20), (350, 20), (350, 220), (130, 220)),  # wall, left of the table
    ((640, 20), (760, 20), (760, 230), (640, 230)),  # wall, right of the pillar
    ((20, 260), (340, 260), (340, 370), (20, 370)),  # floor, left
)
CUSTOMER = ((0, 380), (767, 380), (767, 431), (0, 431))

OPTIONS = WindowCameraOptions.model_fields
LOOK_S = float(OPTIONS["identify_window_s"].default)
LOOK_EVERY_S = float(OPTIONS["identify_every_s"].default)
IDENTITY_MIN_FACE = int(OPTIONS["face_min_px"].default)
HEADROOM = 0.7
BOX_CORES = 2


def scaled(polygon: Polygon) -> Polygon:
    sx, sy = SIZE[0] / NATIVE[0], SIZE[1] / NATIVE[1]
    return tuple((round(x * sx), round(y * sy)) for x, y in polygon)


def layout(regions: int) -> tuple[list[SeatRegion], list[Polygon]]:
    polygons = [TABLE, *OTHERS][:regions]
    return [SeatRegion(f"w{i + 1:02d}", "main", scaled(p)) for i, p in enumerate(polygons)], [scaled(CUSTOMER)]


def resize(frame: np.ndarray) -> np.ndarray:
    return cv2.resize(frame, SIZE)


def cpu_busy_s() -> float:
    """CPU seconds the whole machine has been busy (all cores, steal included), from /proc/stat."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return math.nan
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    busy = sum(fields[:8]) - idle
    return busy / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent at exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


# ---------------------------------------------------------------- decode


def decode(limit: int | None) -> tuple[list[np.ndarray], dict[str, float]]:
    """Every source frame read (timed), every second one scaled to 640 × 480 (timed) and kept."""
    capture = cv2.VideoCapture(str(VIDEO))
    if not capture.isOpened():
        raise SystemExit(f"cannot open {VIDEO}")
    kept: list[np.ndarray] = []
    read_cpu, read_wall, resize_cpu, resize_wall, index = [], [], [], [], 0
    while limit is None or index < limit:
        c, w = time.process_time(), time.perf_counter()
        ok, frame = capture.read()
        read_cpu.append(time.process_time() - c)
        read_wall.append(time.perf_counter() - w)
        if not ok or frame is None:
            read_cpu.pop()
            read_wall.pop()
            break
        if index % 2 == 0:
            c, w = time.process_time(), time.perf_counter()
            small = resize(frame)
            resize_cpu.append(time.process_time() - c)
            resize_wall.append(time.perf_counter() - w)
            kept.append(small)
        index += 1
    capture.release()
    return kept, {
        "source_frames": float(index),
        "read_cpu_ms": 1000 * sum(read_cpu) / len(read_cpu),
        "read_wall_ms": 1000 * sum(read_wall) / len(read_wall),
        "resize_cpu_ms": 1000 * sum(resize_cpu) / len(resize_cpu),
        "resize_wall_ms": 1000 * sum(resize_wall) / len(resize_wall),
    }


# ---------------------------------------------------------------- per frame


class Counted:
    """Wraps a callable: calls and CPU seconds spent in it."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.calls = 0
        self.cpu = 0.0

    def __call__(self, *args: Any) -> Any:
        start = time.process_time()
        try:
            return self.fn(*args)
        finally:
            self.cpu += time.process_time() - start
            self.calls += 1


def camera_logic(regions: int, reference: np.ndarray, upsample: int, sink: list[Any]) -> tuple[WindowCamera, Counted, Counted | None]:
    seats, customer = layout(regions)
    finder = Counted(hog_faces(upsample=upsample))
    monitor = OccupancyMonitor(seats, reference, OccupancySettings(), customer=customer, face_finder=finder)
    compare = None
    if callable(getattr(monitor, "_compare", None)):  # instrumentation only; absent in a future version: not counted
        compare = Counted(monitor._compare)
        monitor._compare = compare  # type: ignore[method-assign]
    logic = WindowCamera(monitor, lambda body, at: sink.append((body, at)), heartbeat_s=10.0, customer=customer)
    return logic, finder, compare


def per_frame(frames: list[np.ndarray], regions: int, upsample: int) -> dict[str, float]:
    sink: list[Any] = []
    logic, finder, compare = camera_logic(regions, frames[0], upsample, sink)
    cpu_each, wall_each = [], []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i, frame in enumerate(frames):
        at = T0 + timedelta(seconds=i / FPS)
        c, w = time.process_time(), time.perf_counter()
        logic.on_frame(frame, at)
        cpu_each.append(time.process_time() - c)
        wall_each.append(time.perf_counter() - w)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    median = float(np.median(cpu_each))
    n = len(frames)
    return {
        "frames": n,
        "mean_ms": 1000 * sum(cpu_each) / n,
        "p50_ms": 1000 * median,
        "p95_ms": 1000 * pct(cpu_each, 95),
        "max_ms": 1000 * max(cpu_each),
        "wall_mean_ms": 1000 * sum(wall_each) / n,
        "wall_p95_ms": 1000 * pct(wall_each, 95),
        "fps_core": n / cpu,
        "cpu_s": cpu,
        "wall_s": wall,
        "face_calls": finder.calls,
        "face_ms": 1000 * finder.cpu / max(finder.calls, 1),
        "face_share": finder.cpu / cpu,
        "compare_calls": compare.calls if compare else math.nan,
        "compare_ms": 1000 * compare.cpu / max(compare.calls, 1) if compare else math.nan,
        "compare_share": compare.cpu / cpu if compare else math.nan,
        "slow_frames": sum(1 for v in cpu_each if v > 2 * median),
        "events": sum(1 for body, _ in sink if type(body).__name__ == "SeatBody"),
        "heartbeats": sum(1 for body, _ in sink if type(body).__name__ == "SeatHeartbeatBody"),
    }


def naive(frames: list[np.ndarray]) -> dict[str, float]:
    """The simplest presence detector: full-frame absdiff against the reference, threshold, count."""
    reference = cv2.cvtColor(frames[0], cv2.COLOR_BGR2GRAY)
    cpu_each = []
    present = 0
    cpu0 = time.process_time()
    for frame in frames:
        c = time.process_time()
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        _, mask = cv2.threshold(cv2.absdiff(grey, reference), 25, 255, cv2.THRESH_BINARY)
        present += cv2.countNonZero(mask) > 0.02 * mask.size
        cpu_each.append(time.process_time() - c)
    cpu = time.process_time() - cpu0
    return {"mean_ms": 1000 * sum(cpu_each) / len(frames), "p95_ms": 1000 * pct(cpu_each, 95), "fps_core": len(frames) / cpu, "present": present}


# ---------------------------------------------------------------- identity


def identity_frames(reference: np.ndarray, face_px: int) -> tuple[np.ndarray, np.ndarray]:
    """(the seat with the photo's face scaled to ``face_px`` pasted at the table, the empty seat)."""
    photo = cv2.cvtColor(load_image(FACE_PHOTO), cv2.COLOR_RGB2BGR)
    face = one_face(load_image(FACE_PHOTO), FaceSettings())
    if not isinstance(face, Face):
        raise SystemExit(f"no face found in {FACE_PHOTO}")
    top, right, bottom, left = face.box
    scale = face_px / (right - left)
    photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    cx, cy = round((left + right) / 2 * scale), round((top + bottom) / 2 * scale)
    half_w, up, down = face_px, round(face_px * 0.9), round(face_px * 1.4)  # head and shoulders
    crop = photo[max(0, cy - up) : cy + down, max(0, cx - half_w) : cx + half_w]
    seat = np.asarray(scaled(TABLE))
    tx, ty = int(seat[:, 0].mean()), int(seat[:, 1].min()) + round(face_px * 1.0)  # face centre in the seat's top part
    frame = reference.copy()
    y0, x0 = max(0, ty - min(up, cy)), max(0, tx - min(half_w, cx))
    h, w = min(crop.shape[0], SIZE[1] - y0), min(crop.shape[1], SIZE[0] - x0)
    frame[y0 : y0 + h, x0 : x0 + w] = crop[:h, :w]
    return frame, reference


def median_cpu(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.process_time()
        result = fn()
        times.append(time.process_time() - start)
    return float(np.median(times)), result


def identity_cost(reference: np.ndarray, repeat: int) -> dict[str, Any]:
    with_face, empty = identity_frames(reference, 120)
    table = scaled(TABLE)
    rng = np.random.default_rng(1)
    vectors = rng.normal(0, 1, (500 * 5, 128))
    vectors *= 0.45 / np.linalg.norm(vectors, axis=1, keepdims=True)
    gallery = Gallery({f"p{i:03d}": list(vectors[i * 5 : i * 5 + 5]) for i in range(500)})
    limits = Thresholds(0.5, 0.05)
    out: dict[str, Any] = {}
    encoding = vectors[0]
    for upsample in (0, 1):
        settings = FaceSettings(upsample=upsample, min_face_px=IDENTITY_MIN_FACE)
        t_face, found = median_cpu(lambda s=settings: seat_face(with_face, table, s), repeat)
        t_empty, none = median_cpu(lambda s=settings: seat_face(empty, table, s), repeat)
        out[f"face_ms_{upsample}"] = 1000 * t_face
        out[f"empty_ms_{upsample}"] = 1000 * t_empty
        out[f"found_{upsample}"] = found.quality.face_px if isinstance(found, Face) else None
        out[f"empty_found_{upsample}"] = none is not None
        if isinstance(found, Face):
            encoding = found.encoding
    t_id, _ = median_cpu(lambda: identify(encoding, gallery, limits), repeat * 20)
    out["identify_ms"] = 1000 * t_id
    return out


# ---------------------------------------------------------------- real time (own process)


class _Resized:
    """The production Camera, its frames scaled to 640 × 480; CPU spent producing them counted."""

    def __init__(self, camera: Camera) -> None:
        self.camera = camera
        self.period = camera.period
        self.is_file = camera.is_file
        self.cpu = 0.0
        self.frames_out = 0

    def frames(self, stop: threading.Event) -> Iterator[np.ndarray]:
        inner = self.camera.frames(stop)
        while True:
            start = time.process_time()
            try:
                frame = next(inner)
            except StopIteration:
                return
            small = resize(frame)
            self.cpu += time.process_time() - start
            self.frames_out += 1
            yield small


class _TimedLogic:
    def __init__(self, logic: WindowCamera) -> None:
        self.logic = logic
        self.cpu = 0.0

    def on_frame(self, frame: np.ndarray, at: datetime) -> object:
        start = time.process_time()
        try:
            return self.logic.on_frame(frame, at)
        finally:
            self.cpu += time.process_time() - start

    def __getattr__(self, name: str) -> Any:  # lost() and whatever else run() calls
        return getattr(self.logic, name)


def realtime_child(regions: int, seconds: float, upsample: int) -> int:
    capture = cv2.VideoCapture(str(VIDEO))
    ok, first = capture.read()
    capture.release()
    if not ok:
        raise SystemExit(f"cannot read {VIDEO}")
    reference = resize(first)
    hog_faces(upsample)(reference[:200, :200])  # dlib's models load once, at the agent's start
    sink: list[Any] = []
    logic, finder, _ = camera_logic(regions, reference, upsample, sink)
    timed = _TimedLogic(logic)
    camera = _Resized(Camera(str(VIDEO), fps=FPS, frozen_s=10.0))
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    timer.start()
    mismatch: list[str] = []
    run(timed, camera, stop, lambda: datetime.now(HALL_TZ), mismatch.append)  # type: ignore[arg-type]
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    timer.cancel()
    if mismatch:
        raise SystemExit(f"the camera stopped: {mismatch[0]}")
    print(json.dumps({
        "cpu_s": cpu, "wall_s": wall, "frames": camera.frames_out, "decode_cpu_s": camera.cpu, "logic_cpu_s": timed.cpu,
        "face_calls": finder.calls, "maxrss_mib": peak_rss_mib(),
    }))
    return 0


def realtime(regions: int, seconds: float, upsample: int) -> dict[str, float]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child-realtime", str(regions), "--realtime-s", str(seconds), "--upsample", str(upsample)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120, check=False)
    if done.returncode != 0:
        raise SystemExit(f"real-time run failed:\n{done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    result["fps"] = result["frames"] / result["wall_s"]
    result["load"] = result["cpu_s"] / result["wall_s"]
    result["load_5fps"] = result["load"] * FPS / result["fps"]
    return result


# ---------------------------------------------------------------- memory


def traced_peak(frames: list[np.ndarray], regions: int, upsample: int) -> float:
    tracemalloc.start()
    sink: list[Any] = []
    logic, _, _ = camera_logic(regions, frames[0], upsample, sink)
    for i, frame in enumerate(frames):
        logic.on_frame(frame, T0 + timedelta(seconds=i / FPS))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


# ---------------------------------------------------------------- main


def cameras_per_box(load: float) -> int:
    return math.floor(BOX_CORES * HEADROOM / load) if load > 0 else 0


def boxes(load: float, regions: int) -> str:
    cameras = cameras_per_box(load)
    return f"**{cameras} cameras = {cameras * regions} windows**"


def number(value: Any) -> Any:
    """A figure for the JSON: NaN (not measured) as null, numpy scalars as Python numbers."""
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--realtime-s", type=float, default=60.0, help=f"seconds of each real-time run at 5 fps (60; at most {MAX_REALTIME_S:.0f})")
    parser.add_argument("--upsample", type=int, choices=(0, 1), default=1, help="HOG upsampling of the faces in the real-time runs and the box estimate (1, the window camera's default face_upsample)")
    parser.add_argument("--identify-repeat", type=int, default=7, help="timed repetitions of each identity frame, median (7)")
    parser.add_argument("--quick", action="store_true", help="smoke check: the first 40 s of video, 10 s real-time runs, 3 repetitions")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/occupancy-<date>.md")
    parser.add_argument("--output", type=Path, help="Markdown file to write instead of bench/results/occupancy-<date>.md")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON (docs/benchmarks-cameras.md lists the keys)")
    parser.add_argument("--child-realtime", type=int, choices=(1, 4), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    seconds = min(MAX_REALTIME_S, 10.0 if args.quick else args.realtime_s)
    if args.child_realtime:
        return realtime_child(args.child_realtime, seconds, args.upsample)
    missing = [str(p.relative_to(TESTDATA)) for p in (VIDEO, FACE_PHOTO) if not p.is_file()]
    if missing:
        print(f"occupancy benchmark: test data not found under {TESTDATA}: {', '.join(missing)} (see its README.md)", file=sys.stderr)
        return 2
    repeat = 3 if args.quick else args.identify_repeat
    started, busy0, own0 = time.perf_counter(), cpu_busy_s(), own_cpu_s()

    rows: list[tuple[str, str, str]] = [("Machine", k, v) for k, v in machine_info().items()]
    rows.append(("Machine", "Code", code_version("vision", "bench")))
    rows.append(("Machine", "Libraries", f"OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads), dlib {importlib.import_module('dlib').__version__}, face_recognition 1.3.0, numpy {np.__version__}"))
    shown = sys.argv[1:] if argv is None else argv
    rows.append(("Machine", "Command", "`.venv/bin/python bench/occupancy.py" + "".join(f" {a}" for a in shown) + "`"))

    frames, dec = decode(400 if args.quick else None)
    hog_faces(0)(frames[0][:200, :200])  # dlib's models load (~1 s) outside the timed passes
    per_5fps_cpu = 2 * dec["read_cpu_ms"] + dec["resize_cpu_ms"]
    rows.append(("Input", "Video", f"{VIDEO.name}: {NATIVE[0]}×{NATIVE[1]}, 10 fps, {dec['source_frames']:.0f} source frames read ({dec['source_frames'] / 10:.0f} s)"))
    rows.append(("Input", "Frames", f"{len(frames)} frames: every 2nd (5 fps), scaled to {SIZE[0]}×{SIZE[1]} (cv2.resize), decoded once into memory for the per-frame passes"))
    rows.append(("Input", "Seat regions", "1: the table; 4: the table + 3 rectangles (wall left, wall right, floor left), each its own window; a customer strip along the bottom in both"))
    rows.append(("Input", "Settings", f"OccupancySettings() defaults (face look every {OccupancySettings().face_every_s:g} s in a changed seat, recheck {OccupancySettings().recheck_s:g} s); heartbeats every 10 s to a list; no evidence, no identity; reference = the first frame (empty table)"))

    rows.append(("Baseline", "Decode (VideoCapture.read)", f"{dec['read_cpu_ms']:.2f} ms CPU / {dec['read_wall_ms']:.2f} ms wall per source frame; 2 per 5-fps frame from this 10-fps file"))
    rows.append(("Baseline", "Resize to 640×480", f"{dec['resize_cpu_ms']:.2f} ms CPU / {dec['resize_wall_ms']:.2f} ms wall per frame"))
    rows.append(("Baseline", "Decode + resize per 5-fps frame", f"{per_5fps_cpu:.2f} ms CPU: **{1000 / per_5fps_cpu:.0f} frames/s per core**; at 5 fps {per_5fps_cpu * FPS / 10:.1f} % of a core"))
    nv = naive(frames)
    fig: dict[str, Any] = {
        "decode_source_frames": int(dec["source_frames"]), "decode_read_cpu_ms": dec["read_cpu_ms"], "decode_read_wall_ms": dec["read_wall_ms"],
        "resize_cpu_ms": dec["resize_cpu_ms"], "resize_wall_ms": dec["resize_wall_ms"], "baseline_decode_resize_cpu_ms": per_5fps_cpu,
        "baseline_decode_resize_fps_core": 1000 / per_5fps_cpu, "baseline_decode_resize_core_pct_5fps": per_5fps_cpu * FPS / 10,
        "naive_mean_ms": nv["mean_ms"], "naive_p95_ms": nv["p95_ms"], "naive_fps_core": nv["fps_core"], "naive_present_frames": nv["present"],
    }  # fmt: skip
    rows.append(("Baseline", "Naive presence (grey, absdiff vs reference, threshold, count)", f"mean {nv['mean_ms']:.2f} ms, p95 {nv['p95_ms']:.2f} ms: **{nv['fps_core']:.0f} frames/s per core**"))
    print(f"decoded {len(frames)} frames; naive {nv['mean_ms']:.2f} ms/frame", file=sys.stderr)

    passes: dict[tuple[int, int], dict[str, float]] = {}
    for upsample in (0, 1):
        for regions in (1, 4):
            r = passes[(regions, upsample)] = per_frame(frames, regions, upsample)
            print(f"per frame, {regions} region(s), upsample {upsample}: {r['mean_ms']:.2f} ms", file=sys.stderr)
            where = f"face finder {r['face_calls']:.0f} calls × {r['face_ms']:.1f} ms = {100 * r['face_share']:.0f} % of the CPU"
            if not math.isnan(r["compare_calls"]):
                where += f"; reference comparison on {100 * r['compare_calls'] / r['frames']:.0f} % of frames × {r['compare_ms']:.2f} ms = {100 * r['compare_share']:.0f} %"
            rows.append((
                "WindowCamera.on_frame",
                f"{regions} region{'s' if regions > 1 else ''}, HOG upsample {upsample}",
                f"mean {r['mean_ms']:.2f} ms, p50 {r['p50_ms']:.2f}, p95 {r['p95_ms']:.2f}, max {r['max_ms']:.0f} ms CPU (wall mean {r['wall_mean_ms']:.2f}, p95 {r['wall_p95_ms']:.2f}): "
                f"**{r['fps_core']:.0f} frames/s per core**, {r['mean_ms'] / per_5fps_cpu:.1f}× decode + resize, {r['mean_ms'] / nv['mean_ms']:.0f}× naive; "
                f"{where}; {r['slow_frames']:.0f} frames > 2× median; {r['events']:.0f} seat events, {r['heartbeats']:.0f} heartbeats",
            ))
            key = f"on_frame_r{regions}_u{upsample}"
            fig.update({f"{key}_{k}": r[k] for k in ("mean_ms", "p50_ms", "p95_ms", "max_ms", "wall_mean_ms", "wall_p95_ms", "fps_core",
                                                     "face_calls", "face_ms", "face_share", "compare_calls", "compare_ms", "compare_share", "slow_frames")})  # fmt: skip
            fig.update({f"{key}_frames": r["frames"], f"{key}_over_decode_resize": r["mean_ms"] / per_5fps_cpu, f"{key}_over_naive": r["mean_ms"] / nv["mean_ms"],
                        f"{key}_compare_frames_pct": 100 * r["compare_calls"] / r["frames"], f"{key}_seat_events": r["events"], f"{key}_heartbeats": r["heartbeats"]})  # fmt: skip
    for regions in (1, 4):
        r = passes[(regions, args.upsample)]
        est = (per_5fps_cpu + r["mean_ms"]) * FPS / 10
        rows.append(("WindowCamera.on_frame", f"{regions} region{'s' if regions > 1 else ''}: decode + resize + on_frame", f"{per_5fps_cpu + r['mean_ms']:.2f} ms per 5-fps frame: **{1000 / (per_5fps_cpu + r['mean_ms']):.0f} frames/s per core**; over the whole video at 5 fps ≈ {est:.1f} % of a core"))
        fig.update({f"pipeline_r{regions}_ms": per_5fps_cpu + r["mean_ms"], f"pipeline_r{regions}_fps_core": 1000 / (per_5fps_cpu + r["mean_ms"]),
                    f"pipeline_r{regions}_core_pct_5fps": est})  # fmt: skip

    ident = identity_cost(frames[0], repeat)
    print(f"identity: {ident}", file=sys.stderr)
    u = args.upsample
    look_frames = LOOK_S * FPS
    full_ms = ident[f"face_ms_{u}"] + ident["identify_ms"]
    share_worst = look_frames * full_ms / 1000 / LOOK_EVERY_S
    share_bounded = (5 * full_ms + (look_frames - 5) * ident[f"empty_ms_{u}"]) / 1000 / LOOK_EVERY_S
    rows.append(("Seated identity", "seat_face, face ~120 px in the seat", "; ".join(f"upsample {k}: {ident[f'face_ms_{k}']:.0f} ms CPU ({'face ' + str(ident[f'found_{k}']) + ' px found' if ident[f'found_{k}'] else 'NOT found'})" for k in (0, 1))))
    rows.append(("Seated identity", "seat_face, empty seat (detection only)", "; ".join(f"upsample {k}: {ident[f'empty_ms_{k}']:.0f} ms CPU" for k in (0, 1))))
    rows.append(("Seated identity", "identify, 500 people × 5 templates", f"{ident['identify_ms']:.2f} ms"))
    for k in (0, 1):
        fig.update({f"identity_face_u{k}_ms": ident[f"face_ms_{k}"], f"identity_face_u{k}_px": ident[f"found_{k}"], f"identity_empty_u{k}_ms": ident[f"empty_ms_{k}"]})
    fig.update({"identify_500_ms": ident["identify_ms"], "identity_look_s": LOOK_S, "identity_look_frames": look_frames, "identity_look_every_s": LOOK_EVERY_S,
                "identity_share_worst_pct": 100 * share_worst, "identity_share_bounded_pct": 100 * share_bounded})  # fmt: skip
    rows.append(("Seated identity", f"amortised per occupied seat (upsample {u})", f"a look of {LOOK_S:g} s at 5 fps ({look_frames:.0f} frames) every {LOOK_EVERY_S:g} s; every frame with a face (worst case): **{100 * share_worst:.1f} % of a core**; at most 5 frames with a usable face (FrameVote decides), the rest detection only: {100 * share_bounded:.1f} %"))

    rt = {}
    for regions in (1, 4):
        print(f"real time, {regions} region(s), {seconds:.0f} s …", file=sys.stderr)
        rt[regions] = r = realtime(regions, seconds, args.upsample)
        rows.append((
            "Real time at 5 fps",
            f"{regions} region{'s' if regions > 1 else ''}, HOG upsample {args.upsample}",
            f"**{100 * r['load']:.1f} % of one core** ({r['fps']:.2f} fps delivered over {r['wall_s']:.0f} s; decode + resize {100 * r['decode_cpu_s'] / r['wall_s']:.1f} %, camera logic {100 * r['logic_cpu_s'] / r['wall_s']:.1f} %, "
            f"{r['face_calls']:.0f} face looks); at exactly 5 fps {100 * r['load_5fps']:.1f} %; process RSS {r['maxrss_mib']:.0f} MiB",
        ))
        fig.update({f"realtime_r{regions}_load_pct": 100 * r["load"], f"realtime_r{regions}_fps": r["fps"], f"realtime_r{regions}_wall_s": r["wall_s"],
                    f"realtime_r{regions}_frames": r["frames"], f"realtime_r{regions}_decode_pct": 100 * r["decode_cpu_s"] / r["wall_s"],
                    f"realtime_r{regions}_logic_pct": 100 * r["logic_cpu_s"] / r["wall_s"], f"realtime_r{regions}_face_looks": r["face_calls"],
                    f"realtime_r{regions}_load_5fps_pct": 100 * r["load_5fps"], f"realtime_r{regions}_rss_mib": r["maxrss_mib"]})  # fmt: skip

    for regions in (1, 4):
        load = rt[regions]["load_5fps"]
        rows.append(("Edge box, 2 cores, 70 % usable", f"{regions} region{'s' if regions > 1 else ''} per camera, occupancy only", f"{100 * load:.1f} % per camera → {boxes(load, regions)}"))
        fig.update({f"box_r{regions}_camera_pct": 100 * load, f"box_r{regions}_cameras": cameras_per_box(load), f"box_r{regions}_windows": cameras_per_box(load) * regions})
    for regions in (1, 4):
        load = rt[regions]["load_5fps"] + regions * share_worst
        bounded = rt[regions]["load_5fps"] + regions * share_bounded
        fig.update({f"box_r{regions}_identity_camera_pct": 100 * load, f"box_r{regions}_identity_cameras": cameras_per_box(load),
                    f"box_r{regions}_identity_windows": cameras_per_box(load) * regions, f"box_r{regions}_identity_bounded_camera_pct": 100 * bounded,
                    f"box_r{regions}_identity_bounded_cameras": cameras_per_box(bounded), f"box_r{regions}_identity_bounded_windows": cameras_per_box(bounded) * regions})  # fmt: skip
        rows.append(("Edge box, 2 cores, 70 % usable", f"{regions} region{'s' if regions > 1 else ''} per camera, + seated identity (worst case)", f"{100 * load:.1f} % per camera (all seats occupied) → {boxes(load, regions)}; with looks ending at 5 usable faces {100 * bounded:.1f} % → {boxes(bounded, regions).replace('**', '')}"))

    trace_frames = frames[: int(60 * FPS)] if not args.quick else frames[:100]
    peak = traced_peak(trace_frames, 4, args.upsample)
    rows.append(("Memory", "tracemalloc peak, 4 regions", f"{peak:.1f} MiB (monitor + camera logic over {len(trace_frames)} frames; dlib's C++ allocations not traced)"))
    rows.append(("Memory", "peak RSS (VmHWM), real-time camera process", f"1 region {rt[1]['maxrss_mib']:.0f} MiB, 4 regions {rt[4]['maxrss_mib']:.0f} MiB (Python, OpenCV, dlib's models, decoder)"))
    maxrss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(("Memory", "ru_maxrss, this process", f"{maxrss_mib:.0f} MiB (holds the {len(frames)} decoded frames, {len(frames) * frames[0].nbytes / 2**20:.0f} MiB)"))
    fig.update({"tracemalloc_peak_mib": peak, "tracemalloc_frames": len(trace_frames), "ru_maxrss_mib": maxrss_mib, "decoded_frames_mib": len(frames) * frames[0].nbytes / 2**20})

    wall = time.perf_counter() - started
    other = cpu_busy_s() - busy0 - (own_cpu_s() - own0)
    capacity = (os.cpu_count() or 1) * wall
    rows.append(("Run", "Wall", f"{wall:.0f} s; load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}"))
    rows.append(("Run", "Other load", f"other processes {max(0.0, other):.1f} CPU-s of {capacity:.0f} ({100 * max(0.0, other) / capacity:.0f} % of the machine) during the run"))
    fig.update({"wall_s": wall, "load_average_end": list(os.getloadavg()), "other_cpu_s": max(0.0, other), "capacity_cpu_s": capacity,
                "other_load_pct": 100 * max(0.0, other) / capacity})  # fmt: skip

    text = markdown_table(rows)
    print(text)
    if args.json:
        inputs = {"quick": args.quick, "video": VIDEO.name, "video_size": list(NATIVE), "frame_size": list(SIZE), "fps": FPS,
                  "source_frames": int(dec["source_frames"]), "frames": len(frames), "layouts_regions": [1, 4], "upsample": args.upsample,
                  "realtime_s": seconds, "identify_repeat": repeat, "identify_gallery_people": 500, "face_photo": str(FACE_PHOTO.relative_to(TESTDATA))}  # fmt: skip
        frame_ms = fig[f"on_frame_r1_u{args.upsample}_mean_ms"]
        write_json(args.json, "occupancy", inputs, {k: number(v) for k, v in fig.items()}, frame_ms=frame_ms,
                   baseline_decode_ms=per_5fps_cpu, ratio_to_baseline=frame_ms / per_5fps_cpu)  # fmt: skip
        print(f"figures written to {args.json}", file=sys.stderr)
    if not args.no_save:
        out = args.output or RESULTS / f"occupancy-{date.today().isoformat()}{'-quick' if args.quick else ''}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
        print(f"written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
