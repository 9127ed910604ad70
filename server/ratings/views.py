"""What the ratings API answers with: the JSON of a rating, a work order and a statistics row.

Also the checks of the query parameters every listing shares (a window of
this hall, a range of days), answering 422 as a validation error naming the
field and the value.  The routes are in :mod:`server.ratings.api`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.exceptions import RequestValidationError

from broker.timeutil import hall_iso
from server.db import RatingRow
from server.ratings.service import RatingsService, StatsView, order_deadline_error
from server.rules import ratings as rules
from server.rules.ratings import StatRow, WorkOrder

MAX_DAYS = 366
"""The longest range one statistics request covers."""
ORIGIN_ZH = {"device": "评价器", "default": "系统默认"}


def _invalid(loc: tuple[str | int, ...], msg: str, value: Any) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": msg, "input": value}])


def _rate(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


class RatingViews:
    """The JSON shapes and query checks of one hall's ratings API (its windows are fixed when the router is built)."""

    def __init__(self, service: RatingsService) -> None:
        self.service = service
        self.windows = service.windows
        self.window_list = ", ".join(self.windows)

    # ---------------------------------------------------------------- queries

    def check_window(self, window: str | None) -> str | None:
        if window is not None and window not in self.windows:
            raise _invalid(("query", "window"), f"unknown window {window!r}; this hall's windows are {self.window_list}", window)
        return window

    def span(self, start: date | None, end: date | None) -> tuple[date, date]:
        """The days asked for (default: this month up to today), at most MAX_DAYS."""
        today = self.service.now().date()
        start = start or today.replace(day=1)
        end = end or max(today, start)
        if end < start:
            raise _invalid(("query", "to"), f"to ({end.isoformat()}) is before from ({start.isoformat()})", end.isoformat())
        if (end - start).days + 1 > MAX_DAYS:
            raise _invalid(("query", "to"), f"at most {MAX_DAYS} days at once; {start.isoformat()} to {end.isoformat()} is {(end - start).days + 1}", end.isoformat())
        return start, end

    # ---------------------------------------------------------------- JSON

    def window_of(self, window_id: str) -> tuple[str, str]:
        spec = self.windows.get(window_id)
        return (spec.name, spec.department) if spec else (window_id, "")

    def rating_json(self, row: RatingRow, order_id: int | None) -> dict[str, Any]:
        name, department = self.window_of(row.window_id)
        return {
            "id": row.id,
            "window_id": row.window_id,
            "window_name": name,
            "department": department,
            "clerk_id": row.clerk_id,
            "level": row.level,
            "level_zh": rules.LEVEL_ZH[row.level],
            "bad": rules.is_bad(row.level, self.service.policy),
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

    def order_json(self, order: WorkOrder, rating: RatingRow) -> dict[str, Any]:
        service = self.service
        now = service.now()
        name, department = self.window_of(order.window)
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

    def row_json(self, view: StatsView, row: StatRow) -> dict[str, Any]:
        return {
            "key": row.key,
            "name": view.names.get(row.key, row.key),
            "department": self.service.department_of(view.by, row.key) if row.key else "",
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
