"""Today's attendance as it happens: each person's day held as a :class:`LiveDay`, fed by the punches ingest stores.

The live page (and the district overview) ask "who has arrived, who is late,
who has not clocked in" every minute.  Answering from the month
(:meth:`AttendanceService.month`) re-reads and re-judges every punch of the
month each time; here the day is read once when first asked, then every
punch ingest commits goes into its person's day (a few comparisons), and a
question only re-reads the day's leave and approved make-up punches (small
tables) — a person whose leave or make-ups changed has their day planned
again from the punches held for them.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.protocol import PunchEvent
from broker.timeutil import HALL_TZ
from server.attendance.service import AttendanceService, _request
from server.db import EventRow, LeaveRow, MakeUpRow
from server.ingest.batch import Changes
from server.rules.attendance import DayAttendance, Punch, makeup_punch
from server.rules.live_attendance import LiveDay, Progress
from server.rules.supervision import Interval


@dataclass(frozen=True)
class PersonToday:
    person: str
    name: str
    window: str
    day: DayAttendance
    progress: Progress


@dataclass
class _Held:
    """One person's day: the punches it was told (to plan it again), its leave and make-ups, and the fold."""

    punches: list[Punch]
    excuses: tuple[object, ...]
    live: LiveDay


class TodayAttendance:
    """Everyone's attendance today; :meth:`follow` is an ingest follower, :meth:`people` answers the pages."""

    def __init__(self, service: AttendanceService) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._day: date | None = None
        self._held: dict[str, _Held] = {}
        self._seen: set[str] = set()
        """msg_ids of the punches held: a batch committed while the day was being read is not counted twice."""

    def follow(self, changes: Changes, sweep: bool) -> None:
        """Put each newly stored punch of the held day into its person's day."""
        hall = self.service.hall.hall.id
        punches = [e for e in changes.events if isinstance(e, PunchEvent) and e.hall_id == hall]
        if not punches:
            return
        with self._lock:
            for event in punches:
                at = event.event_time.astimezone(HALL_TZ)
                msg_id = str(event.msg_id)  # a UUID on the wire, text in the table
                if at.date() == self._day and msg_id not in self._seen:
                    self._seen.add(msg_id)
                    self._add(event.body.person_id, Punch(at, event.body.method))

    def _add(self, person: str, punch: Punch) -> None:
        held = self._held.get(person)
        if held is None:  # someone on no roster: held, and listed as having punched here
            held = self._held[person] = _Held([], (), LiveDay(punch.at.date(), (), self.service.policy, self.service.calendar))
        held.punches.append(punch)
        held.live.add(punch)

    def people(self) -> tuple[date, list[PersonToday]]:
        """Today's day and everyone on the sheet with their day so far, by person id."""
        now = self.service.clock()
        day = now.astimezone(HALL_TZ).date()
        start = datetime.combine(day, time(), HALL_TZ)
        end = start + timedelta(days=1)
        hall = self.service.hall.hall.id
        with Session(self.service.engine) as session:
            excuses: dict[str, list[object]] = defaultdict(list)
            leaves: dict[str, list[Interval]] = defaultdict(list)
            for row in session.scalars(select(LeaveRow).where(LeaveRow.hall_id == hall, LeaveRow.kind.in_(("leave", "outing")), LeaveRow.start < end, LeaveRow.end > start).order_by(LeaveRow.id)):
                leaves[row.person_id].append(Interval(row.person_id, row.start, row.end))
                excuses[row.person_id].append(("leave", row.id, row.start, row.end))
            makeups: dict[str, list[Punch]] = defaultdict(list)
            for row in session.scalars(select(MakeUpRow).where(MakeUpRow.hall_id == hall, MakeUpRow.state == "approved", MakeUpRow.claimed_at >= start, MakeUpRow.claimed_at < end).order_by(MakeUpRow.id)):
                makeups[row.person_id].append(makeup_punch(_request(row)))
                excuses[row.person_id].append(("makeup", row.id))
            with self._lock:
                if self._day != day:
                    self._load(session, day, start, end)
                people = self.service.people(session, self._held)
                for person in set(people) | set(excuses) | set(self._held):
                    self._excuse(person, day, tuple(excuses.get(person, ())), leaves.get(person, []), makeups.get(person, []))
                found = [
                    PersonToday(person, name, window, self._held[person].live.result(now), self._held[person].live.progress(now))
                    for person, (name, window) in sorted(people.items())
                ]
        return day, found

    def _load(self, session: Session, day: date, start: datetime, end: datetime) -> None:
        """Read the day's stored punches once (a new day, or the first question)."""
        self._day, self._held, self._seen = day, {}, set()
        rows = session.execute(select(EventRow.msg_id, EventRow.body, EventRow.event_time).where(EventRow.type == "punch", EventRow.hall_id == self.service.hall.hall.id, EventRow.event_time >= start, EventRow.event_time < end))
        for msg_id, body, at in rows:
            self._seen.add(msg_id)
            self._add(body["person_id"], Punch(at.astimezone(HALL_TZ), body["method"]))

    def _excuse(self, person: str, day: date, excuses: tuple[object, ...], leaves: list[Interval], makeups: list[Punch]) -> None:
        """Plan the person's day again when their leave or approved make-ups are not what it was planned with."""
        held = self._held.get(person)
        if held is not None and held.excuses == excuses:
            return
        punches = held.punches if held is not None else []
        self._held[person] = _Held(punches, excuses, LiveDay(day, leaves, self.service.policy, self.service.calendar, [*punches, *makeups]))

    def summary(self, found: list[PersonToday]) -> dict[str, int]:
        """Head counts for the pages: expected (应到), arrived (已到), late (迟到), and absent so far (未到:
        not arrived although a clock-in window has closed)."""
        expected = [p for p in found if p.progress.expected]
        return {
            "expected": len(expected),
            "arrived": sum(p.progress.arrived for p in expected),
            "late": sum(p.progress.late for p in expected),
            "absent": sum(p.progress.missing_in and not p.progress.arrived for p in expected),
        }
