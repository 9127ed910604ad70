"""The device register: which devices a hall has, of what kind, watching which windows.

Written at start from the hall file (through ingest's seeding) and by
``hallwatch device add``; ingest reads it to check every message's sender.
A device keeps its health history when it is registered again.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from server.db import DeviceRow


def put_device(session: Session, hall_id: str, device_id: str, kind: str, windows: list[str]) -> None:
    """Register (or re-register) one device inside the caller's transaction."""
    row = session.get(DeviceRow, device_id) or DeviceRow(id=device_id, status="never_seen")
    row.hall_id, row.kind, row.windows = hall_id, kind, list(windows)
    session.add(row)


def add_device(engine: Engine, hall_id: str, device_id: str, kind: str, windows: list[str]) -> None:
    """Register (or re-register) one device in its own transaction."""
    with Session(engine) as session, session.begin():
        put_device(session, hall_id, device_id, kind, windows)
