"""Attendance over HTTP: a month's results, the monthly sheet (xlsx), make-up punch requests,
and the leave register (请假、外出、替岗登记).

Reading needs a logged-in user; filing and deciding make-up punches and
registering leave need their permissions, and the decider is the logged-in
user.  A window lead registers leave only for their own department's windows.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from pydantic import AwareDatetime, BaseModel, Field

from broker.timeutil import HALL_TZ
from server.attendance.leave import LeaveEntry, LeaveRegister, RegisterError, parse_csv
from server.attendance.service import AttendanceService, day_json, makeup_json, month_json
from server.attendance.today import TodayAttendance
from server.config.hall import HallConfig
from server.users.authority import Authority
from server.rules.attendance import MakeUpRefused, MakeUpTransitionError
from server.rules.calendar import CalendarGapError
from server.users.accounts import Principal

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class MakeUpFiling(BaseModel):
    person_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    claimed_at: AwareDatetime
    reason: str = Field(min_length=1, max_length=200)


class Decision(BaseModel):
    note: str = Field(default="", max_length=200)


def attendance_router(service: AttendanceService, today: TodayAttendance, authority: Authority) -> APIRouter:
    router = APIRouter(prefix="/api/attendance", tags=["attendance"], dependencies=[Depends(authority.principal)])
    decider = Depends(authority.require("makeups.decide"))
    Year = Path(ge=2000, le=2099)
    Month = Path(ge=1, le=12)

    def month_of(year: int, month: int) -> list[Any]:
        try:
            return service.month(year, month)
        except CalendarGapError as exc:
            raise HTTPException(409, str(exc)) from None

    @router.get("/today")
    def get_today() -> dict[str, Any]:
        """Today so far: head counts (应到/已到/迟到/未到) and each person's half-days (pending ones included)."""
        try:
            day, people = today.people()
        except CalendarGapError as exc:
            raise HTTPException(409, str(exc)) from None
        return {
            "day": day.isoformat(),
            "summary": today.summary(people),
            "people": [
                {"person_id": p.person, "name": p.name, "window": p.window, "progress": asdict(p.progress), "day": day_json(p.day)} for p in people
            ],
        }

    @router.get("/{year}/{month}")
    def get_month(year: int = Year, month: int = Month) -> list[dict[str, Any]]:
        """Everyone's half-days and monthly summary (with escalations and their sources)."""
        return [month_json(name, window, result) for name, window, result in month_of(year, month)]

    @router.get("/{year}/{month}/sheet.xlsx", response_class=Response)
    def get_sheet(year: int = Year, month: int = Month) -> Response:
        """The monthly attendance sheet (月度考勤表), laid out as a hall office keeps it."""
        month_of(year, month)  # a calendar gap answers 409 before building the workbook
        data = service.sheet(year, month)
        return Response(data, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="attendance-{year}-{month:02d}.xlsx"'})

    @router.get("/makeups")
    def list_makeups(state: Literal["requested", "approved", "rejected"] | None = None, since: date | None = None) -> list[dict[str, Any]]:
        return [makeup_json(r) for r in service.requests(state, since)]

    @router.post("/makeups", status_code=201)
    def file(filing: MakeUpFiling, by: Principal = Depends(authority.require("makeups.file"))) -> dict[str, Any]:
        """File a make-up punch (补卡); refused with the rule and its source when the policy says no."""
        rostered = [w.id for w in service.hall.windows if filing.person_id in w.clerks]
        authority.check_scope(by, service.hall.departments_of(rostered), f"clerk {filing.person_id}")
        try:
            return makeup_json(service.file(filing.person_id, filing.claimed_at, filing.reason))
        except MakeUpRefused as exc:
            raise HTTPException(422, {"reason": str(exc), "rule": exc.rule, "source": exc.source}) from None

    def decide(request_id: int, decision: Decision, approve: bool, by: Principal) -> dict[str, Any]:
        try:
            row = service.decide(request_id, approve, by.name, decision.note)
        except MakeUpTransitionError as exc:
            raise HTTPException(409, str(exc)) from None
        if row is None:
            raise HTTPException(404, f"no make-up request {request_id}")
        return makeup_json(row)

    @router.post("/makeups/{request_id}/approve")
    def approve(request_id: int, decision: Decision, by: Principal = decider) -> dict[str, Any]:
        return decide(request_id, decision, True, by)

    @router.post("/makeups/{request_id}/reject")
    def reject(request_id: int, decision: Decision, by: Principal = decider) -> dict[str, Any]:
        return decide(request_id, decision, False, by)

    return router


def leave_router(register: LeaveRegister, hall: HallConfig, authority: Authority) -> APIRouter:
    """``/api/leaves``: the register entries of a day, adding entries, and a CSV import."""
    router = APIRouter(tags=["attendance"], dependencies=[Depends(authority.principal)])
    writer = Depends(authority.require("leaves.write"))
    window_ids = {w.id for w in hall.windows}

    @router.get("/api/leaves")
    def get_leaves(day: date) -> list[dict[str, Any]]:
        """Register entries that touch a day (hall time)."""
        start = datetime.combine(day, datetime.min.time(), HALL_TZ)
        return register.between(start, start + timedelta(days=1))

    def register_leaves(entries: list[LeaveEntry], by: Principal) -> list[int]:
        """All or nothing: a window lead registers only for their own department's windows.  The scope is
        checked once every window is known (an unknown one is a 422 naming it, for everyone)."""
        named = {e.window_id for e in entries}
        if named and named <= window_ids:
            authority.check_scope(by, hall.departments_of(named), "window " + ", ".join(sorted(named)))
        try:
            return register.add(entries)
        except RegisterError as exc:
            raise HTTPException(422, {"problems": exc.problems}) from None

    @router.post("/api/leaves")
    def add_leaves(entries: list[LeaveEntry], by: Principal = writer) -> dict[str, list[int]]:
        return {"ids": register_leaves(entries, by)}

    @router.post("/api/leaves/import")
    async def import_leaves(request: Request, by: Principal = writer) -> dict[str, int]:
        """Bulk import a register CSV (UTF-8); all or nothing, every bad row reported."""
        raw = await request.body()
        try:
            entries = parse_csv(raw.decode("utf-8"), hall)
        except UnicodeDecodeError:
            raise HTTPException(422, {"problems": ["file: not UTF-8 text (save the CSV as UTF-8)"]}) from None
        except RegisterError as exc:
            raise HTTPException(422, {"problems": exc.problems}) from None
        return {"imported": len(register_leaves(entries, by))}

    return router
