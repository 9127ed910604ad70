"""The leave / substitution register: CSV import with line-by-line reasons, API, and its effect on alerts."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from procs import ROOT
from test_supervisor import MONDAY_0900, Hall, seat

from server.config.hall import load_hall
from server.attendance.leave import LeaveRegister, RegisterError, parse_csv

HALL = load_hall(ROOT / "config/halls/demo.toml")
HEADER = "kind,person_id,window_id,start,end,note\n"


def test_good_csv_is_read_in_hall_time() -> None:
    text = "\ufeff" + HEADER + "leave,c02,w02,2026-03-02 08:00,2026-03-02 12:00,病假\nsubstitute,b07,w02,2026-03-02 08:00,2026-03-02 12:00,\n"
    entries = parse_csv(text, HALL)
    assert [(e.kind, e.person_id) for e in entries] == [("leave", "c02"), ("substitute", "b07")]
    assert entries[0].start.utcoffset().total_seconds() == 8 * 3600
    assert entries[0].note == "病假"


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("holiday,c02,w02,2026-03-02 08:00,2026-03-02 12:00,", "line 2: kind"),
        ("leave,c02,w99,2026-03-02 08:00,2026-03-02 12:00,", "line 2: window_id: no window 'w99'"),
        ("leave,c05,w02,2026-03-02 08:00,2026-03-02 12:00,", "line 2: person_id: 'c05' is not on the roster of w02"),
        ("leave,c02,w02,2026-03-02 12:00,2026-03-02 08:00,", "line 2: row: Value error, end must be after start"),
        ("leave,c02,w02,2026-03-32 08:00,2026-03-02 12:00,", "line 2: start"),
        ("leave,C 02,w02,2026-03-02 08:00,2026-03-02 12:00,", "line 2: person_id"),
    ],
)
def test_each_bad_row_is_reported_with_its_line(row: str, problem: str) -> None:
    with pytest.raises(RegisterError) as caught:
        parse_csv(HEADER + row + "\n", HALL)
    assert caught.value.problems[0].startswith(problem), caught.value.problems


def test_all_bad_rows_reported_and_nothing_kept() -> None:
    text = HEADER + "leave,c02,w02,2026-03-02 08:00,2026-03-02 12:00,\nleave,c05,w02,2026-03-02 08:00,2026-03-02 12:00,\nleave,c02,w77,2026-03-02 08:00,2026-03-02 12:00,\n"
    with pytest.raises(RegisterError) as caught:
        parse_csv(text, HALL)
    assert [p.split(":")[0] for p in caught.value.problems] == ["line 3", "line 4"]


def test_missing_column_is_named() -> None:
    with pytest.raises(RegisterError, match="missing column\\(s\\) end"):
        parse_csv("kind,person_id,window_id,start\n", HALL)


def test_cli_import_all_or_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/hw.db"
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "leave,c02,w02,2026-03-02 08:00,2026-03-02 12:00,\nleave,c02,w02,2026-03-02 12:00,2026-03-02 08:00,\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "server.cli", "leave", "import", str(bad), "--db", db], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "line 3" in result.stderr and "nothing imported" in result.stderr
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "leave,c02,w02,2026-03-02 08:00,2026-03-02 12:00,\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "server.cli", "leave", "import", str(good), "--db", db], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "imported 1" in result.stderr


def test_leave_without_substitute_raises_no_substitute_not_vacant(db_url: str) -> None:
    hall = Hall(db_url)
    entries = parse_csv(HEADER + "leave,c02,w02,2026-03-02 08:00,2026-03-02 18:00,事假\n", HALL)
    LeaveRegister(hall.engine, HALL).add(entries)
    hall.birth("cam-01", "window_camera")
    hall.send("cam-01", seat("vacant"), MONDAY_0900 - timedelta(hours=1))
    alerts, windows = hall.tick(MONDAY_0900 + timedelta(minutes=30))
    assert [a["type"] for a in alerts] == ["no_substitute"]
    assert alerts[0]["facts"]["on_leave"] == "c02"
    entries = parse_csv(HEADER + "substitute,b07,w02,2026-03-02 09:30,2026-03-02 18:00,\n", HALL)
    LeaveRegister(hall.engine, HALL).add(entries)
    hall.send("cam-01", seat("occupied", who="b07"), MONDAY_0900 + timedelta(minutes=31))
    alerts, _ = hall.tick(MONDAY_0900 + timedelta(hours=1))
    assert [(a["type"], a["state"]) for a in alerts] == [("no_substitute", "cleared")]
