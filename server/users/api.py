"""The session API: ``/api/session`` (log in, who am I, log out) and the audit log ``/api/audit``.

A login sets the session cookie (HttpOnly, SameSite=Strict, Secure over
HTTPS); every attempt, refused or not, is written to the audit log.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from server.users.accounts import LOGIN_ACTION, MAX_PASSWORD, LoginRefused, Principal
from server.users.audit import AuditLog
from server.users.authority import COOKIE, Authority, principal_json


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD)


def session_router(authority: Authority, audit: AuditLog) -> APIRouter:
    """``/api/session`` (log in, who am I, log out) and ``/api/audit``."""
    router = APIRouter(tags=["users"])
    users = authority.users

    @router.post("/api/session")
    def login(credentials: Credentials, request: Request, response: Response) -> dict[str, Any]:
        """Log in: sets the session cookie; 401 for a wrong name or password, 429 after too many failures."""
        try:
            token, principal, expires = users.login(credentials.username, credentials.password)
        except LoginRefused as exc:
            status = 429 if exc.limited else 401
            audit.record(credentials.username, "", LOGIN_ACTION, credentials.username, str(status))
            raise HTTPException(status, str(exc)) from None
        audit.record(principal.name, principal.role, LOGIN_ACTION, principal.name, "200")
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(users.policy.absolute.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return principal_json(principal) | {"expires_at": expires.isoformat(), "idle_minutes": int(users.policy.idle.total_seconds() // 60)}

    @router.get("/api/session")
    def whoami(principal: Principal = Depends(authority.principal)) -> dict[str, Any]:
        """The logged-in user, role and permissions (401 when the session has ended)."""
        return principal_json(principal)

    @router.delete("/api/session", status_code=204)
    def logout(request: Request, response: Response, _: Principal = Depends(authority.principal)) -> None:
        cookie = request.cookies.get(COOKIE)
        if cookie:
            users.logout(cookie)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")

    @router.get("/api/audit")
    def audit_log(
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
        actor: Annotated[str | None, Query(max_length=64)] = None,
        before_id: Annotated[int | None, Query(ge=1)] = None,
        reader: Principal = Depends(authority.require("audit.read")),
    ) -> list[dict[str, Any]]:
        """The audit log, newest first; page back with ``before_id``.  A hall's user reads their hall's entries."""
        return audit.entries(limit, actor, before_id, reader.hall)

    return router
