"""The monthly attendance sheet (月度考勤表): written as .xlsx, read back with openpyxl."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from io import BytesIO

import pytest
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from broker.timeutil import HALL_TZ
from server.attendance.sheet import MARKS, TOTAL_COLUMNS, SheetRow, attendance_xlsx, day_mark
from server.config.calendar import national_calendar
from server.config.policy import load_policy
from server.rules.attendance import STATUSES, Punch, evaluate_month
from server.rules.supervision import Interval

CAL = national_calendar([2026])
LINFEN = load_policy("linfen")
YUANZHOU = load_policy("yuanzhou")
FEB = [date(2026, 2, 1) + timedelta(days=n) for n in range(28)]
DAY_COL = 4  # columns A–C: 序号, 姓名, 窗口
TOTAL_COL = DAY_COL + len(FEB)
FIRST_ROW = 5


def at(day: date, hms: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hms), HALL_TZ)


def full_day(day: date, method: str = "face") -> list[Punch]:
    return [Punch(at(day, hms), method) for hms in ("07:55:00", "12:00:00", "14:25:00", "18:00:00")]  # type: ignore[arg-type]


def working(month: list[date]) -> list[date]:
    return [d for d in month if CAL.is_working_day(d)]


@pytest.fixture(scope="module")
def sheet():  # noqa: ANN201
    days = working(FEB)
    # 张三: late on 2 Feb, early on 3 Feb, afternoon missing on 4 Feb, absent all of 5 Feb, a PIN day on 6 Feb.
    zhang: list[Punch] = []
    for d in days:
        if d == date(2026, 2, 2):
            zhang += [Punch(at(d, "08:10:00")), *full_day(d)[1:]]
        elif d == date(2026, 2, 3):
            zhang += [*full_day(d)[:3], Punch(at(d, "17:00:00"))]
        elif d == date(2026, 2, 4):
            zhang += [*full_day(d)[:3]]
        elif d == date(2026, 2, 5):
            continue
        elif d == date(2026, 2, 6):
            zhang += full_day(d, "pin")
        else:
            zhang += full_day(d)
    # 李四: every day normal but 9–10 Feb on leave, and late 4 times (Yuanzhou: 4 or more = 计旷工半天).
    li: list[Punch] = []
    lates = {date(2026, 2, 11), date(2026, 2, 12), date(2026, 2, 13), date(2026, 2, 24)}
    for d in days:
        if d in (date(2026, 2, 9), date(2026, 2, 10)):
            continue
        li += [Punch(at(d, "08:06:00")), *full_day(d)[1:]] if d in lates else full_day(d)
    leave = [Interval("li", at(date(2026, 2, 9), "00:00:00"), at(date(2026, 2, 11), "00:00:00"))]
    rows = [
        SheetRow("张三", "社保窗口", evaluate_month("zhang", 2026, 2, zhang, [], YUANZHOU, CAL)),
        SheetRow("李四", "不动产窗口", evaluate_month("li", 2026, 2, li, leave, YUANZHOU, CAL)),
    ]
    data = attendance_xlsx("原州区政务服务中心", 2026, 2, rows, YUANZHOU, CAL)
    return load_workbook(BytesIO(data)).active


def cell(ws, row: int, day: int):  # noqa: ANN001, ANN201
    return ws.cell(row=row, column=DAY_COL + day - 1)


def total(ws, row: int, title: str):  # noqa: ANN001, ANN201
    return ws.cell(row=row, column=TOTAL_COL + TOTAL_COLUMNS.index(title)).value


def test_the_title_names_the_hall_and_the_month(sheet) -> None:  # noqa: ANN001
    assert sheet.title == "2026年2月"
    assert sheet["A1"].value == "原州区政务服务中心2026年2月考勤表"
    last = get_column_letter(TOTAL_COL + len(TOTAL_COLUMNS) - 1)
    assert f"A1:{last}1" in {str(r) for r in sheet.merged_cells.ranges}
    assert "上午/下午" in sheet["A2"].value


def test_the_headers_are_chinese_with_a_column_per_day_and_weekdays(sheet) -> None:  # noqa: ANN001
    assert [sheet.cell(row=3, column=c).value for c in (1, 2, 3)] == ["序号", "姓名", "窗口"]
    assert [cell(sheet, 3, d).value for d in (1, 2, 28)] == [1, 2, 28]
    assert cell(sheet, 4, 2).value == "一"  # Monday 2 Feb 2026
    assert cell(sheet, 4, 14).value == "六班"  # Saturday 14 Feb: moved working day (春节调休)
    assert cell(sheet, 4, 15).value == "日"  # Sunday 15 Feb: Spring Festival
    assert cell(sheet, 4, 28).value == "六班"  # Saturday 28 Feb: moved working day too
    assert [sheet.cell(row=3, column=TOTAL_COL + i).value for i in range(len(TOTAL_COLUMNS))] == list(TOTAL_COLUMNS)
    assert cell(sheet, 3, 29).value == "应出勤(天)"  # February has 28 day columns, totals follow


def test_rest_days_are_shaded_and_blank_and_a_moved_working_day_is_not(sheet) -> None:  # noqa: ANN001
    for day in (1, 7, 15, 16, 17, 23):  # Sunday 1 Feb, Saturday 7 Feb, Spring Festival 15–23 Feb
        assert cell(sheet, 3, day).fill.fgColor.rgb.endswith("EDEDED"), day
        assert cell(sheet, FIRST_ROW, day).value in (None, ""), day
        assert cell(sheet, FIRST_ROW, day).fill.fgColor.rgb.endswith("EDEDED"), day
    assert cell(sheet, 3, 14).fill.fgColor.rgb.endswith("D9D9D9")
    assert cell(sheet, FIRST_ROW, 14).value == "√/√"


def test_each_day_shows_a_mark_per_half_day(sheet) -> None:  # noqa: ANN001
    zhang = FIRST_ROW
    assert sheet.cell(row=zhang, column=1).value == 1
    assert sheet.cell(row=zhang, column=2).value == "张三"
    assert sheet.cell(row=zhang, column=3).value == "社保窗口"
    assert [cell(sheet, zhang, d).value for d in (2, 3, 4, 5, 6, 12)] == ["迟/√", "√/早", "√/缺", "旷/旷", "√/√", "√/√"]
    assert cell(sheet, zhang, 5).font.color.rgb.endswith("C00000")  # 旷 in red
    li = FIRST_ROW + 1
    assert [cell(sheet, li, d).value for d in (9, 10, 11)] == ["假/假", "假/假", "迟/√"]


def test_totals_count_the_month(sheet) -> None:  # noqa: ANN001
    zhang, li = FIRST_ROW, FIRST_ROW + 1
    # February 2026 has 16 working days: Saturdays 14 and 28 Feb are moved working days (春节调休).
    assert total(sheet, zhang, "应出勤(天)") == 16
    assert total(sheet, zhang, "实出勤(天)") == 14.5  # 5 Feb absent, 4 Feb afternoon missing
    assert (total(sheet, zhang, "迟到(次)"), total(sheet, zhang, "早退(次)"), total(sheet, zhang, "缺卡(次)")) == (1, 1, 1)
    assert total(sheet, zhang, "旷工(天)") == 1.5  # a day absent + the missing punch (Yuanzhou counts it)
    assert total(sheet, zhang, "非刷脸(次)") == 4
    assert total(sheet, zhang, "处理") in (None, "")
    assert total(sheet, li, "请假(天)") == 2
    assert total(sheet, li, "迟到(次)") == 4
    assert total(sheet, li, "处理") == "计旷工半天"
    assert total(sheet, li, "旷工(天)") == 0.5


def test_the_legend_explains_every_mark_and_the_rules(sheet) -> None:  # noqa: ANN001
    notes = [sheet.cell(row=r, column=1).value or "" for r in range(FIRST_ROW + 2, sheet.max_row + 1)]
    text = "\n".join(notes)
    for status in STATUSES:
        if MARKS[status]:
            assert MARKS[status] in text, status
    assert "4次及以上：计旷工半天" in text
    assert "缺卡未补卡的半天计入旷工" in text
    assert "制表人" in text and "审核人" in text


def test_the_sheet_is_frozen_sized_and_printable(sheet) -> None:  # noqa: ANN001
    assert sheet.freeze_panes == "D5"
    assert sheet.print_title_rows == "$3:$4"
    assert sheet.page_setup.orientation == "landscape"
    assert sheet.page_setup.fitToWidth == 1
    assert sheet.page_setup.fitToHeight == 0
    assert sheet.sheet_properties.pageSetUpPr.fitToPage is True
    assert sheet.column_dimensions["B"].width == 10
    assert sheet.column_dimensions["D"].width == 5.5
    assert sheet.column_dimensions[get_column_letter(TOTAL_COL + len(TOTAL_COLUMNS) - 1)].width == 22


def test_a_sheet_without_people_says_so() -> None:
    ws = load_workbook(BytesIO(attendance_xlsx("临汾市政务大厅", 2026, 3, [], LINFEN, CAL))).active
    assert ws["A1"].value == "临汾市政务大厅2026年3月考勤表"
    assert ws.cell(row=FIRST_ROW, column=1).value == "（无人员）"
    assert ws.cell(row=3, column=DAY_COL + 31).value == "应出勤(天)"  # March: 31 day columns


def test_a_row_of_another_month_is_refused() -> None:
    march = evaluate_month("zhang", 2026, 3, [], [], LINFEN, CAL)
    with pytest.raises(ValueError, match="another month"):
        attendance_xlsx("临汾市政务大厅", 2026, 2, [SheetRow("张三", "社保", march)], LINFEN, CAL)


def test_a_day_still_running_is_blank_not_absent() -> None:
    month = evaluate_month("zhang", 2026, 3, [], [], LINFEN, CAL, until=at(date(2026, 3, 4), "10:00:00"))
    by_day = {d.day: d for d in month.days}
    assert day_mark(by_day[date(2026, 3, 3)]) == "旷/旷"
    assert day_mark(by_day[date(2026, 3, 4)]) == ""
    assert day_mark(by_day[date(2026, 3, 31)]) == ""
