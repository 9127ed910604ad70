"""Face clock-in benchmark: decision time per punch, enrolment throughput, memory.

    .venv/bin/python bench/faces.py [--frames N] [--sizes 50,500,5000] [--quick] [--json FILE] [--no-save]

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
it to ``bench/results/faces-<date>.md`` (``--quick``: ``faces-<date>-quick.md``;
``--no-save``: nowhere; ``--output FILE``: there).  ``--json FILE`` also writes
every figure as JSON (``bench.machine.write_json``; the keys are listed in
docs/benchmarks-faces.md).  ``--quick`` is the CI smoke run, some 25 s: every
phase with one timing per frame, galleries of 50 and 500, the real templates
from the first 2 photos of each person and the first photo of each enrolled;
nothing is checked against absolute times.

Without the test photos or without face_recognition / dlib the script exits
with status 2 and a one-line reason.
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


def _missing_library() -> str | None:
    """Why the face libraries cannot be used, or None.  ``face_recognition`` itself calls ``quit()``
    (exit status 0) when its models are missing, so they are imported first."""
    for name in ("numpy", "cv2", "dlib", "face_recognition_models", "face_recognition"):
        try:
            importlib.import_module(name)
        except Exception as exc:  # an ImportError, or pkg_resources missing under face_recognition_models
            return f"{name} cannot be imported ({type(exc).__name__}: {exc})".replace("\n", " ")
    return None


if (_why := _missing_library()) is not None:
    print(f"faces benchmark: {_why}; install face_recognition and dlib as README.md says", file=sys.stderr)
    raise SystemExit(2)

import cv2  # noqa: E402
import face_recognition  # noqa: E402
import numpy as np  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from bench.machine import code_version, machine_info, markdown_table, write_json  # noqa: E402
from server.db import make_engine, migrate  # noqa: E402
from server.faces.registry import FaceRegistry  # noqa: E402
from vision.calibration import calibrate  # noqa: E402
from vision.faces import Face, FaceSettings, from_bgr, load_image, one_face  # noqa: E402
from vision.identify import Gallery, identify  # noqa: E402
from vision.liveness import LivenessSettings, passive_check  # noqa: E402

FACES = ROOT.parent / "shared" / "testdata" / "faces"
RESULTS = ROOT / "bench" / "results"
PROBES = ["nuaa_0001", "nuaa_0003", "obama", "katy_perry", "mark_zuckerberg"]
QUICK_SIZES = "50,500"
QUICK_TEMPLATES = 2  # photos per person for the real encodings in --quick
QUICK_ENROL = 1  # photos per person enrolled in --quick


def missing_data() -> str | None:
    """What of the test photos is missing, or None."""
    if not (FACES / "known").is_dir():
        return f"test photos not found at {FACES / 'known'} (see ../shared/testdata/README.md)"
    empty = [p for p in PROBES if not (FACES / "known" / p).is_dir() or not any((FACES / "known" / p).iterdir())]
    if empty:
        return f"probe photos missing under {FACES / 'known'}: {', '.join(empty)}"
    return None


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
    parser.add_argument("--quick", action="store_true", help=f"CI smoke run, some 25 s: --frames 1 --sizes {QUICK_SIZES}, the real templates from "
                        f"{QUICK_TEMPLATES} photos per person, {QUICK_ENROL} photo per person enrolled")  # fmt: skip
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/faces-<date>.md")
    parser.add_argument("--output", type=Path, help="Markdown file to write instead of bench/results/faces-<date>.md")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON (docs/benchmarks-faces.md lists the keys)")
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.sizes = 1, QUICK_SIZES
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.frames < 1 or not sizes or min(sizes) < 1:
        parser.error("--frames and --sizes must be positive")
    if (why := missing_data()) is not None:
        print(f"faces benchmark: {why}", file=sys.stderr)
        return 2
    templates = QUICK_TEMPLATES if args.quick else None  # photos per person: all unless --quick
    enrol_each = QUICK_ENROL if args.quick else None
    rows: list[tuple[str, str, str]] = [(section, k, v) for section, info in (("Machine", machine_info()),) for k, v in info.items()]
    rows.append(("Machine", "Code", code_version("vision", "server")))
    rows.append(("Machine", "Libraries", f"dlib {importlib.import_module('dlib').__version__}, face_recognition 1.3.0, OpenCV {cv2.__version__}, numpy {np.__version__}"))
    settings = FaceSettings()
    rng = np.random.default_rng(1)
    started = time.perf_counter()

    real: dict[str, list[np.ndarray]] = {}
    n_template_photos = 0
    for folder in sorted((FACES / "known").iterdir()):
        for path in sorted(folder.iterdir())[:templates]:
            n_template_photos += 1
            face = one_face(load_image(path), settings)
            if isinstance(face, Face):
                real.setdefault(folder.name, []).append(face.encoding)
    frames = [frame_from(sorted((FACES / "known" / p).iterdir())[-1]) for p in PROBES]
    rows.append(("Input", "Frames", f"{len(frames)} frames 640×480 composed from real probe photos ({', '.join(PROBES)}); each timed {args.frames}× (median), then the median over frames"))
    rows.append(("Input", "Galleries", f"{', '.join(map(str, sizes))} people × 5 templates (the {len(real)} real people, the rest synthetic)"
                 + (f"; real templates from the first {templates} photos of each person (--quick)" if templates else "")))

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
    figures: dict[str, float] = {}
    for u, st in stages.items():
        rows.append(("Per frame", f"upsample {u}", ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in st.items()) + f"; face found in {found.get(u, 0)}/{len(frames)} frames"))
        figures.update({f"upsample_{u}_detect_ms": st["detect"] * 1000, f"upsample_{u}_gates_landmarks_ms": st["gates+landmarks"] * 1000,
                        f"upsample_{u}_encode_ms": st["encode"] * 1000, f"upsample_{u}_whole_frame_ms": st["whole frame"] * 1000,
                        f"upsample_{u}_faces_found": found.get(u, 0)})  # fmt: skip
    check = liveness_check()
    faces = [one_face(from_bgr(f), settings, largest=True) for f in frames]
    live_ms = statistics.median(timed(lambda f=f, face=face: check(from_bgr(f), face), args.frames)[0] for f, face in zip(frames, faces, strict=True) if isinstance(face, Face)) * 1000
    rows.append(("Per frame", "liveness (passive)", f"{live_ms:.1f} ms"))
    figures["liveness_ms"] = live_ms

    probes = [f.encoding for f in faces if isinstance(f, Face)]  # the same frames, the same settings: the same faces
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
        raw_frame_ms = (stages[1]["detect"] + stages[1]["encode"] + t_raw) * 1000
        rows.append(("Punch decision", f"{size} people", f"identify {t_match * 1000:.2f} ms/frame; frame total {frame_ms:.0f} ms; **punch (3 frames) {3 * frame_ms:.0f} ms** — baseline compare_faces {t_raw * 1000:.2f} ms/frame, raw frame {raw_frame_ms:.0f} ms; gallery memory peak {peak / 2**20:.1f} MiB"))
        t_cal, cal = timed(lambda g=gallery: calibrate(g), 1)
        cal_probes: int = cal.stranger_probes  # type: ignore[attr-defined]
        rows.append(("Calibration", f"{size} people", f"{t_cal:.2f} s (leave-one-person-out over {cal_probes} probes)"))
        figures.update({f"gallery_{size}_identify_ms": t_match * 1000, f"gallery_{size}_frame_ms": frame_ms, f"gallery_{size}_punch_ms": 3 * frame_ms,
                        f"gallery_{size}_baseline_compare_ms": t_raw * 1000, f"gallery_{size}_baseline_frame_ms": raw_frame_ms,
                        f"gallery_{size}_baseline_punch_ms": 3 * raw_frame_ms, f"gallery_{size}_memory_peak_mib": peak / 2**20,
                        f"gallery_{size}_calibration_s": t_cal, f"gallery_{size}_calibration_probes": cal_probes})  # fmt: skip

    # ---- enrolment
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        migrate(engine)
        registry = FaceRegistry(engine, Fernet(Fernet.generate_key()), settings)
        photos = {folder.name: [(p.name, p.read_bytes()) for p in sorted(folder.iterdir())[:enrol_each]] for folder in sorted((FACES / "known").iterdir())}
        n = sum(len(v) for v in photos.values())
        start = time.perf_counter()
        accepted = sum(registry.enrol(person, items).accepted for person, items in photos.items())
        took = time.perf_counter() - start
    rows.append(("Enrolment", "photos", f"{n} photos ({accepted} accepted), {took:.1f} s: **{n / took:.1f} photos/s** (decode, detect with upsample 1 at ≤1024 px, gates, encode, encrypt, store in SQLite)"))
    maxrss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(("Memory", "ru_maxrss", f"{maxrss_mib:.0f} MiB (whole process)"))
    wall = time.perf_counter() - started
    rows.append(("Run", "wall", f"{wall:.0f} s"))
    figures.update({"enrol_photos": n, "enrol_accepted": accepted, "enrol_s": took, "enrol_photos_per_s": n / took,
                    "ru_maxrss_mib": maxrss_mib, "wall_s": wall})  # fmt: skip

    text = markdown_table(rows)
    print(text)
    if args.json:
        largest = max(sizes)
        punch, base = figures[f"gallery_{largest}_punch_ms"], figures[f"gallery_{largest}_baseline_punch_ms"]
        inputs = {"quick": args.quick, "frames": len(frames), "frame_size": [640, 480], "probes": PROBES, "repeat": args.frames,
                  "gallery_sizes": sizes, "templates_per_person": 5, "real_people": len(real), "real_template_photos": n_template_photos,
                  "real_templates": sum(len(e) for e in real.values()), "enrol_photos": n}  # fmt: skip
        write_json(args.json, "faces", inputs, figures, gallery_people=largest, punch_ms=punch, baseline_punch_ms=base, ratio_to_baseline=punch / base)
        print(f"figures written to {args.json}", file=sys.stderr)
    if not args.no_save:
        out = args.output or RESULTS / f"faces-{date.today().isoformat()}{'-quick' if args.quick else ''}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
        print(f"written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
