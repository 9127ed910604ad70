"""``hallwatch attendance sheet`` (the monthly sheet) and ``hallwatch leave import`` (the register from a CSV)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from broker.config_file import ConfigError
from broker.timeutil import HALL_TZ
from server.cli_common import DEFAULT_DB, DEFAULT_HALL, Db, HallFile, console, fail, load_hall_or_exit, open_database

attendance_app = typer.Typer(help="考勤 Attendance: the monthly sheet.", no_args_is_help=True)
leave_app = typer.Typer(help="The leave, outing and substitution register.", no_args_is_help=True)


@attendance_app.command("sheet")
def attendance_sheet(
    month: Annotated[str, typer.Argument(help="The month, YYYY-MM.")],
    output: Annotated[Path, typer.Option("--out", help="Where to write the .xlsx.")],
    hall: HallFile = DEFAULT_HALL,
    db: Db = DEFAULT_DB,
) -> None:
    """Write the monthly attendance sheet (月度考勤表) from the stored punches, leave and make-up punches."""
    from server.attendance.service import AttendanceService
    from server.config.calendar import load_calendar
    from server.config.policy import load_policy
    from server.rules.calendar import CalendarGapError

    try:
        year, number = (int(part) for part in month.split("-"))
        if not 1 <= number <= 12:
            raise ValueError
    except ValueError:
        fail(f"month: {month!r} is not YYYY-MM")
    hall_config = load_hall_or_exit(hall)
    try:
        policy = load_policy(hall_config.policy.preset, hall_config.policy.overrides, source=hall)
        calendar = load_calendar(hall_config.calendars)
    except ConfigError as exc:
        fail(str(exc))
    engine = open_database(db)
    try:
        data = AttendanceService(engine, hall_config, policy, calendar, lambda: datetime.now(HALL_TZ)).sheet(year, number)
    except CalendarGapError as exc:
        fail(str(exc))
    output.write_bytes(data)
    console.print(f"wrote {output} ({len(data):,} bytes)")


@leave_app.command("import")
def leave_import(
    csv_file: Annotated[Path, typer.Argument(help="Register CSV: kind,person_id,window_id,start,end,note (UTF-8).")],
    hall: HallFile = DEFAULT_HALL,
    db: Db = DEFAULT_DB,
) -> None:
    """Import approved leave, outings and substitutions; all or nothing, each bad row reported."""
    from server.attendance.leave import LeaveRegister, RegisterError, parse_csv

    hall_config = load_hall_or_exit(hall)
    try:
        entries = parse_csv(csv_file.read_text(encoding="utf-8"), hall_config)
    except FileNotFoundError:
        fail(f"{csv_file}: file not found")
    except UnicodeDecodeError:
        fail(f"{csv_file}: not UTF-8 text (save the CSV as UTF-8)")
    except RegisterError as exc:
        fail(f"{csv_file}: nothing imported:\n  " + "\n  ".join(exc.problems))
    ids = LeaveRegister(open_database(db), hall_config).add(entries)
    console.print(f"imported {len(ids)} entries from {csv_file}")
