"""Database schema and engine (SQLAlchemy 2; SQLite by default, PostgreSQL by URL).

The schema is created and upgraded only by Alembic migrations
(`server/migrations/`), never by ``create_all``, so a hall's database can be
upgraded in place.  Times are stored in UTC and come back timezone-aware.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    false,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

MIGRATIONS = Path(__file__).with_name("migrations")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=timezone.utc) if value is not None else None


class Base(DeclarativeBase):
    pass


class DeviceRow(Base):
    """A registered device and its last known health."""

    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hall_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    windows: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="never_seen")
    boot: Mapped[int | None] = mapped_column(Integer, nullable=True)
    heartbeat_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    software: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """Why the device says it is offline (``camera lost: ended``), from its status."""


class WindowRow(Base):
    """A service window, its latest facts and its derived state."""

    __tablename__ = "windows"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hall_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(100))
    department: Mapped[str] = mapped_column(String(100))
    camera_device: Mapped[str | None] = mapped_column(String(64), nullable=True)
    seat_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    seat_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    occupant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    pause_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    pause_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="unknown")
    state_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class EventRow(Base):
    """Every accepted event, exactly once."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("device_id", "boot", "seq", name="uq_events_device_boot_seq"),
        Index("ix_events_window_day", "window_id", "repeat", "event_time"),
        Index("ix_events_type_time", "type", "event_time"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    msg_id: Mapped[str] = mapped_column(String(36), unique=True)
    hall_id: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[str] = mapped_column(String(64))
    boot: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(32))
    window_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    event_time: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    received_time: Mapped[datetime] = mapped_column(UTCDateTime)
    historical: Mapped[bool] = mapped_column(Boolean)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    repeat: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """A seat heartbeat that only repeats its window's last stored seat fact
    (see ``server.ingest.store.SeatFacts``): kept, but not read back for supervision."""


class StaffRow(Base):
    """A person who may punch: the face templates and the PIN hang off this row."""

    __tablename__ = "staff"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    staff_no: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)
    pin_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FaceTemplateRow(Base):
    """One face encoding, encrypted (sensitive personal information: never stored in clear)."""

    __tablename__ = "face_templates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(String(64), ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    quality: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FacePhotoRow(Base):
    """An enrolment photo, encrypted; only kept when the hall configures it."""

    __tablename__ = "face_photos"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(String(64), ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GalleryVersionRow(Base):
    """Each gallery built for the terminals, with the calibration it carries."""

    __tablename__ = "gallery_versions"
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    people: Mapped[int] = mapped_column(Integer)
    templates: Mapped[int] = mapped_column(Integer)
    calibration: Mapped[dict[str, Any]] = mapped_column(JSON)


class MakeUpRow(Base):
    """A make-up punch request (补卡) and its decision (rules: server/rules/attendance.py)."""

    __tablename__ = "makeup_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hall_id: Mapped[str] = mapped_column(String(64), index=True, default="", server_default="")
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    reason: Mapped[str] = mapped_column(String(200))
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(10))
    decided_by: Mapped[str] = mapped_column(String(64), default="", server_default="")
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    note: Mapped[str] = mapped_column(String(200), default="", server_default="")


class RejectionRow(Base):
    """A message the server refused, with the reason (never silently lost)."""

    __tablename__ = "rejections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hall_id: Mapped[str] = mapped_column(String(64), index=True, default="", server_default="")
    received_time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    topic: Mapped[str] = mapped_column(String(300))
    device_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str] = mapped_column(String(500))
    excerpt: Mapped[str] = mapped_column(Text)


class DeviceHealthRow(Base):
    """Each change of a device's health, in hall time, so a day can be replayed."""

    __tablename__ = "device_health"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)


class EvidenceRow(Base):
    """A snapshot a window camera sent (blurred at the edge); the picture is a file under the data folder."""

    __tablename__ = "evidence"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hall_id: Mapped[str] = mapped_column(String(64), index=True, default="", server_default="")
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    window_id: Mapped[str] = mapped_column(String(64), index=True)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cause: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))


class LeaveRow(Base):
    """The leave / outing / substitution register (请假、外出、替岗登记)."""

    __tablename__ = "leaves"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hall_id: Mapped[str] = mapped_column(String(64), index=True, default="", server_default="")
    kind: Mapped[str] = mapped_column(String(16))  # leave | outing | substitute
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    window_id: Mapped[str] = mapped_column(String(64), index=True)
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(String(200), default="")


class AlertRow(Base):
    """An alert: at most one active per (window, type); raised → acknowledged → cleared."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("window_id", "type", "raised_at", name="uq_alerts_episode"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hall_id: Mapped[str] = mapped_column(String(64), index=True, default="", server_default="")
    window_id: Mapped[str] = mapped_column(String(64), index=True)
    type: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    condition_since: Mapped[datetime] = mapped_column(UTCDateTime)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    live: Mapped[bool] = mapped_column(Boolean)
    rule: Mapped[str | None] = mapped_column(String(64), nullable=True)
    threshold_s: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    evidence: Mapped[str | None] = mapped_column(String(128), nullable=True)


class RatingRow(Base):
    """A rating (好差评): pressed on an evaluator (``device``) or given by the system (``default``).

    ``duplicate_of`` names the rating that counts for the same transaction
    (一事一评, decided by ``server.rules.ratings.resolve``); a duplicate is kept
    and reported, never counted.  ``signals`` are its fraud signals.
    """

    __tablename__ = "ratings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hall_id: Mapped[str] = mapped_column(String(64), index=True, default="", server_default="")
    msg_id: Mapped[str | None] = mapped_column(String(36), nullable=True, unique=True)
    """The event it came from (None for a default rating)."""
    origin: Mapped[str] = mapped_column(String(8))
    window_id: Mapped[str] = mapped_column(String(64), index=True)
    clerk_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    level: Mapped[int] = mapped_column(Integer)
    ticket: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cases: Mapped[list[str]] = mapped_column(JSON)
    day: Mapped[date] = mapped_column(Date, index=True)
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    device_id: Mapped[str] = mapped_column(String(64), default="", server_default="")
    boot: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    historical: Mapped[bool] = mapped_column(Boolean)
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("ratings.id"), nullable=True, index=True)
    signals: Mapped[list[str]] = mapped_column(JSON)


class RatingKeyRow(Base):
    """The transaction keys of a rating (its ticket of the day, each case number): how duplicates are found."""

    __tablename__ = "rating_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hall_id: Mapped[str] = mapped_column(String(64), index=True, default="", server_default="")
    key: Mapped[str] = mapped_column(String(160), index=True)
    rating_id: Mapped[int] = mapped_column(ForeignKey("ratings.id"), index=True)


class TicketRow(Base):
    """A queue ticket (排队号) of a day, as the queue-calling system reported it.

    ``settled``: the default-rating sweep has decided it (rated, or given the default).
    """

    __tablename__ = "tickets"
    __table_args__ = (UniqueConstraint("hall_id", "day", "ticket", name="uq_tickets_hall_day_ticket"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hall_id: Mapped[str] = mapped_column(String(64), index=True, default="", server_default="")
    day: Mapped[date] = mapped_column(Date, index=True)
    ticket: Mapped[str] = mapped_column(String(64))
    window_id: Mapped[str] = mapped_column(String(64), index=True)
    clerk_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cases: Mapped[list[str]] = mapped_column(JSON)
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    settled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), index=True)


class WorkOrderStepRow(Base):
    """One step of a work order — status, time, actor, note — append-only."""

    __tablename__ = "work_order_steps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text)


class WorkOrderRow(Base):
    """A bad-rating work order (差评工单): its rating, deadlines (working days) and current status."""

    __tablename__ = "work_orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hall_id: Mapped[str] = mapped_column(String(64), index=True, default="", server_default="")
    rating_id: Mapped[int] = mapped_column(ForeignKey("ratings.id"), unique=True)
    window_id: Mapped[str] = mapped_column(String(64), index=True)
    clerk_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    level: Mapped[int] = mapped_column(Integer)
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    callback_due: Mapped[date | None] = mapped_column(Date, nullable=True)
    rectify_due: Mapped[date | None] = mapped_column(Date, nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    final_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    steps: Mapped[list[WorkOrderStepRow]] = relationship(order_by=WorkOrderStepRow.id, lazy="selectin", cascade="all, delete-orphan")



class UserRow(Base):
    """A person who uses the pages or the API; roles and permissions are in server/users/accounts.py."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    department: Mapped[str | None] = mapped_column(String(100), nullable=True)
    """A window lead's department (the hall file's spelling); None for the other roles."""
    hall_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The user's scope: one hall, or None for the whole district (district 督查科, leadership)."""
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SessionRow(Base):
    """A logged-in browser: only the SHA-256 of its cookie token is kept, so a stolen database opens no session."""

    __tablename__ = "sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditRow(Base):
    """One state-changing request or login attempt: who, when, what, on what, and how it ended."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hall_id: Mapped[str] = mapped_column(String(64), index=True, default="", server_default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(200))
    target: Mapped[str] = mapped_column(String(500))
    result: Mapped[str] = mapped_column(String(16))


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout for the API's readers."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
