"""JSON shapes of the API and the WebSocket (one shape per thing, both ways)."""

from __future__ import annotations

from typing import Any

from broker.protocol import Event
from broker.timeutil import hall_iso
from server.db import DeviceRow, EventRow, WindowRow



def window_json(row: WindowRow, camera_status: str | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "department": row.department,
        "state": row.state,
        "state_since": hall_iso(row.state_since),
        "seat_state": row.seat_state,
        "occupant": row.occupant,
        "paused": row.paused,
        "pause_reason": row.pause_reason,
        "camera_device": row.camera_device,
        "camera_status": camera_status or "never_seen",
    }


def device_json(row: DeviceRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "windows": row.windows,
        "status": row.status,
        "reason": row.reason,
        "boot": row.boot,
        "last_seen": hall_iso(row.last_seen),
    }


def _summary(event_type: str, body: dict[str, Any]) -> str:
    if event_type == "punch":
        return f"{body['person_id']} ({body['method']})"
    if event_type in ("seat", "seat_heartbeat"):
        return f"{body['window_id']}: {body['state']}" + (f" {body['occupant']}" if body.get("occupant") else "")
    if event_type == "rating":
        return f"{body['window_id']}: ★{body['level']}" + (f" ({body['ticket']})" if body.get("ticket") else "")
    if event_type == "ticket":
        return f"{body['window_id']}: {body['ticket']} {body['state']}"
    if event_type == "pause":
        return f"{body['window_id']}: {'pause' if body['paused'] else 'resume'}" + (f" ({body['reason']})" if body.get("reason") else "")
    if event_type == "clerk_login":
        return f"{body['window_id']}: {body['clerk_id'] or '-'}"
    if event_type == "ack":
        return f"{body['ref']} {body['ref_id']}: {'ok' if body['ok'] else 'failed'}"
    return ""


def event_json(event: Event | EventRow) -> dict[str, Any]:
    body = event.body if isinstance(event, EventRow) else event.body.model_dump(mode="json")
    return {
        "msg_id": str(event.msg_id),
        "device_id": event.device_id,
        "type": event.type,
        "event_time": hall_iso(event.event_time),
        "historical": event.historical,
        "window_id": body.get("window_id"),
        "summary": _summary(event.type, body),
        "body": body,
    }
