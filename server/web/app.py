"""The server process: the ingest thread, the REST API (OpenAPI at /docs), the WebSocket and the pages.

This module only composes: it builds each capability's service once for each
hall of the district and the shared ones once (:func:`build_services`),
starts and stops the ingest thread with the app's lifespan, and includes each
capability's routes — each hall's under ``/halls/<id>/`` (pages too), the
first hall's (the district centre's) also at ``/``, every one of them behind
the caller's hall scope.  The endpoints
themselves live with their capability (``server/<capability>/api.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine

from broker.connection import BrokerSettings
from broker.timeutil import Clock, shanghai_now
from server.attendance.api import attendance_router, leave_router
from server.attendance.leave import LeaveRegister
from server.attendance.service import AttendanceService
from server.attendance.today import TodayAttendance
from server.config.calendar import load_calendar
from server.config.district import District, district_of, district_of_hall
from server.config.hall import HallConfig
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
from server.supervision.district import HallSupervisors
from server.supervision.service import Supervisor
from server.timeseries.influx_sink import InfluxSink
from server.users.accounts import SessionPolicy, UserStore
from server.users.admin_token import admin_token
from server.users.audit import AuditLog, AuditMiddleware
from server.users.api import session_router
from server.users.authority import Authority
from server.ingest.batch import Changes
from server.web.district import district_router, split_by_hall
from server.web.live import Hub, change_messages, live_router
from server.web.overview import overview_router

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
class HallServices:
    """One hall's services: its rules (policy, calendar), supervision, ratings, attendance, patrols and live feed."""

    hall: HallConfig
    policy: Policy
    calendar: WorkCalendar
    supervisor: Supervisor
    ratings: RatingsService
    attendance: AttendanceService
    today: TodayAttendance
    patrols: PatrolService
    hub: Hub


@dataclass(frozen=True)
class Services:
    """Every service of the deployment, built once per process: the district's shared ones and each hall's."""

    settings: ServerSettings
    district: District
    clock: Clock
    engine: Engine
    store: Store
    halls: dict[str, HallServices]
    """By hall id, in the district file's order (the first is the district centre)."""
    publisher: GalleryPublisher
    faces: FaceService | None
    evidence: EvidenceStore
    sink: InfluxSink | None
    ingestor: Ingestor
    authority: Authority
    audit: AuditLog

    def stats(self) -> dict[str, Any]:
        """The ingest counters, and the time-series sink's when it runs."""
        return self.ingestor.counters.as_dict() | ({"influx": self.sink.stats()} if self.sink is not None else {})

    def send_command(self, device_id: str, payload: bytes) -> None:
        """Publish a command to one device (not retained: a command is for now, not for a later start)."""
        self.ingestor.publish_to_device(device_id, "cmd", payload, retain=False)

    def publish(self, changes: Changes) -> None:
        """Each hall's part of a batch to that hall's open pages (a page never sees another hall's news)."""
        statuses = self.store.device_statuses
        for hall_id, part in split_by_hall(changes, self.district).items():
            self.halls[hall_id].hub.publish(change_messages(part, statuses, self.ingestor.counters.as_dict))


def _hall_services(engine: Engine, hall: HallConfig, source: Path, clock: Clock) -> HallServices:
    policy = load_policy(hall.policy.preset, hall.policy.overrides, source=source)
    calendar = load_calendar(hall.calendars)
    supervisor = Supervisor(engine, hall, policy, calendar, clock)
    attendance = AttendanceService(engine, hall, policy, calendar, clock)
    return HallServices(
        hall, policy, calendar, supervisor, RatingsService(engine, hall, policy, calendar, clock, supervisor.load_days),
        attendance, TodayAttendance(attendance), PatrolService(engine, hall, policy, calendar, clock), Hub(),
    )  # fmt: skip


def build_services(settings: ServerSettings, district: District, clock: Clock) -> Services:
    """The district's services wired together; the ingest thread is built, not started."""
    engine = make_engine(settings.database_url)
    migrate(engine)
    store = Store(engine, stale_factor=settings.stale_factor, clock=clock)
    for hall in district.halls:
        store.seed(hall)
    halls = {hall.hall.id: _hall_services(engine, hall, source, clock) for hall, source in zip(district.halls, district.files, strict=True)}
    publisher = GalleryPublisher(
        settings.data_dir / "gallery",
        lambda device_id, payload: ingestor.publish_to_device(device_id, "gal", payload, retain=True),
        lambda: sorted(d for hall_id in halls for d in gallery_devices(store.registry(), hall_id)),
        clock=clock,
    )
    faces = face_service(engine, publisher, settings.face_key_file, settings.gallery_key_file, settings.signing_key_file, settings.face_target_far)
    evidence = EvidenceStore(engine, settings.data_dir / "evidence", settings.evidence_retention_days, clock)
    sink = _influx_sink(settings, district)
    periodic: list[Callable[[], object]] = [*(h.patrols.start_due_rounds for h in halls.values()), evidence.tick]
    if faces is not None:
        periodic.append(lambda: faces.tick(ingestor.connection))
    followers = [f for h in halls.values() for f in (h.ratings.follow, h.today.follow)]
    ingestor = Ingestor(
        store,
        list(halls),
        settings.broker,
        lambda changes: services.publish(changes),
        supervisor=HallSupervisors({hall_id: h.supervisor for hall_id, h in halls.items()}),
        followers=[*followers, *([sink.follow] if sink else [])],  # the sink after ratings: their alerts are exported too
        periodic=periodic,
    )
    authority = Authority(UserStore(engine, settings.session_policy), admin_token(settings.admin_token_file))
    services = Services(settings, district, clock, engine, store, halls, publisher, faces, evidence, sink, ingestor, authority, AuditLog(engine, district.halls[0].hall.id))
    return services


def _influx_sink(settings: ServerSettings, district: District) -> InfluxSink | None:
    """The time-series export, when the settings name a database to export to."""
    if settings.influx_url is None:
        return None
    return InfluxSink(
        settings.influx_url,
        bucket=settings.influx_bucket,
        org=settings.influx_org,
        token_file=settings.influx_token_file,
        spool_dir=settings.influx_spool_dir or settings.data_dir / "influx-spool",
        hall_id=district.halls[0].hall.id,
    )


def create_app(settings: ServerSettings, district: District | HallConfig | None = None, clock: Clock = shanghai_now) -> FastAPI:
    """Build the whole server; the MQTT session starts with the app's lifespan.

    ``district``: the halls to serve (a single hall is a district of one;
    None: ``settings.hall_file``).  ``clock`` is the halls' clock shown to
    people (the demo passes its simulator's faster clock); device staleness
    always uses the wall clock.
    """
    if district is None:
        district = district_of_hall(settings.hall_file)
    elif isinstance(district, HallConfig):
        district = district_of(district, settings.hall_file)
    s = build_services(settings, district, clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        for hall in s.halls.values():
            hall.hub.loop = loop
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
    for router in _district_routers(s):
        app.include_router(router)
    first = next(iter(s.halls.values()))
    for hall in s.halls.values():  # every hall under /halls/<id>/, the first (the district centre) also at /
        scope = [Depends(s.authority.hall_scope(hall.hall.hall.id))]
        for router in _hall_routers(s, hall):
            app.include_router(router, prefix=f"/halls/{hall.hall.hall.id}", dependencies=scope)
            if hall is first:
                app.include_router(router, dependencies=scope)
    for hall_id in s.halls:
        app.mount(f"/halls/{hall_id}", StaticFiles(directory=STATIC, html=True), name=f"static-{hall_id}")
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="static")
    return app


def _district_routers(s: Services) -> list[APIRouter]:
    """What belongs to the deployment, not to one hall: logging in, the halls, face enrolment, the gallery download."""
    authority, faces = s.authority, s.faces
    return [
        session_router(authority, s.audit),
        district_router(s.district, authority),
        overview_router(s.engine, s.halls, lambda: s.clock().date(), authority),
        gallery_router(s.publisher, s.settings.passwd_file),
        faces_router(lambda: faces.registry if faces else None, authority, faces.rebuild if faces else lambda: {}),
    ]


def _hall_routers(s: Services, h: HallServices) -> list[APIRouter]:
    """One hall's routes; reading needs a logged-in user of the hall (or the district), each change its permission."""
    hall, authority = h.hall, s.authority
    return [
        hall_router(s.engine, s.store, hall, h.policy, s.clock, s.stats, authority),
        alerts_router(h.supervisor, authority, h.hub.publish),
        leave_router(LeaveRegister(s.engine, hall), hall, authority),
        live_router(h.hub, authority),
        patrol_router(h.patrols, authority),
        ratings_router(h.ratings, authority),
        review_router(s.engine, hall, h.policy, h.calendar, s.clock, authority.principal),
        attendance_router(h.attendance, h.today, authority),
        evidence_router(s.evidence, hall.hall.id, s.store.registry, s.settings.passwd_file, authority, s.send_command),
    ]
