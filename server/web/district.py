"""What the deployment serves across its halls: the list of halls a user may open, and a batch split by hall.

A district's halls share one ingest writer; a batch it commits can hold
news of several halls.  :func:`split_by_hall` gives each hall its part, so
each hall's open pages hear only of their own hall.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from server.config.district import District
from server.ingest.batch import Changes
from server.users.accounts import Principal
from server.users.authority import Authority


def split_by_hall(changes: Changes, district: District) -> dict[str, Changes]:
    """Each hall's events, windows, devices and alerts of one batch; every hall hears the counters (its
    page shows them) even when nothing of its own changed."""
    parts = {h.hall.id: Changes(duplicates=changes.duplicates) for h in district.halls}
    for event in changes.events:
        if event.hall_id in parts:
            parts[event.hall_id].events.append(event)
    for window_id, window in changes.windows.items():
        if window.hall_id in parts:
            parts[window.hall_id].windows[window_id] = window
    for device_id, device in changes.devices.items():
        if device.hall_id in parts:
            parts[device.hall_id].devices[device_id] = device
    for alert in changes.alerts:
        hall = district.hall_of_window(alert.get("window_id", ""))  # alerts are few: a scan each is nothing
        if hall is not None:
            parts[hall.hall.id].alerts.append(alert)
    parts[district.halls[0].hall.id].repeats = changes.repeats
    return parts


def district_router(district: District, authority: Authority) -> APIRouter:
    """``GET /api/halls``: the district and the halls the caller may open (a hall's user: their own)."""
    router = APIRouter(tags=["district"])

    @router.get("/api/halls")
    def get_halls(principal: Principal = Depends(authority.principal)) -> dict[str, Any]:
        visible = [h for h in district.halls if principal.sees_hall(h.hall.id)]
        return {
            "district": {"id": district.info.id, "name": district.info.name},
            "halls": [
                {"id": h.hall.id, "name": h.hall.name, "windows": len(h.windows), "preset": h.policy.preset, "page": f"/halls/{h.hall.id}/", "api": f"/halls/{h.hall.id}/api"}
                for h in visible
            ],
        }

    return router
