"""`hallwatch device add` and `broker config`: what a hall's IT officer runs."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from procs import ROOT
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import DeviceRow, make_engine


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_device_add_registers_and_creates_credentials(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/hw.db"
    result = _cli(
        "device", "add", "cam-05", "--kind", "window_camera", "--window", "w01", "--window", "w02",
        "--db", db, "--auth-dir", str(tmp_path / "auth"), "--secret-dir", str(tmp_path / "secrets"),
    )
    assert result.returncode == 0, result.stderr
    secret = tmp_path / "secrets" / "cam-05.secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    password = secret.read_text().strip()
    assert len(password) >= 24
    passwd = (tmp_path / "auth" / "passwd").read_text()
    assert passwd.startswith("cam-05:$7$") and password not in passwd, "only the hash is stored"
    acl = (tmp_path / "auth" / "acl").read_text()
    assert "hw/v1/demo/dev/cam-05/evt/+" in acl and "hw/v1/demo/dev/cam-06" not in acl
    with Session(make_engine(db)) as session:
        row = session.scalars(select(DeviceRow).where(DeviceRow.id == "cam-05")).one()
    assert (row.kind, row.windows, row.status) == ("window_camera", ["w01", "w02"], "never_seen")


def test_device_add_refuses_bad_input_with_reasons(tmp_path: Path) -> None:
    common = ["--db", f"sqlite:///{tmp_path}/hw.db", "--auth-dir", str(tmp_path / "auth"), "--secret-dir", str(tmp_path / "s")]
    bad_kind = _cli("device", "add", "cam-05", "--kind", "toaster", *common)
    assert bad_kind.returncode == 2 and "toaster" in bad_kind.stderr and "window_camera" in bad_kind.stderr
    bad_window = _cli("device", "add", "cam-05", "--kind", "window_camera", "--window", "w99", *common)
    assert bad_window.returncode == 2 and "w99" in bad_window.stderr
    bad_id = _cli("device", "add", "Cam 5", "--kind", "window_camera", *common)
    assert bad_id.returncode == 2 and "Cam 5" in bad_id.stderr
    assert not (tmp_path / "s").exists(), "nothing written for a refused device"


def test_bad_hall_file_names_the_file_key_and_reason(tmp_path: Path) -> None:
    hall = tmp_path / "hall.toml"
    hall.write_text('[hall]\nid = "demo"\nname = "x"\n[[windows]]\nid = "w01"\nname = "1"\n')
    result = _cli("device", "add", "cam-05", "--kind", "window_camera", "--hall", str(hall), "--auth-dir", str(tmp_path / "a"))
    message = " ".join(result.stderr.split())
    assert result.returncode == 2
    assert "hall.toml" in message and "windows.0.department" in message and "Field required" in message


def test_a_server_on_a_broker_with_accounts_refuses_to_leave_device_endpoints_open(tmp_path: Path) -> None:
    secret = tmp_path / "server.secret"
    secret.write_text("x" * 20 + "\n")
    secret.chmod(0o600)
    result = _cli("server", "--username", "hallwatch-server", "--password-file", str(secret), "--db", f"sqlite:///{tmp_path}/hw.db", "--data-dir", str(tmp_path / "data"))
    message = " ".join(result.stderr.split())
    assert result.returncode == 2 and "--passwd-file" in message and "evidence upload" in message, message
    assert not (tmp_path / "hw.db").exists(), "refused before anything is created"


def test_broker_config_is_a_production_config(tmp_path: Path) -> None:
    result = _cli("broker", "config", "--auth-dir", str(tmp_path / "auth"), "--port", "1884")
    assert result.returncode == 0, result.stderr
    conf = result.stdout
    assert "allow_anonymous false" in conf and "listener 1884" in conf
    assert f"password_file {tmp_path / 'auth' / 'passwd'}" in conf and "acl_file" in conf
