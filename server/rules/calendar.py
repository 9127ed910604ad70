"""Working days of a Chinese government service hall: the national calendar with 调休.

Deadlines in HallWatch are counted in *working days* (a window lead disputes
a patrol finding within 3 working days; a bad rating is called back within N
working days), and a hall is open only on working days.  In China that is not
``weekday() < 5``: the State Council moves weekend days around the public
holidays (调休), so a Saturday can be a working day and a Monday a holiday.

:class:`WorkCalendar` answers those questions from explicit data and nothing
else — no I/O, no clock, no knowledge of where the data came from (that is
``server/config/calendar.py``).  It knows which years it *covers*: for a year
whose schedule nobody has given it, every question raises
:class:`CalendarGapError` instead of guessing ``weekday() < 5``, because a
guess would silently put a deadline on a day the hall is closed.

All dates are local dates in the hall's time zone (Asia/Shanghai).  A
``datetime`` is refused: convert it first, e.g.
``now.astimezone(ZoneInfo("Asia/Shanghai")).date()`` — a UTC timestamp taken
before 08:00 Beijing time would otherwise land on the previous day.

Rule for one day, for a covered year::

    listed as a working day (调休上班)  -> working day
    listed as a holiday                -> not a working day
    otherwise                          -> working day iff Monday-Friday
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import MappingProxyType

HALL_CALENDAR_DIR = "config/calendars"
"""Where a hall keeps its own calendar files (named in the message of a gap)."""

_ONE_DAY = timedelta(days=1)


def _describe_years(years: Iterable[int]) -> str:
    """``[2004, 2005, 2006, 2027]`` -> ``"2004–2006, 2027"``."""
    ordered = sorted(set(years))
    if not ordered:
        return "none"
    spans: list[list[int]] = []
    for year in ordered:
        if spans and year == spans[-1][1] + 1:
            spans[-1][1] = year
        else:
            spans.append([year, year])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in spans)


class CalendarGapError(LookupError):
    """The calendar has no schedule for ``year``; the message says how to add one."""

    def __init__(self, year: int, covered_years: Iterable[int] = ()) -> None:
        super().__init__(year, tuple(sorted(covered_years)))
        self.year = year
        self.covered_years: tuple[int, ...] = self.args[1]

    def __str__(self) -> str:
        year = self.year
        return (
            f"no working-day calendar for {year} (covered years: {_describe_years(self.covered_years)}). "
            f"The national holidays and moved working days (调休) for {year} are published by the State Council "
            f"each November: add a file for {year} to {HALL_CALENDAR_DIR}/ with `year = {year}`, "
            f"`complete = true` and that year's [[holidays]] and [[workdays]] "
            f"(see {HALL_CALENDAR_DIR}/README.md), then list it under `calendars` in the hall file"
        )


def _check_date(value: object, what: str = "day") -> date:
    # datetime is a subclass of date: refuse it explicitly, it would never match a date.
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(
            f"{what} must be a datetime.date (an Asia/Shanghai local date), not {type(value).__name__}: {value!r}"
        )
    return value


@dataclass(frozen=True)
class WorkCalendar:
    """An immutable working-day calendar built from explicit data.

    ``holidays``
        Days off: public holidays and the weekdays given off around them
        (weekend days inside a holiday break may be listed too, for the name).
    ``workdays``
        Weekend days that are working days because of 调休.
    ``covered_years``
        Years whose schedule is completely known.  Any question about a day
        in another year raises :class:`CalendarGapError`.
    ``names``
        Optional name per date (``"春节"``, ``"春节调休"``, a local event).
    """

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    covered_years: frozenset[int] = frozenset()
    names: Mapping[date, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        holidays = frozenset(_check_date(d, "holiday") for d in self.holidays)
        workdays = frozenset(_check_date(d, "working day") for d in self.workdays)
        both = holidays & workdays
        if both:
            raise ValueError(f"days listed both as holiday and as working day: {sorted(both)}")
        years = frozenset(self.covered_years)
        for year in years:
            if isinstance(year, bool) or not isinstance(year, int):
                raise TypeError(f"covered year must be an int, not {year!r}")
        names = {_check_date(d, "named day"): str(n) for d, n in dict(self.names).items()}
        object.__setattr__(self, "holidays", holidays)
        object.__setattr__(self, "workdays", workdays)
        object.__setattr__(self, "covered_years", years)
        object.__setattr__(self, "names", MappingProxyType(names))

    def __repr__(self) -> str:
        return (
            f"WorkCalendar(covered_years={_describe_years(self.covered_years)}, "
            f"{len(self.holidays)} holidays, {len(self.workdays)} workdays)"
        )

    # -- one day -----------------------------------------------------------

    def covers(self, year: int) -> bool:
        """True if the whole schedule of ``year`` is known."""
        return year in self.covered_years

    def _require(self, d: date) -> date:
        _check_date(d)
        if d.year not in self.covered_years:
            raise CalendarGapError(d.year, self.covered_years)
        return d

    def is_working_day(self, d: date) -> bool:
        """Is ``d`` a working day (the hall is open)?  Raises CalendarGapError for an uncovered year."""
        self._require(d)
        if d in self.workdays:
            return True
        if d in self.holidays:
            return False
        return d.weekday() < 5

    def name(self, d: date) -> str | None:
        """The name of a holiday or moved working day (``"国庆节"``, ``"春节调休"``), else None."""
        self._require(d)
        return self.names.get(d)

    # -- counting ----------------------------------------------------------

    def add_working_days(self, start: date, n: int) -> date:
        """The deadline ``n`` working days after ``start``: the n-th working day *after* ``start``.

        ``start`` itself never counts, whether or not it is a working day —
        the day something happens is not a full day to act on it.  A bad
        rating given on Friday with a 1-working-day call back is due on the
        next working day (Monday, or the Saturday if that is a 调休 working
        day), not on the Friday itself; a finding on the eve of the National
        Day break with 3 days to dispute it is due on the 3rd working day
        after the break.  The result is always a working day for ``n >= 1``.

        ``n == 0`` returns ``start`` unchanged (due the same day), even if
        ``start`` is not a working day.  In general the result is the
        earliest day ``d >= start`` with ``working_days_between(start, d) == n``.

        Raises CalendarGapError if counting reaches an uncovered year, and
        ValueError for a negative ``n``.
        """
        _check_date(start, "start")
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int, not {n!r}")
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        d = start
        left = n
        while left:
            d += _ONE_DAY
            if self.is_working_day(d):
                left -= 1
        return d

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after ``d`` (same as ``add_working_days(d, 1)``)."""
        return self.add_working_days(d, 1)

    def working_days_between(self, a: date, b: date) -> int:
        """Working days after ``a`` up to and including ``b`` — the same convention as
        :meth:`add_working_days`, so ``working_days_between(d, add_working_days(d, n)) == n``.

        ``a == b`` gives 0; ``b < a`` gives the negative count of the reverse span.
        """
        _check_date(a, "a")
        _check_date(b, "b")
        if b < a:
            return -self.working_days_between(b, a)
        count = 0
        d = a
        while d < b:
            d += _ONE_DAY
            if self.is_working_day(d):
                count += 1
        return count

    # -- the hall's own days -------------------------------------------------

    def with_overrides(
        self,
        holidays: Iterable[date] = (),
        workdays: Iterable[date] = (),
        years: Iterable[int] = (),
        *,
        names: Mapping[date, str] | None = None,
    ) -> WorkCalendar:
        """A new calendar where the given days win over this one's.

        ``holidays`` / ``workdays``: days the hall closes / opens regardless
        of this calendar (a local event, a Saturday opening, next year's
        national schedule).  A day cannot be in both.

        ``years``: years these overrides describe *completely* (a hall file
        with ``complete = true``).  They become covered, and this calendar's
        own days in those years are dropped first, so the override is the
        whole schedule for the year rather than a patch on top of it.  Pass
        no years for a patch (local days in an otherwise known year).

        ``names`` names the overriding days; an overridden day loses its old name.
        """
        new_holidays = frozenset(_check_date(d, "holiday") for d in holidays)
        new_workdays = frozenset(_check_date(d, "working day") for d in workdays)
        both = new_holidays & new_workdays
        if both:
            raise ValueError(f"days listed both as holiday and as working day: {sorted(both)}")
        replaced = frozenset(years)
        overridden = new_holidays | new_workdays

        def kept(d: date) -> bool:
            return d.year not in replaced and d not in overridden

        merged_names = {d: n for d, n in self.names.items() if kept(d)}
        merged_names.update(names or {})
        return WorkCalendar(
            holidays=frozenset(d for d in self.holidays if kept(d)) | new_holidays,
            workdays=frozenset(d for d in self.workdays if kept(d)) | new_workdays,
            covered_years=self.covered_years | replaced,
            names=merged_names,
        )
