"""The staff register's faces: enrolment, encrypted templates, deletion, galleries.

Face templates are sensitive personal information (PIPL art. 28): they are
encrypted at rest with a key that is not in the database (Fernet; key from
``HALLWATCH_FACE_KEY_FILE``, a 0600 file), enrolment photos are dropped once
encoded unless the hall asks to keep them (then encrypted too), and
deleting a person deletes their rows and publishes a gallery without them,
so the terminals drop them as well.

Every enrolment photo is checked by the same quality gates the terminal
uses; a rejected photo says why, and nothing of it is kept.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from cryptography.fernet import Fernet, InvalidToken
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from broker.key_files import KeyFileError, read_key_file
from broker.protocol import Ident
from broker.timeutil import Clock, shanghai_now
from vision.calibration import Calibration, calibrate
from vision.faces import Face, FaceSettings, Rejected, from_bgr, one_face
from vision.gallery import Person, TerminalGallery, hash_pin
from vision.identify import Gallery
from server.db import FacePhotoRow, FaceTemplateRow, GalleryVersionRow, StaffRow

KEY_FILE_ENV = "HALLWATCH_FACE_KEY_FILE"
PICTURES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
_PERSON_ID = TypeAdapter(Ident)


class RegistryError(ValueError):
    """Bad input for the register (which item, and why)."""


def template_cipher(environ: dict[str, str] | None = None) -> Fernet:
    """The template key from ``HALLWATCH_FACE_KEY_FILE`` (create one with ``hallwatch faces keys init``)."""
    env = os.environ if environ is None else environ
    name = env.get(KEY_FILE_ENV)
    if not name:
        raise RegistryError(f"{KEY_FILE_ENV} is not set: face templates are only stored encrypted")
    return cipher_from_file(Path(name))


def cipher_from_file(path: Path) -> Fernet:
    """The template key in ``path`` (0600)."""
    try:
        key = read_key_file(path).strip()
    except KeyFileError as exc:
        raise RegistryError(str(exc)) from None
    try:
        return Fernet(key)
    except ValueError:
        raise RegistryError(f"{path}: not a Fernet key (32 url-safe base64 bytes)") from None


@dataclass
class PhotoResult:
    name: str
    accepted: bool
    reason: str = ""  # code and Chinese text when rejected


@dataclass
class EnrolReport:
    person_id: str
    photos: list[PhotoResult] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return sum(p.accepted for p in self.photos)


def check_person_id(person_id: str, where: str = "person_id") -> str:
    try:
        return _PERSON_ID.validate_python(person_id)
    except ValidationError:
        raise RegistryError(f"{where}: {person_id!r} is not a valid person id (lower-case letters, digits, '-' or '_', at most 64)") from None


class FaceRegistry:
    """Enrolment, deletion and gallery building over the database."""

    def __init__(self, engine: Engine, cipher: Fernet, settings: FaceSettings, *, keep_photos: bool = False, clock: Clock = shanghai_now) -> None:
        self.engine = engine
        self.cipher = cipher
        self.settings = settings
        self.keep_photos = keep_photos
        self.clock = clock

    # -------------------------------------------------------------- enrol

    def enrol(self, person_id: str, photos: list[tuple[str, bytes]], *, name: str | None = None, staff_no: str | None = None) -> EnrolReport:
        """Add a person's photos (each checked by the quality gates); creates the person if new."""
        check_person_id(person_id)
        report = EnrolReport(person_id)
        faces: list[tuple[bytes, Face]] = []
        for photo_name, data in photos:
            found = self._face(data)
            if isinstance(found, Rejected):
                report.photos.append(PhotoResult(photo_name, False, f"{found.code}: {found.reason_zh}{' (' + found.detail + ')' if found.detail else ''}"))
            else:
                report.photos.append(PhotoResult(photo_name, True))
                faces.append((data, found))
        if not faces:
            return report
        now = self.clock()
        with Session(self.engine) as session, session.begin():
            person = session.get(StaffRow, person_id) or StaffRow(id=person_id, created_at=now)
            person.name = name or person.name
            person.staff_no = staff_no or person.staff_no
            session.add(person)
            session.flush()
            for data, face in faces:
                session.add(
                    FaceTemplateRow(
                        person_id=person_id,
                        ciphertext=self.cipher.encrypt(face.encoding.astype("<f8").tobytes()),
                        quality={"face_px": face.quality.face_px, "sharpness": face.quality.sharpness, "yaw": face.quality.yaw},
                        created_at=now,
                    )
                )
                if self.keep_photos:
                    session.add(FacePhotoRow(person_id=person_id, ciphertext=self.cipher.encrypt(data), created_at=now))
        return report

    def _face(self, data: bytes) -> Face | Rejected:
        bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR) if data else None
        if bgr is None:
            return Rejected("unreadable")
        return one_face(from_bgr(bgr), self.settings)

    def enrol_folder(self, source: Path, progress: Callable[[str], None] | None = None) -> list[EnrolReport]:
        """Bulk enrolment from a folder or a zip: ``<person_id>/*.jpg``, and optionally
        ``staff.csv`` (person_id,name,staff_no) for names and staff numbers."""
        entries = dict(_read_tree(source))
        roster = _roster(entries.pop("staff.csv", None), source)
        people: dict[str, list[tuple[str, bytes]]] = {}
        for path, data in sorted(entries.items()):
            parts = path.split("/")
            if len(parts) != 2 or Path(parts[1]).suffix.lower() not in PICTURES:
                continue
            people.setdefault(check_person_id(parts[0], f"{source}/{parts[0]}"), []).append((path, data))
        if not people:
            raise RegistryError(f"{source}: no photos found (expected <person_id>/<photo>.jpg)")
        reports = []
        for person_id, photos in people.items():
            name, staff_no = roster.get(person_id, (None, None))
            reports.append(self.enrol(person_id, photos, name=name, staff_no=staff_no))
            if progress:
                progress(person_id)
        return reports

    def set_pin(self, person_id: str, pin: str) -> None:
        """The PIN for punching without the face (staff number + PIN), stored as an argon2 hash."""
        if not (pin.isdigit() and 4 <= len(pin) <= 8):
            raise RegistryError("pin: 4 to 8 digits")
        with Session(self.engine) as session, session.begin():
            person = session.get(StaffRow, person_id)
            if person is None:
                raise RegistryError(f"person_id: {person_id!r} is not enrolled")
            if not person.staff_no:
                raise RegistryError(f"{person_id}: has no staff number; a PIN is typed with the staff number")
            person.pin_hash = hash_pin(pin)

    # ------------------------------------------------------------- delete

    def delete(self, person_id: str) -> bool:
        """Delete a person and everything of their face (templates, photos). True if they existed."""
        with Session(self.engine) as session, session.begin():
            if session.get(StaffRow, person_id) is None:
                return False
            for table in (FaceTemplateRow, FacePhotoRow):
                session.execute(delete(table).where(table.person_id == person_id))
            session.execute(delete(StaffRow).where(StaffRow.id == person_id))
        return True

    # ------------------------------------------------------------ gallery

    def people(self) -> list[dict[str, object]]:
        """The register without any biometric data (for lists and the admin API)."""
        with Session(self.engine) as session:
            counts = dict(session.execute(select(FaceTemplateRow.person_id, func.count()).group_by(FaceTemplateRow.person_id)).all())
            return [
                {"person_id": p.id, "name": p.name, "staff_no": p.staff_no, "templates": counts.get(p.id, 0), "pin": p.pin_hash is not None}
                for p in session.scalars(select(StaffRow).order_by(StaffRow.id))
            ]

    def _templates(self) -> dict[str, list[np.ndarray]]:
        templates: dict[str, list[np.ndarray]] = {}
        with Session(self.engine) as session:
            for person_id, ciphertext in session.execute(select(FaceTemplateRow.person_id, FaceTemplateRow.ciphertext).order_by(FaceTemplateRow.id)):
                try:
                    plain = self.cipher.decrypt(ciphertext)
                except InvalidToken:
                    raise RegistryError("face templates do not decrypt with this key: wrong HALLWATCH_FACE_KEY_FILE?") from None
                templates.setdefault(person_id, []).append(np.frombuffer(plain, dtype="<f8"))
        return templates

    def build_gallery(self, target_far: float, progress: Callable[[int, int], None] | None = None) -> tuple[TerminalGallery, Calibration]:
        """Calibrate on the enrolled faces and record a new gallery version."""
        templates = self._templates()
        calibration = calibrate(Gallery(templates), target_far, progress)
        with Session(self.engine) as session, session.begin():
            version = (session.scalar(select(func.max(GalleryVersionRow.version))) or 0) + 1
            staff = {p.id: p for p in session.scalars(select(StaffRow))}
            people = tuple(
                Person(pid, staff[pid].name, staff[pid].staff_no, staff[pid].pin_hash, np.asarray(encs, dtype=np.float32))
                for pid, encs in sorted(templates.items())
            )
            session.add(
                GalleryVersionRow(
                    version=version, created_at=self.clock(), people=len(people), templates=sum(len(e) for e in templates.values()), calibration=calibration.to_dict()
                )
            )
        return TerminalGallery(version, calibration.thresholds, people, calibration.verify_only), calibration


def _read_tree(source: Path) -> Iterator[tuple[str, bytes]]:
    """(relative path, bytes) of every file in a folder or a zip."""
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            if path.is_file():
                yield path.relative_to(source).as_posix(), path.read_bytes()
    elif zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            # A zip of the folder itself has one top-level directory: read inside it.
            tops = {n.split("/")[0] for n in names}
            strip = len(tops) == 1 and all("/" in n for n in names)
            for name in names:
                yield (name.split("/", 1)[1] if strip else name), archive.read(name)
    else:
        raise RegistryError(f"{source}: neither a folder nor a zip file")


def _roster(data: bytes | None, source: Path) -> dict[str, tuple[str | None, str | None]]:
    if data is None:
        return {}
    roster: dict[str, tuple[str | None, str | None]] = {}
    text = data.decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "person_id" not in reader.fieldnames:
        raise RegistryError(f"{source}/staff.csv: line 1: the header must name person_id (and name, staff_no)")
    for line, row in enumerate(reader, start=2):
        person_id = check_person_id((row.get("person_id") or "").strip(), f"{source}/staff.csv line {line}: person_id")
        roster[person_id] = ((row.get("name") or "").strip() or None, (row.get("staff_no") or "").strip() or None)
    return roster

