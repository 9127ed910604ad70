"""The server process: ingest thread + REST API (OpenAPI at /docs) + WebSocket + live page."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.connection import BrokerSettings
from broker.timeutil import HALL_TZ, Clock, shanghai_now
from server.db import DeviceRow, EventRow, RejectionRow, WindowRow, make_engine, migrate
from server.config.hall import HallConfig, load_hall
from server.attendance.leave import LeaveEntry, LeaveRegister, RegisterError, parse_csv
from server.ingest.ingestor import Ingestor
from server.ingest.serialize import device_json, event_json, window_json
from server.config.calendar import load_calendar
from server.attendance.api import attendance_router
from server.attendance.service import AttendanceService
from server.faces.service import face_service
from server.users.admin_token import admin_token
from server.evidence.api import EvidenceStore, evidence_router
from server.faces.api import faces_router
from server.faces.gallery import GalleryPublisher, gallery_devices, gallery_router
from server.patrol.api import patrol_router
from server.patrol.service import PatrolService
from server.config.policy import load_policy
from server.timeseries.influx_sink import InfluxSink
from server.ratings.api import ratings_router
from server.ratings.service import RatingsService
from server.review.api import review_router
from server.ingest.store import Changes, Store
from server.supervision.service import Supervisor
# users, sessions, permissions and the audit log (issue 7)
from server.users.audit import AuditLog, AuditMiddleware
from server.users.authority import Authority, session_router
from server.users.accounts import Principal, SessionPolicy, UserStore

log = logging.getLogger(__name__)
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


class Hub:
    """Fans change messages out to WebSocket clients.

    The ingest thread calls :meth:`publish`; each client has a bounded queue,
    and a client too slow to keep up is disconnected (it reconnects and
    refetches) rather than slowing ingest down.
    """

    QUEUE_MAX = 2000

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.clients: set[asyncio.Queue[dict[str, Any] | None]] = set()

    def publish(self, messages: list[dict[str, Any]]) -> None:
        if self.loop is not None and messages:
            self.loop.call_soon_threadsafe(self._fan_out, messages)

    def _fan_out(self, messages: list[dict[str, Any]]) -> None:
        for client in list(self.clients):
            try:
                for message in messages:
                    client.put_nowait(message)
            except asyncio.QueueFull:
                self.clients.discard(client)
                while not client.empty():
                    client.get_nowait()
                client.put_nowait(None)  # ends that client's socket


def _messages(changes: Changes, store: Store, ingestor: Ingestor) -> list[dict[str, Any]]:
    cameras = store.device_statuses() if changes.windows else {}
    messages: list[dict[str, Any]] = [{"kind": "device", "device": device_json(d)} for d in changes.devices.values()]
    messages += [
        {"kind": "window", "window": window_json(w, cameras.get(w.camera_device or ""))} for w in changes.windows.values()
    ]
    messages += [{"kind": "event", "event": event_json(e)} for e in changes.events]
    messages += [{"kind": "alert", "alert": alert} for alert in changes.alerts]
    messages.append({"kind": "stats", "stats": ingestor.counters.as_dict()})
    return messages


def create_app(settings: ServerSettings, hall: HallConfig | None = None, clock: Clock = shanghai_now) -> FastAPI:
    """Build the whole server; the MQTT session starts with the app's lifespan.

    ``clock`` is the hall's clock shown to people (the demo passes its
    simulator's faster clock); device staleness always uses the wall clock.
    """
    hall = hall or load_hall(settings.hall_file)
    engine = make_engine(settings.database_url)
    migrate(engine)
    store = Store(engine, stale_factor=settings.stale_factor, clock=clock)
    store.seed(hall)
    policy = load_policy(hall.policy.preset, hall.policy.overrides, source=settings.hall_file)
    calendar = load_calendar(hall.calendars)
    supervisor = Supervisor(engine, hall, policy, calendar, clock)
    ratings = RatingsService(engine, hall, policy, calendar, clock, supervisor.load_days)
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
    sink = (
        InfluxSink(
            settings.influx_url,
            bucket=settings.influx_bucket,
            org=settings.influx_org,
            token_file=settings.influx_token_file,
            spool_dir=settings.influx_spool_dir or settings.data_dir / "influx-spool",
            hall_id=hall.hall.id,
        )
        if settings.influx_url
        else None
    )
    periodic: list[Callable[[], object]] = [patrols.start_due_rounds, evidence.tick]
    if faces is not None:
        periodic.append(lambda: faces.tick(ingestor.connection))
    ingestor = Ingestor(
        store,
        hall.hall.id,
        settings.broker,
        lambda changes: hub.publish(_messages(changes, store, ingestor)),
        supervisor=supervisor,
        followers=[ratings.follow, *([sink.follow] if sink else [])],  # the sink after ratings: their alerts are exported too
        periodic=periodic,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub.loop = asyncio.get_running_loop()
        if sink is not None:
            sink.start()
        ingestor.start()
        try:
            yield
        finally:
            await asyncio.to_thread(ingestor.stop)
            if sink is not None:
                await asyncio.to_thread(sink.close)
            engine.dispose()

    app = FastAPI(title="HallWatch", version="0.1.0", lifespan=lifespan)
    app.state.ingestor = ingestor
    app.state.store = store

    # ---- users, sessions, permissions and the audit log (issue 7): reading needs a
    # logged-in principal, every change its permission; the middleware audits changes.
    authority = Authority(UserStore(engine, settings.session_policy), admin_token(settings.admin_token_file))
    audit = AuditLog(engine)
    app.add_middleware(AuditMiddleware, audit=audit)
    app.include_router(session_router(authority, audit))
    api = APIRouter(dependencies=[Depends(authority.principal)])
    # ---- end of users block

    @api.get("/api/hall")
    def get_hall() -> dict[str, Any]:
        return {
            "id": hall.hall.id,
            "name": hall.hall.name,
            "timezone": hall.hall.timezone,
            "clock": {"now": clock().isoformat(), "speed": getattr(clock, "speed", 1.0)},
        }

    @api.get("/api/windows")
    def get_windows() -> list[dict[str, Any]]:
        cameras = store.device_statuses()
        with Session(engine) as session:
            rows = session.scalars(select(WindowRow).where(WindowRow.hall_id == hall.hall.id).order_by(WindowRow.id))
            return [window_json(row, cameras.get(row.camera_device or "")) for row in rows]

    @api.get("/api/devices")
    def get_devices() -> list[dict[str, Any]]:
        with Session(engine) as session:
            rows = session.scalars(select(DeviceRow).where(DeviceRow.hall_id == hall.hall.id).order_by(DeviceRow.id))
            return [device_json(row) for row in rows]

    @api.get("/api/stats")
    def get_stats() -> dict[str, Any]:
        return ingestor.counters.as_dict() | ({"influx": sink.stats()} if sink is not None else {})

    @api.get("/api/events")
    def get_events(
        limit: int = Query(50, ge=1, le=1000),
        device_id: str | None = None,
        type: str | None = None,
        historical: bool | None = None,
    ) -> list[dict[str, Any]]:
        query = select(EventRow).order_by(EventRow.id.desc()).limit(limit)
        if device_id:
            query = query.where(EventRow.device_id == device_id)
        if type:
            query = query.where(EventRow.type == type)
        if historical is not None:
            query = query.where(EventRow.historical == historical)
        with Session(engine) as session:
            return [event_json(row) | {"boot": row.boot, "seq": row.seq} for row in session.scalars(query)]

    @api.get("/api/alerts")
    def get_alerts(active: bool = False, limit: int = Query(100, ge=1, le=1000)) -> list[dict[str, Any]]:
        """Alerts newest first; ``active`` keeps those not yet cleared."""
        return supervisor.alerts(active_only=active, limit=limit)

    @api.post("/api/alerts/{alert_id}/ack")
    def acknowledge(alert_id: int, by: Principal = Depends(authority.require("alerts.ack"))) -> dict[str, Any]:
        """Acknowledge an alert as the logged-in user."""
        alert = supervisor.acknowledge(alert_id, by.name)
        if alert is None:
            raise HTTPException(404, f"no alert {alert_id}")
        hub.publish([{"kind": "alert", "alert": alert}])
        return alert

    register = LeaveRegister(engine, hall)

    @api.get("/api/leaves")
    def get_leaves(day: date) -> list[dict[str, Any]]:
        """Register entries that touch a day (hall time)."""
        start = datetime.combine(day, datetime.min.time(), HALL_TZ)
        return register.between(start, start + timedelta(days=1))

    leave_writer = Depends(authority.require("leaves.write"))

    window_ids = {w.id for w in hall.windows}

    def register_leaves(entries: list[LeaveEntry], by: Principal) -> list[int]:
        """All or nothing: a window lead registers only for their own department's windows.  The scope is
        checked once every window is known (an unknown one is a 422 naming it, for everyone)."""
        named = {e.window_id for e in entries}
        if named and named <= window_ids:
            authority.check_scope(by, hall.departments_of(named), "window " + ", ".join(sorted(named)))
        try:
            return register.add(entries)
        except RegisterError as exc:
            raise HTTPException(422, {"problems": exc.problems}) from None

    @api.post("/api/leaves")
    def add_leaves(entries: list[LeaveEntry], by: Principal = leave_writer) -> dict[str, list[int]]:
        return {"ids": register_leaves(entries, by)}

    @api.post("/api/leaves/import")
    async def import_leaves(request: Request, by: Principal = leave_writer) -> dict[str, int]:
        """Bulk import a register CSV (UTF-8); all or nothing, every bad row reported."""
        raw = await request.body()
        try:
            entries = parse_csv(raw.decode("utf-8"), hall)
        except UnicodeDecodeError:
            raise HTTPException(422, {"problems": ["file: not UTF-8 text (save the CSV as UTF-8)"]}) from None
        except RegisterError as exc:
            raise HTTPException(422, {"problems": exc.problems}) from None
        return {"imported": len(register_leaves(entries, by))}

    @api.get("/api/policy")
    def get_policy() -> dict[str, Any]:
        """The policy in force, with the source of every value."""
        return policy.model_dump(mode="json")

    @api.get("/api/rejections")
    def get_rejections(limit: int = Query(50, ge=1, le=1000)) -> list[dict[str, Any]]:
        with Session(engine) as session:
            rows = session.scalars(select(RejectionRow).order_by(RejectionRow.id.desc()).limit(limit))
            return [
                {"received_time": r.received_time.isoformat(), "topic": r.topic, "device_id": r.device_id, "reason": r.reason, "excerpt": r.excerpt}
                for r in rows
            ]

    @app.websocket("/ws")
    async def websocket(socket: WebSocket) -> None:
        if await asyncio.to_thread(authority.identify, socket) is None:
            await socket.close(code=1008, reason="log in first")
            return
        await socket.accept()
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(Hub.QUEUE_MAX)
        hub.clients.add(queue)

        async def forward() -> None:
            while (message := await queue.get()) is not None:
                await socket.send_json(message)

        async def until_closed() -> None:
            # The page sends nothing; listening is how a closed page (or the server shutting down)
            # is noticed at once rather than at the next message, which a quiet hall may not send.
            while (await socket.receive())["type"] != "websocket.disconnect":
                pass

        tasks = {asyncio.create_task(forward()), asyncio.create_task(until_closed())}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hub.clients.discard(queue)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                    await task  # the page went away

    app.include_router(api)
    app.include_router(patrol_router(patrols, authority))
    app.include_router(ratings_router(ratings, authority))
    app.include_router(review_router(engine, hall, policy, calendar, clock, authority.principal))
    app.include_router(attendance_router(AttendanceService(engine, hall, policy, calendar, clock), authority))
    app.include_router(gallery_router(publisher, settings.passwd_file))
    app.include_router(
        evidence_router(
            evidence, hall.hall.id, store.registry, settings.passwd_file, authority, lambda device_id, payload: ingestor.publish_to_device(device_id, "cmd", payload, retain=False)
        )
    )
    app.include_router(
        faces_router(
            lambda: faces.registry if faces else None,
            authority,
            faces.rebuild if faces else lambda: {},
        )
    )
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="static")
    return app
