"""A hall's rules as data: schedule, thresholds, deadlines, patrols, attendance, ratings.

Presets in ``config/policies/`` carry the values of the regulations in
``shared/seeds`` with a citation for each; a hall names a preset and
overrides any value in its own file.  Everything is validated at start.
"""

from __future__ import annotations

from datetime import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Session(_Strict):
    """One stretch of opening hours, e.g. the morning 08:00–12:00."""

    name: str = Field(min_length=1, max_length=20)
    start: time
    end: time

    @model_validator(mode="after")
    def _ordered(self) -> Session:
        if self.end <= self.start:
            raise ValueError(f"session {self.name!r} ends ({self.end}) before it starts ({self.start})")
        return self


class Schedule(_Strict):
    """When windows are open.  Outside these sessions a window is *closed*."""

    sessions: list[Session] = Field(min_length=1)
    extended_service: Session | None = None
    """Lunch-time duty (延时服务): open only for windows on the duty roster."""
    working_days_only: bool = True

    @model_validator(mode="after")
    def _no_overlap(self) -> Schedule:
        spans = sorted(self.sessions, key=lambda s: s.start)
        for first, second in zip(spans, spans[1:]):
            if second.start < first.end:
                raise ValueError(f"sessions {first.name!r} and {second.name!r} overlap")
        return self


class Thresholds(_Strict):
    """How long each condition may last before it is a finding (seconds)."""

    vacant_grace_s: int = Field(ge=0, le=4 * 3600)
    """Seat empty, no pause, no excuse: after this long it is 空岗."""
    pause_max_s: int = Field(ge=60, le=8 * 3600)
    """Longest allowed pause; beyond it the clerk is 脱岗."""
    away_overrun_s: int = Field(ge=60, le=8 * 3600)
    """Away from the seat this long (paused or not) counts as absence for attendance."""
    unexpected_person_s: int = Field(ge=0, le=4 * 3600)
    """Someone not on the window's roster (or an unregistered substitute) may sit this long."""
    clerk_mismatch_s: int = Field(ge=0, le=4 * 3600)
    """The evaluator's logged-in clerk may differ from the seated clerk this long."""
    device_fault_s: int = Field(ge=0, le=4 * 3600)
    """A camera offline or stale this long during open hours raises a device fault."""


class Escalation(_Strict):
    """What happens to an alert nobody acknowledges."""

    repeat_s: int = Field(ge=60, le=24 * 3600)
    """Remind (sound again) this often while unacknowledged."""
    escalate_after_s: int = Field(ge=60, le=24 * 3600)
    """Raise the severity one level after this long unacknowledged."""


class Deadlines(_Strict):
    """Deadlines counted in working days (national calendar with 调休)."""

    dispute_working_days: int = Field(ge=1, le=30)
    """A window lead may dispute a patrol finding within this many working days."""
    callback_working_days: int = Field(ge=1, le=30)
    """A bad rating's work order must be called back within this many working days."""
    rectify_working_days: int = Field(ge=1, le=60)
    """…and handled (rectified) within this many."""


class PatrolRound(_Strict):
    name: str = Field(min_length=1, max_length=20)
    at: time


class Patrols(_Strict):
    rounds: list[PatrolRound] = Field(min_length=1)
    """Scheduled hall patrols each working day (e.g. one morning, one afternoon)."""
    cctv_halfdays_per_week: float = Field(ge=0, le=10)
    """Minimum CCTV (monitoring) patrol time per week, in half days."""


class MonthlyEscalation(_Strict):
    """A consequence of too many late arrivals and early leaves (迟到早退) in one month."""

    at_least: int = Field(ge=1, le=100)
    """Reached when the month's late arrivals plus early leaves are at least this many."""
    name: str = Field(min_length=1, max_length=60)
    """The consequence as the regulation words it, e.g. ``批评教育``; shown in the summary and the sheet."""
    absent_halfdays: int = Field(default=0, ge=0, le=10)
    """Half-days of absence (旷工) the consequence adds to the month, e.g. 1 for 「计旷工半天」."""


class Attendance(_Strict):
    """How punches (打卡) become attendance (考勤): windows, margins, escalations, make-up punches.

    Each session of ``schedule.sessions`` is a half-day, the unit of
    attendance.  Punch windows are inclusive; ``None`` means no limit other
    than the half-day itself (a clock-in is never accepted after its half-day
    has ended, a clock-out never before it has begun).
    """

    punches: Literal["per_half_day", "per_day"]
    """``per_half_day``: every half-day needs its own clock-in and clock-out (4 a day);
    ``per_day``: one clock-in at the start and one clock-out at the end of the worked day (2 a day)."""
    clock_in_before_s: int | None = Field(default=None, ge=0, le=6 * 3600)
    """A clock-in is accepted from this long before the start (None: any time earlier that day)."""
    clock_in_after_s: int | None = Field(default=None, ge=0, le=8 * 3600)
    """…until this long after the start; a later one is not accepted (None: until the half-day ends)."""
    clock_out_before_s: int | None = Field(default=None, ge=0, le=8 * 3600)
    """A clock-out is accepted from this long before the end (None: from the half-day's start)…"""
    clock_out_after_s: int | None = Field(default=None, ge=0, le=6 * 3600)
    """…until this long after the end (None: any time later that day)."""
    late_grace_s: int = Field(ge=0, le=3600)
    """A clock-in at most this long after the start is on time; later is late (迟到)."""
    early_grace_s: int = Field(ge=0, le=3600)
    """A clock-out at most this long before the end is on time; earlier is early leave (早退)."""
    late_absent_s: int | None = Field(default=None, ge=60, le=8 * 3600)
    """Late by at least this long: the half-day is absent (旷工半天), not late (None: never)."""
    missing_punch_absent: bool
    """Does a half-day with a punch missing (缺卡, not made up) count as absent (缺勤/旷工半天)?"""
    monthly_escalations: list[MonthlyEscalation]
    """Consequences by the month's count of late arrivals plus early leaves, lowest first."""
    makeup_file_working_days: int = Field(ge=0, le=30)
    """A make-up punch (补卡) must be filed within this many working days after the missed day."""
    makeup_monthly_limit: int = Field(ge=0, le=31)
    """At most this many make-up punches (pending or approved) per person and month."""

    @model_validator(mode="after")
    def _coherent(self) -> Attendance:
        if self.late_absent_s is not None and self.late_absent_s <= self.late_grace_s:
            raise ValueError(
                f"late_absent_s ({self.late_absent_s}) must be more than late_grace_s ({self.late_grace_s}): "
                "a clerk must be late before being absent for lateness"
            )
        counts = [e.at_least for e in self.monthly_escalations]
        if counts != sorted(set(counts)):
            raise ValueError(f"monthly_escalations must be listed by at_least, lowest first, each count once: {counts}")
        return self


class Ratings(_Strict):
    """好差评: which levels are bad, the system-default rating, and when a rating looks faked.

    Levels are 5 非常满意 … 1 非常不满意.  A default rating stands in for a
    finished ticket nobody rated; it is kept apart from real ratings in every
    statistic, so it can never raise a rate nor create a work order.
    """

    bad_at_most: int = Field(ge=1, le=4)
    """Levels at or below this are 差评: each creates a work order."""
    default_after_days: int | None = Field(default=None, ge=1, le=60)
    """A finished ticket still unrated this many days (24 h each) after it finished gets the default rating (None: never)."""
    default_level: int | None = Field(default=None, ge=1, le=5)
    """The level of a default rating; must be above ``bad_at_most`` (silence is not a complaint)."""
    ticket_required: bool
    """Must a rating at a window served by a queue gateway belong to a ticket called there (叫号系统)?"""
    ticket_wait_s: int = Field(ge=0, le=4 * 3600)
    """How long after a rating its ticket may still arrive from the queue system before the rating is reported."""
    seat_vacant_grace_s: int = Field(ge=0, le=3600)
    """A rating this long (or less) after the staff seat emptied is not suspicious; later, with the seat still empty, it is."""
    burst_count: int = Field(ge=2, le=100)
    """This many ratings at one window within ``burst_window_s`` are a burst (someone pressing the keypad)."""
    burst_window_s: int = Field(ge=1, le=3600)
    never_below_level: int = Field(ge=2, le=5)
    """A window whose ratings in a calendar month are all at or above this level…"""
    never_below_min_count: int = Field(ge=1, le=100_000)
    """…over at least this many ratings is reported."""

    @model_validator(mode="after")
    def _coherent(self) -> Ratings:
        if (self.default_after_days is None) != (self.default_level is None):
            raise ValueError("default_after_days and default_level go together: set both or neither")
        if self.default_level is not None and self.default_level <= self.bad_at_most:
            raise ValueError(
                f"default_level ({self.default_level}) must be above bad_at_most ({self.bad_at_most}): "
                "a default rating must never be a 差评 nor create a work order"
            )
        return self


class Policy(_Strict):
    """A complete, validated policy.  ``sources`` cites where each value comes from."""

    name: str = Field(min_length=1, max_length=60)
    schedule: Schedule
    thresholds: Thresholds
    escalation: Escalation
    deadlines: Deadlines
    patrols: Patrols
    attendance: Attendance
    ratings: Ratings
    sources: dict[str, str] = Field(default_factory=dict)
    """Dotted key (e.g. ``thresholds.pause_max_s``) → citation of the regulation text."""

    @model_validator(mode="after")
    def _sources_name_real_keys(self) -> Policy:
        known = set(leaf_keys(self.model_dump(exclude={"sources", "name"})))
        unknown = sorted(set(self.sources) - known)
        if unknown:
            raise ValueError(f"sources cite keys that are not in the policy: {unknown}")
        return self


def leaf_keys(data: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every value in nested dicts (lists count as one value)."""
    if isinstance(data, dict):
        keys: list[str] = []
        for key, value in data.items():
            keys += leaf_keys(value, f"{prefix}{key}.")
        return keys
    return [prefix.rstrip(".")]


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge a hall's overrides into a preset (tables merge, values replace)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged
