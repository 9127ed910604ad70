"""Where the working-day calendar comes from: ``chinese-calendar`` plus the hall's files.

``chinese-calendar`` carries the national holidays and moved working days
(调休) from 2004 up to the last year its release knows, and raises for later
years.  Next year's schedule is published by the State Council each
November, usually before a new release is installed, and a hall may close
for a local event or open on a Saturday; so a hall adds or overrides days in
its own TOML files (format in ``config/calendars/README.md``), listed under
``calendars`` in the hall file.  A year that neither covers is left
uncovered, and :class:`~server.rules.calendar.WorkCalendar` raises
:class:`~server.rules.calendar.CalendarGapError` for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import chinese_calendar
from pydantic import BaseModel, ConfigDict, Field

from broker.config_file import ConfigError, load_toml
from server.rules.calendar import WorkCalendar

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


# -- national -----------------------------------------------------------------


def national_years() -> range:
    """The years the installed ``chinese-calendar`` knows.

    The package has no constant for its range; it checks a date against the
    first and last year of its public ``holidays`` table, and so do we.
    """
    table = chinese_calendar.holidays
    return range(min(table).year, max(table).year + 1)


def _chinese_name(english: str) -> str:
    """``"Spring Festival"`` -> ``"春节"`` (unknown names are kept as they are)."""
    try:
        return str(chinese_calendar.Holiday(english).chinese)
    except ValueError:
        return english


@lru_cache(maxsize=None)
def _national_year(year: int) -> tuple[frozenset[dt.date], frozenset[dt.date], tuple[tuple[dt.date, str], ...]]:
    holidays: set[dt.date] = set()
    workdays: set[dt.date] = set()
    names: dict[dt.date, str] = {}
    day = dt.date(year, 1, 1)
    while day.year == year:
        is_holiday, english = chinese_calendar.get_holiday_detail(day)
        weekend = day.weekday() >= 5
        if english is not None:
            if is_holiday:
                holidays.add(day)
                names[day] = _chinese_name(english)
            elif weekend:
                workdays.add(day)
                names[day] = _chinese_name(english) + "调休"
        elif is_holiday != weekend:  # pragma: no cover - would be a chinese-calendar bug
            raise RuntimeError(f"chinese-calendar: {day} is_holiday={is_holiday} without a holiday name")
        day += dt.timedelta(days=1)
    return frozenset(holidays), frozenset(workdays), tuple(sorted(names.items()))


def national_calendar(years: Iterable[int] | None = None) -> WorkCalendar:
    """The national calendar from ``chinese-calendar`` for ``years`` (default: all it knows).

    Years the installed package does not know are skipped, i.e. left
    uncovered: asking about them raises CalendarGapError later.
    """
    known = national_years()
    wanted = known if years is None else sorted({y for y in years if y in known})
    holidays: set[dt.date] = set()
    workdays: set[dt.date] = set()
    names: dict[dt.date, str] = {}
    for year in wanted:
        h, w, n = _national_year(year)
        holidays |= h
        workdays |= w
        names.update(n)
    return WorkCalendar(frozenset(holidays), frozenset(workdays), frozenset(wanted), names)


# -- the hall's files -----------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CalendarDay(_Strict):
    date: dt.date
    """A bare TOML date, e.g. ``date = 2027-02-06``."""
    name: str | None = Field(default=None, min_length=1, max_length=60)


class HallCalendarFile(_Strict):
    """One hall calendar file: days of one year."""

    year: int = Field(ge=2000, le=2100)
    complete: bool = False
    """True: the file lists the year's whole national schedule, so the year counts as covered."""
    source: str | None = Field(default=None, max_length=200)
    """Where the dates come from, e.g. the State Council notice (国办发明电〔2026〕…号)."""
    holidays: list[CalendarDay] = Field(default_factory=list)
    """Days off: holidays and the weekdays given off around them (weekend days of a break may be listed)."""
    workdays: list[CalendarDay] = Field(default_factory=list)
    """Weekend days that are working days (调休上班, or a Saturday the hall opens)."""


def _problems(spec: HallCalendarFile) -> list[str]:
    """Checks across keys that pydantic cannot express with a key of its own."""
    problems: list[str] = []
    first_key: dict[dt.date, str] = {}
    for section in ("holidays", "workdays"):
        for index, day in enumerate(getattr(spec, section)):
            key = f"{section}.{index}.date"
            d = day.date
            if d.year != spec.year:
                problems.append(f"key {key}: {d} is not in {spec.year}, the file's `year`")
            if section == "workdays" and d.weekday() < 5:
                problems.append(
                    f"key {key}: {d} is a {_WEEKDAYS[d.weekday()]}, already a working day; `workdays` lists only "
                    "weekend days that are worked (调休上班); to close on a weekday list it under `holidays`"
                )
            if d in first_key:
                earlier = first_key[d]
                if earlier.split(".")[0] == section:
                    problems.append(f"key {key}: {d} is listed twice (also {earlier})")
                else:
                    problems.append(
                        f"key {key}: {d} is also listed as {earlier}; a day is either a holiday or a working day"
                    )
            else:
                first_key[d] = key
    if spec.complete and not spec.holidays:
        problems.append(f"key holidays: `complete = true` but no holidays are listed for {spec.year}")
    return problems


def read_hall_calendar(path: Path) -> HallCalendarFile:
    """Read and check one hall calendar file; ConfigError names the file, the key and the reason."""
    spec = load_toml(path, HallCalendarFile)
    problems = _problems(spec)
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return spec


def _apply(calendar: WorkCalendar, spec: HallCalendarFile) -> WorkCalendar:
    names = {day.date: day.name for day in (*spec.holidays, *spec.workdays) if day.name}
    return calendar.with_overrides(
        holidays=[day.date for day in spec.holidays],
        workdays=[day.date for day in spec.workdays],
        years=[spec.year] if spec.complete else [],
        names=names,
    )


def load_calendar(hall_files: Sequence[Path] = ()) -> WorkCalendar:
    """The national calendar (every year ``chinese-calendar`` knows) with the hall's files on top.

    * A ``complete = true`` file is the whole schedule of its year: the year
      becomes covered, and national data for that year (if any) is replaced.
      At most one complete file per year.
    * Other files patch single days (a local day off, a Saturday opening) in
      years that are covered by the package or by a complete file.
    * Complete files are applied first, then the patches in the order given,
      so a later patch wins over an earlier one and every patch wins over a
      complete file.

    Raises ConfigError naming the file, the key and the reason.
    """
    specs = [(Path(path), read_hall_calendar(Path(path))) for path in hall_files]
    complete_for: dict[int, Path] = {}
    for path, spec in specs:
        if spec.complete:
            if spec.year in complete_for:
                raise ConfigError(
                    f"{path}: key complete: {spec.year} is already given completely by {complete_for[spec.year]}; "
                    "keep one complete file per year (put local days in a file without `complete`)"
                )
            complete_for[spec.year] = path
    calendar = national_calendar()
    for _, spec in specs:
        if spec.complete:
            calendar = _apply(calendar, spec)
    for _, spec in specs:
        if not spec.complete:
            calendar = _apply(calendar, spec)
    return calendar
