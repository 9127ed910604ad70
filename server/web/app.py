"""The server process: the ingest thread, the REST API (OpenAPI at /docs), the WebSocket and the pages.

This module only composes: it builds each capability's service once for the
hall (:func:`build_services`), starts and stops the ingest thread with the
app's lifespan, and includes each capability's routes.  The endpoints
themselves live with their capability (``server/<capability>/api.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine

from broker.connection import BrokerSettings
from broker.timeutil import Clock, shanghai_now
from server.attendance.api import attendance_router, leave_router
from server.attendance.leave import LeaveRegister
from server.attendance.service import AttendanceService
from server.attendance.today import TodayAttendance
from server.config.calendar import load_calendar
from server.config.hall import HallConfig, load_hall
from server.config.policy import load_policy
from server.db import make_engine, migrate
from server.evidence.api import evidence_router
from server.evidence.service import EvidenceStore
from server.faces.api import faces_router
from server.faces.gallery import GalleryPublisher, gallery_devices, gallery_router
from server.faces.service import FaceService, face_service
from server.ingest.api import hall_router
from server.ingest.ingestor import Ingestor
from server.ingest.store import Store
from server.patrol.api import patrol_router
from server.patrol.service import PatrolService
from server.ratings.api import ratings_router
from server.ratings.service import RatingsService
from server.review.api import review_router
from server.rules.calendar import WorkCalendar
from server.rules.policy import Policy
from server.supervision.api import alerts_router
from server.supervision.service import Supervisor
from server.timeseries.influx_sink import InfluxSink
from server.users.accounts import SessionPolicy, UserStore
from server.users.admin_token import admin_token
from server.users.audit import AuditLog, AuditMiddleware
from server.users.api import session_router
from server.users.authority import Authority
from server.web.live import Hub, change_messages, live_router

STATIC = Path(__file__).with_name("static")


@dataclass(frozen=True)
class ServerSettings:
    hall_file: Path
    database_url: str
    broker: BrokerSettings
    stale_factor: float = 3.0
    data_dir: Path = Path("var")
    """Server files that are not in the database (the current sealed gallery, evidence pictures)."""
    passwd_file: Path | None = None
    """The broker's passwd file: devices log in with it over HTTP (gallery download, evidence upload)."""
    face_key_file: Path | None = None
    gallery_key_file: Path | None = None
    signing_key_file: Path | None = None
    admin_token_file: Path | None = None
    evidence_retention_days: int = 30
    """Evidence snapshots older than this are deleted (personal data: keep it short)."""
    face_target_far: float = 0.01
    session_policy: SessionPolicy = SessionPolicy()
    """How long a login lasts unused, and at most."""
    influx_url: str | None = None
    """An InfluxDB (or VictoriaMetrics) write endpoint: every committed event is exported there too."""
    influx_bucket: str = "hallwatch"
    influx_org: str = "hallwatch"
    influx_token_file: Path | None = None
    influx_spool_dir: Path | None = None
    """Where points wait while the time-series database is down (default: data_dir/influx-spool)."""


@dataclass(frozen=True)
class Services:
    """Every capability's service for the hall, built once per process."""

    settings: ServerSettings
    hall: HallConfig
    clock: Clock
    engine: Engine
    store: Store
    policy: Policy
    calendar: WorkCalendar
    supervisor: Supervisor
    ratings: RatingsService
    attendance: AttendanceService
    today: TodayAttendance
    patrols: PatrolService
    publisher: GalleryPublisher
    faces: FaceService | None
    evidence: EvidenceStore
    sink: InfluxSink | None
    ingestor: Ingestor
    hub: Hub
    authority: Authority
    audit: AuditLog

    def stats(self) -> dict[str, Any]:
        """The ingest counters, and the time-series sink's when it runs."""
        return self.ingestor.counters.as_dict() | ({"influx": self.sink.stats()} if self.sink is not None else {})

    def send_command(self, device_id: str, payload: bytes) -> None:
        """Publish a command to one device (not retained: a command is for now, not for a later start)."""
        self.ingestor.publish_to_device(device_id, "cmd", payload, retain=False)


def build_services(settings: ServerSettings, hall: HallConfig, clock: Clock) -> Services:
    """The hall's services wired together; the ingest thread is built, not started."""
    engine = make_engine(settings.database_url)
    migrate(engine)
    store = Store(engine, stale_factor=settings.stale_factor, clock=clock)
    store.seed(hall)
    policy = load_policy(hall.policy.preset, hall.policy.overrides, source=settings.hall_file)
    calendar = load_calendar(hall.calendars)
    supervisor = Supervisor(engine, hall, policy, calendar, clock)
    ratings = RatingsService(engine, hall, policy, calendar, clock, supervisor.load_days)
    attendance = AttendanceService(engine, hall, policy, calendar, clock)
    today = TodayAttendance(attendance)
    hub = Hub()
    patrols = PatrolService(engine, hall, policy, calendar, clock)
    publisher = GalleryPublisher(
        settings.data_dir / "gallery",
        lambda device_id, payload: ingestor.publish_to_device(device_id, "gal", payload, retain=True),
        lambda: gallery_devices(store.registry(), hall.hall.id),
        clock=clock,
    )
    faces = face_service(engine, publisher, settings.face_key_file, settings.gallery_key_file, settings.signing_key_file, settings.face_target_far)
    evidence = EvidenceStore(engine, settings.data_dir / "evidence", settings.evidence_retention_days, clock)
    sink = _influx_sink(settings, hall)
    periodic: list[Callable[[], object]] = [patrols.start_due_rounds, evidence.tick]
    if faces is not None:
        periodic.append(lambda: faces.tick(ingestor.connection))
    ingestor = Ingestor(
        store,
        hall.hall.id,
        settings.broker,
        lambda changes: hub.publish(change_messages(changes, store.device_statuses, ingestor.counters.as_dict)),
        supervisor=supervisor,
        followers=[ratings.follow, today.follow, *([sink.follow] if sink else [])],  # the sink after ratings: their alerts are exported too
        periodic=periodic,
    )
    authority = Authority(UserStore(engine, settings.session_policy), admin_token(settings.admin_token_file))
    return Services(
        settings, hall, clock, engine, store, policy, calendar, supervisor, ratings, attendance, today, patrols,
        publisher, faces, evidence, sink, ingestor, hub, authority, AuditLog(engine, hall.hall.id),
    )


def _influx_sink(settings: ServerSettings, hall: HallConfig) -> InfluxSink | None:
    """The time-series export, when the settings name a database to export to."""
    if settings.influx_url is None:
        return None
    return InfluxSink(
        settings.influx_url,
        bucket=settings.influx_bucket,
        org=settings.influx_org,
        token_file=settings.influx_token_file,
        spool_dir=settings.influx_spool_dir or settings.data_dir / "influx-spool",
        hall_id=hall.hall.id,
    )


def create_app(settings: ServerSettings, hall: HallConfig | None = None, clock: Clock = shanghai_now) -> FastAPI:
    """Build the whole server; the MQTT session starts with the app's lifespan.

    ``clock`` is the hall's clock shown to people (the demo passes its
    simulator's faster clock); device staleness always uses the wall clock.
    """
    s = build_services(settings, hall or load_hall(settings.hall_file), clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s.hub.loop = asyncio.get_running_loop()
        if s.sink is not None:
            s.sink.start()
        s.ingestor.start()
        try:
            yield
        finally:
            await asyncio.to_thread(s.ingestor.stop)
            if s.sink is not None:
                await asyncio.to_thread(s.sink.close)
            s.engine.dispose()

    app = FastAPI(title="HallWatch", version="0.1.0", lifespan=lifespan)
    app.state.ingestor = s.ingestor
    app.state.store = s.store
    app.add_middleware(AuditMiddleware, audit=s.audit)  # every change is audited, with who made it
    for router in _routers(s):
        app.include_router(router)
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="static")
    return app


def _routers(s: Services) -> list[APIRouter]:
    """Every capability's routes; reading needs a logged-in user, each change its permission."""
    hall, authority = s.hall, s.authority
    faces = s.faces
    return [
        session_router(authority, s.audit),
        hall_router(s.engine, s.store, hall, s.policy, s.clock, s.stats, authority),
        alerts_router(s.supervisor, authority, s.hub.publish),
        leave_router(LeaveRegister(s.engine, hall), hall, authority),
        live_router(s.hub, authority),
        patrol_router(s.patrols, authority),
        ratings_router(s.ratings, authority),
        review_router(s.engine, hall, s.policy, s.calendar, s.clock, authority.principal),
        attendance_router(s.attendance, s.today, authority),
        gallery_router(s.publisher, s.settings.passwd_file),
        evidence_router(s.evidence, hall.hall.id, s.store.registry, s.settings.passwd_file, authority, s.send_command),
        faces_router(lambda: faces.registry if faces else None, authority, faces.rebuild if faces else lambda: {}),
    ]
