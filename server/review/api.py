"""The review (回看) over HTTP: a day's timeline per window, and occupancy per hour over a range.

Both come from the stored events run through the same rules core as the
live alerts (:meth:`server.supervision.service.Supervisor.evaluate_days`), so a day
reviewed later shows exactly the bands the rules saw.  The alerts shown are
the ones actually raised (with who acknowledged them); ratings and punches
are placed on the same time axis.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from broker.timeutil import HALL_TZ, Clock, hall_iso
from server.db import AlertRow, EventRow
from server.config.hall import HallConfig
from server.review.bands import hourly
from server.rules.calendar import WorkCalendar
from server.rules.policy import Policy
from server.supervision.service import Supervisor

MAX_RANGE_DAYS = 31


def review_router(engine: Engine, hall: HallConfig, policy: Policy, calendar: WorkCalendar, clock: Clock, reader: Callable[..., Any]) -> APIRouter:
    """``GET /api/review/day`` and ``GET /api/review/occupancy``; ``reader`` is the dependency that admits a reader."""
    router = APIRouter(prefix="/api/review", tags=["review"], dependencies=[Depends(reader)])
    supervisor = Supervisor(engine, hall, policy, calendar, clock)
    names = {w.id: w.name for w in hall.windows}
    roster = {clerk: w.id for w in hall.windows for clerk in w.clerks}

    def bounds(day: date) -> tuple[datetime, datetime]:
        start = datetime.combine(day, datetime.min.time(), HALL_TZ)
        return start, min(start + timedelta(days=1), max(start, clock()))

    def windows(window: str | None) -> list[str]:
        if window is None:
            return list(names)
        if window not in names:
            raise HTTPException(404, f"no window {window} in this hall")
        return [window]

    @router.get("/day")
    def day_review(day: date, window: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")] = None) -> dict[str, Any]:
        """Each window's state bands, raised alerts, ratings and its clerks' punches on ``day``."""
        start, until = bounds(day)
        chosen = windows(window)
        out = []
        with Session(engine) as session:
            results = {r.window: r for r in supervisor.evaluate_days(session, chosen, day, until)}
            alerts = session.scalars(
                select(AlertRow).where(AlertRow.window_id.in_(chosen), AlertRow.raised_at >= start, AlertRow.raised_at < start + timedelta(days=1)).order_by(AlertRow.raised_at)
            ).all()
            events = session.scalars(
                select(EventRow).where(EventRow.hall_id == hall.hall.id, EventRow.type.in_(("rating", "punch")), EventRow.event_time >= start, EventRow.event_time < start + timedelta(days=1)).order_by(EventRow.event_time)
            ).all()
        for window_id in chosen:
            result = results[window_id]
            out.append(
                {
                    "id": window_id,
                    "name": names[window_id],
                    "bands": [{"state": s.state, "from": hall_iso(s.start), "to": hall_iso(s.end)} for s in result.timeline],
                    "alerts": [
                        {"type": a.type, "raised_at": hall_iso(a.raised_at), "cleared_at": hall_iso(a.cleared_at), "acknowledged_by": a.acknowledged_by, "live": a.live}
                        for a in alerts
                        if a.window_id == window_id
                    ],
                    "ratings": [
                        {"at": hall_iso(e.event_time), "level": e.body["level"], "clerk_id": e.body.get("clerk_id")}
                        for e in events
                        if e.type == "rating" and e.window_id == window_id
                    ],
                    "punches": [
                        {"at": hall_iso(e.event_time), "person_id": e.body["person_id"], "method": e.body["method"]}
                        for e in events
                        if e.type == "punch" and roster.get(e.body["person_id"]) == window_id
                    ],
                }
            )
        return {"day": day.isoformat(), "until": hall_iso(until), "windows": out}

    @router.get("/occupancy")
    def occupancy(first: Annotated[date, Query(alias="from")], last: Annotated[date, Query(alias="to")]) -> dict[str, Any]:
        """Occupancy per window and hour for each day of ``from``..``to`` (at most 31 days)."""
        if last < first:
            raise HTTPException(422, "to: before from")
        if (last - first).days + 1 > MAX_RANGE_DAYS:
            raise HTTPException(422, f"to: at most {MAX_RANGE_DAYS} days from from")
        days = []
        with Session(engine) as session:
            day = first
            while day <= last:
                _, until = bounds(day)
                cells = {r.window: [vars(h) | {"occupancy": h.occupancy} for h in hourly(r.timeline, day)] for r in supervisor.evaluate_days(session, list(names), day, until)}
                days.append({"day": day.isoformat(), "windows": cells})
                day += timedelta(days=1)
        return {"from": first.isoformat(), "to": last.isoformat(), "windows": [{"id": w, "name": n} for w, n in names.items()], "days": days}

    return router
