"""The evidence pictures of a hall: files under the server's data folder (0600), rows in ``evidence``.

A picture takes its final name only after its row is committed, so a crash
leaves at most a ``.part`` file, never a row without its picture; one id
uploaded twice is stored once.  The periodic sweep deletes what is older
than the retention period, row and file (personal data: keep it short).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broker.timeutil import Clock, hall_iso, shanghai_now
from server.db import EvidenceRow

log = logging.getLogger(__name__)

PURGE_EVERY_S = 3600.0
Cause = Literal["vacancy", "request"]
PART = ".part"
"""The suffix of a picture being stored (its row not yet committed)."""


class EvidenceStore:
    """The evidence pictures of one hall: files under ``directory``, rows in the database."""

    def __init__(self, engine: Engine, directory: Path, retention_days: int, clock: Clock = shanghai_now) -> None:
        if retention_days < 1:
            raise ValueError("evidence retention must be at least one day")
        self.engine = engine
        self.directory = directory
        self.retention = timedelta(days=retention_days)
        self.clock = clock
        self._next_purge = 0.0

    def path(self, evidence_id: str) -> Path:
        return self.directory / f"{evidence_id}.jpg"

    def add(self, evidence_id: str, device_id: str, window_id: str, taken_at: datetime, cause: Cause, picture: bytes, hall_id: str = "") -> bool:
        """Keep one picture; False when this id is already stored (a retried upload, or one sent twice at once).

        The picture is written to a temporary file that takes its name only once its row is committed,
        so two uploads of one id racing each other give one picture and a "stored already", never an
        error, and a failed commit leaves no file behind.  Should the file not arrive after its row
        (the disk filled, the server died in between), the camera's retry of the same picture puts it
        in place."""
        digest = hashlib.sha256(picture).hexdigest()
        if self._stored(evidence_id, digest, picture):
            return False
        temporary = self._temporary(evidence_id, picture)
        try:
            with Session(self.engine) as session, session.begin():
                session.add(
                    EvidenceRow(
                        id=evidence_id,
                        hall_id=hall_id,
                        device_id=device_id,
                        window_id=window_id,
                        taken_at=taken_at,
                        received_at=self.clock(),
                        cause=cause,
                        size=len(picture),
                        sha256=digest,
                    )
                )
        except IntegrityError:
            temporary.unlink()
            return False
        except BaseException:
            temporary.unlink()
            raise
        self._move(temporary, evidence_id)
        return True

    def _stored(self, evidence_id: str, digest: str, picture: bytes) -> bool:
        """Is there a row for this id?  A row without its file gets this picture if it is the same one."""
        with Session(self.engine) as session:
            stored = session.scalar(select(EvidenceRow.sha256).where(EvidenceRow.id == evidence_id))
        if stored is None:
            return False
        if stored == digest and not self.path(evidence_id).exists():
            self._move(self._temporary(evidence_id, picture), evidence_id)
            log.warning("evidence %s: its picture was missing; the camera's retry put it in place", evidence_id)
        return True

    def _temporary(self, evidence_id: str, picture: bytes) -> Path:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.directory, prefix=f".{evidence_id}.", suffix=PART)  # mode 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(picture)
        except BaseException:
            os.unlink(name)
            raise
        return Path(name)

    def _move(self, temporary: Path, evidence_id: str) -> None:
        try:
            os.replace(temporary, self.path(evidence_id))
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def get(self, evidence_id: str, hall_id: str | None = None) -> tuple[EvidenceRow, bytes] | None:
        """The row and picture; None when unknown, or another hall's than ``hall_id`` (None: any hall)."""
        with Session(self.engine) as session:
            row = session.get(EvidenceRow, evidence_id)
        if row is None or (hall_id is not None and row.hall_id != hall_id):
            return None
        try:
            return row, self.path(evidence_id).read_bytes()
        except FileNotFoundError:
            return None

    def list(self, window_id: str | None, limit: int, hall_id: str | None = None) -> list[dict[str, Any]]:
        """The newest snapshots, of one window or all; of one hall (``hall_id``) or every hall (None)."""
        query = select(EvidenceRow).order_by(EvidenceRow.taken_at.desc()).limit(limit)
        if hall_id is not None:
            query = query.where(EvidenceRow.hall_id == hall_id)
        if window_id:
            query = query.where(EvidenceRow.window_id == window_id)
        with Session(self.engine) as session:
            return [_json(row) for row in session.scalars(query)]

    def tick(self) -> None:
        """The periodic sweep's call: purge at most once an hour."""
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + PURGE_EVERY_S
            self.purge()

    def purge(self) -> int:
        """Delete the pictures older than the retention period; how many went."""
        cutoff = self.clock() - self.retention
        with Session(self.engine) as session, session.begin():
            old = list(session.scalars(select(EvidenceRow.id).where(EvidenceRow.taken_at < cutoff)))
            if old:
                session.execute(delete(EvidenceRow).where(EvidenceRow.id.in_(old)))
        for evidence_id in old:
            self.path(evidence_id).unlink(missing_ok=True)
        if self.directory.exists():  # an upload cut off by a crash between its file and its row
            stale = time.time() - 3600
            for part in self.directory.glob(f".*{PART}"):
                if part.stat().st_mtime < stale:
                    part.unlink(missing_ok=True)
        if old:
            log.info("evidence: %d pictures older than %d days deleted", len(old), self.retention.days)
        return len(old)


def _json(row: EvidenceRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "device_id": row.device_id,
        "window_id": row.window_id,
        "taken_at": hall_iso(row.taken_at),
        "received_at": hall_iso(row.received_at),
        "cause": row.cause,
        "size": row.size,
        "sha256": row.sha256,
    }
