"""The face administration API: list, enrol (photo upload), delete, calibration report.

Enrolling and deleting faces is the most sensitive thing the server does, so
every endpoint here needs the permission ``faces.admin`` (role ``admin``, or
the administrator token of scripts).  After each change the gallery is rebuilt
and published to the terminals (``on_change``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import GalleryVersionRow
from server.users.authority import Authority
from server.faces.registry import FaceRegistry, RegistryError
from server.users.accounts import Principal

MAX_PHOTO_BYTES = 10 * 2**20
MAX_PHOTOS = 20


def faces_router(registry: Callable[[], FaceRegistry | None], authority: Authority, on_change: Callable[[], dict[str, Any]]) -> APIRouter:
    """``registry`` gives the register, or None when no template key is configured."""
    router = APIRouter(prefix="/api/faces", tags=["faces"])

    def authorised(_: Principal = Depends(authority.require("faces.admin"))) -> FaceRegistry:
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
