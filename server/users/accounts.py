"""Users, roles and their permissions, password hashing, sessions and the login limit.

The permission table below is the only place that says who may do what; the
API checks it on every state-changing request (server/users/authority.py), and the
page only hides what the API would refuse anyway.  Passwords are hashed with
argon2id; a session cookie is a random token of which only the SHA-256 is
stored.  Session and login times are wall-clock UTC, never the hall's clock
(the demo runs its hall clock 30 times faster than real time).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from server.db import AuditRow, SessionRow, UserRow

Role = Literal["admin", "office", "patrol", "lead", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)
ROLE_ZH: dict[Role, str] = {"admin": "系统管理员", "office": "督查科", "patrol": "巡查员", "lead": "窗口负责人", "viewer": "只读"}

PERMISSIONS: dict[str, str] = {
    "alerts.ack": "acknowledge an alert",
    "leaves.write": "register leave, outings and substitutions (one by one or a CSV import)",
    "patrols.run": "start and finish patrol rounds; record, confirm and dismiss findings",
    "findings.dispute": "dispute a confirmed finding within the dispute period",
    "findings.decide": "uphold or overturn a disputed finding",
    "findings.rectify": "report a finding rectified (整改)",
    "makeups.file": "file a make-up punch request (补卡)",
    "makeups.decide": "approve or reject a make-up punch request",
    "work_orders.handle": "call back, rectify or appeal a bad-rating work order (the department's steps)",
    "work_orders.decide": "close a work order, uphold or overturn an appeal (the office's steps)",
    "evidence.view": "view evidence pictures and ask a camera for a snapshot",
    "faces.admin": "enrol and delete faces, read the calibration",
    "audit.read": "read the audit log",
}
"""Every permission the API checks, with what it allows."""

GRANTS: dict[Role, frozenset[str]] = {
    "admin": frozenset(PERMISSIONS),
    "office": frozenset(PERMISSIONS) - {"faces.admin"},
    "patrol": frozenset({"alerts.ack", "patrols.run", "findings.rectify"}),
    "lead": frozenset({"findings.dispute", "findings.rectify", "makeups.file", "work_orders.handle", "leaves.write"}),
    "viewer": frozenset(),
}
"""What each role may change; every role, viewer included, may read."""

USERNAME = re.compile(r"^[\w.\-@]{1,64}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 256
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOGIN_ACTION = "POST /api/session"

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


def wall_clock() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Principal:
    """Who makes a request: a user, or the administrator token of scripts (role admin)."""

    name: str
    role: Role
    department: str | None = None
    """A window lead's department (进驻部门): the only windows whose findings, work orders,
    leave and make-up punches they may change.  None for every other role."""
    hall: str | None = None
    """The hall the user belongs to (that hall's office, its window leads), or None for the whole
    district (district 督查科, leadership)."""

    def sees_hall(self, hall_id: str) -> bool:
        """May this principal read that hall: theirs, or any for a district user (and the administrator token)."""
        return self.hall in (None, hall_id)

    def may(self, permission: str) -> bool:
        return permission in GRANTS[self.role]

    def covers(self, departments: Collection[str]) -> bool:
        """May this principal change something belonging to ``departments`` (all of them)?  Everyone
        but a window lead answers for the whole hall; a lead only for their own department."""
        return self.role != "lead" or (bool(departments) and set(departments) == {self.department})


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=30)
    """A session not used for this long ends."""
    absolute: timedelta = timedelta(hours=12)
    """A session ends this long after login, used or not."""


class UserError(ValueError):
    """A user or password the rules refuse; the message says why."""


class LoginRefused(Exception):
    """Wrong name or password, a disabled user (401), or too many failures (429, ``limited``)."""

    def __init__(self, message: str, limited: bool = False) -> None:
        super().__init__(message)
        self.limited = limited


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"password: at most {MAX_PASSWORD} characters")
    return password


def check_department(role: str, department: str | None) -> str | None:
    """The department a user of ``role`` keeps: required for a window lead, refused for the others
    (their scope is the whole hall, and a stray department would suggest otherwise)."""
    department = (department or "").strip() or None
    if role == "lead" and department is None:
        raise UserError("a window lead (lead) needs a department: the 进驻部门 whose windows they answer for, as spelled in the hall file")
    if role != "lead" and department is not None:
        raise UserError(f"only a window lead has a department; role {role} answers for the whole hall")
    if department is not None and len(department) > 100:
        raise UserError("department: at most 100 characters")
    return department


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserStore:
    """Users and sessions in the hall's database."""

    def __init__(self, engine: Engine, policy: SessionPolicy = SessionPolicy(), now: Callable[[], datetime] = wall_clock) -> None:
        self.engine = engine
        self.policy = policy
        self.now = now

    # ------------------------------------------------------------ users

    def add(self, username: str, role: str, password: str, department: str | None = None, hall: str | None = None) -> None:
        """A new user; a window lead (``lead``) needs the department whose windows they answer for.
        ``hall``: the one hall the user may see (None: the whole district)."""
        if not USERNAME.match(username):
            raise UserError(f"username {username!r}: 1–64 letters, digits or . _ - @")
        if role not in ROLES:
            raise UserError(f"role {role!r}: one of {', '.join(ROLES)}")
        department = check_department(role, department)
        digest = _hasher.hash(check_password(password))
        with Session(self.engine) as session, session.begin():
            if session.scalar(select(UserRow.id).where(UserRow.username == username)) is not None:
                raise UserError(f"user {username!r} already exists")
            session.add(UserRow(username=username, role=role, department=department, hall_id=hall, password_hash=digest, disabled=False, created_at=self.now()))

    def set_department(self, username: str, department: str) -> None:
        """Move a window lead to another department; their open sessions end (they carried the old one)."""
        with Session(self.engine) as session, session.begin():
            user = self._user(session, username)
            user.department = check_department(user.role, department)
            session.execute(delete(SessionRow).where(SessionRow.user_id == user.id))

    def set_password(self, username: str, password: str) -> None:
        """A new password, and every session of the user ends."""
        digest = _hasher.hash(check_password(password))
        with Session(self.engine) as session, session.begin():
            user = self._user(session, username)
            user.password_hash = digest
            session.execute(delete(SessionRow).where(SessionRow.user_id == user.id))

    def disable(self, username: str) -> None:
        """The user can no longer log in, and every session of the user ends (the audit log keeps the name)."""
        with Session(self.engine) as session, session.begin():
            user = self._user(session, username)
            user.disabled = True
            session.execute(delete(SessionRow).where(SessionRow.user_id == user.id))

    def users(self) -> list[dict[str, object]]:
        with Session(self.engine) as session:
            return [
                {"username": u.username, "role": u.role, "department": u.department, "disabled": u.disabled, "created_at": u.created_at.isoformat()}
                for u in session.scalars(select(UserRow).order_by(UserRow.username))
            ]

    def exists(self) -> bool:
        with Session(self.engine) as session:
            return session.scalar(select(func.count()).select_from(UserRow)) > 0

    @staticmethod
    def _user(session: Session, username: str) -> UserRow:
        user = session.scalar(select(UserRow).where(UserRow.username == username))
        if user is None:
            raise UserError(f"no user {username!r}")
        return user

    # ------------------------------------------------------------ sessions

    def login(self, username: str, password: str) -> tuple[str, Principal, datetime]:
        """A new session: (cookie token, who, when it ends at the latest); LoginRefused otherwise.

        Failures are counted from the audit log (the login endpoint records every
        attempt there), so the limit holds across restarts and server processes.
        """
        now = self.now()
        with Session(self.engine) as session, session.begin():
            if self._recent_failures(session, username, now) >= MAX_FAILURES:
                raise LoginRefused(f"too many failed logins for {username!r}: try again in {int(FAILURE_WINDOW.total_seconds() // 60)} minutes", limited=True)
            user = session.scalar(select(UserRow).where(UserRow.username == username))
            if user is None or user.disabled or not _verify(user.password_hash, password):
                raise LoginRefused("wrong username or password, or the user is disabled")
            if _hasher.check_needs_rehash(user.password_hash):
                user.password_hash = _hasher.hash(password)
            token = secrets.token_urlsafe(32)
            expires = now + self.policy.absolute
            session.add(SessionRow(token_hash=token_hash(token), user_id=user.id, created_at=now, last_seen=now, expires_at=expires))
            session.execute(delete(SessionRow).where(SessionRow.expires_at < now))  # housekeeping of ended sessions
            return token, Principal(user.username, user.role, user.department, user.hall_id), expires  # type: ignore[arg-type]

    def _recent_failures(self, session: Session, username: str, now: datetime) -> int:
        since = now - FAILURE_WINDOW
        last_ok = session.scalar(
            select(func.max(AuditRow.at)).where(AuditRow.action == LOGIN_ACTION, AuditRow.target == username, AuditRow.result == "200")
        )
        if last_ok is not None and last_ok > since:
            since = last_ok
        return session.scalar(
            select(func.count()).select_from(AuditRow).where(
                AuditRow.action == LOGIN_ACTION, AuditRow.target == username, AuditRow.result == "401", AuditRow.at > since
            )
        )

    def session(self, token: str) -> Principal | None:
        """Who holds this cookie token, or None when the session ended (idle, absolute, logout, user disabled)."""
        now = self.now()
        with Session(self.engine) as session, session.begin():
            row = session.get(SessionRow, token_hash(token))
            if row is None:
                return None
            user = session.get(UserRow, row.user_id)
            if user is None or user.disabled or now >= row.expires_at or now - row.last_seen >= self.policy.idle:
                session.delete(row)
                return None
            if now - row.last_seen > timedelta(seconds=30):  # not a write on every request
                row.last_seen = now
            return Principal(user.username, user.role, user.department, user.hall_id)  # type: ignore[arg-type]

    def logout(self, token: str) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(delete(SessionRow).where(SessionRow.token_hash == token_hash(token)))


def _verify(digest: str, password: str) -> bool:
    try:
        return _hasher.verify(digest, password)
    except (VerificationError, InvalidHashError):
        return False
