"""The leave, outing and substitution register (请假、外出、替岗登记).

Approved leave excuses a one-clerk window only when a substitute is
registered; a registered substitute may sit in the seat without raising
替岗未报备.  Entries come one by one through the API or in bulk from a CSV
file exported from the hall's OA system.  A CSV import is all or nothing:
every bad row is reported with its line and reason, and nothing is stored
until the file is clean, so a half-imported roster can never excuse the
wrong person.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from broker.protocol import Ident
from broker.timeutil import HALL_TZ, hall_iso
from server.db import LeaveRow
from server.config.hall import HallConfig

CSV_COLUMNS = ("kind", "person_id", "window_id", "start", "end", "note")


class LeaveEntry(BaseModel):
    """One approved absence or substitution, in hall time."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["leave", "outing", "substitute"]
    person_id: Ident
    window_id: Ident
    start: datetime
    end: datetime
    note: str = Field(default="", max_length=200)

    @field_validator("start", "end")
    @classmethod
    def _hall_time(cls, value: datetime) -> datetime:
        """Times without an offset are hall time (Asia/Shanghai)."""
        return value if value.tzinfo else value.replace(tzinfo=HALL_TZ)

    @model_validator(mode="after")
    def _ordered(self) -> LeaveEntry:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class RegisterError(ValueError):
    """Bad entries, each as 'line N: field: reason'."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def check_entry(entry: LeaveEntry, hall: HallConfig) -> str | None:
    """What is wrong with an entry for this hall, or None."""
    window = next((w for w in hall.windows if w.id == entry.window_id), None)
    if window is None:
        return f"window_id: no window {entry.window_id!r} in hall {hall.hall.id}"
    if entry.kind in ("leave", "outing") and entry.person_id not in window.clerks:
        return f"person_id: {entry.person_id!r} is not on the roster of {entry.window_id} ({', '.join(window.clerks) or 'empty'})"
    return None


def parse_csv(text: str, hall: HallConfig) -> list[LeaveEntry]:
    """Every row of a register CSV, or RegisterError listing each bad row."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))  # Excel writes a BOM
    missing = [c for c in CSV_COLUMNS[:5] if c not in (reader.fieldnames or [])]
    if missing:
        raise RegisterError([f"line 1: header: missing column(s) {', '.join(missing)} (expected {','.join(CSV_COLUMNS)})"])
    entries: list[LeaveEntry] = []
    problems: list[str] = []
    for row in reader:
        line = reader.line_num
        try:
            entry = LeaveEntry.model_validate({k: (v or "").strip() for k, v in row.items() if k in CSV_COLUMNS})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "row"
            problems.append(f"line {line}: {where}: {err['msg']}")
            continue
        problem = check_entry(entry, hall)
        if problem:
            problems.append(f"line {line}: {problem}")
        else:
            entries.append(entry)
    if problems:
        raise RegisterError(problems)
    return entries


class LeaveRegister:
    """Stores and lists register entries."""

    def __init__(self, engine: Engine, hall: HallConfig) -> None:
        self.engine = engine
        self.hall = hall

    def add(self, entries: list[LeaveEntry]) -> list[int]:
        problems = [f"entry {i + 1}: {p}" for i, e in enumerate(entries) if (p := check_entry(e, self.hall))]
        if problems:
            raise RegisterError(problems)
        with Session(self.engine) as session, session.begin():
            rows = [LeaveRow(hall_id=self.hall.hall.id, **e.model_dump()) for e in entries]
            session.add_all(rows)
            session.flush()
            return [r.id for r in rows]

    def between(self, start: datetime, end: datetime) -> list[dict[str, object]]:
        with Session(self.engine) as session:
            rows = session.scalars(select(LeaveRow).where(LeaveRow.hall_id == self.hall.hall.id, LeaveRow.start < end, LeaveRow.end > start).order_by(LeaveRow.start, LeaveRow.id))
            return [
                {
                    "id": r.id,
                    "kind": r.kind,
                    "person_id": r.person_id,
                    "window_id": r.window_id,
                    "start": hall_iso(r.start),
                    "end": hall_iso(r.end),
                    "note": r.note,
                }
                for r in rows
            ]
