"""Alerts over HTTP: the list (newest first) and acknowledging one as the logged-in user."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query

from server.supervision.service import Supervisor
from server.users.accounts import Principal
from server.users.authority import Authority


def alerts_router(supervisor: Supervisor, authority: Authority, announce: Callable[[list[dict[str, Any]]], None]) -> APIRouter:
    """``/api/alerts``; an acknowledgement is ``announce``d to every live page at once."""
    router = APIRouter(tags=["supervision"], dependencies=[Depends(authority.principal)])

    @router.get("/api/alerts")
    def get_alerts(active: bool = False, limit: int = Query(100, ge=1, le=1000)) -> list[dict[str, Any]]:
        """Alerts newest first; ``active`` keeps those not yet cleared."""
        return supervisor.alerts(active_only=active, limit=limit)

    @router.post("/api/alerts/{alert_id}/ack")
    def acknowledge(alert_id: int, by: Principal = Depends(authority.require("alerts.ack"))) -> dict[str, Any]:
        """Acknowledge an alert as the logged-in user."""
        alert = supervisor.acknowledge(alert_id, by.name)
        if alert is None:
            raise HTTPException(404, f"no alert {alert_id}")
        announce([{"kind": "alert", "alert": alert}])
        return alert

    return router
