"""The audit log: every state-changing request and every login attempt, who, when, what, on what, result.

One ASGI middleware (:class:`AuditMiddleware`) records every POST/PUT/PATCH/DELETE
made by a logged-in principal — whether it succeeded or was refused — so no
endpoint can forget to; only the login endpoint records itself, because its
caller is not yet anyone.  Device uploads (evidence pictures) are not here:
devices are recorded by the events they publish.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.db import AuditRow
from server.users.accounts import Principal, wall_clock

log = logging.getLogger(__name__)

HALL_PATH = re.compile(r"^/halls/([a-z0-9][a-z0-9_-]{0,63})/")
"""A hall's routes are under /halls/<id>/: the hall an entry belongs to."""
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PRINCIPAL_KEY = "principal"
"""Where the authentication dependency leaves the principal in the request's state."""


class AuditLog:
    """The log of one deployment; ``hall_id`` is the hall its entries belong to (a district's log keeps each
    entry's hall, so a hall office reads its own)."""

    def __init__(self, engine: Engine, hall_id: str = "", now: Callable[[], datetime] = wall_clock) -> None:
        self.engine = engine
        self.hall_id = hall_id
        self.now = now

    def record(self, actor: str, role: str, action: str, target: str, result: str, hall_id: str | None = None) -> None:
        """One entry, of ``hall_id`` (None: the deployment's first hall, whose routes are also at /)."""
        with Session(self.engine) as session, session.begin():
            session.add(AuditRow(hall_id=hall_id or self.hall_id, at=self.now(), actor=actor[:64], role=role, action=action[:200], target=target[:500], result=result))

    def entries(self, limit: int, actor: str | None = None, before_id: int | None = None, hall_id: str | None = None) -> list[dict[str, Any]]:
        """Newest first; of one hall (``hall_id``) or all (None)."""
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if hall_id is not None:
            query = query.where(AuditRow.hall_id == hall_id)
        if actor:
            query = query.where(AuditRow.actor == actor)
        if before_id:
            query = query.where(AuditRow.id < before_id)
        with Session(self.engine) as session:
            return [
                {"id": r.id, "hall_id": r.hall_id, "at": r.at.isoformat(), "actor": r.actor, "role": r.role, "action": r.action, "target": r.target, "result": r.result}
                for r in session.scalars(query)
            ]


class AuditMiddleware:
    """Records each state-changing request that carried a principal, with its route, parameters and status."""

    def __init__(self, app: ASGIApp, audit: AuditLog) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READ_METHODS:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            principal: Principal | None = state.get(PRINCIPAL_KEY)
            if principal is not None:
                route = scope.get("route")
                action = f"{scope['method']} {getattr(route, 'path', scope['path'])}"
                params = [f"{k}={v}" for k, v in scope.get("path_params", {}).items()]
                if scope.get("query_string"):
                    params.append(scope["query_string"].decode("latin-1"))
                try:
                    hall = HALL_PATH.match(scope["path"])
                    await asyncio.to_thread(self.audit.record, principal.name, principal.role, action, " ".join(params), str(status), hall and hall[1])
                except Exception:  # the action is done; a lost audit line must be loud, not undo it
                    log.exception("audit: could not record %s by %s", action, principal.name)
