"""Who is asking, and may they: the one authentication dependency every endpoint uses.

A request is made by a logged-in user (cookie ``hw_session`` from
``POST /api/session``) or by a script holding the administrator token
(``Authorization: Bearer …``, HALLWATCH_ADMIN_TOKEN_FILE), which counts as
the role ``admin``.  :meth:`Authority.principal` (any logged-in principal:
reading) and :meth:`Authority.require` (one permission from
:data:`server.users.accounts.PERMISSIONS`: changing) are the only checks the
endpoints use: 401 without a principal, 403 naming the missing permission;
an endpoint changing one window's records adds :meth:`Authority.check_scope`
(a window lead changes only their own department's).
The cookie is HttpOnly and SameSite=Strict, so another site cannot make a
logged-in browser post to the API.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Collection
from typing import Any

from fastapi import Depends, HTTPException, Request, WebSocketException
from starlette.requests import HTTPConnection

from server.users.audit import PRINCIPAL_KEY
from server.users.accounts import GRANTS, PERMISSIONS, ROLE_ZH, Principal, UserStore

COOKIE = "hw_session"
TOKEN_PRINCIPAL = Principal("admin-token", "admin")


def principal_json(principal: Principal) -> dict[str, Any]:
    return {
        "username": principal.name,
        "role": principal.role,
        "role_zh": ROLE_ZH[principal.role],
        "permissions": sorted(GRANTS[principal.role]),
        "department": principal.department,
        "hall": principal.hall,
    }


class Authority:
    """Identifies the caller of a request or WebSocket; ``token`` is the administrator token (None: no token login)."""

    def __init__(self, users: UserStore, token: bytes | None) -> None:
        self.users = users
        self.token = token

    def identify(self, connection: HTTPConnection) -> Principal | None:
        header = connection.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            given = header[7:].strip().encode()
            ok = self.token is not None and bool(given) and hmac.compare_digest(given, self.token)
            return TOKEN_PRINCIPAL if ok else None
        cookie = connection.cookies.get(COOKIE)
        return self.users.session(cookie) if cookie else None

    def principal(self, request: Request) -> Principal:
        """The dependency of every endpoint that needs a logged-in caller; it also tells the audit log who it was."""
        found = self.identify(request)
        if found is None:
            raise HTTPException(401, "log in first (POST /api/session), or send the administrator token", headers={"WWW-Authenticate": "Bearer"})
        setattr(request.state, PRINCIPAL_KEY, found)
        return found

    def require(self, permission: str) -> Callable[..., Principal]:
        """A dependency giving the caller when their role grants ``permission``, 403 otherwise."""
        if permission not in PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r}")

        def check(principal: Principal = Depends(self.principal)) -> Principal:
            return self.check(principal, permission)

        return check

    @staticmethod
    def check(principal: Principal, permission: str) -> Principal:
        """``principal`` when their role grants ``permission``; 403 naming it otherwise.  For an endpoint
        whose permission depends on a parameter; the others use :meth:`require`."""
        if not principal.may(permission):
            raise HTTPException(403, f"permission {permission} ({PERMISSIONS[permission]}) is not granted to role {principal.role}")
        return principal

    def hall_scope(self, hall_id: str) -> Callable[..., None]:
        """A dependency of every route of one hall: a user of another hall gets 403 (a WebSocket is closed
        with 1008), whatever the route; a district user or the administrator token passes.  A caller not
        identified is left to the route (401 for users; devices prove themselves to the routes they use)."""

        def check(connection: HTTPConnection) -> None:
            principal = self.identify(connection)
            if principal is None or principal.sees_hall(hall_id):
                return
            reason = f"{principal.name} belongs to hall {principal.hall}, not {hall_id}"
            if connection.scope["type"] == "websocket":
                raise WebSocketException(code=1008, reason=reason)
            raise HTTPException(403, reason)

        return check

    @staticmethod
    def check_scope(principal: Principal, departments: Collection[str], what: str) -> Principal:
        """``principal`` when they answer for ``what``, which belongs to ``departments``; 403 saying whose it
        is otherwise.  Only a window lead is limited (to their own department, server/users/accounts.py)."""
        if principal.covers(departments):
            return principal
        if principal.department is None:
            raise HTTPException(
                403, f"window lead {principal.name} has no department yet: an administrator sets it (hallwatch user department {principal.name} 部门)"
            )
        owner = "、".join(sorted(departments)) or "no department of this hall"
        raise HTTPException(403, f"{what} belongs to {owner}; window lead {principal.name} answers for {principal.department} only")
