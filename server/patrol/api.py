"""REST API of patrols (巡查), findings and the weekly bulletin (通报).

``patrol_router(PatrolService(engine, hall, policy, calendar, clock))`` returns a router
the server includes; the rules are in :mod:`server.rules.patrol`, storage in
:mod:`server.patrol.service`, the workflow in ``docs/patrols.md``.

Every input is validated by pydantic (422 naming the field and value); a
transition the workflow refuses answers 409 with the reason.  Reading needs a
logged-in user; each step needs its permission (server/users/accounts.py), and the
actor of a step is the logged-in user, never a name typed in the request.
"""

# No ``from __future__ import annotations``: the request models are built per
# router (they know the hall's windows and rounds), and FastAPI must resolve
# the endpoint annotations at runtime.

import io
from datetime import date, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.exceptions import RequestValidationError
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from broker.timeutil import HALL_TZ, hall_iso
from server.users.authority import Authority
from server.patrol.service import Conflict, NotFound, PatrolService, RoundView
from server.rules import patrol as rules
from server.rules.calendar import CalendarGapError
from server.sheet_style import BOX, CENTER, HEAD_FILL, print_on_a4
from server.users.accounts import Principal
from server.rules.patrol import Bulletin, BulletinItem, ChecklistEntry, Finding, PatrolRound, TransitionError

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BULLETIN_COLUMNS = ("序号", "窗口", "部门", "时间", "问题类别", "情况描述", "依据", "状态", "异议/处理")
CARRIED_COLUMNS = ("序号", "窗口", "部门", "时间", "问题类别", "情况描述", "通报周次", "状态", "未解决原因", "异议/处理")

_REASON = Field(min_length=1, max_length=1000)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Confirmation(_Body):
    note: str = Field("", max_length=1000)


class Decision(_Body):
    """A step that needs a reason: dismiss, dispute, uphold, overturn, rectify (整改情况)."""

    reason: str = _REASON


def _span(f: Finding) -> str:
    start = f.observed_at.astimezone(HALL_TZ)
    text = start.strftime("%Y-%m-%d %H:%M")
    if f.observed_until is not None:
        end = f.observed_until.astimezone(HALL_TZ)
        text += "–" + (end.strftime("%H:%M") if end.date() == start.date() else end.strftime("%Y-%m-%d %H:%M"))
    return text


def _invalid(loc: tuple[str | int, ...], msg: str, value: Any) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": msg, "input": value}])


def patrol_router(service: PatrolService, authority: Authority) -> APIRouter:
    """The patrol endpoints of one hall (see the module docstring and docs/patrols.md)."""
    hall, policy, calendar = service.hall, service.policy, service.calendar
    windows = {w.id: w for w in hall.windows}
    window_list = ", ".join(windows)
    round_names = [r.name for r in policy.patrols.rounds]
    router = APIRouter(tags=["patrols"], dependencies=[Depends(authority.principal)])
    patrol = Depends(authority.require("patrols.run"))

    def check_window(value: str) -> str:
        if value not in windows:
            raise ValueError(f"unknown window {value!r}; this hall's windows are {window_list}")
        return value

    class StartRound(_Body):
        kind: Literal["hall", "cctv"] = "hall"
        """``hall``: a walk through the hall (大厅巡查); ``cctv``: a CCTV session (监控巡查), finished with /finish."""
        round: str | None = Field(None, description="the scheduled round it fulfils, e.g. 上午巡查; none for an unscheduled round")

        @field_validator("round")
        @classmethod
        def _known_round(cls, value: str | None) -> str | None:
            if value is not None and value not in round_names:
                raise ValueError(f"unknown round {value!r}; this hall's rounds are {', '.join(round_names)}")
            return value

    class NewFinding(_Body):
        window: str
        category: rules.CategoryName
        note: str = Field(min_length=1, max_length=1000)
        round_id: int | None = Field(None, ge=1)
        observed_at: datetime | None = None
        """When it was seen (default: now).  A time without offset is hall time."""
        basis: str = Field("", max_length=1000)
        """The rule it breaks, if not the category's default citation."""

        @field_validator("window")
        @classmethod
        def _known_window(cls, value: str) -> str:
            return check_window(value)

        @field_validator("observed_at")
        @classmethod
        def _hall_time(cls, value: datetime | None) -> datetime | None:
            if value is not None and value.tzinfo is None:
                value = value.replace(tzinfo=HALL_TZ)
            return value

    # ---------------------------------------------------------------- JSON

    def deadline_of(f: Finding) -> tuple[str | None, str | None]:
        if f.confirmed_at is None:
            return None, None
        try:
            return rules.dispute_deadline(rules.local_day(f.confirmed_at), policy, calendar).isoformat(), None
        except CalendarGapError as exc:
            return None, str(exc)

    def finding_json(f: Finding) -> dict[str, Any]:
        spec = windows.get(f.window)
        deadline, deadline_error = deadline_of(f)
        actions = list(rules.next_actions(f))
        if "dispute" in actions and (deadline is None or service.now().date() > date.fromisoformat(deadline)):
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

    def entry_json(e: ChecklistEntry) -> dict[str, Any]:
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
            "findings": [finding_json(f) for f in e.findings],
        }

    def view_json(view: RoundView) -> dict[str, Any]:
        return round_json(view.round) | {"checklist": [entry_json(e) for e in view.checklist]}

    def item_json(number: int, it: BulletinItem) -> dict[str, Any]:
        return {
            "no": number,
            "time": _span(it.finding),
            "status": it.status,
            "status_zh": rules.STATUS_ZH[it.status],
            "confirmed_week": f"{it.confirmed_week[0]}-W{it.confirmed_week[1]:02d}",
            "dispute_deadline": it.dispute_deadline.isoformat() if it.dispute_deadline else None,
            "handling": it.handling,
            "carried_reason": it.carried_reason,
            "finding": finding_json(it.finding),
        }

    def bulletin_json(b: Bulletin) -> dict[str, Any]:
        c = b.coverage
        return {
            "title": b.title,
            "hall": hall.hall.name,
            "week_start": b.week_start.isoformat(),
            "week_end": b.week_end.isoformat(),
            "iso_year": b.iso_year,
            "week_number": b.week_number,
            "working_days": [d.isoformat() for d in b.working_days],
            "issue_day": b.issue_day.isoformat() if b.issue_day else None,
            "items": [item_json(i, it) for i, it in enumerate(b.items, 1)],
            "by_window": [
                {"window_id": s.window, "window_name": s.name, "department": s.department, "count": s.count, "by_category": dict(s.by_category)}
                for s in b.by_window
            ],
            "by_department": dict(b.by_department),
            "overturned": b.overturned,
            "carried_over": [item_json(i, it) for i, it in enumerate(b.carried_over, 1)],
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

    # ---------------------------------------------------------------- errors

    def run(call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        except (TransitionError, Conflict, CalendarGapError) as exc:
            raise HTTPException(409, str(exc)) from exc

    def monday(value: date) -> date:
        if value.weekday() != 0:
            raise _invalid(
                ("path", "week_start"),
                f"a bulletin week starts on a Monday; {value.isoformat()} is a {value.strftime('%A')} "
                f"(that week starts on {(value - timedelta(days=value.weekday())).isoformat()})",
                value.isoformat(),
            )
        return value

    # ---------------------------------------------------------------- rounds

    @router.post("/api/patrols", status_code=201)
    def start_round(body: StartRound, officer: Principal = patrol) -> dict[str, Any]:
        """Start a patrol round now, the logged-in user its officer: drafts findings from the alerts since the previous round; returns the checklist."""
        return view_json(run(service.start_round, officer.name, body.kind, body.round))

    @router.get("/api/patrols")
    def list_rounds(day: date | None = None) -> dict[str, Any]:
        """A day's rounds (default today) and whether each scheduled round was done."""
        day = day or service.now().date()
        rounds = service.rounds_of_day(day)
        try:
            due = rules.scheduled_rounds(day, policy, calendar)
            working: bool | None = calendar.is_working_day(day)
            gap = None
        except CalendarGapError as exc:
            due, working, gap = (), None, str(exc)
        by_name = {r.name: r for r in rounds if r.name}
        return {
            "day": day.isoformat(),
            "working_day": working,
            "calendar_error": gap,
            "scheduled": [
                {"name": name, "at": hall_iso(at), "round_id": by_name[name].id if name in by_name else None,
                 "started_at": hall_iso(by_name[name].started_at) if name in by_name else None}
                for name, at in due
            ],
            "rounds": [round_json(r) for r in rounds],
        }

    @router.get("/api/patrols/{round_id}")
    def get_round(round_id: int) -> dict[str, Any]:
        """A round and its checklist (window states at its start, findings as they are now)."""
        return view_json(run(service.get_round, round_id))

    @router.post("/api/patrols/{round_id}/finish")
    def finish_round(round_id: int, officer: Principal = patrol) -> dict[str, Any]:
        """End a round (its length counts towards the weekly CCTV patrol time)."""
        return view_json(run(service.finish_round, round_id, officer.name))

    # ---------------------------------------------------------------- findings

    @router.get("/api/finding-categories")
    def finding_categories() -> list[dict[str, str]]:
        """The kinds of finding an officer records, with the rule each breaks (for the page's form)."""
        return [
            {"name": name, "name_zh": c.name_zh, "name_en": c.name_en, "seen_by": c.seen_by, "basis": c.basis}
            for name, c in rules.CATEGORIES.items()
        ]

    @router.get("/api/findings")
    def list_findings(
        window: str | None = None,
        status: Literal["draft", "confirmed", "dismissed", "disputed", "upheld", "overturned", "rectified"] | None = None,
        limit: int = Query(200, ge=1, le=1000),
    ) -> list[dict[str, Any]]:
        """Findings newest first; a window lead filters by ``window``."""
        if window is not None and window not in windows:
            raise _invalid(("query", "window"), f"unknown window {window!r}; this hall's windows are {window_list}", window)
        return [finding_json(f) for f in service.list_findings(window, status, limit)]

    @router.post("/api/findings", status_code=201)
    def add_finding(body: NewFinding, officer: Principal = patrol) -> dict[str, Any]:
        """Record what the officer saw (a draft, confirmed like any other)."""
        now = service.now()
        if body.observed_at is not None and body.observed_at > now + timedelta(minutes=5):
            raise _invalid(("body", "observed_at"), f"observed_at {body.observed_at.isoformat()} is in the future (now {now.isoformat()})", body.observed_at.isoformat())
        try:
            f = service.add_finding(
                body.window, body.category, body.note, officer.name, round_id=body.round_id, observed_at=body.observed_at, source=body.basis
            )
        except NotFound as exc:
            raise _invalid(("body", "round_id"), str(exc), body.round_id) from exc
        except TransitionError as exc:
            raise HTTPException(409, str(exc)) from exc
        return finding_json(f)

    @router.get("/api/findings/{finding_id}")
    def get_finding(finding_id: int) -> dict[str, Any]:
        return finding_json(run(service.get_finding, finding_id))

    @router.post("/api/findings/{finding_id}/confirm")
    def confirm(finding_id: int, body: Confirmation, officer: Principal = patrol) -> dict[str, Any]:
        """The officer confirms a draft: it is reported, and the window lead's dispute period starts."""
        return finding_json(run(service.transition, finding_id, "confirm", officer.name, body.note))

    def decision(action: str, permission: str, doc: str) -> None:
        def endpoint(finding_id: int, body: Decision, actor: Principal = Depends(authority.require(permission))) -> dict[str, Any]:
            window = run(service.get_finding, finding_id).window
            authority.check_scope(actor, hall.departments_of([window]), f"finding {finding_id} (window {window})")
            return finding_json(run(service.transition, finding_id, action, actor.name, body.reason))

        endpoint.__doc__ = doc
        router.add_api_route(f"/api/findings/{{finding_id}}/{action}", endpoint, methods=["POST"], name=action)

    decision("dismiss", "patrols.run", "The officer dismisses a draft; the reason is required (e.g. the clerk had paused properly).")
    decision("dispute", "findings.dispute", "The window lead disputes a confirmed finding within the dispute period (再核实); reason required.")
    decision("uphold", "findings.decide", "The re-check keeps the finding (异议不成立); someone other than the disputer decides; reason required.")
    decision("overturn", "findings.decide", "The re-check withdraws the finding (异议成立); someone other than the disputer decides; reason required.")
    decision("rectify", "findings.rectify", "The window reports the problem corrected (整改情况) — a confirmed or upheld finding stops being carried over.")

    # ---------------------------------------------------------------- bulletins

    @router.get("/api/bulletins/{week_start}.xlsx")
    def bulletin_xlsx(week_start: date) -> Response:
        """The weekly bulletin as the hall office keeps it (sheet 1: the week; sheet 2: items carried over)."""
        b = run(service.bulletin, monday(week_start))
        return Response(
            bulletin_workbook(b, hall.hall.name, windows),
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="bulletin-{week_start.isoformat()}.xlsx"'},
        )

    @router.get("/api/bulletins/{week_start}")
    def bulletin(week_start: date) -> dict[str, Any]:
        """The weekly bulletin (通报) of the week starting Monday ``week_start``, statuses as at the end of that week."""
        return bulletin_json(run(service.bulletin, monday(week_start)))

    return router


# -------------------------------------------------------------------- xlsx

_WRAP = Alignment(wrap_text=True, vertical="top")


def _sheet(ws: Any, title: str, subtitle: str, columns: tuple[str, ...], widths: tuple[int, ...], rows: list[list[Any]]) -> None:
    last = get_column_letter(len(columns))
    ws.append([title])
    ws.merge_cells(f"A1:{last}1")
    ws["A1"].font = Font(name="宋体", size=16, bold=True)
    ws["A1"].alignment = CENTER
    ws.row_dimensions[1].height = 30
    ws.append([subtitle])
    ws.merge_cells(f"A2:{last}2")
    ws["A2"].alignment = Alignment(horizontal="left", vertical="center")
    ws.append(list(columns))
    for col, width in enumerate(widths, 1):
        cell = ws.cell(row=3, column=col)
        cell.font = Font(bold=True)
        cell.fill = HEAD_FILL
        cell.alignment = CENTER
        cell.border = BOX
        ws.column_dimensions[get_column_letter(col)].width = width
    for row in rows:
        ws.append(row)
        for col in range(1, len(columns) + 1):
            cell = ws.cell(row=ws.max_row, column=col)
            cell.border = BOX
            cell.alignment = _WRAP
    if not rows:
        ws.append(["（无）"])
        ws.merge_cells(f"A4:{last}4")
    print_on_a4(ws, "A4", "3:3")


def bulletin_workbook(b: Bulletin, hall_name: str, windows: dict[str, Any]) -> bytes:
    """The bulletin as an .xlsx file (bytes)."""

    def names(f: Finding) -> tuple[str, str]:
        spec = windows.get(f.window)
        return (spec.name, spec.department) if spec else (f.window, "")

    wb = Workbook()
    ws = wb.active
    ws.title = "本周通报"
    period = f"{b.week_start.isoformat()} 至 {b.week_end.isoformat()}"
    issued = f"，通报日期 {b.issue_day.isoformat()}" if b.issue_day else "，本周无工作日"
    rows = []
    for number, it in enumerate(b.items, 1):
        f = it.finding
        window_name, department = names(f)
        rows.append([number, window_name, department, _span(f), f.category_zh, f.note, f.basis, rules.STATUS_ZH[it.status], it.handling])
    _sheet(ws, b.title, f"{hall_name}  {period}{issued}", BULLETIN_COLUMNS, (6, 12, 16, 20, 14, 48, 40, 14, 40), rows)

    summary: list[str] = []
    if b.by_department:
        summary.append("各部门问题数：" + "，".join(f"{d or '未知部门'} {n} 条" for d, n in b.by_department))
    if b.overturned:
        summary.append(f"经再核实撤销 {b.overturned} 条（不列入本通报）。")
    summary.append(f"遗留问题 {len(b.carried_over)} 条，转入下周重点关注（见“遗留问题”表）。")
    if b.coverage is not None:
        c = b.coverage
        summary.append(
            f"本周大厅巡查 {c.hall_rounds_done}/{c.hall_rounds_expected} 次；监控巡查 {c.cctv_minutes} 分钟"
            f"（要求不少于 {c.cctv_minutes_required} 分钟）{'' if c.cctv_met else '，未达要求'}。"
        )
    ws.append([])
    for line in summary:
        ws.append([line])
        ws.merge_cells(f"A{ws.max_row}:{get_column_letter(len(BULLETIN_COLUMNS))}{ws.max_row}")

    carried = wb.create_sheet("遗留问题")
    next_week = (b.week_start + timedelta(days=7)).isocalendar().week
    rows = []
    for number, it in enumerate(b.carried_over, 1):
        f = it.finding
        window_name, department = names(f)
        year, week = it.confirmed_week
        rows.append(
            [number, window_name, department, _span(f), f.category_zh, f.note, f"{year}年第{week}周",
             rules.STATUS_ZH[it.status], it.carried_reason, it.handling]
        )
    _sheet(
        carried,
        f"未解决问题（转入第{next_week}周重点关注）",
        f"{hall_name}  截至 {b.week_end.isoformat()}",
        CARRIED_COLUMNS,
        (6, 12, 16, 20, 14, 48, 12, 14, 16, 40),
        rows,
    )
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
