"""The machine and code a benchmark ran on: the first rows of every benchmark table."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def code_version(*paths: str) -> str:
    """The commit, and whether the given folders had uncommitted changes."""
    try:
        sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", *paths], capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout"
    return f"git {sha}" + (f" with uncommitted changes in {', '.join(paths)}" if dirty else "")


def machine_info() -> dict[str, str]:
    """CPU model, cores, memory, OS, Python and the load when the run started."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
        mem = f"{kib / 1024 / 1024:.1f} GiB"
    return {
        "CPU": cpu,
        "Cores": str(os.cpu_count()),
        "Memory": mem,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "Load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def markdown_table(rows: list[tuple[str, str, str]]) -> str:
    """(section, item, value) rows as the Markdown table the benchmarks print and save; a section is named once."""
    table = ["| | Item | Value |", "|---|---|---|"]
    last = None
    for section, item, value in rows:
        table.append(f"| {section if section != last else ''} | {item} | {value} |")
        last = section
    return "\n".join(table)


def write_json(path: Path, benchmark: str, inputs: dict[str, Any], figures: dict[str, Any], **top: Any) -> None:
    """Write a run's figures in the shape every benchmark shares, so a script checks a run without parsing the table.

    ``{"benchmark", "code", "machine", "inputs", "figures", **top}``: ``figures`` holds
    every measured number (the baseline's beside it), ``top`` the few a gate reads
    (e.g. ``ratio_to_baseline``), repeated at the top level so their keys stay stable.
    """
    doc = {"benchmark": benchmark, "code": code_version("server", "agent", "vision", "bench"),
           "machine": machine_info(), "inputs": inputs, "figures": figures, **top}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
