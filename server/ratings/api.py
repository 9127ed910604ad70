"""REST API of ratings (好差评), bad-rating work orders and their statistics.

``ratings_router(RatingsService(...))`` returns a router the server includes;
the rules are in :mod:`server.rules.ratings`, storage in
:mod:`server.ratings.service`, the workflow in ``docs/ratings.md``.

Every input is validated (422 naming the field and the value); a step the
work-order workflow refuses answers 409 with the reason, an unknown order 404.
Reading needs a logged-in user; each work-order step needs its permission
(``STEP_PERMISSIONS``), and its actor is the logged-in user.
"""

# No ``from __future__ import annotations``: the query models close over the
# hall's windows, and FastAPI must resolve the endpoint annotations at runtime.

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from broker.timeutil import hall_iso
from server.users.authority import Authority
from server.db import RatingRow
from server.ratings.service import NotFound, RatingsService, StatsView, order_deadline_error
from server.ratings.sheet import definitions, ratings_xlsx
from server.rules import ratings as rules
from server.rules.ratings import StatRow, TransitionError, WorkOrder
from server.users.accounts import Principal

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_DAYS = 366
"""The longest range one statistics request covers."""
ORIGIN_ZH = {"device": "评价器", "default": "系统默认"}

StatusName = Literal["assigned", "called_back", "rectified", "closed", "appealed", "upheld", "overturned", "withdrawn"]
ActionName = Literal["call_back", "rectify", "close", "appeal", "uphold", "overturn"]
SignalName = Literal["seat_vacant", "no_ticket", "clerk_mismatch", "burst"]
STEP_PERMISSIONS: dict[str, str] = {
    "call_back": "work_orders.handle",
    "rectify": "work_orders.handle",
    "appeal": "work_orders.handle",
    "close": "work_orders.decide",
    "uphold": "work_orders.decide",
    "overturn": "work_orders.decide",
}
"""The department's steps and the office's decisions."""


class StepRequest(BaseModel):
    """One step of a work order: what was done (回访情况, 整改情况, 办结说明, 申诉理由 or 核实结论); the actor is the logged-in user."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    note: str = Field(min_length=1, max_length=1000)


def _invalid(loc: tuple[str | int, ...], msg: str, value: Any) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": msg, "input": value}])


def _rate(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def ratings_router(service: RatingsService, authority: Authority) -> APIRouter:
    """The ratings endpoints of one hall (see the module docstring and docs/ratings.md)."""
    windows = service.windows
    window_list = ", ".join(windows)
    router = APIRouter(tags=["ratings"], dependencies=[Depends(authority.principal)])

    def check_window(window: str | None) -> str | None:
        if window is not None and window not in windows:
            raise _invalid(("query", "window"), f"unknown window {window!r}; this hall's windows are {window_list}", window)
        return window

    def span(start: date | None, end: date | None) -> tuple[date, date]:
        """The days asked for (default: this month up to today), at most MAX_DAYS."""
        today = service.now().date()
        start = start or today.replace(day=1)
        end = end or max(today, start)
        if end < start:
            raise _invalid(("query", "to"), f"to ({end.isoformat()}) is before from ({start.isoformat()})", end.isoformat())
        if (end - start).days + 1 > MAX_DAYS:
            raise _invalid(("query", "to"), f"at most {MAX_DAYS} days at once; {start.isoformat()} to {end.isoformat()} is {(end - start).days + 1}", end.isoformat())
        return start, end

    # ---------------------------------------------------------------- JSON

    def window_of(window_id: str) -> tuple[str, str]:
        spec = windows.get(window_id)
        return (spec.name, spec.department) if spec else (window_id, "")

    def rating_json(row: RatingRow, order_id: int | None) -> dict[str, Any]:
        name, department = window_of(row.window_id)
        return {
            "id": row.id,
            "window_id": row.window_id,
            "window_name": name,
            "department": department,
            "clerk_id": row.clerk_id,
            "level": row.level,
            "level_zh": rules.LEVEL_ZH[row.level],
            "bad": rules.is_bad(row.level, service.policy),
            "ticket": row.ticket,
            "cases": row.cases,
            "day": row.day.isoformat(),
            "rated_at": hall_iso(row.rated_at),
            "origin": row.origin,
            "origin_zh": ORIGIN_ZH[row.origin],
            "historical": row.historical,
            "counted": row.duplicate_of is None,
            "duplicate_of": row.duplicate_of,
            "signals": [{"name": s, "name_zh": rules.SIGNALS[s]} for s in row.signals],
            "work_order_id": order_id,
        }

    def order_json(order: WorkOrder, rating: RatingRow) -> dict[str, Any]:
        now = service.now()
        name, department = window_of(order.window)
        return {
            "id": order.id,
            "rating_id": order.rating_id,
            "window_id": order.window,
            "window_name": name,
            "department": department,
            "clerk_id": order.clerk,
            "level": order.level,
            "level_zh": rules.LEVEL_ZH[order.level],
            "ticket": rating.ticket,
            "cases": rating.cases,
            "rated_at": hall_iso(order.rated_at),
            "status": order.status,
            "status_zh": rules.STATUS_ZH[order.status],
            "callback_due": order.callback_due.isoformat() if order.callback_due else None,
            "rectify_due": order.rectify_due.isoformat() if order.rectify_due else None,
            "deadline_error": order_deadline_error(order, service.calendar, service.policy),
            "called_back_at": hall_iso(order.called_back_at),
            "handled_at": hall_iso(order.handled_at),
            "overdue": list(rules.overdue(order, now)),
            "timeliness": rules.timeliness(order, now),
            "actions": [{"name": a, "name_zh": rules.ACTION_ZH[a]} for a in rules.next_actions(order)],
            "history": [
                {"status": s.status, "status_zh": rules.STATUS_ZH[s.status], "at": hall_iso(s.at), "actor": s.actor, "note": s.note}
                for s in order.history
            ],
        }

    def row_json(view: StatsView, row: StatRow) -> dict[str, Any]:
        return {
            "key": row.key,
            "name": view.names.get(row.key, row.key),
            "department": service.department_of(view.by, row.key) if row.key else "",
            "period": row.period,
            "rated": row.rated,
            "levels": {str(level): count for level, count in zip((5, 4, 3, 2, 1), row.levels, strict=True)},
            "satisfied": row.satisfied,
            "bad": row.bad,
            "satisfaction_rate": _rate(row.satisfaction_rate),
            "bad_rate": _rate(row.bad_rate),
            "defaults": row.defaults,
            "duplicates": row.duplicates,
            "overturned": row.overturned,
            "work_orders": row.work_orders,
            "handled": row.handled,
            "rectification_rate": _rate(row.rectification_rate),
            "on_time": row.on_time,
            "late": row.late,
            "on_time_rate": _rate(row.on_time_rate),
            "signals": dict(row.signals),
            "suspect": row.suspect,
            "never_below": row.never_below,
            "rank": row.rank,
        }

    def run(call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        except TransitionError as exc:
            raise HTTPException(409, str(exc)) from exc

    # ---------------------------------------------------------------- ratings

    @router.get("/api/ratings")
    def list_ratings(
        window: str | None = None,
        clerk: str | None = Query(None, max_length=64),
        start: date | None = Query(None, alias="from"),
        end: date | None = Query(None, alias="to"),
        origin: Literal["device", "default"] | None = None,
        counted: bool | None = None,
        signal: SignalName | None = None,
        limit: int = Query(200, ge=1, le=5000),
    ) -> list[dict[str, Any]]:
        """Ratings of the days ``from``..``to`` (default this month), newest first.

        ``counted=false`` lists the duplicates (a second rating of a rated
        transaction, kept and reported, never counted); ``origin=default`` the
        system-default ratings; ``signal`` those carrying a fraud signal.
        """
        first, last = span(start, end)
        found = service.ratings(start=first, end=last, window=check_window(window), clerk=clerk, origin=origin, counted=counted, signal=signal, limit=limit)
        return [rating_json(row, order_id) for row, order_id in found]

    @router.get("/api/ratings/stats.xlsx", response_class=Response)
    def stats_xlsx(
        by: Literal["window", "clerk", "department"] = "window",
        period: Literal["day", "month"] = "month",
        start: date | None = Query(None, alias="from"),
        end: date | None = Query(None, alias="to"),
    ) -> Response:
        """The statistics and the range's work orders as the hall office keeps them (好差评统计表, 差评工单)."""
        first, last = span(start, end)
        view = service.stats(by, period, first, last)
        data = ratings_xlsx(
            service.hall.hall.name,
            view,
            lambda key: service.department_of(by, key),
            service.orders_between(first, last),
            {w.id: (w.name, w.department) for w in service.hall.windows},
            service.policy,
            service.now(),
        )
        name = f"ratings-{by}-{period}-{first.isoformat()}-{last.isoformat()}.xlsx"
        return Response(data, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @router.get("/api/ratings/stats")
    def stats(
        by: Literal["window", "clerk", "department"] = "window",
        period: Literal["day", "month"] = "month",
        start: date | None = Query(None, alias="from"),
        end: date | None = Query(None, alias="to"),
    ) -> dict[str, Any]:
        """Satisfaction, bad-rating, rectification and on-time rates per ``by`` and ``period``, ranked within each period.

        Default ratings, duplicates and bad ratings overturned on appeal are
        counted apart and never enter a rate (``definitions`` says how each is computed).
        """
        view = service.stats(by, period, *span(start, end))
        return {
            "by": view.by,
            "period": view.period,
            "from": view.start.isoformat(),
            "to": view.end.isoformat(),
            "rows": [row_json(view, row) for row in view.rows],
            "totals": row_json(view, view.totals),
            "definitions": definitions(service.policy)[:-1],
        }

    # ---------------------------------------------------------------- work orders

    @router.get("/api/work-orders")
    def list_orders(
        status: StatusName | None = None,
        window: str | None = None,
        overdue: bool = False,
        limit: int = Query(200, ge=1, le=1000),
    ) -> list[dict[str, Any]]:
        """Bad-rating work orders (差评工单), newest first; ``overdue`` keeps those past a deadline now."""
        return [order_json(order, rating) for order, rating in service.orders(status, check_window(window), overdue, limit)]

    @router.get("/api/work-orders/{order_id}")
    def get_order(order_id: int) -> dict[str, Any]:
        return order_json(*run(service.get_order, order_id))

    def step_actor(action: ActionName, principal: Principal = Depends(authority.principal)) -> Principal:
        return authority.check(principal, STEP_PERMISSIONS[action])

    @router.post("/api/work-orders/{order_id}/{action}")
    def step(order_id: int, action: ActionName, body: StepRequest, actor: Principal = Depends(step_actor)) -> dict[str, Any]:
        """Take a step now: ``call_back`` (回访核实), ``rectify`` (整改), ``close`` (办结), ``appeal`` (申诉:
        a malicious or mistaken rating), ``uphold`` / ``overturn`` (decide the appeal; not by the appellant)."""
        order, _ = run(service.get_order, order_id)
        authority.check_scope(actor, service.hall.departments_of([order.window]), f"work order {order_id} (window {order.window})")
        return order_json(*run(service.transition, order_id, action, actor.name, body.note))

    return router

