"""The face administration API: list, enrol (photo upload), delete, calibration report.

Enrolling and deleting faces is the most sensitive thing the server does, so
these endpoints are off unless an administrator token is configured
(``HALLWATCH_ADMIN_TOKEN_FILE``, a 0600 file) and every call must carry it
as ``Authorization: Bearer …``.  (User accounts and roles replace the token
when the supervisor pages arrive.)  After each change the gallery is rebuilt
and published to the terminals (``on_change``).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.config_file import ConfigError
from server.db import GalleryVersionRow
from broker.key_files import KeyFileError, read_key_file
from server.face_registry import FaceRegistry, RegistryError

ADMIN_TOKEN_ENV = "HALLWATCH_ADMIN_TOKEN_FILE"
MAX_PHOTO_BYTES = 10 * 2**20
MAX_PHOTOS = 20


def admin_token(path: Path | None) -> bytes | None:
    """The token from its file (refused if others can read it), or None: administration off."""
    try:
        return read_key_file(path).strip() if path else None
    except KeyFileError as exc:
        raise ConfigError(str(exc)) from None


def faces_router(registry: Callable[[], FaceRegistry | None], token: bytes | None, on_change: Callable[[], dict[str, Any]]) -> APIRouter:
    """``registry`` gives the register, or None when no template key is configured."""
    router = APIRouter(prefix="/api/faces", tags=["faces"])

    def authorised(request: Request) -> FaceRegistry:
        if token is None:
            raise HTTPException(503, f"face administration is off: set {ADMIN_TOKEN_ENV} to a file holding an administrator token")
        header = request.headers.get("authorization", "")
        given = header[7:].encode() if header.lower().startswith("bearer ") else b""
        if not hmac.compare_digest(given, token):
            raise HTTPException(401, "administrator token required", headers={"WWW-Authenticate": "Bearer"})
        found = registry()
        if found is None:
            raise HTTPException(503, "face templates cannot be stored: HALLWATCH_FACE_KEY_FILE is not set")
        return found

    # Dependencies as default values: ``from __future__ import annotations`` turns
    # annotations into strings, which cannot name this function's locals.
    @router.get("/people")
    def people(faces: Any = Depends(authorised)) -> list[dict[str, object]]:
        """Enrolled people — no biometric data."""
        return faces.people()

    @router.post("/people/{person_id}/photos")
    async def enrol(
        person_id: str,
        photos: Annotated[list[UploadFile], File(description="JPEG/PNG photos of this person alone, facing the camera")],
        name: Annotated[str | None, Form(max_length=100)] = None,
        staff_no: Annotated[str | None, Form(max_length=32)] = None,
        faces: Any = Depends(authorised),
    ) -> dict[str, Any]:
        """Add photos; each is accepted or rejected with its reason; then the gallery is rebuilt."""
        if len(photos) > MAX_PHOTOS:
            raise HTTPException(422, f"photos: at most {MAX_PHOTOS} per request")
        items = []
        for photo in photos:
            data = await photo.read(MAX_PHOTO_BYTES + 1)
            if len(data) > MAX_PHOTO_BYTES:
                raise HTTPException(413, f"photos: {photo.filename} is larger than {MAX_PHOTO_BYTES // 2**20} MiB")
            items.append((photo.filename or "photo", data))
        try:
            report = faces.enrol(person_id, items, name=name, staff_no=staff_no)
        except RegistryError as exc:
            raise HTTPException(422, str(exc)) from None
        gallery = on_change() if report.accepted else None
        return {
            "person_id": person_id,
            "accepted": report.accepted,
            "photos": [{"name": p.name, "accepted": p.accepted, "reason": p.reason or None} for p in report.photos],
            "gallery": gallery,
        }

    @router.delete("/people/{person_id}")
    def delete(person_id: str, faces: Any = Depends(authorised)) -> dict[str, Any]:
        """Delete the person's face data here, and (through the new gallery) on every terminal."""
        if not faces.delete(person_id):
            raise HTTPException(404, f"{person_id!r} is not enrolled")
        return {"deleted": person_id, "gallery": on_change()}

    @router.get("/calibration")
    def calibration(faces: Any = Depends(authorised)) -> dict[str, Any]:
        """The latest gallery's calibration: thresholds, estimate, look-alikes, warnings."""
        with Session(faces.engine) as session:
            row = session.scalars(select(GalleryVersionRow).order_by(GalleryVersionRow.version.desc()).limit(1)).first()
        if row is None:
            raise HTTPException(404, "no gallery built yet: enrol someone first")
        return {"version": row.version, "people": row.people, "templates": row.templates, **row.calibration}

    return router
