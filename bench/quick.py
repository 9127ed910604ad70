"""Every benchmark's quick mode, with the gates that stop a landing: what `.ci/run` runs after the tests.

    .venv/bin/python bench/quick.py [--only ingest,faces,...] [--keep DIR]

Each benchmark runs in its own process (``--quick --no-save --json FILE``).
A run fails when a benchmark exits non-zero (it broke, or a component or the
test data it needs is missing) or when a ratio measured *within its own run*
crosses its gate (:data:`GATES`). Absolute times are never compared: the
machine CI shares may be slower or busier on any day, but a ratio against a
baseline measured in the same run moves only when the code does.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Gate:
    key: str
    holds: Callable[[float], bool]
    rule: str
    """The gate in words, as the table prints it."""


GATES: dict[str, tuple[Gate, ...]] = {
    # Ingest must keep pace with a plain subscriber and must not slow down as the day fills.
    "ingest": (
        Gate("ratio_to_baseline", lambda v: v >= 0.3, "≥ 0.3 × the paho subscriber of the same run"),
        Gate("last_quarter_over_first", lambda v: v >= 0.5, "last quarter ≥ ½ the first quarter's rate"),
    ),
    # The supervision core against its bare fold (documented 0.036): a quarter of that means it broke.
    "supervision": (Gate("ratio_to_baseline", lambda v: v >= 0.009, "core ≥ 0.009 × a bare fold (documented 0.036)"),),
    # A punch against raw face_recognition on the same frames (documented ≈ 1).
    "faces": (Gate("ratio_to_baseline", lambda v: v <= 2.0, "punch ≤ 2 × raw face_recognition"),),
    # A window camera's frame against decoding it alone (documented ≈ 1.4).
    "occupancy": (Gate("ratio_to_baseline", lambda v: v <= 6.0, "frame ≤ 6 × decoding alone"),),
}


def run_one(name: str, out: Path) -> tuple[int, float, dict[str, Any] | None, str]:
    """Run one benchmark's quick mode; its exit status, wall time, JSON figures and the tail of its output."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{name}.py"), "--quick", "--no-save", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    wall = time.monotonic() - started
    doc = json.loads(out.read_text(encoding="utf-8")) if proc.returncode == 0 and out.exists() else None
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
    return proc.returncode, wall, doc, tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(GATES)}")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep each benchmark's JSON in DIR")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(GATES)
    unknown = set(names) - set(GATES)
    if unknown:
        parser.error(f"no such benchmark: {', '.join(sorted(unknown))}")

    failures: list[str] = []
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hallwatch-quick-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            print(f"bench/{name}.py --quick ...", flush=True)
            status, wall, doc, tail = run_one(name, folder / f"{name}.json")
            if doc is None:
                failures.append(f"{name}: exited with status {status}\n{tail}")
                rows.append(f"{name:<12} {wall:6.1f} s  FAILED (exit status {status})")
                continue
            for gate in GATES[name]:
                value = doc.get(gate.key)
                ok = isinstance(value, int | float) and gate.holds(float(value))
                shown = f"{value:.3f}" if isinstance(value, int | float) else repr(value)
                rows.append(f"{name:<12} {wall:6.1f} s  {gate.key} = {shown:<10} {'ok' if ok else 'FAILED'}  ({gate.rule})")
                if not ok:
                    failures.append(f"{name}: {gate.key} = {shown}, the gate is {gate.rule}")
    print("\nQuick benchmarks (ratios within each run; absolute times are not gated)")
    print("\n".join(rows))
    for failure in failures:
        print(f"\nFAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
