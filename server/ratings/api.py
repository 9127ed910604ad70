"""REST API of ratings (好差评), bad-rating work orders and their statistics.

``ratings_router(RatingsService(...))`` returns a router the server includes;
the rules are in :mod:`server.rules.ratings`, storage in
:mod:`server.ratings.service`, the JSON shapes in :mod:`server.ratings.views`,
the workflow in ``docs/ratings.md``.

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
from pydantic import BaseModel, ConfigDict, Field

from server.ratings.service import NotFound, RatingsService
from server.ratings.sheet import definitions, ratings_xlsx
from server.ratings.views import RatingViews
from server.rules.ratings import TransitionError
from server.users.accounts import Principal
from server.users.authority import Authority

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

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


def _run(call: Any, *args: Any) -> Any:
    """``call(*args)``, an unknown order answering 404 and a step the workflow refuses 409."""
    try:
        return call(*args)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except TransitionError as exc:
        raise HTTPException(409, str(exc)) from exc


def ratings_router(service: RatingsService, authority: Authority) -> APIRouter:
    """The ratings endpoints of one hall (see the module docstring and docs/ratings.md)."""
    views = RatingViews(service)
    router = APIRouter(tags=["ratings"], dependencies=[Depends(authority.principal)])
    # The order the routes are added in is the order of the OpenAPI paths.
    _add_rating_routes(router, service, views)
    _add_stats_routes(router, service, views)
    _add_work_order_routes(router, service, authority, views)
    return router


def _add_rating_routes(router: APIRouter, service: RatingsService, views: RatingViews) -> None:
    """GET /api/ratings: the ratings themselves."""

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
        first, last = views.span(start, end)
        found = service.ratings(start=first, end=last, window=views.check_window(window), clerk=clerk, origin=origin, counted=counted, signal=signal, limit=limit)
        return [views.rating_json(row, order_id) for row, order_id in found]


def _add_stats_routes(router: APIRouter, service: RatingsService, views: RatingViews) -> None:
    """GET /api/ratings/stats.xlsx and /api/ratings/stats: the statistics, as a sheet and as JSON."""

    @router.get("/api/ratings/stats.xlsx", response_class=Response)
    def stats_xlsx(
        by: Literal["window", "clerk", "department"] = "window",
        period: Literal["day", "month"] = "month",
        start: date | None = Query(None, alias="from"),
        end: date | None = Query(None, alias="to"),
    ) -> Response:
        """The statistics and the range's work orders as the hall office keeps them (好差评统计表, 差评工单)."""
        first, last = views.span(start, end)
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
        view = service.stats(by, period, *views.span(start, end))
        return {
            "by": view.by,
            "period": view.period,
            "from": view.start.isoformat(),
            "to": view.end.isoformat(),
            "rows": [views.row_json(view, row) for row in view.rows],
            "totals": views.row_json(view, view.totals),
            "definitions": definitions(service.policy)[:-1],
        }


def _add_work_order_routes(router: APIRouter, service: RatingsService, authority: Authority, views: RatingViews) -> None:
    """/api/work-orders: the bad-rating work orders and their steps, each step under its permission."""

    @router.get("/api/work-orders")
    def list_orders(
        status: StatusName | None = None,
        window: str | None = None,
        overdue: bool = False,
        limit: int = Query(200, ge=1, le=1000),
    ) -> list[dict[str, Any]]:
        """Bad-rating work orders (差评工单), newest first; ``overdue`` keeps those past a deadline now."""
        return [views.order_json(order, rating) for order, rating in service.orders(status, views.check_window(window), overdue, limit)]

    @router.get("/api/work-orders/{order_id}")
    def get_order(order_id: int) -> dict[str, Any]:
        return views.order_json(*_run(service.get_order, order_id))

    def step_actor(action: ActionName, principal: Principal = Depends(authority.principal)) -> Principal:
        return authority.check(principal, STEP_PERMISSIONS[action])

    @router.post("/api/work-orders/{order_id}/{action}")
    def step(order_id: int, action: ActionName, body: StepRequest, actor: Principal = Depends(step_actor)) -> dict[str, Any]:
        """Take a step now: ``call_back`` (回访核实), ``rectify`` (整改), ``close`` (办结), ``appeal`` (申诉:
        a malicious or mistaken rating), ``uphold`` / ``overturn`` (decide the appeal; not by the appellant)."""
        order, _ = _run(service.get_order, order_id)
        authority.check_scope(actor, service.hall.departments_of([order.window]), f"work order {order_id} (window {order.window})")
        return views.order_json(*_run(service.transition, order_id, action, actor.name, body.note))
