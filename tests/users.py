"""Logging tests in: a user of a role in the test's database, and a session for a client.

``sign_in(client, engine, "office")`` creates the user (named after the role
unless ``name`` is given) and sets the session cookie on an httpx or
TestClient client; ``session_headers`` gives the cookie as a header, for a
test that acts as several users through one client.  A test of a server
process reads with the administrator token (``admin_token_file``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from server.users.authority import COOKIE
from server.users.accounts import UserError, UserStore

PASSWORD = "correct horse battery"
ADMIN_TOKEN = "script-admin-token-0123456789"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def admin_token_file(directory: Path) -> Path:
    """An administrator token file (0600) for a server process; a script sends ``ADMIN_HEADERS`` with it."""
    path = directory / "admin.token"
    path.write_text(ADMIN_TOKEN + "\n")
    path.chmod(0o600)
    return path


LEAD_DEPARTMENT = "市场监管局"
"""The department of a test's window lead unless it names one: the demo hall's windows w01 and w02."""


def add_user(engine: Engine, role: str, name: str | None = None, department: str | None = None) -> str:
    """The user's name; an existing user of that name is kept.  A window lead answers for
    ``department`` (default :data:`LEAD_DEPARTMENT`)."""
    name = name or role
    if role == "lead":
        department = department or LEAD_DEPARTMENT
    try:
        UserStore(engine).add(name, role, PASSWORD, department)
    except UserError as exc:
        if "already exists" not in str(exc):
            raise
    return name


def session_token(engine: Engine, role: str, name: str | None = None, department: str | None = None) -> str:
    token, _, _ = UserStore(engine).login(add_user(engine, role, name, department), PASSWORD)
    return token


def session_headers(engine: Engine, role: str, name: str | None = None, department: str | None = None) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={session_token(engine, role, name, department)}"}


def sign_in(client: Any, engine: Engine, role: str, name: str | None = None, department: str | None = None) -> Any:
    """``client`` with a session of a (new) user of ``role`` for every later request."""
    client.cookies.set(COOKIE, session_token(engine, role, name, department))
    return client
