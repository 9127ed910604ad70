"""Re-run a stored day under the same or a changed policy (`hallwatch replay`).

The output is JSON with sorted keys and sorted lists, so the same stored day
under the same policy gives the same bytes — a hall can diff two runs, or see
exactly what a changed threshold would have raised.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from broker.timeutil import HALL_TZ, hall_iso
from server.db import AlertRow
from server.config.hall import HallConfig
from server.rules.calendar import WorkCalendar
from server.rules.policy import Policy
from server.rules.supervision import Alert
from server.supervision.service import Supervisor


def _alert(alert: Alert) -> dict[str, Any]:
    return {
        "window": alert.window,
        "type": alert.type,
        "condition_since": hall_iso(alert.condition_since),
        "raised_at": hall_iso(alert.raised_at),
        "cleared_at": hall_iso(alert.cleared_at),
        "live": alert.live,
        "rule": alert.rule,
        "threshold_s": alert.threshold_s,
        "facts": dict(alert.facts),
    }


def replay_day(engine: Engine, hall: HallConfig, policy: Policy, calendar: WorkCalendar, day: date) -> dict[str, Any]:
    """Evaluate every window of ``day`` from the stored events; compare with what was raised."""
    supervisor = Supervisor(engine, hall, policy, calendar, clock=lambda: datetime.now(HALL_TZ))
    until = datetime.combine(day + timedelta(days=1), datetime.min.time(), HALL_TZ)
    start = until - timedelta(days=1)
    alerts: list[dict[str, Any]] = []
    timelines: dict[str, list[dict[str, str]]] = {}
    with Session(engine) as session:
        for result in supervisor.evaluate_days(session, [window.id for window in hall.windows], day, until):
            alerts += [_alert(a) for a in result.alerts]
            timelines[result.window] = [{"from": hall_iso(s.start), "to": hall_iso(s.end), "state": s.state} for s in result.timeline]  # type: ignore[misc]
        raised = session.execute(
            select(AlertRow.window_id, AlertRow.type, AlertRow.raised_at).where(AlertRow.raised_at >= start, AlertRow.raised_at < until)
        ).all()
    key = lambda a: (a["window"], a["type"], a["raised_at"])  # noqa: E731
    was = {(window_id, kind, hall_iso(raised_at)) for window_id, kind, raised_at in raised}
    now = {key(a) for a in alerts}
    alerts.sort(key=key)
    return {
        "day": day.isoformat(),
        "policy": policy.name,
        "alerts": alerts,
        "timelines": timelines,
        "compared_with_raised": {
            "would_raise_again": len(now & was),
            "new": [list(k) for k in sorted(now - was)],
            "no_longer": [list(k) for k in sorted(was - now)],
        },
    }


def to_json(report: dict[str, Any]) -> str:
    """Canonical bytes: the same report always prints the same."""
    return json.dumps(report, ensure_ascii=False, sort_keys=True, indent=1)
