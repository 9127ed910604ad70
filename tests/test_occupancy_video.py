"""Seat presence on the real video against hand-made labels (tests/labels/README.md says how they were made).

The timeline compared is the one the server keeps: each published change
dated at its onset (``Change.since``), so the hysteresis delay does not count
against the camera.  Agreement is per labelled second (the middle frame of
each second, as labelled).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import pytest

from conftest import TESTDATA, require
from vision.occupancy import Change, OccupancyMonitor, OccupancySettings, SeatRegion

LABELS = Path(__file__).parent / "labels"
STANDING = OccupancySettings(occupied_after_s=1.0, vacant_after_s=3.0)
"""People at a standing table come and go within seconds (a seated clerk uses the defaults)."""


def _labels() -> list[bool]:
    with (LABELS / "one-by-one-person-detection.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["second"]) for r in rows] == list(range(len(rows)))
    return [r["present"] == "1" for r in rows]


def _falls(presence: list[bool]) -> int:
    """Occupied → vacant changes."""
    return sum(1 for a, b in zip(presence, presence[1:]) if a and not b)


@pytest.fixture(scope="module")
def run() -> tuple[list[Change], list[bool]]:
    """The monitor over the whole video at 5 fps: its changes, and its raw per-frame sightings at the labelled frames."""
    spec = json.loads((LABELS / "one-by-one-person-detection.region.json").read_text())
    video = TESTDATA / spec["video"]
    require(video.is_file(), f"test video not found at {video}")
    capture = cv2.VideoCapture(str(video))
    region = SeatRegion("w01", "main", tuple((int(x), int(y)) for x, y in spec["polygon"]))
    monitor: OccupancyMonitor | None = None
    changes: list[Change] = []
    seen: dict[int, bool] = {}
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if monitor is None:
            monitor = OccupancyMonitor([region], frame, STANDING)  # the first frame shows the empty table
        if index % 2 == 1:  # 5 fps, on the labelled frames 10 s + 5
            changes += monitor.update(frame, index / spec["fps"])
            if index % 10 == 5:
                seen[index // 10] = monitor.signals()[("w01", "main")].seen
        index += 1
    capture.release()
    return changes, [seen[s] for s in sorted(seen)]


def _timeline(changes: list[Change], seconds: int) -> list[bool]:
    """Presence at each labelled instant (s + 0.5) from the onset-dated changes."""
    out = []
    for s in range(seconds):
        t = s + 0.5
        state = None
        for change in changes:
            if change.since <= t:
                state = change.state
        out.append(state == "occupied")
    return out


def test_presence_agrees_with_the_hand_labels_and_every_departure_is_seen(run: tuple[list[Change], list[bool]]) -> None:
    changes, _ = run
    labels = _labels()
    presence = _timeline(changes, len(labels))
    agree = sum(p == lab for p, lab in zip(presence, labels)) / len(labels)
    wrong = [s for s, (p, lab) in enumerate(zip(presence, labels)) if p != lab]
    assert agree >= 0.95, f"agreement {agree:.1%}; seconds that differ: {wrong}"
    assert _falls(presence) == _falls(labels) == 6, "one occupied → vacant change per departure, no flicker"
    published = [c.state for c in changes]
    assert published == ["vacant"] + ["occupied", "vacant"] * 6, "what the camera publishes: the empty start, then six visits"


def test_raw_sightings_before_hysteresis_also_agree(run: tuple[list[Change], list[bool]]) -> None:
    _, seen = run
    labels = _labels()
    agree = sum(p == lab for p, lab in zip(seen, labels)) / len(labels)
    assert agree >= 0.95, f"raw per-frame agreement {agree:.1%}"
