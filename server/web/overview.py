"""The district overview (区级总览): one row per hall, the worst hall on top.

The district 督查科 watches every hall at once: how many windows are staffed,
paused, vacant or unknown now, the active alerts, today's attendance
(arrived of expected, late, absent so far), today's ratings and the 差评
work orders still open, and device health.  A row is built from a few
counting queries of that hall and its held attendance (no day is re-read).

"Worst" is the order a supervisor would visit: most active alerts, then most
vacant windows, then most people absent so far, then most devices not
online — ties by the district file's order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date
from typing import Any, Protocol

from fastapi import APIRouter, Depends, Query
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from server.attendance.today import TodayAttendance
from server.config.hall import HallConfig
from server.db import AlertRow, DeviceRow, RatingRow, WindowRow, WorkOrderRow
from server.ratings.service import OPEN_EXCLUDED, RatingsService
from server.ratings.views import RatingViews
from server.rules.ratings import rank
from server.rules.policy import Policy
from server.users.accounts import Principal
from server.users.authority import Authority


class HallServices(Protocol):
    """What a row needs of a hall's services (server.web.app.HallServices)."""

    hall: HallConfig
    policy: Policy
    today: TodayAttendance
    ratings: RatingsService

WINDOW_STATES = ("staffed", "paused", "vacant", "unknown")
DEVICE_STATES = ("online", "offline", "stale", "never_seen")


def _counts(session: Session, column: Any, hall_column: Any, hall_id: str, keys: tuple[str, ...]) -> dict[str, int]:
    found = dict(session.execute(select(column, func.count()).where(hall_column == hall_id).group_by(column)).all())
    return {key: int(found.get(key, 0)) for key in keys}


def hall_row(engine: Engine, hall: HallServices, today: date) -> dict[str, Any]:
    """One hall's row of the overview."""
    hall_id = hall.hall.hall.id
    _, people = hall.today.people()
    with Session(engine) as session:
        windows = _counts(session, WindowRow.state, WindowRow.hall_id, hall_id, WINDOW_STATES)
        devices = _counts(session, DeviceRow.status, DeviceRow.hall_id, hall_id, DEVICE_STATES)
        alerts = session.scalar(select(func.count()).select_from(AlertRow).where(AlertRow.hall_id == hall_id, AlertRow.cleared_at.is_(None))) or 0
        mine = (RatingRow.hall_id == hall_id) & (RatingRow.day == today) & RatingRow.duplicate_of.is_(None)
        rated = session.scalar(select(func.count()).select_from(RatingRow).where(mine)) or 0
        bad = session.scalar(select(func.count()).select_from(RatingRow).where(mine, RatingRow.level <= hall.policy.ratings.bad_at_most)) or 0
        open_orders = session.scalar(select(func.count()).select_from(WorkOrderRow).where(WorkOrderRow.hall_id == hall_id, WorkOrderRow.status.not_in(OPEN_EXCLUDED))) or 0
    return {
        "id": hall_id,
        "name": hall.hall.hall.name,
        "page": f"/halls/{hall_id}/",
        "windows": windows,
        "active_alerts": alerts,
        "attendance": hall.today.summary(people),
        "ratings": {"rated": rated, "bad": bad, "open_orders": open_orders},
        "devices": devices,
    }


def worst_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The order a supervisor visits halls in (stable: ties keep the district file's order)."""

    def badness(row: dict[str, Any]) -> tuple[int, int, int, int]:
        devices = row["devices"]
        return (row["active_alerts"], row["windows"]["vacant"], row["attendance"]["absent"], devices["offline"] + devices["stale"])

    return sorted(rows, key=badness, reverse=True)


def overview_router(engine: Engine, halls: Mapping[str, HallServices], today: Callable[[], date], authority: Authority) -> APIRouter:
    """``GET /api/district/overview``: the halls the caller may see, worst first."""
    router = APIRouter(tags=["district"])

    @router.get("/api/district/overview")
    def overview(principal: Principal = Depends(authority.principal)) -> dict[str, Any]:
        day = today()
        rows = [hall_row(engine, hall, day) for hall_id, hall in halls.items() if principal.sees_hall(hall_id)]
        return {"day": day.isoformat(), "halls": worst_first(rows)}

    @router.get("/api/district/ratings")
    def ratings_ranking(
        start: date | None = Query(None, alias="from"), end: date | None = Query(None, alias="to"), principal: Principal = Depends(authority.principal)
    ) -> dict[str, Any]:
        """The halls' 好差评 over the days asked for (default: this month), ranked as seed 003 ranks windows:
        higher satisfaction first, then the lower bad-rating rate; equal rates share a rank, halls without a
        rating are listed unranked.  A hall's rates come from its summed counts, never from averages."""
        visible = {hall_id: hall for hall_id, hall in halls.items() if principal.sees_hall(hall_id)}
        first, last = RatingViews(next(iter(halls.values())).ratings).span(start, end)
        label = first.isoformat() if first == last else f"{first.isoformat()}—{last.isoformat()}"
        totals = [replace(hall.ratings.stats("window", "month", first, last).totals, key=hall_id, period=label) for hall_id, hall in visible.items()]
        return {
            "from": first.isoformat(),
            "to": last.isoformat(),
            "halls": [
                {
                    "id": row.key, "name": visible[row.key].hall.hall.name, "rank": row.rank, "rated": row.rated, "satisfied": row.satisfied, "bad": row.bad,
                    "satisfaction_rate": row.satisfaction_rate, "bad_rate": row.bad_rate, "work_orders": row.work_orders, "on_time_rate": row.on_time_rate,
                }  # fmt: skip
                for row in rank(totals)
            ],
        }

    return router
