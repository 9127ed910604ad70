"""Face clock-in end to end, all real processes: Mosquitto with accounts, the server, a terminal agent
reading a camera recording. Staff are enrolled through the admin API, the sealed gallery reaches the
terminal, a clerk punches, a stranger does not, and a deletion reaches the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from conftest import require_executable
from frames import terminal_frame
from mosquitto_proc import free_port, start_mosquitto
from procs import ROOT, Proc, server_proc, wait_for, wait_http

from broker.mosquitto import BrokerAuthFiles

pytestmark = pytest.mark.mosquitto
CLERK = "nuaa_0003"
ADMIN = {"Authorization": "Bearer s3cret-admin-token"}
PROBE = "0003_01_00_01_490.jpg"  # the terminal's view: never enrolled
ENROLLED = ["nuaa_0001", "nuaa_0002", "nuaa_0003", "nuaa_0005", "obama", "katy_perry"]


def _recording(path: Path, faces_dir: Path) -> Path:
    """10 fps: nobody, a stranger for 3 s, nobody, the clerk for 3 s, nobody."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    empty = np.full((480, 640, 3), 110, np.uint8)
    stranger = terminal_frame(faces_dir / "strangers/elon_musk/elon_musk_18.jpg")
    clerk = terminal_frame(faces_dir / "known" / CLERK / PROBE)
    for frame in [empty] * 10 + [stranger] * 30 + [empty] * 10 + [clerk] * 30 + [empty] * 10:
        writer.write(frame)
    writer.release()
    return path


def _keys(tmp_path: Path) -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "server.cli", "faces", "keys", "init", str(tmp_path / "keys")], cwd=ROOT, capture_output=True, text=True, check=True)
    env = dict(line.split("    #")[0].strip().split("=", 1) for line in out.stdout.splitlines() if line.startswith("HALLWATCH_"))
    assert set(env) == {"HALLWATCH_FACE_KEY_FILE", "HALLWATCH_GALLERY_KEY_FILE", "HALLWATCH_GALLERY_SIGNING_KEY_FILE", "HALLWATCH_GALLERY_VERIFY_KEY_FILE"}
    return env


def _events(api: str, kind: str) -> list[dict]:
    return [e for e in httpx.get(f"{api}/api/events", params={"limit": 500}, headers=ADMIN).json() if e["type"] == kind]


def test_enrol_sync_punch_refuse_stranger_and_delete(tmp_path: Path, faces_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_executable("mosquitto")
    env = _keys(tmp_path)
    token = tmp_path / "admin.token"
    token.write_text("s3cret-admin-token\n")
    token.chmod(0o600)
    auth = BrokerAuthFiles(tmp_path / "auth")
    terminal_password = auth.add_device("demo", "ft-01", kind="face_terminal")
    server_secret = tmp_path / "server.secret"
    server_secret.write_text(auth.add_server("demo") + "\n")
    server_secret.chmod(0o600)
    terminal_secret = tmp_path / "ft-01.secret"
    terminal_secret.write_text(terminal_password + "\n")
    terminal_secret.chmod(0o600)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HALLWATCH_ADMIN_TOKEN_FILE", str(token))
    with start_mosquitto(tmp_path, auth=auth) as broker:
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        server = server_proc(
            tmp_path,
            broker_url=broker.url,
            db_url=f"sqlite:///{tmp_path / 'hw.db'}",
            port=port,
            extra=["--username", "hallwatch-server", "--password-file", str(server_secret), "--data-dir", str(tmp_path / "server"), "--passwd-file", str(auth.passwd_path)],
        ).start()
        agent: Proc | None = None
        try:
            wait_http(f"{api}/api/stats", server, headers=ADMIN)
            admin = ADMIN
            assert httpx.get(f"{api}/api/faces/people").status_code == 401, "no token, no faces"
            for person in ENROLLED:
                photos = [p for p in sorted((faces_dir / "known" / person).iterdir()) if p.name != PROBE]
                files = [("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in photos] + [("photos", ("cat.jpg", (faces_dir / "noface/0.jpg").read_bytes(), "image/jpeg"))]
                reply = httpx.post(f"{api}/api/faces/people/{person}/photos", files=files, data={"staff_no": person[-4:]}, headers=admin, timeout=120)
                assert reply.status_code == 200, reply.text
                body = reply.json()
                assert body["accepted"] == len(photos) and body["photos"][-1]["reason"].startswith("no_face")
            version = body["gallery"]["version"]
            assert body["gallery"]["people"] == len(ENROLLED) and body["gallery"]["stranger_accepts"] == 0
            assert httpx.get(f"{api}/api/gallery/{version}").status_code == 401, "the gallery is only for face terminals"

            config = tmp_path / "ft-01.toml"
            config.write_text(
                f"""
heartbeat_s = 2
[device]
hall_id = "demo"
device_id = "ft-01"
kind = "face_terminal"
[broker]
url = "{broker.url}"
username = "ft-01"
password_file = "{terminal_secret}"
[outbox]
path = "ft-01.db"
[[sources]]
kind = "face_terminal"
camera = "{_recording(tmp_path / 'entrance.avi', faces_dir)}"
server_url = "{api}"
gallery_dir = "{tmp_path / 'terminal-gallery'}"
fps = 5
liveness_active = false  # a recording cannot turn its head; the passive check stays on
"""
            )
            agent = Proc("agent", ["agent", str(config)], tmp_path).start()
            punches = wait_for(lambda: _events(api, "punch"), 120, f"a punch from the terminal:\n{agent.log()}")
            acks = [e["body"] for e in _events(api, "ack") if e["body"]["ref"] == "gallery"]
            assert {"ref": "gallery", "ref_id": str(version), "ok": True} in [{k: a[k] for k in ("ref", "ref_id", "ok")} for a in acks]
            assert [(p["body"]["person_id"], p["body"]["method"]) for p in punches] == [(CLERK, "face")], "the stranger never punched"
            punch = punches[0]["body"]
            assert punch["distance"] < 0.6 and punch["margin"] >= 0.1 and 0 < punch["quality"] <= 1
            assert punch["liveness"] >= 0.5 and punch["challenge"] is None

            # Deleting the clerk reaches the terminal: a new gallery version, acknowledged.
            deleted = httpx.delete(f"{api}/api/faces/people/{CLERK}", headers=admin, timeout=60).json()
            assert deleted["gallery"]["version"] == version + 1 and deleted["gallery"]["people"] == len(ENROLLED) - 1
            wait_for(
                lambda: any(e["body"]["ref"] == "gallery" and e["body"]["ref_id"] == str(version + 1) and e["body"]["ok"] for e in _events(api, "ack")),
                60,
                f"the terminal runs the gallery without the deleted clerk:\n{agent.log()}",
            )
            files = os.listdir(tmp_path / "terminal-gallery")
            assert files == ["gallery.sealed"], "only the newest gallery is on the terminal's disk"
        finally:
            if agent is not None:
                agent.terminate()
            server.terminate()
