"""The 好差评 statistics as an .xlsx file, laid out as a hall office keeps it.

Sheet 1 (好差评统计): a title with the hall, what is counted and the range,
one row per window, clerk or department and period with its counts, rates
and rank, a 合计 row, the definitions of the rates and signature lines.
Sheet 2 (差评工单): every work order of the range with its deadlines, steps
and whether it is overdue.  The sheet lays out what
:mod:`server.rules.ratings` decided; it decides nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from io import BytesIO

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from broker.timeutil import HALL_TZ
from server.db import RatingRow
from server.ratings.service import StatsView
from server.rules import ratings as rules
from server.rules.policy import Policy
from server.rules.ratings import StatRow, WorkOrder
from server.sheet_style import BOX, CENTER, HEAD_FILL, LEFT, print_on_a4

BY_ZH = {"window": "窗口", "clerk": "工作人员", "department": "部门"}
PERIOD_ZH = {"day": "日", "month": "月"}
LEVEL_COLUMNS = tuple(rules.LEVEL_ZH[level] for level in (5, 4, 3, 2, 1))
RATE_COLUMNS = ("满意率", "差评率")
ORDER_COLUMNS = ("差评工单", "已办结", "整改率", "按时办结率", "超期")
APART_COLUMNS = ("默认评价", "重复评价", "申诉撤销", "可疑评价", "排名")
ORDERS_SHEET_COLUMNS = (
    "序号", "工单号", "评价时间", "窗口", "部门", "工作人员", "评价", "排队号", "办件编号",
    "回访期限", "办结期限", "回访时间", "办结时间", "状态", "是否超期", "处理情况",
)  # fmt: skip
PERCENT = "0.0%"

_TOTAL_FILL = PatternFill("solid", fgColor="F2F2F2")


def stats_columns(by: str) -> tuple[str, ...]:
    """The header of sheet 1 (a department row has no 所属部门 column)."""
    group = ("序号", "统计周期", BY_ZH[by]) + (("所属部门",) if by != "department" else ())
    return group + ("有效评价",) + LEVEL_COLUMNS + RATE_COLUMNS + ORDER_COLUMNS + APART_COLUMNS


def _counts(row: StatRow) -> list[object]:
    def rate(value: float | None) -> object:
        return "—" if value is None else value

    return [
        row.rated,
        *row.levels,
        rate(row.satisfaction_rate),
        rate(row.bad_rate),
        row.work_orders,
        row.handled,
        rate(row.rectification_rate),
        rate(row.on_time_rate),
        row.late,
        row.defaults,
        row.duplicates,
        row.overturned,
        row.suspect,
        row.rank if row.rank is not None else "—",
    ]


def _title(ws: Worksheet, title: str, subtitle: str, columns: Sequence[str], widths: Sequence[float]) -> None:
    last = get_column_letter(len(columns))
    ws["A1"] = title
    ws.merge_cells(f"A1:{last}1")
    ws["A1"].font = Font(name="宋体", size=16, bold=True)
    ws["A1"].alignment = CENTER
    ws.row_dimensions[1].height = 30
    ws["A2"] = subtitle
    ws.merge_cells(f"A2:{last}2")
    ws["A2"].alignment = LEFT
    for col, (name, width) in enumerate(zip(columns, widths, strict=True), 1):
        cell = ws.cell(row=3, column=col, value=name)
        cell.font = Font(name="宋体", size=10, bold=True)
        cell.fill = HEAD_FILL
        cell.alignment = CENTER
        cell.border = BOX
        ws.column_dimensions[get_column_letter(col)].width = width


def _row(ws: Worksheet, values: Sequence[object], columns: Sequence[str], fill: PatternFill | None = None) -> None:
    ws.append(list(values))
    for col, name in enumerate(columns, 1):
        cell = ws.cell(row=ws.max_row, column=col)
        cell.border = BOX
        cell.font = Font(name="宋体", size=10, bold=fill is not None)
        cell.alignment = LEFT if name in ("处理情况", "办件编号") else CENTER
        if name.endswith("率") and isinstance(cell.value, float):
            cell.number_format = PERCENT
        if fill is not None:
            cell.fill = fill


def _notes(ws: Worksheet, lines: Sequence[str], width: int) -> None:
    ws.append([])
    for line in lines:
        ws.append([line])
        ws.merge_cells(start_row=ws.max_row, start_column=1, end_row=ws.max_row, end_column=width)
        ws.cell(row=ws.max_row, column=1).alignment = LEFT


def definitions(policy: Policy) -> list[str]:
    """What the columns mean, as printed under the table (and given by the API)."""
    r = policy.ratings
    bad = "、".join(rules.LEVEL_ZH[level] for level in range(r.bad_at_most, 0, -1))
    default = (
        f"办结后 {r.default_after_days} 天未评价的办件由系统记为“{rules.LEVEL_ZH[r.default_level]}”（默认评价）"
        if r.default_after_days is not None and r.default_level is not None
        else "本规则不设默认评价"
    )
    return [
        "有效评价：每笔业务（同一排队号或办件编号，批量业务视为一笔）的首个真实评价，不含系统默认评价、重复评价和经申诉撤销的差评。",
        f"满意率 =（非常满意 + 满意）÷ 有效评价；差评率 = 差评（{bad}）÷ 有效评价。",
        "整改率 = 已整改或已办结的差评工单 ÷ 差评工单（申诉成立、重复评价撤销的工单不计）；"
        "按时办结率 = 在回访期限和办结期限内完成的工单 ÷（按时 + 超期）的工单，尚未到期的工单不计。",
        f"{default}，与重复评价一样单独统计，不计入任何比率。",
        "可疑评价：评价时无人在岗、无对应叫号、评价器登录人员与在岗人员不符或短时间内集中评价，仅供核查，不作结论。",
        "排名：按满意率从高到低，满意率相同按差评率从低到高；比率相同名次并列。",
        "制表人：　　　　　　　　审核人：　　　　　　　　日期：",
    ]


def ratings_xlsx(
    hall: str,
    view: StatsView,
    department_of: Callable[[str], str],
    orders: Sequence[tuple[WorkOrder, RatingRow]],
    windows: Mapping[str, tuple[str, str]],
    policy: Policy,
    now: datetime,
) -> bytes:
    """The statistics (sheet 1) and the work orders (sheet 2) of ``view``'s range as .xlsx bytes.

    ``department_of``: the department shown beside a row's key; ``windows``:
    window id → (name, department) for the work orders.
    """
    wb = Workbook()
    ws = wb.active
    assert ws is not None  # a new Workbook always has its one sheet
    ws.title = "好差评统计"
    span = view.start.isoformat() if view.start == view.end else f"{view.start.isoformat()} 至 {view.end.isoformat()}"
    made = now.astimezone(HALL_TZ).strftime("%Y-%m-%d %H:%M")
    _stats_sheet(ws, hall, view, department_of, policy, span, made)
    _orders_sheet(wb.create_sheet("差评工单"), hall, orders, windows, now, span, made)
    out = BytesIO()
    wb.save(out)
    return out.getvalue()


def _stats_sheet(
    ws: Worksheet,
    hall: str,
    view: StatsView,
    department_of: Callable[[str], str],
    policy: Policy,
    span: str,
    made: str,
) -> None:
    """Sheet 1: the title, a row per key and period, the 合计 row, the definitions, print setup."""
    columns = stats_columns(view.by)
    widths = [6, 11, 14] + ([14] if view.by != "department" else []) + [8] * (len(columns) - (4 if view.by != "department" else 3))
    _title(
        ws,
        f"{hall}政务服务“好差评”统计表",
        f"统计对象：{BY_ZH[view.by]}　统计周期：按{PERIOD_ZH[view.period]}　时间范围：{span}　制表时间：{made}",
        columns,
        widths,
    )
    for number, row in enumerate(view.rows, 1):
        group = [number, row.period, view.names.get(row.key, row.key)] + ([department_of(row.key)] if view.by != "department" else [])
        _row(ws, group + _counts(row), columns)
    if not view.rows:
        ws.append(["（无评价）"])
        ws.merge_cells(start_row=ws.max_row, start_column=1, end_row=ws.max_row, end_column=len(columns))
    total = ["合计", view.totals.period, ""] + ([""] if view.by != "department" else [])
    _row(ws, total + _counts(view.totals)[:-1] + ["—"], columns, _TOTAL_FILL)
    _notes(ws, definitions(policy), len(columns))
    print_on_a4(ws, "A4", "3:3")


def _orders_sheet(
    sheet: Worksheet,
    hall: str,
    orders: Sequence[tuple[WorkOrder, RatingRow]],
    windows: Mapping[str, tuple[str, str]],
    now: datetime,
    span: str,
    made: str,
) -> None:
    """Sheet 2: the title, a row per work order of the range, print setup."""
    _title(
        sheet,
        f"{hall}差评工单办理情况",
        f"时间范围：{span}（按评价时间）　工单数：{len(orders)}　制表时间：{made}",
        ORDERS_SHEET_COLUMNS,
        (6, 8, 18, 10, 14, 10, 12, 10, 22, 11, 11, 18, 18, 14, 12, 40),
    )
    for number, (order, rating) in enumerate(orders, 1):
        _row(sheet, _order_values(number, order, rating, windows, now), ORDERS_SHEET_COLUMNS)
    if not orders:
        sheet.append(["（无差评工单）"])
        sheet.merge_cells(start_row=sheet.max_row, start_column=1, end_row=sheet.max_row, end_column=len(ORDERS_SHEET_COLUMNS))
    print_on_a4(sheet, "A4", "3:3")


def _order_values(number: int, order: WorkOrder, rating: RatingRow, windows: Mapping[str, tuple[str, str]], now: datetime) -> list[object]:
    """One work order's row of sheet 2, in ``ORDERS_SHEET_COLUMNS`` order (overdue and timeliness as of ``now``)."""
    late = rules.overdue(order, now)
    judged = rules.timeliness(order, now)
    overdue_text = "超期未办" if late else ("超期办结" if judged == "late" else ("按时" if judged == "on_time" else ("未到期" if judged == "open" else "—")))
    notes = "；".join(f"{rules.STATUS_ZH[s.status]}（{s.actor}）：{s.note}" for s in order.history[1:])
    return [
        number,
        order.id,
        order.rated_at.astimezone(HALL_TZ).strftime("%Y-%m-%d %H:%M"),
        *windows.get(order.window, (order.window, "")),
        order.clerk or "（未登录）",
        f"{rules.LEVEL_ZH[order.level]}（★{order.level}）",
        rating.ticket or "",
        "、".join(rating.cases),
        order.callback_due.isoformat() if order.callback_due else "（日历未覆盖）",
        order.rectify_due.isoformat() if order.rectify_due else "（日历未覆盖）",
        _when(order.called_back_at),
        _when(order.handled_at),
        rules.STATUS_ZH[order.status],
        overdue_text,
        notes,
    ]


def _when(moment: datetime | None) -> str:
    return moment.astimezone(HALL_TZ).strftime("%Y-%m-%d %H:%M") if moment is not None else ""
