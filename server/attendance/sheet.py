"""The monthly attendance sheet (月度考勤表) as an .xlsx file, laid out as a hall office keeps it.

The 督查科 reports attendance once a month (000 篇9: 「督查科每月通报一次考勤汇总情况」;
004: 「出勤情况由中心管理人员如实记录并按月通报」) on a sheet it prints and
signs: a title with the hall and the month, one row per person, one column
per day with a mark per half-day (``√/迟`` = morning normal, afternoon late),
rest days shaded, then the month's totals and the escalation reached, a
legend and signature lines.  This module only lays out what
:func:`server.rules.attendance.evaluate_month` decided; it decides nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from io import BytesIO

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from server.rules.attendance import DayAttendance, MonthAttendance, month_days
from server.rules.calendar import WorkCalendar
from server.rules.policy import Policy
from server.sheet_style import BOX, CENTER, HEAD_FILL, LEFT, print_on_a4

MARKS: dict[str, str] = {
    "normal": "√",
    "late": "迟",
    "early_leave": "早",
    "late_and_early_leave": "迟早",
    "missing_punch": "缺",
    "absent": "旷",
    "on_leave": "假",
    "non_working": "",
    "pending": "",
}
"""The compact mark of each half-day status (blank: a rest day, or not over yet)."""

FIXED_COLUMNS = ("序号", "姓名", "窗口")
TOTAL_COLUMNS = ("应出勤(天)", "实出勤(天)", "迟到(次)", "早退(次)", "缺卡(次)", "旷工(天)", "请假(天)", "补卡(次)", "非刷脸(次)", "处理")
WEEKDAYS = "一二三四五六日"
HEADER_ROWS = 4
"""Title, notes, day numbers, weekdays: the person rows start below."""

_REST_FILL = PatternFill("solid", fgColor="EDEDED")
_MARK_COLOURS = {"旷": "C00000", "缺": "C00000", "迟": "C65911", "早": "C65911", "假": "2F5597"}


@dataclass(frozen=True)
class SheetRow:
    """One person on the sheet: as the office names them, and their evaluated month."""

    name: str
    window: str
    month: MonthAttendance


def day_mark(day: DayAttendance) -> str:
    """``√/迟``: the marks of the day's half-days in session order; blank on a rest day."""
    if not day.working:
        return ""
    marks = [MARKS[half.status] for half in day.halves]
    return "/".join(marks) if any(marks) else ""


def _days(halfdays: int, per_day: int) -> int | float:
    """Half-days as days (0.5 steps), an int when whole so the sheet shows ``22`` not ``22.0``."""
    days = halfdays / per_day
    return int(days) if days.is_integer() else days


def _totals(month: MonthAttendance, per_day: int) -> list[object]:
    s = month.summary
    return [
        _days(s.working_halfdays, per_day),
        _days(s.attended_halfdays, per_day),
        s.late,
        s.early,
        s.counts["missing_punch"],
        _days(s.absent_halfdays, per_day),
        _days(s.counts["on_leave"], per_day),
        s.punches["makeup"],
        s.non_face,
        "；".join(hit.name for hit in s.escalations),
    ]


def _notes(policy: Policy) -> list[str]:
    rules = policy.attendance
    sessions = "/".join(s.name for s in policy.schedule.sessions)
    legend = (
        "图例：√ 正常　迟 迟到　早 早退　迟早 迟到并早退　缺 缺卡(未补卡)　旷 旷工　假 请假；"
        f"每格为“{sessions}”；灰底为休息日，“班”为调休上班日。"
    )
    counted = "缺卡未补卡的半天计入旷工。" if rules.missing_punch_absent else "缺卡不计入旷工，由督查科核实。"
    escalations = "；".join(f"{e.at_least}次及以上：{e.name}" for e in rules.monthly_escalations) or "无"
    return [
        legend,
        f"考勤规则：{policy.name}。{counted}当月迟到早退累计 {escalations}。",
        "制表人：　　　　　　　　审核人：　　　　　　　　日期：",
    ]


def _style_header(ws: Worksheet, row: int, col: int, fill: PatternFill = HEAD_FILL) -> None:
    cell = ws.cell(row=row, column=col)
    cell.font = Font(name="宋体", size=10, bold=True)
    cell.fill = fill
    cell.alignment = CENTER
    cell.border = BOX


@dataclass(frozen=True)
class _Grid:
    """Where a month's sheet puts things: its days, which of them are shaded, and the first column of each block."""

    days: list[date]
    working: set[int]
    """Days of the month (1–31) the calendar works, a moved Saturday or Sunday (调休) included."""
    rest: set[int]
    """Days shaded as rest days (none when the schedule counts every day)."""
    first_day_col: int
    first_total_col: int
    last_col: int

    @property
    def last(self) -> str:
        return get_column_letter(self.last_col)


def _grid(year: int, month: int, policy: Policy, calendar: WorkCalendar) -> _Grid:
    days = month_days(year, month)
    first_day_col = len(FIXED_COLUMNS) + 1
    first_total_col = first_day_col + len(days)
    working = {d.day for d in days if calendar.is_working_day(d)}
    rest = {d.day for d in days if d.day not in working} if policy.schedule.working_days_only else set()
    return _Grid(days, working, rest, first_day_col, first_total_col, first_total_col + len(TOTAL_COLUMNS) - 1)


def write_month_sheet(
    ws: Worksheet,
    hall: str,
    year: int,
    month: int,
    rows: Sequence[SheetRow],
    policy: Policy,
    calendar: WorkCalendar,
) -> None:
    """Lay out the sheet on ``ws`` (title, headers, one row per person, totals, legend, print setup)."""
    grid = _grid(year, month, policy, calendar)
    strays = [r.name for r in rows if (r.month.year, r.month.month) != (year, month)]
    if strays:
        raise ValueError(f"the sheet is for {year}-{month:02d}; these rows hold another month: {strays}")

    ws.title = f"{year}年{month}月"
    _write_title(ws, grid, hall, year, month, len(rows), policy)
    _write_headers(ws, grid)
    row = _write_people(ws, grid, rows, len(policy.schedule.sessions))
    row = _write_legend(ws, grid, row, policy)
    print_on_a4(ws, ws.cell(row=HEADER_ROWS + 1, column=grid.first_day_col).coordinate, f"3:{HEADER_ROWS}")
    ws.print_area = f"A1:{grid.last}{row}"
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.4


def _write_title(ws: Worksheet, grid: _Grid, hall: str, year: int, month: int, people: int, policy: Policy) -> None:
    """Rows 1–2: the title with the hall and the month, then the month, head count and what a cell holds."""
    ws["A1"] = f"{hall}{year}年{month}月考勤表"
    ws.merge_cells(f"A1:{grid.last}1")
    ws["A1"].font = Font(name="宋体", size=16, bold=True)
    ws["A1"].alignment = CENTER
    ws.row_dimensions[1].height = 30
    ws["A2"] = f"考勤月份：{year}年{month}月　　人数：{people}　　每格为“{'/'.join(s.name for s in policy.schedule.sessions)}”"
    ws.merge_cells(f"A2:{grid.last}2")
    ws["A2"].alignment = LEFT


def _write_headers(ws: Worksheet, grid: _Grid) -> None:
    """Rows 3–4: the fixed and total columns merged over both rows, a day's number over its weekday, and the widths."""
    for col, title in enumerate(FIXED_COLUMNS, 1):
        ws.cell(row=3, column=col, value=title)
        ws.merge_cells(start_row=3, start_column=col, end_row=4, end_column=col)
        _style_header(ws, 3, col)
        _style_header(ws, 4, col)
    for offset, day in enumerate(grid.days):
        col = grid.first_day_col + offset
        fill = _REST_FILL if day.day in grid.rest else HEAD_FILL
        moved = day.weekday() >= 5 and day.day in grid.working
        ws.cell(row=3, column=col, value=day.day)
        ws.cell(row=4, column=col, value=WEEKDAYS[day.weekday()] + ("班" if moved else ""))
        _style_header(ws, 3, col, fill)
        _style_header(ws, 4, col, fill)
        ws.column_dimensions[get_column_letter(col)].width = 5.5
    for offset, title in enumerate(TOTAL_COLUMNS):
        col = grid.first_total_col + offset
        ws.cell(row=3, column=col, value=title)
        ws.merge_cells(start_row=3, start_column=col, end_row=4, end_column=col)
        _style_header(ws, 3, col)
        _style_header(ws, 4, col)
        ws.column_dimensions[get_column_letter(col)].width = 22 if title == "处理" else 7
    for col, width in zip(range(1, grid.first_day_col), (5, 10, 14)):
        ws.column_dimensions[get_column_letter(col)].width = width


def _write_people(ws: Worksheet, grid: _Grid, rows: Sequence[SheetRow], per_day: int) -> int:
    """One row per person below the headers (or a merged 无人员 row); the last row written."""
    row = HEADER_ROWS
    for number, person in enumerate(rows, 1):
        row += 1
        by_day = {d.day: d for d in person.month.days}
        values: list[object] = [number, person.name, person.window]
        values += [day_mark(by_day[d]) if d in by_day else "" for d in grid.days]
        values += _totals(person.month, per_day)
        for col, value in enumerate(values, 1):
            _style_person_cell(ws.cell(row=row, column=col, value=value), grid, col, value)
    if not rows:
        row += 1
        ws.cell(row=row, column=1, value="（无人员）")
        ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=grid.last_col)
    return row


def _style_person_cell(cell: Cell, grid: _Grid, col: int, value: object) -> None:
    """Boxed and centred (处理 left-aligned); a day cell shaded on a rest day and its mark coloured."""
    cell.border = BOX
    cell.alignment = LEFT if col == grid.last_col else CENTER
    cell.font = Font(name="宋体", size=10)
    if grid.first_day_col <= col < grid.first_total_col:
        if grid.days[col - grid.first_day_col].day in grid.rest:
            cell.fill = _REST_FILL
        colour = next((c for mark, c in _MARK_COLOURS.items() if mark in str(value)), None)
        if colour:
            cell.font = Font(name="宋体", size=10, color=colour)


def _write_legend(ws: Worksheet, grid: _Grid, row: int, policy: Policy) -> int:
    """A blank row after ``row``, then the legend, rules and signature lines, each merged across; the last row written."""
    row += 1
    for line in _notes(policy):
        row += 1
        ws.cell(row=row, column=1, value=line).alignment = LEFT
        ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=grid.last_col)
    return row


def attendance_xlsx(
    hall: str,
    year: int,
    month: int,
    rows: Sequence[SheetRow],
    policy: Policy,
    calendar: WorkCalendar,
) -> bytes:
    """The month's attendance sheet as .xlsx bytes (for a download or a file)."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None  # a new Workbook always has its one sheet
    write_month_sheet(ws, hall, year, month, rows, policy, calendar)
    out = BytesIO()
    wb.save(out)
    return out.getvalue()
