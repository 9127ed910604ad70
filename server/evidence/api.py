"""Evidence snapshots: window cameras upload them, the supervision office views them, old ones expire.

A camera takes a snapshot at the onset of a vacancy and when the server asks
(command ``snapshot``); it has already blurred the customer side and other
faces (:mod:`vision.evidence`).  The picture is a file under the server's
data folder (0600), described by a row in ``evidence``; a seat event or an
alert refers to it by id.  Uploads authenticate with the camera's broker
account and are accepted only for the camera's own windows.  Viewing and
asking for a snapshot need the permission ``evidence.view``.  Pictures older than the
retention period are deleted, row and file, by the server's periodic sweep.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import cv2
import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Path as PathParam, Query, Request, Response

from broker.protocol import Command, encode
from server.devices.auth import device_login
from server.evidence.service import Cause, EvidenceStore
from server.ingest.validation import KnownDevice
from server.users.authority import Authority

log = logging.getLogger(__name__)

MAX_BYTES = 2 * 2**20
MAX_SIDE = 4096
ID_PATTERN = r"^[a-z0-9][a-z0-9-]{7,63}$"
IDENT = r"^[a-z0-9][a-z0-9_-]{0,63}$"


def check_picture(data: bytes) -> None:
    """A JPEG that decodes, within the size limits — or HTTPException 413/422 saying why."""
    if len(data) > MAX_BYTES:
        raise HTTPException(413, f"picture: {len(data)} bytes, at most {MAX_BYTES}")
    if not data.startswith(b"\xff\xd8"):
        raise HTTPException(422, "picture: not a JPEG")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise HTTPException(422, "picture: the JPEG does not decode")
    if max(image.shape[:2]) > MAX_SIDE:
        raise HTTPException(422, f"picture: {image.shape[1]}×{image.shape[0]}, at most {MAX_SIDE} px a side")


async def _capped_body(request: Request) -> bytes:
    """The request body, refused with 413 as soon as it passes MAX_BYTES (never read whole into memory first)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BYTES:
        raise HTTPException(413, f"picture: {declared} bytes, at most {MAX_BYTES}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BYTES:
            raise HTTPException(413, f"picture: more than {MAX_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def evidence_router(
    store: EvidenceStore,
    hall_id: str,
    registry: Callable[[], Mapping[str, KnownDevice]],
    passwd_file: Path | None,
    authority: Authority,
    send_command: Callable[[str, bytes], None],
) -> APIRouter:
    """``POST /api/evidence`` (window cameras); ``GET /api/evidence``, ``/api/evidence/{id}`` and
    ``POST /api/evidence/request`` (permission ``evidence.view``).  ``send_command(device_id, payload)`` publishes
    a command to one device."""
    router = APIRouter(tags=["evidence"])

    def refusal(device_id: str) -> str | None:
        known = registry().get(device_id)
        ok = known is not None and known.kind == "window_camera" and known.hall_id == hall_id
        return None if ok else f"{device_id} is not a window camera of this hall"

    camera = device_login(passwd_file, "hallwatch evidence", refusal)

    @router.post("/api/evidence", status_code=201)
    async def upload(
        request: Request,
        response: Response,
        evidence_id: Annotated[str, Query(alias="id", pattern=ID_PATTERN)],
        device: Annotated[str, Query(pattern=IDENT)],
        window_id: Annotated[str, Query(pattern=IDENT)],
        taken_at: datetime,
        cause: Cause,
        logged_in: str | None = Depends(camera),
    ) -> dict[str, Any]:
        """Store one snapshot (a JPEG as the body); 200 when this id was already stored."""
        if taken_at.tzinfo is None:
            raise HTTPException(422, "taken_at: give the UTC offset (e.g. +08:00)")
        if logged_in is not None and logged_in != device:
            raise HTTPException(403, f"logged in as {logged_in}, uploading as {device}")
        refused = refusal(device)
        if refused:
            raise HTTPException(403, refused)
        if window_id not in registry()[device].windows:
            raise HTTPException(403, f"{device} does not watch window {window_id}")
        if taken_at < store.clock() - store.retention:
            raise HTTPException(422, f"taken_at: older than the retention period ({store.retention.days} days); not kept")
        data = await _capped_body(request)
        check_picture(data)
        if not store.add(evidence_id, device, window_id, taken_at, cause, data, hall_id):
            response.status_code = 200
            return {"id": evidence_id, "stored": False}
        return {"id": evidence_id, "stored": True}

    viewer = Depends(authority.require("evidence.view"))

    @router.post("/api/evidence/request", status_code=202)
    def request_snapshot(window_id: Annotated[str, Query(pattern=IDENT)], _: Any = viewer) -> dict[str, Any]:
        """Ask every camera that watches the window for a snapshot now; each answers with an ``ack``
        whose detail is the evidence id, and the picture follows as an upload (cause ``request``)."""
        cameras = sorted(d for d, k in registry().items() if k.kind == "window_camera" and k.hall_id == hall_id and window_id in k.windows)
        if not cameras:
            raise HTTPException(404, f"no window camera watches window {window_id}")
        sent = []
        for device_id in cameras:
            command = Command(cmd_id=uuid.uuid4().hex, name="snapshot", args={"window_id": window_id}, issued_at=store.clock())
            send_command(device_id, encode(command))
            sent.append({"device_id": device_id, "cmd_id": command.cmd_id})
        return {"window_id": window_id, "commands": sent}

    @router.get("/api/evidence")
    def listing(window_id: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100, _: Any = viewer) -> list[dict[str, Any]]:
        return store.list(window_id, limit, hall_id)

    @router.get("/api/evidence/{evidence_id}", response_class=Response)
    def picture(evidence_id: Annotated[str, PathParam(pattern=ID_PATTERN)], _: Any = viewer) -> Response:
        found = store.get(evidence_id, hall_id)
        if found is None:
            raise HTTPException(404, f"no evidence {evidence_id} (never received, or past the retention period)")
        return Response(found[1], media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    return router
