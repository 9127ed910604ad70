"""The hall as ingest sees it, over HTTP: the hall, its windows and devices now, the
stored events, the rejected messages, the ingest counters and the policy in force."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from broker.timeutil import Clock
from server.config.hall import HallConfig
from server.db import DeviceRow, EventRow, RejectionRow, WindowRow
from server.ingest.serialize import device_json, event_json, window_json
from server.ingest.store import Store
from server.rules.policy import Policy
from server.users.authority import Authority


def hall_router(
    engine: Engine, store: Store, hall: HallConfig, policy: Policy, clock: Clock, stats: Callable[[], dict[str, Any]], authority: Authority
) -> APIRouter:
    """``/api/hall``, ``/api/windows``, ``/api/devices``, ``/api/events``, ``/api/rejections``,
    ``/api/stats`` (``stats()``: the ingest counters and the exporters') and ``/api/policy``."""
    router = APIRouter(tags=["hall"], dependencies=[Depends(authority.principal)])

    @router.get("/api/hall")
    def get_hall() -> dict[str, Any]:
        return {
            "id": hall.hall.id,
            "name": hall.hall.name,
            "timezone": hall.hall.timezone,
            "clock": {"now": clock().isoformat(), "speed": getattr(clock, "speed", 1.0)},
        }

    @router.get("/api/windows")
    def get_windows() -> list[dict[str, Any]]:
        cameras = store.device_statuses()
        with Session(engine) as session:
            rows = session.scalars(select(WindowRow).where(WindowRow.hall_id == hall.hall.id).order_by(WindowRow.id))
            return [window_json(row, cameras.get(row.camera_device or "")) for row in rows]

    @router.get("/api/devices")
    def get_devices() -> list[dict[str, Any]]:
        with Session(engine) as session:
            rows = session.scalars(select(DeviceRow).where(DeviceRow.hall_id == hall.hall.id).order_by(DeviceRow.id))
            return [device_json(row) for row in rows]

    @router.get("/api/stats")
    def get_stats() -> dict[str, Any]:
        return stats()

    @router.get("/api/events")
    def get_events(
        limit: int = Query(50, ge=1, le=1000),
        device_id: str | None = None,
        type: str | None = None,
        historical: bool | None = None,
    ) -> list[dict[str, Any]]:
        query = select(EventRow).where(EventRow.hall_id == hall.hall.id).order_by(EventRow.id.desc()).limit(limit)
        if device_id:
            query = query.where(EventRow.device_id == device_id)
        if type:
            query = query.where(EventRow.type == type)
        if historical is not None:
            query = query.where(EventRow.historical == historical)
        with Session(engine) as session:
            return [event_json(row) | {"boot": row.boot, "seq": row.seq} for row in session.scalars(query)]

    @router.get("/api/policy")
    def get_policy() -> dict[str, Any]:
        """The policy in force, with the source of every value."""
        return policy.model_dump(mode="json")

    @router.get("/api/rejections")
    def get_rejections(limit: int = Query(50, ge=1, le=1000)) -> list[dict[str, Any]]:
        with Session(engine) as session:
            rows = session.scalars(select(RejectionRow).where(RejectionRow.hall_id == hall.hall.id).order_by(RejectionRow.id.desc()).limit(limit))
            return [
                {"received_time": r.received_time.isoformat(), "topic": r.topic, "device_id": r.device_id, "reason": r.reason, "excerpt": r.excerpt}
                for r in rows
            ]

    return router
