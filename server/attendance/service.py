"""The adapter around the attendance rules: punches and leave from the database in,
monthly results, the attendance sheet and make-up punch requests out.

Who is on the sheet: every clerk on a window's roster (hall file), plus anyone
who punched at the hall's terminals; their name from the staff register when
known.  Everything read and written is this hall's (one database serves a
district).
Punches are the stored ``punch`` events (face, PIN or card); an approved
make-up request adds a ``makeup`` punch at the time it claims.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from broker.timeutil import HALL_TZ, Clock, hall_iso
from server.attendance.sheet import SheetRow, attendance_xlsx
from server.db import EventRow, LeaveRow, MakeUpRow, StaffRow
from server.config.hall import HallConfig
from server.rules.attendance import (
    DayAttendance,
    MakeUpRequest,
    MonthAttendance,
    Punch,
    approve_makeup,
    evaluate_month,
    file_makeup,
    makeup_punch,
    reject_makeup,
)
from server.rules.calendar import WorkCalendar
from server.rules.policy import Policy
from server.rules.supervision import Interval


def _request(row: MakeUpRow) -> MakeUpRequest:
    return MakeUpRequest(row.person_id, row.claimed_at, row.reason, row.filed_at, row.deadline, row.state, row.decided_by, row.decided_at, row.note)  # type: ignore[arg-type]


def makeup_json(row: MakeUpRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "person_id": row.person_id,
        "claimed_at": hall_iso(row.claimed_at),
        "reason": row.reason,
        "filed_at": hall_iso(row.filed_at),
        "deadline": row.deadline.isoformat(),
        "state": row.state,
        "decided_by": row.decided_by or None,
        "decided_at": hall_iso(row.decided_at),
        "note": row.note or None,
    }


class AttendanceService:
    def __init__(self, engine: Engine, hall: HallConfig, policy: Policy, calendar: WorkCalendar, clock: Clock) -> None:
        self.engine = engine
        self.hall = hall
        self.policy = policy
        self.calendar = calendar
        self.clock = clock

    # ------------------------------------------------------------- month

    def people(self, session: Session, punched: Iterable[str]) -> dict[str, tuple[str, str]]:
        """person → (name, window) for the sheet: the hall's rosters, and whoever ``punched`` at its terminals.

        Not every enrolled person: staff are registered once for the district,
        and another hall's clerk must not appear (absent) on this hall's sheet.
        """
        people: dict[str, tuple[str, str]] = {}
        for window in self.hall.windows:
            for clerk in window.clerks:
                people.setdefault(clerk, (clerk, window.name))
        for person in punched:
            people.setdefault(person, (person, ""))
        named = select(StaffRow.id, StaffRow.name).where(StaffRow.id.in_(list(people)), StaffRow.name.is_not(None))
        names = {person: name for person, name in session.execute(named)}
        return {person: (names.get(person) or person, window) for person, (_, window) in people.items()}

    def month(self, year: int, month: int) -> list[tuple[str, str, MonthAttendance]]:
        """Everyone's month, evaluated up to now (a half-day still open is ``pending``)."""
        start = datetime(year, month, 1, tzinfo=HALL_TZ)
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=HALL_TZ)
        punches: dict[str, list[Punch]] = defaultdict(list)
        leaves: dict[str, list[Interval]] = defaultdict(list)
        hall = self.hall.hall.id
        with Session(self.engine) as session:
            rows = session.execute(
                select(EventRow.body, EventRow.event_time).where(
                    EventRow.type == "punch", EventRow.hall_id == hall, EventRow.event_time >= start - timedelta(days=1), EventRow.event_time < end + timedelta(days=1)
                )
            )
            for body, at in rows:
                punches[body["person_id"]].append(Punch(at.astimezone(HALL_TZ), body["method"]))
            people = self.people(session, punches)
            approved = select(MakeUpRow).where(MakeUpRow.hall_id == hall, MakeUpRow.state == "approved", MakeUpRow.claimed_at >= start, MakeUpRow.claimed_at < end)
            for row in session.scalars(approved):
                punches[row.person_id].append(makeup_punch(_request(row)))
            away = select(LeaveRow).where(LeaveRow.hall_id == hall, LeaveRow.kind.in_(("leave", "outing")), LeaveRow.start < end, LeaveRow.end > start)
            for row in session.scalars(away):
                leaves[row.person_id].append(Interval(row.person_id, row.start, row.end))
        until = self.clock()
        return [
            (name, window, evaluate_month(person, year, month, punches[person], leaves[person], self.policy, self.calendar, until))
            for person, (name, window) in sorted(people.items())
        ]

    def sheet(self, year: int, month: int) -> bytes:
        rows = [SheetRow(name, window, result) for name, window, result in self.month(year, month)]
        return attendance_xlsx(self.hall.hall.name, year, month, rows, self.policy, self.calendar)

    # ----------------------------------------------------------- make-ups

    def file(self, person: str, claimed_at: datetime, reason: str) -> MakeUpRow:
        """File a request; ``MakeUpRefused`` (from the rules) says why it cannot be."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            others = [_request(r) for r in session.scalars(select(MakeUpRow).where(MakeUpRow.hall_id == self.hall.hall.id, MakeUpRow.person_id == person))]
            request = file_makeup(person, claimed_at, reason, self.clock(), self.policy, self.calendar, others)
            row = MakeUpRow(
                hall_id=self.hall.hall.id, person_id=request.person, claimed_at=request.claimed_at, reason=request.reason, filed_at=request.filed_at,
                deadline=request.deadline, state=request.state, decided_by="", note="",
            )  # fmt: skip
            session.add(row)
        return row

    def decide(self, request_id: int, approve: bool, by: str, note: str) -> MakeUpRow | None:
        """Approve or reject; ``MakeUpTransitionError`` if it was decided already."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            row = session.get(MakeUpRow, request_id)
            if row is None or row.hall_id != self.hall.hall.id:  # another hall's request is not this hall's to decide
                return None
            decided = (approve_makeup if approve else reject_makeup)(_request(row), by, self.clock(), note)
            row.state, row.decided_by, row.decided_at, row.note = decided.state, decided.decided_by, decided.decided_at, decided.note
        return row

    def requests(self, state: str | None, since: date | None) -> list[MakeUpRow]:
        query = select(MakeUpRow).where(MakeUpRow.hall_id == self.hall.hall.id).order_by(MakeUpRow.filed_at.desc(), MakeUpRow.id.desc())
        if state:
            query = query.where(MakeUpRow.state == state)
        if since:
            query = query.where(MakeUpRow.claimed_at >= datetime.combine(since, datetime.min.time(), HALL_TZ))
        with Session(self.engine) as session:
            return list(session.scalars(query))


def month_json(name: str, window: str, result: MonthAttendance) -> dict[str, Any]:
    """One person's month for the API: the summary and each half-day's status."""
    summary = result.summary
    return {
        "person_id": result.person,
        "name": name,
        "window": window,
        "summary": {
            "counts": dict(summary.counts),
            "late": summary.late,
            "early": summary.early,
            "absent_halfdays": summary.absent_halfdays,
            "punches": dict(summary.punches),
            "escalations": [{"name": e.name, "count": e.count, "at_least": e.at_least, "absent_halfdays": e.absent_halfdays, "rule": e.rule, "source": e.source} for e in summary.escalations],
        },
        "days": [day_json(d) for d in result.days],
    }


def day_json(d: DayAttendance) -> dict[str, Any]:
    """One person's day for the API: each half-day's status, minutes late or early, and the punches used."""
    return {
        "day": d.day.isoformat(),
        "working": d.working,
        "halves": [
            {"session": h.session, "status": h.status, "late_s": h.late_s, "early_s": h.early_s, "clock_in": hall_iso(h.clock_in.at) if h.clock_in else None,
             "clock_out": hall_iso(h.clock_out.at) if h.clock_out else None, "rules": [list(r) for r in h.rules]}  # fmt: skip
            for h in d.halves
        ],
    }

