"""Face clock-in benchmark: decision time per punch, enrolment throughput, memory.

    .venv/bin/python bench/faces.py [--frames N] [--sizes 50,500,5000]

1. **Decision time for one punch** at 640 × 480: frames are composed from
   real probe photos of ../shared/testdata/faces (the face ~250 px, as at a
   terminal). Per frame: detection (HOG, upsample 0 and 1), landmarks and
   quality gates, liveness (the passive check; the head-turn challenge adds
   only landmark arithmetic per frame, but the person's ~1–3 s to turn),
   encoding, and identification against galleries of 50, 500 and 5,000
   people × 5 templates. A punch needs 3 agreeing frames, so the punch's
   compute time is 3 × the frame time. The **baseline**, in the same run on
   the same frames: raw face_recognition (``face_locations`` +
   ``face_encodings`` + ``compare_faces`` at 0.6 against the same gallery).
   Galleries larger than the test set are made of the real encodings plus
   synthetic ones (real encodings with Gaussian noise, renormalised to their
   norm): matching time depends on the gallery's size, not on who is in it.
2. **Enrolment**: the 87 known photos through ``FaceRegistry.enrol`` on
   SQLite (decode, detect, gates, encode, encrypt, store), photos/s; and the
   calibration (leave-one-person-out) for galleries of each size.
3. **Memory**: tracemalloc peak of building and matching each gallery;
   ``ru_maxrss`` of the process.

Single process; dlib uses one core here. Prints a Markdown table and writes
it to ``bench/results/faces-<date>.md``.
"""

from __future__ import annotations

import argparse
import importlib
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import face_recognition  # noqa: E402
import numpy as np  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from bench.machine import code_version, machine_info, markdown_table  # noqa: E402
from server.db import make_engine, migrate  # noqa: E402
from server.faces.registry import FaceRegistry  # noqa: E402
from vision.calibration import calibrate  # noqa: E402
from vision.faces import Face, FaceSettings, from_bgr, load_image, one_face  # noqa: E402
from vision.identify import Gallery, identify  # noqa: E402
from vision.liveness import LivenessSettings, passive_check  # noqa: E402

FACES = ROOT.parent / "shared" / "testdata" / "faces"
RESULTS = ROOT / "bench" / "results"
PROBES = ["nuaa_0001", "nuaa_0003", "obama", "katy_perry", "mark_zuckerberg"]


def frame_from(path: Path) -> np.ndarray:
    image = cv2.cvtColor(load_image(path), cv2.COLOR_RGB2BGR)
    scale = 300 / max(image.shape[:2])
    image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)))
    frame = np.full((480, 640, 3), 110, np.uint8)
    y, x = (480 - image.shape[0]) // 2, (640 - image.shape[1]) // 2
    frame[y : y + image.shape[0], x : x + image.shape[1]] = image
    return frame


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Median wall time of ``repeat`` calls (seconds), and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def gallery_of(size: int, real: dict[str, list[np.ndarray]], rng: np.random.Generator) -> Gallery:
    templates = {p: list(e) for p, e in real.items()}
    base = np.vstack([e for encs in real.values() for e in encs])
    norms = np.linalg.norm(base, axis=1).mean()
    for i in range(size - len(templates)):
        centre = base[rng.integers(len(base))] + rng.normal(0, 0.06, 128)
        encs = [centre + rng.normal(0, 0.025, 128) for _ in range(5)]
        templates[f"synthetic-{i:05d}"] = [e * norms / np.linalg.norm(e) for e in encs]
    return Gallery(templates)


def liveness_check() -> Callable[[np.ndarray, Face], float]:
    """The terminal's passive check with the shipped model."""
    settings = LivenessSettings()
    return lambda image, face: passive_check(image, face.box, settings).score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=7, help="timed repetitions per frame (median)")
    parser.add_argument("--sizes", default="50,500,5000")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if not FACES.is_dir():
        print(f"test photos not found at {FACES}", file=sys.stderr)
        return 2
    rows: list[tuple[str, str, str]] = [(section, k, v) for section, info in (("Machine", machine_info()),) for k, v in info.items()]
    rows.append(("Machine", "Code", code_version("vision", "server")))
    rows.append(("Machine", "Libraries", f"dlib {importlib.import_module('dlib').__version__}, face_recognition 1.3.0, OpenCV {cv2.__version__}, numpy {np.__version__}"))
    settings = FaceSettings()
    rng = np.random.default_rng(1)
    started = time.perf_counter()

    real: dict[str, list[np.ndarray]] = {}
    for folder in sorted((FACES / "known").iterdir()):
        for path in sorted(folder.iterdir()):
            face = one_face(load_image(path), settings)
            if isinstance(face, Face):
                real.setdefault(folder.name, []).append(face.encoding)
    frames = [frame_from(sorted((FACES / "known" / p).iterdir())[-1]) for p in PROBES]
    rows.append(("Input", "Frames", f"{len(frames)} frames 640×480 composed from real probe photos ({', '.join(PROBES)}); each timed {args.frames}× (median), then the median over frames"))
    rows.append(("Input", "Galleries", f"{', '.join(map(str, sizes))} people × 5 templates (the 15 real people, the rest synthetic)"))

    # ---- per-frame stages
    def stage_times(upsample: int) -> dict[str, float]:
        local = settings.model_copy(update={"upsample": upsample})
        out: dict[str, list[float]] = {"detect": [], "gates+landmarks": [], "encode": [], "whole frame": []}
        for frame in frames:
            rgb = from_bgr(frame)
            t_detect, boxes = timed(lambda: face_recognition.face_locations(rgb, number_of_times_to_upsample=upsample), args.frames)
            if not boxes:
                found[upsample] = found.get(upsample, 0) + 0
                boxes = face_recognition.face_locations(rgb, number_of_times_to_upsample=1)
            else:
                found[upsample] = found.get(upsample, 0) + 1
            box = max(boxes, key=lambda b: b[2] - b[0])  # type: ignore[arg-type]
            t_marks, _ = timed(lambda: face_recognition.face_landmarks(rgb, [box], model="large"), args.frames)
            t_enc, _ = timed(lambda: face_recognition.face_encodings(rgb, [box], model="small"), args.frames)
            t_all, _ = timed(lambda: one_face(from_bgr(frame), local, largest=True), args.frames)
            for key, value in zip(out, (t_detect, t_marks, t_enc, t_all), strict=True):
                value_list = out[key]
                value_list.append(value)
        return {k: statistics.median(v) for k, v in out.items()}

    found: dict[int, int] = {}
    stages = {u: stage_times(u) for u in (0, 1)}
    for u, st in stages.items():
        rows.append(("Per frame", f"upsample {u}", ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in st.items()) + f"; face found in {found.get(u, 0)}/{len(frames)} frames"))
    check = liveness_check()
    faces = [one_face(from_bgr(f), settings, largest=True) for f in frames]
    live_ms = statistics.median(timed(lambda f=f, face=face: check(from_bgr(f), face), args.frames)[0] for f, face in zip(frames, faces, strict=True) if isinstance(face, Face)) * 1000
    rows.append(("Per frame", "liveness (passive)", f"{live_ms:.1f} ms"))

    encodings = [one_face(from_bgr(f), settings, largest=True) for f in frames]
    probes = [f.encoding for f in encodings if isinstance(f, Face)]
    for size in sizes:
        tracemalloc.start()
        gallery = gallery_of(size, real, rng)
        limits = calibrate(Gallery(real)).thresholds
        t_match = statistics.median(timed(lambda p=p: identify(p, gallery, limits), args.frames * 5)[0] for p in probes)
        raw_list = list(gallery.matrix)
        t_raw = statistics.median(timed(lambda p=p: face_recognition.compare_faces(raw_list, p, 0.6), args.frames * 5)[0] for p in probes)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        frame_ms = stages[1]["whole frame"] * 1000 + live_ms + t_match * 1000
        rows.append(("Punch decision", f"{size} people", f"identify {t_match * 1000:.2f} ms/frame; frame total {frame_ms:.0f} ms; **punch (3 frames) {3 * frame_ms:.0f} ms** — baseline compare_faces {t_raw * 1000:.2f} ms/frame, raw frame {(stages[1]['detect'] + stages[1]['encode'] + t_raw) * 1000:.0f} ms; gallery memory peak {peak / 2**20:.1f} MiB"))
        t_cal, cal = timed(lambda g=gallery: calibrate(g), 1)
        rows.append(("Calibration", f"{size} people", f"{t_cal:.2f} s (leave-one-person-out over {cal.stranger_probes} probes)"))  # type: ignore[attr-defined]

    # ---- enrolment
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        migrate(engine)
        registry = FaceRegistry(engine, Fernet(Fernet.generate_key()), settings)
        photos = {folder.name: [(p.name, p.read_bytes()) for p in sorted(folder.iterdir())] for folder in sorted((FACES / "known").iterdir())}
        n = sum(len(v) for v in photos.values())
        start = time.perf_counter()
        accepted = sum(registry.enrol(person, items).accepted for person, items in photos.items())
        took = time.perf_counter() - start
    rows.append(("Enrolment", "photos", f"{n} photos ({accepted} accepted), {took:.1f} s: **{n / took:.1f} photos/s** (decode, detect with upsample 1 at ≤1024 px, gates, encode, encrypt, store in SQLite)"))
    rows.append(("Memory", "ru_maxrss", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (whole process)"))
    rows.append(("Run", "wall", f"{time.perf_counter() - started:.0f} s"))

    text = markdown_table(rows)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"faces-{date.today().isoformat()}.md").write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
