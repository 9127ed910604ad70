"""Users and roles: passwords, sessions and their expiry, the login limit, permissions on every
state-changing endpoint, the administrator token as an admin, the audit log, the CLI and the demo's accounts."""

from __future__ import annotations

import stat
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.connection import BrokerSettings
from server.web.app import ServerSettings, create_app
from server.users.authority import COOKIE
from server.db import AuditRow, SessionRow, UserRow, make_engine
from server.config.hall import load_hall
from server.users.accounts import GRANTS, PERMISSIONS, ROLES, SessionPolicy, UserError, UserStore
from server.users.cli import demo_users
from users import PASSWORD, add_user, session_headers

ROOT = Path(__file__).resolve().parents[1]
HALL_FILE = ROOT / "config/halls/demo.toml"
DEVICE_ENDPOINTS = {"POST /api/evidence"}
"""Devices log in with their broker account (server/devices/auth.py), not as users."""


class WallClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def server(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The whole app (its lifespan, and so the broker session, not started) and its database."""
    token = tmp_path / "admin.token"
    token.write_text("script-token-0123456789\n")
    token.chmod(0o600)
    settings = ServerSettings(
        hall_file=HALL_FILE, database_url=db_url, broker=BrokerSettings(url="mqtt://127.0.0.1:9"), data_dir=tmp_path / "data", admin_token_file=token
    )
    app = create_app(settings, load_hall(HALL_FILE))
    engine = make_engine(db_url)
    yield app, engine
    engine.dispose()


def test_passwords_are_argon2id_and_checked_at_the_boundary(db_url: str) -> None:
    engine = make_engine(db_url)
    from server.db import migrate

    migrate(engine)
    users = UserStore(engine)
    users.add("li.office", "office", PASSWORD)
    with Session(engine) as session:
        digest = session.scalar(select(UserRow.password_hash))
    assert digest.startswith("$argon2id$") and PASSWORD not in digest
    for name, role, password, reason in [
        ("li.office", "office", PASSWORD, "already exists"),
        ("wang", "office", "short", "at least 10"),
        ("wang", "boss", PASSWORD, "role 'boss'"),
        ("with space", "viewer", PASSWORD, "username"),
    ]:
        with pytest.raises(UserError, match=reason):
            users.add(name, role, password)
    token, who, _ = users.login("li.office", PASSWORD)
    with Session(engine) as session:
        assert token not in {row.token_hash for row in session.scalars(select(SessionRow))}, "only a hash of the token is stored"
    assert who.name == "li.office" and who.role == "office"
    engine.dispose()


def test_the_permission_table_is_one_table_and_viewers_change_nothing() -> None:
    assert set(GRANTS) == set(ROLES)
    assert GRANTS["admin"] == frozenset(PERMISSIONS)
    assert GRANTS["viewer"] == frozenset()
    assert all(granted <= set(PERMISSIONS) for granted in GRANTS.values())
    assert "faces.admin" not in GRANTS["office"] and "evidence.view" not in GRANTS["patrol"] | GRANTS["lead"]


def test_login_logout_and_who_am_i(server) -> None:  # type: ignore[no-untyped-def]
    app, engine = server
    add_user(engine, "office", "li.office")
    client = TestClient(app)
    assert client.get("/api/windows").status_code == 401
    assert client.post("/api/session", json={"username": "li.office", "password": "wrong password"}).status_code == 401
    answer = client.post("/api/session", json={"username": "li.office", "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["username"], body["role"], body["role_zh"], body["idle_minutes"]) == ("li.office", "office", "督查科", 30)
    assert "alerts.ack" in body["permissions"] and datetime.fromisoformat(body["expires_at"])
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=43200" in cookie
    assert client.get("/api/session").json()["username"] == "li.office"
    assert client.get("/api/windows").status_code == 200
    assert client.delete("/api/session").status_code == 204
    assert client.get("/api/session").status_code == 401
    assert client.get("/api/windows").status_code == 401


def test_sessions_end_when_idle_at_the_absolute_limit_and_when_the_user_is_disabled(db_url: str) -> None:
    from server.db import migrate

    engine = make_engine(db_url)
    migrate(engine)
    clock = WallClock()
    users = UserStore(engine, SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=12)), now=clock)
    users.add("patrol1", "patrol", PASSWORD)
    token, _, expires = users.login("patrol1", PASSWORD)
    assert expires == clock.now + timedelta(hours=12)
    clock.now += timedelta(minutes=29)
    assert users.session(token) is not None
    clock.now += timedelta(minutes=29)
    assert users.session(token) is not None, "each use restarts the idle time"
    clock.now += timedelta(minutes=30)
    assert users.session(token) is None, "idle for 30 minutes"

    token, _, expires = users.login("patrol1", PASSWORD)
    while users.session(token) is not None:
        clock.now += timedelta(minutes=15)
    assert expires <= clock.now < expires + timedelta(minutes=15), "ends at the absolute limit however much it is used"

    token, _, _ = users.login("patrol1", PASSWORD)
    users.set_password("patrol1", "another password 2")
    assert users.session(token) is None, "a new password ends the sessions"
    token, _, _ = users.login("patrol1", "another password 2")
    users.disable("patrol1")
    assert users.session(token) is None
    engine.dispose()


def test_five_failed_logins_in_15_minutes_lock_the_name_out_and_are_audited(server) -> None:  # type: ignore[no-untyped-def]
    app, engine = server
    add_user(engine, "patrol", "zhang")
    client = TestClient(app)
    assert [client.post("/api/session", json={"username": "zhang", "password": f"guess {i}"}).status_code for i in range(6)] == [401] * 5 + [429]
    limited = client.post("/api/session", json={"username": "zhang", "password": PASSWORD})
    assert limited.status_code == 429 and "too many failed logins" in limited.json()["detail"], "not even the right password, for 15 minutes"
    assert client.post("/api/session", json={"username": "other", "password": "x"}).status_code == 401, "per name"
    with Session(engine) as session:
        results = [(r.actor, r.action, r.result) for r in session.scalars(select(AuditRow).order_by(AuditRow.id))]
    assert results[:7] == [("zhang", "POST /api/session", "401")] * 5 + [("zhang", "POST /api/session", "429")] * 2


def _changing_routes(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Every state-changing method and path the API has (from its OpenAPI description)."""
    return sorted(
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method not in {"get", "head"} and f"{method.upper()} {path.removeprefix('/halls/demo')}" not in DEVICE_ENDPOINTS and path != "/api/session"
    )


def _url(path: str) -> str:
    return path.replace("{alert_id}", "1").replace("{round_id}", "1").replace("{finding_id}", "1").replace("{order_id}", "1").replace(
        "{action}", "close").replace("{request_id}", "1").replace("{person_id}", "p1")


def test_every_state_changing_endpoint_refuses_anonymous_callers_and_viewers(server) -> None:  # type: ignore[no-untyped-def]
    app, engine = server
    routes = _changing_routes(app)
    assert ("POST", "/api/alerts/{alert_id}/ack") in routes and ("POST", "/api/work-orders/{order_id}/{action}") in routes
    at_root = [r for r in routes if not r[1].startswith("/halls/")]
    assert len(at_root) == 19, at_root  # a new one is covered by this test automatically; update the count knowingly
    hall_routes = {(m, p.removeprefix("/halls/demo")) for m, p in routes if p.startswith("/halls/demo/")}
    assert len(hall_routes) == 17 and hall_routes < set(at_root), "the hall's routes under /halls/demo/ are the root's, face enrolment aside (district-wide)"
    client = TestClient(app)
    viewer = session_headers(engine, "viewer")
    for method, path in routes:
        anonymous = client.request(method, _url(path), json={})
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        refused = client.request(method, _url(path), json={}, headers=viewer)
        assert refused.status_code == 403, (method, path, refused.text)
        assert "permission " in refused.json()["detail"] and "role viewer" in refused.json()["detail"]
    for path in ("/api/windows", "/api/alerts", "/api/findings", "/api/work-orders", "/api/attendance/makeups", "/api/policy"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers=viewer).status_code == 200, path


def test_roles_get_what_the_table_grants(server) -> None:  # type: ignore[no-untyped-def]
    app, engine = server
    client = TestClient(app)
    lead, patrol, office = (session_headers(engine, role) for role in ("lead", "patrol", "office"))
    assert client.post("/api/patrols", json={"kind": "cctv"}, headers=lead).status_code == 403
    started = client.post("/api/patrols", json={"kind": "cctv"}, headers=patrol)
    assert started.status_code == 201 and started.json()["officer"] == "patrol", "the officer is the logged-in user"
    assert client.post("/api/work-orders/1/close", json={"note": "x"}, headers=lead).status_code == 403
    assert client.post("/api/work-orders/1/call_back", json={"note": "x"}, headers=lead).status_code == 404, "allowed; no such order"
    assert client.post("/api/work-orders/1/close", json={"note": "x"}, headers=office).status_code == 404
    assert client.get("/api/evidence", headers=patrol).status_code == 403
    assert client.get("/api/evidence", headers=office).status_code == 200
    assert client.get("/api/audit", headers=patrol).status_code == 403


def test_a_window_lead_changes_only_their_own_departments_records(server) -> None:  # type: ignore[no-untyped-def]
    """The lead of 市场监管局 (windows w01, w02) disputes and rectifies that department's findings and
    registers its leave; another department's (人社局: w03) are refused with whose they are."""
    app, engine = server
    client = TestClient(app)
    patrol = session_headers(engine, "patrol")
    market, labour = session_headers(engine, "lead", "market-lead", "市场监管局"), session_headers(engine, "lead", "labour-lead", "人社局")
    assert client.get("/api/session", headers=market).json()["department"] == "市场监管局"

    def confirmed(window: str) -> int:
        found = client.post("/api/findings", json={"window": window, "category": "vacant", "note": "无人"}, headers=patrol).json()
        assert client.post(f"/api/findings/{found['id']}/confirm", json={}, headers=patrol).status_code == 200
        return int(found["id"])

    ours, theirs = confirmed("w01"), confirmed("w03")
    refused = client.post(f"/api/findings/{theirs}/dispute", json={"reason": "当时在交接"}, headers=market)
    assert refused.status_code == 403
    assert refused.json()["detail"] == f"finding {theirs} (window w03) belongs to 人社局; window lead market-lead answers for 市场监管局 only"
    assert client.get(f"/api/findings/{theirs}", headers=market).json()["status"] == "confirmed", "refused means unchanged"
    assert client.post(f"/api/findings/{theirs}/dispute", json={"reason": "当时在交接"}, headers=labour).status_code == 200
    assert client.post(f"/api/findings/{ours}/rectify", json={"reason": "已提醒"}, headers=market).status_code == 200
    assert client.post(f"/api/findings/{ours}/rectify", json={"reason": "已提醒"}, headers=labour).status_code == 403
    assert client.post("/api/findings/999/dispute", json={"reason": "x"}, headers=market).status_code == 404

    leave = {"kind": "leave", "start": "2026-03-02T09:00:00", "end": "2026-03-02T11:00:00"}
    assert client.post("/api/leaves", json=[leave | {"person_id": "c01", "window_id": "w01"}], headers=market).status_code == 200
    mixed = [leave | {"person_id": "c02", "window_id": "w02"}, leave | {"person_id": "c03", "window_id": "w03"}]
    assert client.post("/api/leaves", json=mixed, headers=market).status_code == 403, "all or nothing: one foreign window refuses the lot"
    assert client.post("/api/leaves", json=mixed, headers=session_headers(engine, "office")).status_code == 200, "the office answers for the hall"
    assert client.post("/api/leaves", json=[], headers=market).json() == {"ids": []}, "nothing to register is no one's business"
    mistyped = client.post("/api/leaves", json=[leave | {"person_id": "c01", "window_id": "w1"}], headers=market)
    assert mistyped.status_code == 422 and "w1" in mistyped.text, "an unknown window is a mistake to fix, as for everyone, not a refusal"
    makeup = {"claimed_at": "2026-03-02T08:58:00+08:00", "reason": "人脸识别失败"}
    foreign = client.post("/api/attendance/makeups", json=makeup | {"person_id": "c03"}, headers=market)
    assert foreign.status_code == 403 and "clerk c03 belongs to 人社局" in foreign.json()["detail"]


def test_a_window_lead_without_a_department_changes_nothing(server) -> None:  # type: ignore[no-untyped-def]
    """A lead from before departments existed (migration 0010) is told who can fix it."""
    app, engine = server
    add_user(engine, "lead", "old-lead")
    with Session(engine) as session, session.begin():
        session.scalar(select(UserRow).where(UserRow.username == "old-lead")).department = None  # type: ignore[union-attr]
    client = TestClient(app)
    refused = client.post("/api/leaves", json=[{"kind": "leave", "person_id": "c01", "window_id": "w01", "start": "2026-03-02T09:00:00", "end": "2026-03-02T10:00:00"}], headers=session_headers(engine, "lead", "old-lead"))
    assert refused.status_code == 403 and "hallwatch user department old-lead" in refused.json()["detail"]


def test_a_department_belongs_to_window_leads_only(db_url: str) -> None:
    from server.db import migrate

    engine = make_engine(db_url)
    migrate(engine)
    users = UserStore(engine)
    with pytest.raises(UserError, match="needs a department"):
        users.add("lead1", "lead", PASSWORD)
    with pytest.raises(UserError, match="only a window lead"):
        users.add("office1", "office", PASSWORD, "人社局")
    users.add("lead1", "lead", PASSWORD, " 人社局 ")
    token, who, _ = users.login("lead1", PASSWORD)
    assert who.department == "人社局"
    users.set_department("lead1", "税务局")
    assert users.session(token) is None, "a session carrying the old department ends"
    assert users.login("lead1", PASSWORD)[1].department == "税务局"
    engine.dispose()


def test_the_administrator_token_is_an_admin_and_a_wrong_one_is_nobody(server) -> None:  # type: ignore[no-untyped-def]
    app, _ = server
    client = TestClient(app)
    assert client.get("/api/session", headers={"Authorization": "Bearer script-token-0123456789"}).json()["role"] == "admin"
    assert client.get("/api/evidence", headers={"Authorization": "Bearer script-token-0123456789"}).status_code == 200
    assert client.get("/api/windows", headers={"Authorization": "Bearer not-the-token"}).status_code == 401


def test_the_audit_log_has_every_change_with_who_what_target_and_result(server) -> None:  # type: ignore[no-untyped-def]
    app, engine = server
    client = TestClient(app)
    patrol, viewer, office = (session_headers(engine, role) for role in ("patrol", "viewer", "office"))
    client.post("/api/patrols", json={"kind": "cctv"}, headers=patrol)
    client.post("/api/alerts/7/ack", headers=viewer)
    client.post("/api/alerts/7/ack", headers=patrol)
    client.post("/api/evidence/request", params={"window_id": "w01"}, headers=office)
    client.get("/api/windows", headers=patrol)  # reading is not a change
    log = client.get("/api/audit", headers=office).json()
    rows = [(e["actor"], e["role"], e["action"], e["target"], e["result"]) for e in reversed(log) if e["action"] != "POST /api/session"]
    assert rows == [
        ("patrol", "patrol", "POST /api/patrols", "", "201"),
        ("viewer", "viewer", "POST /api/alerts/{alert_id}/ack", "alert_id=7", "403"),
        ("patrol", "patrol", "POST /api/alerts/{alert_id}/ack", "alert_id=7", "404"),
        ("office", "office", "POST /api/evidence/request", "window_id=w01", "202"),
    ]
    assert all(datetime.fromisoformat(e["at"]).tzinfo is not None for e in log)
    assert [e["actor"] for e in client.get("/api/audit", params={"actor": "viewer"}, headers=office).json()] == ["viewer"]


def test_the_websocket_needs_a_login(server) -> None:  # type: ignore[no-untyped-def]
    from starlette.websockets import WebSocketDisconnect

    app, engine = server
    client = TestClient(app)
    with pytest.raises(WebSocketDisconnect):
        with client.websocket_connect("/ws") as socket:
            socket.receive_json()
    with client.websocket_connect("/ws", headers=session_headers(engine, "viewer")):
        pass


def test_the_user_commands(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/hw.db"
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")

    def hallwatch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "server.cli", "user", *args, "--db", db], cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert hallwatch("add", "li", "--role", "office", "--password-file", str(secret)).returncode == 0
    refused = hallwatch("add", "wang", "--role", "boss", "--password-file", str(secret))
    assert refused.returncode == 2 and "role 'boss'" in refused.stderr
    assert hallwatch("disable", "li").returncode == 0
    listing = hallwatch("list")
    assert "li" in listing.stdout and "督查科" in listing.stdout and "disabled" in listing.stdout
    assert hallwatch("passwd", "nobody", "--password-file", str(secret)).returncode == 2
    hall = str(HALL_FILE)
    no_department = hallwatch("add", "wang", "--role", "lead", "--password-file", str(secret))
    assert no_department.returncode == 2 and "needs a department" in no_department.stderr
    misspelt = hallwatch("add", "wang", "--role", "lead", "--department", "市场监督局", "--hall", hall, "--password-file", str(secret))
    assert misspelt.returncode == 2 and "'市场监督局' is not in" in misspelt.stderr and "市场监管局" in misspelt.stderr
    assert hallwatch("add", "wang", "--role", "lead", "--department", "市场监管局", "--hall", hall, "--password-file", str(secret)).returncode == 0
    assert hallwatch("department", "wang", "人社局", "--hall", hall).returncode == 0
    assert "人社局" in hallwatch("list").stdout
    no_hall = hallwatch("department", "wang", "税务局", "--hall", str(tmp_path / "absent.toml"))
    assert no_hall.returncode == 2 and "absent.toml" in no_hall.stderr and "Traceback" not in no_hall.stderr
    stray = hallwatch("department", "li", "人社局")
    assert stray.returncode == 2 and "only a window lead has a department" in stray.stderr


def test_the_demo_creates_one_user_per_role_once_with_random_passwords(tmp_path: Path) -> None:
    from server.db import migrate

    engine = make_engine(f"sqlite:///{tmp_path}/hw.db")
    migrate(engine)
    users = UserStore(engine)
    demo_users(users, tmp_path, "市场监管局")
    listing = tmp_path / "users.txt"
    assert stat.S_IMODE(listing.stat().st_mode) == 0o600
    accounts = [line.split("\t") for line in listing.read_text().splitlines() if not line.startswith("#")]
    assert [a[0] for a in accounts] == list(ROLES)
    assert len({a[1] for a in accounts}) == len(ROLES)
    for name, password, _ in accounts:
        assert users.login(name, password)[1].role == name
    assert users.login("lead", accounts[ROLES.index("lead")][1])[1].department == "市场监管局"
    demo_users(users, tmp_path, "人社局")
    assert listing.read_text().count("\t") == 2 * len(ROLES), "kept, not recreated"
    engine.dispose()
