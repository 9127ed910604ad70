"""Working days with the national calendar (调休), hall files and coverage gaps.

Every 2026 date here is the one in chinese-calendar 1.11.0's tables, which
follow the State Council notice for 2026:

    元旦     holidays 1–3 Jan               worked Sun 4 Jan
    春节     holidays 15–23 Feb             worked Sat 14 Feb, Sat 28 Feb
    清明     holidays 4–6 Apr
    劳动节   holidays 1–5 May               worked Sat 9 May
    端午     holidays 19–21 Jun
    中秋     holidays 25–27 Sep
    国庆节   holidays 1–7 Oct               worked Sun 20 Sep, Sat 10 Oct
"""

from __future__ import annotations

import pickle
from datetime import date, datetime, timedelta
from pathlib import Path

import chinese_calendar
import pytest

from broker.config_file import ConfigError
from server.config.calendar import load_calendar, national_calendar, national_years
from server.rules.calendar import CalendarGapError, WorkCalendar

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_2027 = REPO / "config" / "calendars" / "example-2027.toml"

D = date.fromisoformat


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return load_calendar()


def test_2026_dates_used_here_are_chinese_calendars() -> None:
    """Guard against invented dates: the tables these tests rely on are the package's."""
    holidays_2026 = {d for d in chinese_calendar.holidays if d.year == 2026}
    workdays_2026 = {d for d in chinese_calendar.workdays if d.year == 2026}
    assert workdays_2026 == {
        D(d) for d in ("2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10")
    }
    spans = [("2026-01-01", "2026-01-03"), ("2026-02-15", "2026-02-23"), ("2026-04-04", "2026-04-06"),
             ("2026-05-01", "2026-05-05"), ("2026-06-19", "2026-06-21"), ("2026-09-25", "2026-09-27"),
             ("2026-10-01", "2026-10-07")]  # fmt: skip
    expected: set[date] = set()
    for first, last in spans:
        d = D(first)
        while d <= D(last):
            expected.add(d)
            d += timedelta(days=1)
    assert holidays_2026 == expected


def test_adapter_agrees_with_chinese_calendar_every_day(cal: WorkCalendar) -> None:
    d = D("2025-01-01")
    while d <= D("2026-12-31"):
        assert cal.is_working_day(d) == chinese_calendar.is_workday(d), d
        d += timedelta(days=1)


# -- one day --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "working", "name", "why"),
    [
        ("2026-01-01", False, "元旦", "New Year's Day, a Thursday"),
        ("2026-01-02", False, "元旦", "weekday given off"),
        ("2026-01-04", True, "元旦调休", "Sunday worked"),
        ("2026-02-13", True, None, "plain Friday before the Spring Festival"),
        ("2026-02-14", True, "春节调休", "Saturday worked"),
        ("2026-02-15", False, "春节", "first day of the break (Sunday)"),
        ("2026-02-16", False, "春节", "Monday in the break"),
        ("2026-02-23", False, "春节", "last day of the break (Monday)"),
        ("2026-02-24", True, None, "first working day after"),
        ("2026-02-28", True, "春节调休", "Saturday worked after the break"),
        ("2026-03-01", False, None, "plain Sunday"),
        ("2026-03-07", False, None, "plain Saturday"),
        ("2026-04-06", False, "清明", "Qingming Monday"),
        ("2026-05-01", False, "劳动节", "Labour Day"),
        ("2026-05-05", False, "劳动节", "last day of Labour Day break (Tuesday)"),
        ("2026-05-09", True, "劳动节调休", "Saturday worked"),
        ("2026-05-10", False, None, "the Sunday after it is not"),
        ("2026-06-19", False, "端午", "Dragon Boat Friday"),
        ("2026-09-20", True, "国庆节调休", "Sunday worked before Mid-Autumn/National Day"),
        ("2026-09-25", False, "中秋", "Mid-Autumn Friday"),
        ("2026-10-01", False, "国庆节", "National Day"),
        ("2026-10-07", False, "国庆节", "last day of the break (Wednesday)"),
        ("2026-10-08", True, None, "first working day after"),
        ("2026-10-10", True, "国庆节调休", "Saturday worked"),
        ("2026-10-11", False, None, "plain Sunday"),
    ],
)
def test_is_working_day_2026(cal: WorkCalendar, day: str, working: bool, name: str | None, why: str) -> None:
    assert cal.is_working_day(D(day)) is working, why
    assert cal.name(D(day)) == name, why


def test_previous_year_2025_works(cal: WorkCalendar) -> None:
    assert cal.covers(2025)
    assert not cal.is_working_day(D("2025-01-28"))  # 春节 eve
    assert cal.is_working_day(D("2025-01-26"))  # Sunday worked
    assert cal.is_working_day(D("2025-02-08"))  # Saturday worked
    assert cal.name(D("2025-10-06")) == "中秋"
    assert cal.add_working_days(D("2025-09-30"), 1) == D("2025-10-09")
    assert cal.add_working_days(D("2025-10-09"), 2) == D("2025-10-11")  # Saturday worked
    # Across the new year into 2026: Wed 31 Dec 2025 -> Sun 4 Jan 2026 (worked).
    assert cal.add_working_days(D("2025-12-31"), 1) == D("2026-01-04")


def test_a_datetime_is_refused(cal: WorkCalendar) -> None:
    with pytest.raises(TypeError, match="Asia/Shanghai"):
        cal.is_working_day(datetime(2026, 3, 2, 9, 0))


# -- deadlines --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "n", "due", "why"),
    [
        # Friday rating, 1 working day to call back: due the next working day, not Friday.
        ("2026-03-13", 1, "2026-03-16", "plain Friday -> Monday"),
        ("2026-03-14", 1, "2026-03-16", "from a plain Saturday"),
        # New Year
        ("2025-12-31", 1, "2026-01-04", "day before 元旦 -> worked Sunday"),
        ("2026-01-04", 1, "2026-01-05", "from the worked Sunday"),
        # Spring Festival
        ("2026-02-13", 1, "2026-02-14", "Friday -> worked Saturday"),
        ("2026-02-14", 1, "2026-02-24", "day before the break (worked Saturday) -> after it"),
        ("2026-02-14", 3, "2026-02-26", "3 days across the break"),
        ("2026-02-15", 1, "2026-02-24", "first holiday day"),
        ("2026-02-23", 1, "2026-02-24", "last holiday day"),
        ("2026-02-12", 3, "2026-02-24", "13, 14 (worked Saturday), 24"),
        ("2026-02-24", 4, "2026-02-28", "onto the worked Saturday"),
        ("2026-02-24", 5, "2026-03-02", "past it"),
        ("2026-02-27", 1, "2026-02-28", "Friday -> worked Saturday"),
        ("2026-02-28", 1, "2026-03-02", "from the worked Saturday"),
        # Qingming
        ("2026-04-03", 1, "2026-04-07", "day before (Friday)"),
        ("2026-04-06", 1, "2026-04-07", "last holiday day"),
        ("2026-04-02", 3, "2026-04-08", "3, 7, 8"),
        # Labour Day
        ("2026-04-30", 1, "2026-05-06", "day before"),
        ("2026-05-05", 1, "2026-05-06", "last holiday day"),
        ("2026-05-06", 3, "2026-05-09", "6->7, 8, worked Saturday 9"),
        ("2026-05-08", 1, "2026-05-09", "Friday -> worked Saturday"),
        ("2026-05-09", 1, "2026-05-11", "from the worked Saturday"),
        # Dragon Boat
        ("2026-06-18", 1, "2026-06-22", "day before"),
        ("2026-06-21", 1, "2026-06-22", "last holiday day"),
        # Mid-Autumn and National Day
        ("2026-09-18", 1, "2026-09-20", "Friday -> worked Sunday"),
        ("2026-09-18", 3, "2026-09-22", "dispute within 3 working days, across a worked Sunday"),
        ("2026-09-20", 1, "2026-09-21", "from the worked Sunday"),
        ("2026-09-24", 1, "2026-09-28", "day before Mid-Autumn"),
        ("2026-09-27", 1, "2026-09-28", "last Mid-Autumn day"),
        ("2026-09-24", 4, "2026-10-08", "28, 29, 30, then after National Day"),
        ("2026-09-30", 1, "2026-10-08", "day before National Day"),
        ("2026-09-30", 3, "2026-10-10", "8, 9, worked Saturday 10"),
        ("2026-10-07", 1, "2026-10-08", "last holiday day"),
        ("2026-10-09", 1, "2026-10-10", "Friday -> worked Saturday"),
        ("2026-10-10", 1, "2026-10-12", "from the worked Saturday"),
    ],
)
def test_add_working_days_at_the_boundaries(cal: WorkCalendar, start: str, n: int, due: str, why: str) -> None:
    assert cal.add_working_days(D(start), n) == D(due), why
    assert cal.working_days_between(D(start), D(due)) == n, why
    assert cal.is_working_day(D(due))


@pytest.mark.parametrize("day", ["2026-03-02", "2026-02-14", "2026-02-16", "2026-03-01"])
def test_add_zero_working_days_is_the_start_itself(cal: WorkCalendar, day: str) -> None:
    """n = 0 means due the same day, working day or not; nothing is rolled forward."""
    assert cal.add_working_days(D(day), 0) == D(day)


def test_negative_n_is_refused(cal: WorkCalendar) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        cal.add_working_days(D("2026-03-02"), -1)


@pytest.mark.parametrize(
    ("day", "after"),
    [
        ("2026-02-13", "2026-02-14"),
        ("2026-02-14", "2026-02-24"),
        ("2026-02-20", "2026-02-24"),
        ("2026-09-30", "2026-10-08"),
        ("2026-03-13", "2026-03-16"),
    ],
)
def test_next_working_day(cal: WorkCalendar, day: str, after: str) -> None:
    assert cal.next_working_day(D(day)) == D(after)


@pytest.mark.parametrize(
    ("a", "b", "count"),
    [
        ("2026-03-02", "2026-03-02", 0),
        ("2026-03-02", "2026-03-03", 1),
        ("2026-03-06", "2026-03-09", 1),  # Friday -> Monday: Saturday and Sunday do not count
        ("2026-02-13", "2026-02-24", 2),  # 14 (worked Saturday) and 24
        ("2026-02-14", "2026-02-23", 0),  # the whole break
        ("2026-09-30", "2026-10-08", 1),
        ("2026-09-18", "2026-10-10", 11),  # 20 (worked Sunday), 21-24, 28-30, 8, 9, 10 (worked Saturday)
        ("2026-10-08", "2026-09-30", -1),  # reversed
        ("2025-12-31", "2026-12-31", 248),  # 365 - 104 weekend days - 19 weekday holidays + 6 worked weekend days
    ],
)
def test_working_days_between(cal: WorkCalendar, a: str, b: str, count: int) -> None:
    assert cal.working_days_between(D(a), D(b)) == count


def test_deadline_and_count_agree_for_every_2026_start(cal: WorkCalendar) -> None:
    d = D("2026-01-01")
    while d <= D("2026-11-30"):
        for n in range(0, 8):
            due = cal.add_working_days(d, n)
            assert cal.working_days_between(d, due) == n, (d, n)
            if n:
                assert cal.is_working_day(due)
                assert cal.working_days_between(d, due - timedelta(days=1)) == n - 1, (d, n)
        d += timedelta(days=1)


# -- years nobody covers ----------------------------------------------------------


def test_2027_without_a_hall_file_fails_clearly(cal: WorkCalendar) -> None:
    assert not cal.covers(2027)
    with pytest.raises(CalendarGapError) as info:
        cal.is_working_day(D("2027-01-04"))
    message = str(info.value)
    assert info.value.year == 2027
    assert "2027" in message
    assert "config/calendars/" in message
    assert "complete = true" in message
    assert "2004–2026" in message


def test_a_deadline_running_into_an_uncovered_year_fails(cal: WorkCalendar) -> None:
    assert cal.add_working_days(D("2026-12-30"), 1) == D("2026-12-31")
    with pytest.raises(CalendarGapError, match="2027"):
        cal.add_working_days(D("2026-12-30"), 2)
    with pytest.raises(CalendarGapError, match="2027"):
        cal.name(D("2027-01-01"))


def test_before_the_package_range_fails_too(cal: WorkCalendar) -> None:
    first = national_years().start
    with pytest.raises(CalendarGapError, match=str(first - 1)):
        cal.is_working_day(date(first - 1, 6, 1))


def test_gap_error_survives_pickling() -> None:
    err = pickle.loads(pickle.dumps(CalendarGapError(2027, [2025, 2026])))
    assert err.year == 2027 and "2025–2026" in str(err)


def test_national_calendar_skips_years_the_package_does_not_know() -> None:
    cal = national_calendar([2026, 2027])
    assert cal.covered_years == {2026}
    assert not cal.is_working_day(D("2026-10-01"))
    with pytest.raises(CalendarGapError):
        cal.is_working_day(D("2025-03-03"))


def test_with_the_example_2027_file_2027_works() -> None:
    cal = load_calendar([EXAMPLE_2027])
    assert cal.covers(2027)
    assert not cal.is_working_day(D("2027-01-01"))
    assert cal.is_working_day(D("2027-01-04"))
    assert cal.is_working_day(D("2027-01-31"))  # Sunday worked (example)
    assert cal.name(D("2027-02-20")) == "春节调休"
    assert not cal.is_working_day(D("2027-02-08"))
    # The deadline that failed above now crosses the new year.
    assert cal.add_working_days(D("2026-12-30"), 2) == D("2027-01-04")
    assert cal.add_working_days(D("2027-09-30"), 1) == D("2027-10-08")
    assert cal.add_working_days(D("2027-10-08"), 1) == D("2027-10-09")  # Saturday worked (example)
    # 2026 is untouched.
    assert cal.is_working_day(D("2026-02-28"))


# -- the hall's own days --------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_hall_closes_on_a_national_working_day(tmp_path: Path) -> None:
    local = write(
        tmp_path,
        "local-2026.toml",
        """
year = 2026
[[holidays]]
date = 2026-03-20
name = "区运动会"
""",
    )
    cal = load_calendar([local])
    assert not cal.is_working_day(D("2026-03-20"))
    assert cal.name(D("2026-03-20")) == "区运动会"
    assert cal.add_working_days(D("2026-03-19"), 1) == D("2026-03-23")
    assert cal.working_days_between(D("2026-03-16"), D("2026-03-23")) == 4
    # Everything else is national.
    assert not cal.is_working_day(D("2026-10-01"))
    assert cal.is_working_day(D("2026-03-19"))


def test_hall_adds_a_working_day_and_cancels_a_moved_one(tmp_path: Path) -> None:
    local = write(
        tmp_path,
        "local-2026.toml",
        """
year = 2026
[[workdays]]
date = 2026-03-21
name = "周六集中办理"

[[holidays]]
date = 2026-02-28
name = "本厅不调休"
""",
    )
    cal = load_calendar([local])
    assert cal.is_working_day(D("2026-03-21"))
    assert cal.add_working_days(D("2026-03-20"), 1) == D("2026-03-21")
    assert not cal.is_working_day(D("2026-02-28"))
    assert cal.name(D("2026-02-28")) == "本厅不调休"
    assert cal.add_working_days(D("2026-02-27"), 1) == D("2026-03-02")


def test_a_patch_in_an_uncovered_year_does_not_cover_it(tmp_path: Path) -> None:
    local = write(tmp_path, "local-2027.toml", "year = 2027\n[[holidays]]\ndate = 2027-03-19\n")
    cal = load_calendar([local])
    with pytest.raises(CalendarGapError, match="2027"):
        cal.is_working_day(D("2027-03-19"))


def test_patches_win_over_a_complete_file_whatever_the_order(tmp_path: Path) -> None:
    local = write(tmp_path, "local-2027.toml", 'year = 2027\n[[workdays]]\ndate = 2027-10-02\nname = "国庆值班"\n')
    for files in ([local, EXAMPLE_2027], [EXAMPLE_2027, local]):
        cal = load_calendar(files)
        assert cal.is_working_day(D("2027-10-02")), files
        assert not cal.is_working_day(D("2027-10-01")), files


def test_a_complete_file_replaces_the_packages_year(tmp_path: Path) -> None:
    only_new_year = write(
        tmp_path,
        "2025.toml",
        "year = 2025\ncomplete = true\n[[holidays]]\ndate = 2025-01-01\nname = \"元旦\"\n",
    )
    cal = load_calendar([only_new_year])
    assert not cal.is_working_day(D("2025-01-01"))
    assert cal.is_working_day(D("2025-10-08"))  # national holiday dropped: the file is the whole year
    assert not cal.is_working_day(D("2025-10-11"))  # its moved working day too
    assert not cal.is_working_day(D("2026-10-07"))  # other years untouched


def test_with_overrides_is_pure() -> None:
    base = WorkCalendar(frozenset({D("2030-01-01")}), frozenset(), frozenset({2030}), {D("2030-01-01"): "元旦"})
    patched = base.with_overrides(holidays=[D("2030-01-02")], workdays=[D("2030-01-05")], names={D("2030-01-02"): "x"})
    assert base.is_working_day(D("2030-01-02")) and not base.is_working_day(D("2030-01-05"))
    assert not patched.is_working_day(D("2030-01-02")) and patched.is_working_day(D("2030-01-05"))
    assert patched.name(D("2030-01-01")) == "元旦"
    reopened = patched.with_overrides(workdays=[D("2030-01-01")])
    assert reopened.is_working_day(D("2030-01-01")) and reopened.name(D("2030-01-01")) is None
    with pytest.raises(ValueError, match="both"):
        base.with_overrides(holidays=[D("2030-01-05")], workdays=[D("2030-01-05")])
    with pytest.raises(AttributeError):
        base.holidays = frozenset()  # type: ignore[misc]
    with pytest.raises(TypeError):
        base.names[D("2030-01-03")] = "y"  # type: ignore[index]


# -- bad hall files ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        (
            "year = 2027\n[[holidays]]\ndate = 2027-02-06\n[[workdays]]\ndate = 2027-02-06\n",
            "key workdays.0.date",
            "also listed as holidays.0.date",
        ),
        ("year = 2027\n[[holidays]]\ndate = 2026-12-31\n", "key holidays.0.date", "not in 2027"),
        ("year = 2027\n[[workdays]]\ndate = 2027-02-08\n", "key workdays.0.date", "is a Monday"),
        (
            "year = 2027\n[[holidays]]\ndate = 2027-02-08\n[[holidays]]\ndate = 2027-02-08\n",
            "key holidays.1.date",
            "listed twice",
        ),
        ("year = 2027\ncomplete = true\n", "key holidays", "no holidays"),
        ("year = 2027\n[[holiday]]\ndate = 2027-02-08\n", "key holiday", "Extra inputs"),
        ("[[holidays]]\ndate = 2027-02-08\n", "key year", "required"),
        ("year = 2027\n[[holidays]]\ndate = \"soon\"\n", "key holidays.0.date", "date"),
        ("year = 2027\n[[holidays]]\nname = \"元旦\"\n", "key holidays.0.date", "required"),
        ("year = 1999\n", "key year", "greater than or equal"),
    ],
)
def test_bad_hall_files_name_file_key_and_reason(tmp_path: Path, text: str, key: str, reason: str) -> None:
    path = write(tmp_path, "bad-2027.toml", text)
    with pytest.raises(ConfigError) as info:
        load_calendar([path])
    message = str(info.value)
    assert str(path) in message
    assert key in message
    assert reason in message


def test_two_complete_files_for_one_year_are_refused(tmp_path: Path) -> None:
    copy = write(tmp_path, "2027.toml", EXAMPLE_2027.read_text(encoding="utf-8"))
    with pytest.raises(ConfigError) as info:
        load_calendar([EXAMPLE_2027, copy])
    assert str(copy) in str(info.value) and "key complete" in str(info.value) and str(EXAMPLE_2027) in str(info.value)


def test_missing_and_unparsable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_calendar([tmp_path / "nope.toml"])
    broken = write(tmp_path, "broken.toml", "year = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_calendar([broken])
