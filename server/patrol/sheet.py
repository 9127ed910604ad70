"""The weekly bulletin (通报) as an .xlsx file, laid out as the hall office keeps it.

Sheet 1 (本周通报): a title, the hall and the week, one row per finding
reported that week with its basis, status and handling, then a summary (per
department, withdrawn on re-check, carried over, patrol coverage).  Sheet 2
(遗留问题): the findings still unresolved, carried into next week.  The sheet
lays out what :func:`server.rules.patrol.weekly_bulletin` decided; it decides
nothing.  Served by ``GET /api/bulletins/{week_start}.xlsx`` (:mod:`server.patrol.api`).
"""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from server.patrol.views import span
from server.rules import patrol as rules
from server.rules.patrol import Bulletin, Finding
from server.sheet_style import BOX, CENTER, HEAD_FILL, print_on_a4

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BULLETIN_COLUMNS = ("序号", "窗口", "部门", "时间", "问题类别", "情况描述", "依据", "状态", "异议/处理")
CARRIED_COLUMNS = ("序号", "窗口", "部门", "时间", "问题类别", "情况描述", "通报周次", "状态", "未解决原因", "异议/处理")

_WRAP = Alignment(wrap_text=True, vertical="top")


def _sheet(ws: Any, title: str, subtitle: str, columns: tuple[str, ...], widths: tuple[int, ...], rows: list[list[Any]]) -> None:
    last = get_column_letter(len(columns))
    ws.append([title])
    ws.merge_cells(f"A1:{last}1")
    ws["A1"].font = Font(name="宋体", size=16, bold=True)
    ws["A1"].alignment = CENTER
    ws.row_dimensions[1].height = 30
    ws.append([subtitle])
    ws.merge_cells(f"A2:{last}2")
    ws["A2"].alignment = Alignment(horizontal="left", vertical="center")
    ws.append(list(columns))
    for col, width in enumerate(widths, 1):
        cell = ws.cell(row=3, column=col)
        cell.font = Font(bold=True)
        cell.fill = HEAD_FILL
        cell.alignment = CENTER
        cell.border = BOX
        ws.column_dimensions[get_column_letter(col)].width = width
    for row in rows:
        ws.append(row)
        for col in range(1, len(columns) + 1):
            cell = ws.cell(row=ws.max_row, column=col)
            cell.border = BOX
            cell.alignment = _WRAP
    if not rows:
        ws.append(["（无）"])
        ws.merge_cells(f"A4:{last}4")
    print_on_a4(ws, "A4", "3:3")


def bulletin_workbook(b: Bulletin, hall_name: str, windows: dict[str, Any]) -> bytes:
    """The bulletin as an .xlsx file (bytes)."""

    def names(f: Finding) -> tuple[str, str]:
        spec = windows.get(f.window)
        return (spec.name, spec.department) if spec else (f.window, "")

    wb = Workbook()
    ws = wb.active
    ws.title = "本周通报"
    period = f"{b.week_start.isoformat()} 至 {b.week_end.isoformat()}"
    issued = f"，通报日期 {b.issue_day.isoformat()}" if b.issue_day else "，本周无工作日"
    rows = []
    for number, it in enumerate(b.items, 1):
        f = it.finding
        window_name, department = names(f)
        rows.append([number, window_name, department, span(f), f.category_zh, f.note, f.basis, rules.STATUS_ZH[it.status], it.handling])
    _sheet(ws, b.title, f"{hall_name}  {period}{issued}", BULLETIN_COLUMNS, (6, 12, 16, 20, 14, 48, 40, 14, 40), rows)

    summary: list[str] = []
    if b.by_department:
        summary.append("各部门问题数：" + "，".join(f"{d or '未知部门'} {n} 条" for d, n in b.by_department))
    if b.overturned:
        summary.append(f"经再核实撤销 {b.overturned} 条（不列入本通报）。")
    summary.append(f"遗留问题 {len(b.carried_over)} 条，转入下周重点关注（见“遗留问题”表）。")
    if b.coverage is not None:
        c = b.coverage
        summary.append(
            f"本周大厅巡查 {c.hall_rounds_done}/{c.hall_rounds_expected} 次；监控巡查 {c.cctv_minutes} 分钟"
            f"（要求不少于 {c.cctv_minutes_required} 分钟）{'' if c.cctv_met else '，未达要求'}。"
        )
    ws.append([])
    for line in summary:
        ws.append([line])
        ws.merge_cells(f"A{ws.max_row}:{get_column_letter(len(BULLETIN_COLUMNS))}{ws.max_row}")

    carried = wb.create_sheet("遗留问题")
    next_week = (b.week_start + timedelta(days=7)).isocalendar().week
    rows = []
    for number, it in enumerate(b.carried_over, 1):
        f = it.finding
        window_name, department = names(f)
        year, week = it.confirmed_week
        rows.append(
            [number, window_name, department, span(f), f.category_zh, f.note, f"{year}年第{week}周",
             rules.STATUS_ZH[it.status], it.carried_reason, it.handling]
        )
    _sheet(
        carried,
        f"未解决问题（转入第{next_week}周重点关注）",
        f"{hall_name}  截至 {b.week_end.isoformat()}",
        CARRIED_COLUMNS,
        (6, 12, 16, 20, 14, 48, 12, 14, 16, 40),
        rows,
    )
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
