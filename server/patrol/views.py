"""What the patrol API answers with: the JSON of a finding, a round and its checklist, a bulletin.

:class:`PatrolViews` is built once per router from the hall's
:class:`~server.patrol.service.PatrolService`: a finding's JSON needs the
hall's windows (name, department), the policy and the working-day calendar
(its dispute deadline) and the service's clock (whether it can still be
disputed).  The routes are in :mod:`server.patrol.api`, the .xlsx bulletin in
:mod:`server.patrol.sheet`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from broker.timeutil import HALL_TZ, hall_iso
from server.patrol.service import PatrolService, RoundView
from server.rules import patrol as rules
from server.rules.calendar import CalendarGapError
from server.rules.patrol import Bulletin, BulletinItem, ChecklistEntry, Finding, PatrolRound


def span(f: Finding) -> str:
    """When a finding was seen, in hall time: ``2026-03-02 09:40``, ``…–10:15`` when it lasted."""
    start = f.observed_at.astimezone(HALL_TZ)
    text = start.strftime("%Y-%m-%d %H:%M")
    if f.observed_until is not None:
        end = f.observed_until.astimezone(HALL_TZ)
        text += "–" + (end.strftime("%H:%M") if end.date() == start.date() else end.strftime("%Y-%m-%d %H:%M"))
    return text


class PatrolViews:
    """The JSON shapes of one hall's patrol API (its windows, policy and calendar are fixed when the router is built)."""

    def __init__(self, service: PatrolService) -> None:
        self.service = service
        self.hall, self.policy, self.calendar = service.hall, service.policy, service.calendar
        self.windows = {w.id: w for w in self.hall.windows}
        self.window_list = ", ".join(self.windows)

    def deadline_of(self, f: Finding) -> tuple[str | None, str | None]:
        """The last day to dispute ``f`` (ISO), or why the calendar cannot tell; both None before confirmation."""
        if f.confirmed_at is None:
            return None, None
        try:
            return rules.dispute_deadline(rules.local_day(f.confirmed_at), self.policy, self.calendar).isoformat(), None
        except CalendarGapError as exc:
            return None, str(exc)

    def finding_json(self, f: Finding) -> dict[str, Any]:
        spec = self.windows.get(f.window)
        deadline, deadline_error = self.deadline_of(f)
        actions = list(rules.next_actions(f))
        if "dispute" in actions and (deadline is None or self.service.now().date() > date.fromisoformat(deadline)):
            actions.remove("dispute")
        return {
            "id": f.id,
            "round_id": f.round_id,
            "window_id": f.window,
            "window_name": spec.name if spec else f.window,
            "department": spec.department if spec else "",
            "category": f.category,
            "category_zh": f.category_zh,
            "category_en": rules.CATEGORIES[f.category].name_en if f.category in rules.CATEGORIES else f.category,
            "origin": f.origin,
            "status": f.status,
            "status_zh": rules.STATUS_ZH[f.status],
            "observed_at": hall_iso(f.observed_at),
            "observed_until": hall_iso(f.observed_until),
            "note": f.note,
            "facts": dict(f.facts),
            "rule": f.rule,
            "basis": f.basis,
            "evidence": f.evidence,
            "alert_type": f.alert_type,
            "confirmed_at": hall_iso(f.confirmed_at),
            "dispute_deadline": deadline,
            "dispute_deadline_error": deadline_error,
            "actions": actions,
            "history": [
                {"status": s.status, "status_zh": rules.STATUS_ZH[s.status], "at": hall_iso(s.at), "actor": s.actor, "reason": s.reason}
                for s in f.history
            ],
        }

    @staticmethod
    def round_json(r: PatrolRound) -> dict[str, Any]:
        end = r.ended_at
        return {
            "id": r.id,
            "kind": r.kind,
            "kind_zh": rules.ROUND_KIND_ZH[r.kind],
            "name": r.name,
            "scheduled_at": hall_iso(r.scheduled_at),
            "started_at": hall_iso(r.started_at),
            "officer": r.officer,
            "period_start": hall_iso(r.period_start),
            "ended_at": hall_iso(end),
            "ended_by": r.ended_by,
            "minutes": int((end - r.started_at).total_seconds() // 60) if end else None,
        }

    def entry_json(self, e: ChecklistEntry) -> dict[str, Any]:
        return {
            "window_id": e.window,
            "window_name": e.name,
            "department": e.department,
            "state": e.state,
            "state_zh": e.state_zh,
            "occupant": e.occupant,
            "hint": e.hint,
            "items": [
                {"category": i.category, "name_zh": i.name_zh, "result": i.result, "finding_ids": [f.id for f in i.findings]}
                for i in e.items
            ],
            "findings": [self.finding_json(f) for f in e.findings],
        }

    def view_json(self, view: RoundView) -> dict[str, Any]:
        return self.round_json(view.round) | {"checklist": [self.entry_json(e) for e in view.checklist]}

    def item_json(self, number: int, it: BulletinItem) -> dict[str, Any]:
        return {
            "no": number,
            "time": span(it.finding),
            "status": it.status,
            "status_zh": rules.STATUS_ZH[it.status],
            "confirmed_week": f"{it.confirmed_week[0]}-W{it.confirmed_week[1]:02d}",
            "dispute_deadline": it.dispute_deadline.isoformat() if it.dispute_deadline else None,
            "handling": it.handling,
            "carried_reason": it.carried_reason,
            "finding": self.finding_json(it.finding),
        }

    def bulletin_json(self, b: Bulletin) -> dict[str, Any]:
        c = b.coverage
        return {
            "title": b.title,
            "hall": self.hall.hall.name,
            "week_start": b.week_start.isoformat(),
            "week_end": b.week_end.isoformat(),
            "iso_year": b.iso_year,
            "week_number": b.week_number,
            "working_days": [d.isoformat() for d in b.working_days],
            "issue_day": b.issue_day.isoformat() if b.issue_day else None,
            "items": [self.item_json(i, it) for i, it in enumerate(b.items, 1)],
            "by_window": [
                {"window_id": s.window, "window_name": s.name, "department": s.department, "count": s.count, "by_category": dict(s.by_category)}
                for s in b.by_window
            ],
            "by_department": dict(b.by_department),
            "overturned": b.overturned,
            "carried_over": [self.item_json(i, it) for i, it in enumerate(b.carried_over, 1)],
            "coverage": None
            if c is None
            else {
                "hall_rounds_done": c.hall_rounds_done,
                "hall_rounds_expected": c.hall_rounds_expected,
                "hall_rounds_met": c.hall_rounds_met,
                "cctv_minutes": c.cctv_minutes,
                "cctv_minutes_required": c.cctv_minutes_required,
                "cctv_met": c.cctv_met,
            },
        }
