"""REST API of patrols (巡查), findings and the weekly bulletin (通报).

``patrol_router(PatrolService(engine, hall, policy, calendar, clock), authority)``
returns a router the server includes; the rules are in :mod:`server.rules.patrol`,
storage in :mod:`server.patrol.service`, the workflow in ``docs/patrols.md``.
This module holds only the routes, added by resource (rounds, findings, the
steps of a finding, bulletins); what they answer with is in
:mod:`server.patrol.views`, the .xlsx bulletin in :mod:`server.patrol.sheet`.

Every input is validated by pydantic (422 naming the field and value); a
transition the workflow refuses answers 409 with the reason.  Reading needs a
logged-in user; each step needs its permission (server/users/accounts.py), and the
actor of a step is the logged-in user, never a name typed in the request.
"""

# No ``from __future__ import annotations``: the request models are built per
# router (they know the hall's windows and rounds), and FastAPI must resolve
# the endpoint annotations at runtime.

from datetime import date, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from broker.timeutil import HALL_TZ, hall_iso
from server.patrol.service import Conflict, NotFound, PatrolService
from server.patrol.sheet import BULLETIN_COLUMNS, XLSX, bulletin_workbook
from server.patrol.views import PatrolViews
from server.rules import patrol as rules
from server.rules.calendar import CalendarGapError
from server.rules.patrol import TransitionError
from server.users.accounts import Principal
from server.users.authority import Authority

# BULLETIN_COLUMNS (the bulletin sheet's header, server/patrol/sheet.py) is also importable from here.
__all__ = ["BULLETIN_COLUMNS", "Confirmation", "Decision", "patrol_router"]

_REASON = Field(min_length=1, max_length=1000)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Confirmation(_Body):
    note: str = Field("", max_length=1000)


class Decision(_Body):
    """A step that needs a reason: dismiss, dispute, uphold, overturn, rectify (整改情况)."""

    reason: str = _REASON


def _invalid(loc: tuple[str | int, ...], msg: str, value: Any) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": msg, "input": value}])


def _run(call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)``, a missing row answering 404 and a refused transition 409."""
    try:
        return call(*args, **kwargs)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except (TransitionError, Conflict, CalendarGapError) as exc:
        raise HTTPException(409, str(exc)) from exc


def _monday(value: date) -> date:
    """``value`` when it is a Monday (a bulletin week starts on one), 422 otherwise."""
    if value.weekday() != 0:
        raise _invalid(
            ("path", "week_start"),
            f"a bulletin week starts on a Monday; {value.isoformat()} is a {value.strftime('%A')} "
            f"(that week starts on {(value - timedelta(days=value.weekday())).isoformat()})",
            value.isoformat(),
        )
    return value


def patrol_router(service: PatrolService, authority: Authority) -> APIRouter:
    """The patrol endpoints of one hall (see the module docstring and docs/patrols.md)."""
    views = PatrolViews(service)
    router = APIRouter(tags=["patrols"], dependencies=[Depends(authority.principal)])
    patrol = Depends(authority.require("patrols.run"))
    # The order the routes are added in is the order of the OpenAPI paths.
    _add_round_routes(router, service, views, patrol)
    _add_finding_routes(router, service, views, patrol)
    _add_step_routes(router, service, authority, views, patrol)
    _add_bulletin_routes(router, service, views)
    return router


def _add_round_routes(router: APIRouter, service: PatrolService, views: PatrolViews, patrol: Any) -> None:
    """/api/patrols: start, list, read and finish patrol rounds (``patrol`` is the patrols.run dependency)."""
    policy, calendar = service.policy, service.calendar
    round_names = [r.name for r in policy.patrols.rounds]

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

    @router.post("/api/patrols", status_code=201)
    def start_round(body: StartRound, officer: Principal = patrol) -> dict[str, Any]:
        """Start a patrol round now, the logged-in user its officer: drafts findings from the alerts since the previous round; returns the checklist."""
        return views.view_json(_run(service.start_round, officer.name, body.kind, body.round))

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
            "rounds": [views.round_json(r) for r in rounds],
        }

    @router.get("/api/patrols/{round_id}")
    def get_round(round_id: int) -> dict[str, Any]:
        """A round and its checklist (window states at its start, findings as they are now)."""
        return views.view_json(_run(service.get_round, round_id))

    @router.post("/api/patrols/{round_id}/finish")
    def finish_round(round_id: int, officer: Principal = patrol) -> dict[str, Any]:
        """End a round (its length counts towards the weekly CCTV patrol time)."""
        return views.view_json(_run(service.finish_round, round_id, officer.name))


def _add_finding_routes(router: APIRouter, service: PatrolService, views: PatrolViews, patrol: Any) -> None:
    """/api/finding-categories and /api/findings: the kinds of finding, list, record and read findings."""
    windows, window_list = views.windows, views.window_list

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
            if value not in windows:
                raise ValueError(f"unknown window {value!r}; this hall's windows are {window_list}")
            return value

        @field_validator("observed_at")
        @classmethod
        def _hall_time(cls, value: datetime | None) -> datetime | None:
            if value is not None and value.tzinfo is None:
                value = value.replace(tzinfo=HALL_TZ)
            return value

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
        return [views.finding_json(f) for f in service.list_findings(window, status, limit)]

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
        return views.finding_json(f)

    @router.get("/api/findings/{finding_id}")
    def get_finding(finding_id: int) -> dict[str, Any]:
        return views.finding_json(_run(service.get_finding, finding_id))


def _add_step_routes(router: APIRouter, service: PatrolService, authority: Authority, views: PatrolViews, patrol: Any) -> None:
    """POST /api/findings/{finding_id}/{action}: the steps of a finding's workflow, each with its permission."""
    hall = service.hall

    @router.post("/api/findings/{finding_id}/confirm")
    def confirm(finding_id: int, body: Confirmation, officer: Principal = patrol) -> dict[str, Any]:
        """The officer confirms a draft: it is reported, and the window lead's dispute period starts."""
        return views.finding_json(_run(service.transition, finding_id, "confirm", officer.name, body.note))

    def decision(action: str, permission: str, doc: str) -> None:
        def endpoint(finding_id: int, body: Decision, actor: Principal = Depends(authority.require(permission))) -> dict[str, Any]:
            window = _run(service.get_finding, finding_id).window
            authority.check_scope(actor, hall.departments_of([window]), f"finding {finding_id} (window {window})")
            return views.finding_json(_run(service.transition, finding_id, action, actor.name, body.reason))

        endpoint.__doc__ = doc
        router.add_api_route(f"/api/findings/{{finding_id}}/{action}", endpoint, methods=["POST"], name=action)

    decision("dismiss", "patrols.run", "The officer dismisses a draft; the reason is required (e.g. the clerk had paused properly).")
    decision("dispute", "findings.dispute", "The window lead disputes a confirmed finding within the dispute period (再核实); reason required.")
    decision("uphold", "findings.decide", "The re-check keeps the finding (异议不成立); someone other than the disputer decides; reason required.")
    decision("overturn", "findings.decide", "The re-check withdraws the finding (异议成立); someone other than the disputer decides; reason required.")
    decision("rectify", "findings.rectify", "The window reports the problem corrected (整改情况) — a confirmed or upheld finding stops being carried over.")


def _add_bulletin_routes(router: APIRouter, service: PatrolService, views: PatrolViews) -> None:
    """GET /api/bulletins/{week_start}(.xlsx): the weekly bulletin as JSON or as the office's spreadsheet."""

    @router.get("/api/bulletins/{week_start}.xlsx")
    def bulletin_xlsx(week_start: date) -> Response:
        """The weekly bulletin as the hall office keeps it (sheet 1: the week; sheet 2: items carried over)."""
        b = _run(service.bulletin, _monday(week_start))
        return Response(
            bulletin_workbook(b, service.hall.hall.name, views.windows),
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="bulletin-{week_start.isoformat()}.xlsx"'},
        )

    @router.get("/api/bulletins/{week_start}")
    def bulletin(week_start: date) -> dict[str, Any]:
        """The weekly bulletin (通报) of the week starting Monday ``week_start``, statuses as at the end of that week."""
        return views.bulletin_json(_run(service.bulletin, _monday(week_start)))
