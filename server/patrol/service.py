"""Patrol rounds and findings in the database, and the service the API uses.

Tables (migration ``0003_patrols``):

``patrol_rounds``
    One patrol (hall walk or CCTV session): who, when, which scheduled round
    it fulfils, the period whose alerts it drafted, and a snapshot of every
    window's live state when it started (the checklist is rebuilt from it).
``patrol_findings``
    One finding, its current status and the times that queries need
    (``confirmed_at`` for the week it is reported in, ``resolved_at`` once it
    is dismissed, overturned or rectified).  ``alert_id`` is unique: one
    alert episode drafts at most one finding, however many rounds it spans.
``patrol_finding_steps``
    Every transition — status, time, actor, reason — append-only.  The rules
    in :mod:`server.rules.patrol` decide; this module only loads, applies and
    stores, and refuses a transition that raced another one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, Text, UniqueConstraint, exists, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from broker.timeutil import HALL_TZ, Clock, hall_iso
from server.db import AlertRow, Base, UTCDateTime, WindowRow
from server.config.hall import HallConfig
from server.rules import patrol as rules
from server.rules.calendar import CalendarGapError, WorkCalendar
from server.rules.patrol import Bulletin, ChecklistEntry, Finding, LiveState, PatrolRound, Step, TransitionError
from server.rules.policy import Policy
from server.rules.supervision import Alert

SYSTEM_ACTOR = "hallwatch"


class PatrolRoundRow(Base):
    __tablename__ = "patrol_rounds"
    __table_args__ = (UniqueConstraint("hall_id", "day", "name", name="uq_patrol_rounds_scheduled"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hall_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # hall | cctv
    name: Mapped[str | None] = mapped_column(String(20), nullable=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    started_by: Mapped[str] = mapped_column(String(64))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    window_states: Mapped[dict[str, Any]] = mapped_column(JSON)


class FindingStepRow(Base):
    __tablename__ = "patrol_finding_steps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    finding_id: Mapped[int] = mapped_column(ForeignKey("patrol_findings.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)


class FindingRow(Base):
    __tablename__ = "patrol_findings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hall_id: Mapped[str] = mapped_column(String(64), index=True)
    round_id: Mapped[int | None] = mapped_column(ForeignKey("patrol_rounds.id"), nullable=True, index=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), nullable=True, unique=True)
    window_id: Mapped[str] = mapped_column(String(64), index=True)
    category: Mapped[str] = mapped_column(String(32))
    origin: Mapped[str] = mapped_column(String(8))  # device | officer
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    observed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    note: Mapped[str] = mapped_column(Text)
    facts: Mapped[list[list[str]]] = mapped_column(JSON)
    rule: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str | None] = mapped_column(String(128), nullable=True)
    alert_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    steps: Mapped[list[FindingStepRow]] = relationship(order_by=FindingStepRow.id, lazy="selectin", cascade="all, delete-orphan")


class NotFound(LookupError):
    """No such round or finding (the message names it)."""


class Conflict(ValueError):
    """The request is valid but the current state refuses it (the message says why)."""


def finding_of(row: FindingRow) -> Finding:
    return Finding(
        window=row.window_id,
        category=row.category,
        observed_at=row.observed_at,
        observed_until=row.observed_until,
        note=row.note,
        history=tuple(Step(s.status, s.at, s.actor, s.reason) for s in row.steps),  # type: ignore[arg-type]
        origin=row.origin,  # type: ignore[arg-type]
        facts=tuple((str(k), str(v)) for k, v in row.facts),
        rule=row.rule,
        source=row.source,
        evidence=row.evidence,
        alert_type=row.alert_type,
        round_id=row.round_id,
        id=row.id,
    )


def round_of(row: PatrolRoundRow) -> PatrolRound:
    return PatrolRound(
        kind=row.kind,  # type: ignore[arg-type]
        officer=row.started_by,
        started_at=row.started_at,
        period_start=row.period_start,
        name=row.name,
        scheduled_at=row.scheduled_at,
        ended_at=row.ended_at,
        ended_by=row.ended_by,
        id=row.id,
    )


def alert_of(row: AlertRow) -> Alert:
    return Alert(
        window=row.window_id,
        type=row.type,
        condition_since=row.condition_since,
        raised_at=row.raised_at,
        cleared_at=row.cleared_at,
        live=row.live,
        severity=row.severity,
        rule=row.rule,
        threshold_s=row.threshold_s,
        source=row.source,
        facts=tuple((str(k), str(v)) for k, v in (row.facts or {}).items()),
        evidence=row.evidence,
    )


def _new_row(hall_id: str, f: Finding, alert_id: int | None) -> FindingRow:
    row = FindingRow(
        hall_id=hall_id,
        round_id=f.round_id,
        alert_id=alert_id,
        window_id=f.window,
        category=f.category,
        origin=f.origin,
        observed_at=f.observed_at,
        observed_until=f.observed_until,
        note=f.note,
        facts=[list(p) for p in f.facts],
        rule=f.rule,
        source=f.source,
        evidence=f.evidence,
        alert_type=f.alert_type,
        status=f.status,
        confirmed_at=f.confirmed_at,
        resolved_at=None,
    )
    row.steps = [FindingStepRow(status=s.status, at=s.at, actor=s.actor, reason=s.reason) for s in f.history]
    return row


@dataclass(frozen=True)
class RoundView:
    """A round with its checklist (the window states at its start, its findings as they are now)."""

    round: PatrolRound
    checklist: tuple[ChecklistEntry, ...]
    findings: tuple[Finding, ...]


AUTO_OFFICER = "系统（定时巡查）"
"""Who opens a scheduled round; the officer who walks it confirms its findings."""


class PatrolService:
    """Patrol rounds, findings and bulletins of one hall."""

    def __init__(self, engine: Engine, hall: HallConfig, policy: Policy, calendar: WorkCalendar, clock: Clock) -> None:
        self.engine = engine
        self.hall = hall
        self.policy = policy
        self.calendar = calendar
        self.clock = clock
        self.hall_id = hall.hall.id
        self.window_ids = [w.id for w in hall.windows]
        self._rounds_day: date | None = None
        self._rounds_started: set[str] = set()

    def now(self) -> datetime:
        return self.clock().astimezone(HALL_TZ)

    # ------------------------------------------------------------ rounds

    def _live_states(self, session: Session) -> dict[str, dict[str, Any]]:
        rows = {r.id: r for r in session.scalars(select(WindowRow).where(WindowRow.hall_id == self.hall_id))}
        states: dict[str, dict[str, Any]] = {}
        for window_id in self.window_ids:
            row = rows.get(window_id)
            if row is None:
                states[window_id] = {"state": "unknown"}
                continue
            states[window_id] = {
                "state": row.state,
                "occupant": row.occupant,
                "pause_reason": row.pause_reason if row.paused else None,
                "since": hall_iso(row.state_since),
            }
        return states

    @staticmethod
    def _states(snapshot: dict[str, Any]) -> dict[str, LiveState]:
        return {
            w: LiveState(
                state=s.get("state") or "unknown",
                occupant=s.get("occupant"),
                pause_reason=s.get("pause_reason"),
                since=datetime.fromisoformat(s["since"]) if s.get("since") else None,
            )
            for w, s in snapshot.items()
        }

    def start_round(self, officer: str, kind: str = "hall", name: str | None = None) -> RoundView:
        """Start a round now, draft findings from the alerts since the previous round, return its checklist."""
        if kind not in rules.ROUND_KIND_ZH:
            raise Conflict(f"unknown kind of round {kind!r}; kinds: {', '.join(rules.ROUND_KIND_ZH)}")
        officer = officer.strip()
        if not officer:
            raise Conflict("a round needs its officer")
        now = self.now()
        day = now.date()
        scheduled_at: datetime | None = None
        if name is not None:
            if kind != "hall":
                raise Conflict(f"scheduled rounds are hall patrols; a {kind} round has no name")
            due = dict(rules.scheduled_rounds(day, self.policy, self.calendar))
            if name not in due:
                if not due:
                    raise Conflict(f"{day.isoformat()} is not a working day: no round is scheduled")
                raise Conflict(f"no round {name!r} is scheduled; this hall's rounds are {', '.join(due)}")
            scheduled_at = due[name]
        try:
            return self._start(officer, kind, name, now, scheduled_at)
        except IntegrityError as exc:
            # Another round started at the same moment (same scheduled round, or it drafted the same alerts).
            raise Conflict(f"another patrol round was started at the same time; reload and try again ({type(exc.orig).__name__})") from exc

    def start_due_rounds(self) -> list[RoundView]:
        """Open each scheduled round whose time has come today, pre-filled from the
        live state and the alerts since the previous round (run on every sweep).
        The officer on patrol then confirms or dismisses its drafts."""
        now = self.now()
        day = now.date()
        if self._rounds_day != day:
            self._rounds_day, self._rounds_started = day, {r.name for r in self.rounds_of_day(day) if r.name}
        try:
            due = rules.scheduled_rounds(day, self.policy, self.calendar)
        except CalendarGapError:
            return []
        started = []
        for name, at in due:
            if at <= now and name not in self._rounds_started:
                try:
                    started.append(self._start(AUTO_OFFICER, "hall", name, now, at))
                except (Conflict, IntegrityError):
                    pass  # started by hand meanwhile
                self._rounds_started.add(name)
        return started

    def _start(self, officer: str, kind: str, name: str | None, now: datetime, scheduled_at: datetime | None) -> RoundView:
        day = now.date()
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            if name is not None:
                done = session.scalars(
                    select(PatrolRoundRow).where(
                        PatrolRoundRow.hall_id == self.hall_id, PatrolRoundRow.day == day, PatrolRoundRow.name == name
                    )
                ).first()
                if done is not None:
                    raise Conflict(
                        f"{name} of {day.isoformat()} was already started at "
                        f"{done.started_at.astimezone(HALL_TZ):%H:%M} by {done.started_by} (round {done.id})"
                    )
            previous = session.scalars(
                select(PatrolRoundRow)
                .where(PatrolRoundRow.hall_id == self.hall_id, PatrolRoundRow.started_at <= now)
                .order_by(PatrolRoundRow.started_at.desc(), PatrolRoundRow.id.desc())
                .limit(1)
            ).first()
            period_start = previous.started_at if previous else datetime.combine(day, time.min, HALL_TZ)
            round_row = PatrolRoundRow(
                hall_id=self.hall_id,
                kind=kind,
                name=name,
                day=day,
                scheduled_at=scheduled_at,
                period_start=period_start,
                started_at=now,
                started_by=officer,
                window_states=self._live_states(session),
            )
            session.add(round_row)
            session.flush()
            already = exists().where(FindingRow.alert_id == AlertRow.id)
            alert_rows = session.scalars(
                select(AlertRow).where(
                    AlertRow.window_id.in_(self.window_ids),
                    AlertRow.raised_at < now,
                    or_(AlertRow.cleared_at.is_(None), AlertRow.cleared_at > period_start),
                    ~already,
                )
            ).all()
            ids = {(r.window_id, r.type, r.raised_at): r.id for r in alert_rows}
            for draft in rules.draft_findings([alert_of(r) for r in alert_rows], period_start, now):
                assert draft.alert_key is not None
                session.add(_new_row(self.hall_id, replace(draft, round_id=round_row.id), ids[draft.alert_key]))
            session.flush()
            return self._view(session, round_row)

    def finish_round(self, round_id: int, actor: str) -> RoundView:
        now = self.now()
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            row = self._round_row(session, round_id)
            if row.ended_at is not None:
                raise Conflict(f"round {round_id} already ended at {row.ended_at.astimezone(HALL_TZ).isoformat()} ({row.ended_by})")
            row.ended_at, row.ended_by = now, actor
            session.flush()
            return self._view(session, row)

    def _round_row(self, session: Session, round_id: int) -> PatrolRoundRow:
        row = session.get(PatrolRoundRow, round_id)
        if row is None or row.hall_id != self.hall_id:
            raise NotFound(f"no patrol round {round_id}")
        return row

    def _view(self, session: Session, row: PatrolRoundRow) -> RoundView:
        findings = tuple(
            finding_of(f)
            for f in session.scalars(select(FindingRow).where(FindingRow.round_id == row.id).order_by(FindingRow.id))
        )
        entries = rules.checklist(self.hall.windows, self._states(row.window_states), findings)
        return RoundView(round_of(row), entries, findings)

    def get_round(self, round_id: int) -> RoundView:
        with Session(self.engine) as session:
            return self._view(session, self._round_row(session, round_id))

    def rounds_of_day(self, day: date) -> list[PatrolRound]:
        with Session(self.engine) as session:
            rows = session.scalars(
                select(PatrolRoundRow)
                .where(PatrolRoundRow.hall_id == self.hall_id, PatrolRoundRow.day == day)
                .order_by(PatrolRoundRow.started_at, PatrolRoundRow.id)
            )
            return [round_of(r) for r in rows]

    def findings_of_round(self, round_id: int) -> list[Finding]:
        with Session(self.engine) as session:
            self._round_row(session, round_id)
            rows = session.scalars(select(FindingRow).where(FindingRow.round_id == round_id).order_by(FindingRow.id))
            return [finding_of(r) for r in rows]

    # ------------------------------------------------------------ findings

    def add_finding(
        self,
        window: str,
        category: str,
        note: str,
        officer: str,
        *,
        round_id: int | None = None,
        observed_at: datetime | None = None,
        source: str = "",
    ) -> Finding:
        """A finding the officer saw (a draft, to be confirmed like any other)."""
        now = self.now()
        f = rules.new_finding(window, category, note, officer, now, observed_at=observed_at, source=source, round_id=round_id)
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            if round_id is not None:
                self._round_row(session, round_id)
            row = _new_row(self.hall_id, f, None)
            session.add(row)
            session.flush()
            return finding_of(row)

    def get_finding(self, finding_id: int) -> Finding:
        with Session(self.engine) as session:
            return finding_of(self._finding_row(session, finding_id))

    def _finding_row(self, session: Session, finding_id: int) -> FindingRow:
        row = session.get(FindingRow, finding_id)
        if row is None or row.hall_id != self.hall_id:
            raise NotFound(f"no finding {finding_id}")
        return row

    def list_findings(self, window: str | None = None, status: str | None = None, limit: int = 200) -> list[Finding]:
        query = select(FindingRow).where(FindingRow.hall_id == self.hall_id)
        if window:
            query = query.where(FindingRow.window_id == window)
        if status:
            query = query.where(FindingRow.status == status)
        query = query.order_by(FindingRow.observed_at.desc(), FindingRow.id.desc()).limit(limit)
        with Session(self.engine) as session:
            return [finding_of(r) for r in session.scalars(query)]

    def transition(self, finding_id: int, action: str, actor: str, reason: str = "") -> Finding:
        """Apply one action (confirm, dismiss, dispute, uphold, overturn, rectify) now.

        Raises NotFound, or TransitionError with the rule's reason (also when
        another request changed the finding in between).
        """
        now = self.now()
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            row = self._finding_row(session, finding_id)
            before = finding_of(row)
            after = rules.apply(before, action, actor, reason, now, self.policy, self.calendar)
            step = after.history[-1]
            values: dict[str, Any] = {"status": after.status}
            if after.status == "confirmed":
                values["confirmed_at"] = step.at
            if after.status in rules.FINAL:
                values["resolved_at"] = step.at
            # Compare-and-set: a concurrent transition of the same finding makes this one fail.
            changed = session.execute(
                update(FindingRow)
                .where(FindingRow.id == finding_id, FindingRow.status == before.status)
                .values(**values)
                .execution_options(synchronize_session=False)
            ).rowcount
            if changed != 1:
                raise TransitionError(f"finding {finding_id} was changed by another request; reload it and try again")
            session.add(FindingStepRow(finding_id=finding_id, status=step.status, at=step.at, actor=step.actor, reason=step.reason))
            session.flush()
            session.expire(row)
            return finding_of(self._finding_row(session, finding_id))

    # ------------------------------------------------------------ bulletins

    def bulletin(self, week_start: date) -> Bulletin:
        """The weekly bulletin (statuses as at the end of the week)."""
        if week_start.weekday() != 0:
            raise ValueError(f"a bulletin week starts on a Monday; {week_start.isoformat()} is a {week_start.strftime('%A')}")
        start = datetime.combine(week_start, time.min, HALL_TZ)
        end = start + timedelta(days=7)
        with Session(self.engine) as session:
            rows = session.scalars(
                select(FindingRow).where(
                    FindingRow.hall_id == self.hall_id,
                    FindingRow.confirmed_at.is_not(None),
                    FindingRow.confirmed_at < end,
                    or_(FindingRow.resolved_at.is_(None), FindingRow.resolved_at >= start),
                )
            ).all()
            findings = [finding_of(r) for r in rows]
            rounds = [
                round_of(r)
                for r in session.scalars(
                    select(PatrolRoundRow).where(
                        PatrolRoundRow.hall_id == self.hall_id, PatrolRoundRow.started_at >= start, PatrolRoundRow.started_at < end
                    )
                )
            ]
        return rules.weekly_bulletin(
            findings, week_start, self.calendar, policy=self.policy, windows=self.hall.windows, rounds=rounds
        )

    def window_names(self) -> dict[str, tuple[str, str]]:
        return {w.id: (w.name, w.department) for w in self.hall.windows}

