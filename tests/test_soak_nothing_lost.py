"""Nothing lost, nothing doubled — with the real broker, agents and server.

With the simulator running: stop Mosquitto for 60 s and restart it; SIGKILL
the agents' process and restart it; SIGKILL the server and restart it.
Afterwards every event each device produced (every boot, every sequence
number, as recorded in the device's own outbox) is stored exactly once, and
every event that was held back is marked historical.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from mosquitto_proc import free_port, start_mosquitto
from procs import ROOT, Proc, server_proc, wait_for, wait_http
from users import ADMIN_HEADERS, admin_token_file

pytestmark = [pytest.mark.soak, pytest.mark.mosquitto]

SPEED = 60
OUTAGE_S = 60


def _simulator(tmp_path: Path, broker_url: str) -> Proc:
    return Proc(
        "simulate",
        [
            "simulate", "--hall", str(ROOT / "config/halls/demo.toml"), "--broker", broker_url,
            "--state-dir", str(tmp_path / "devices"), "--speed", str(SPEED), "--heartbeat", "1", "--seed", "7",
        ],
        tmp_path,
    )


def _produced(state_dir: Path) -> dict[tuple[str, int], int]:
    """(device, boot) → last sequence number, from each device's own outbox."""
    produced = {}
    for path in sorted(state_dir.glob("*.outbox.db")):
        device = path.name.removesuffix(".outbox.db")
        with sqlite3.connect(path) as db:
            (pending,) = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
            assert pending == 0, f"{device}: {pending} events never delivered"
            for boot, last_seq in db.execute("SELECT boot, last_seq FROM boots"):
                produced[(device, boot)] = last_seq
    return produced


def test_broker_outage_and_kills_lose_and_double_nothing(tmp_path: Path) -> None:
    db_path = tmp_path / "hw.db"
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    token = ["--admin-token-file", str(admin_token_file(tmp_path))]
    with start_mosquitto(tmp_path) as broker:
        server = server_proc(tmp_path, broker_url=broker.url, db_url=f"sqlite:///{db_path}", port=port, extra=token).start()
        sim = _simulator(tmp_path, broker.url).start()
        try:
            wait_http(f"{api}/api/stats", server, headers=ADMIN_HEADERS)
            wait_for(lambda: httpx.get(f"{api}/api/stats", headers=ADMIN_HEADERS).json()["accepted"] > 200, 60, "events flowing")

            broker.stop()
            time.sleep(OUTAGE_S)
            broker.start()
            wait_for(lambda: httpx.get(f"{api}/api/stats", headers=ADMIN_HEADERS).json()["historical"] > 0, 90, "replay after the outage")

            sim.kill()
            sim = _simulator(tmp_path, broker.url).start()
            time.sleep(10)

            server.kill()
            time.sleep(5)
            server = server_proc(tmp_path, broker_url=broker.url, db_url=f"sqlite:///{db_path}", port=port, extra=token).start()
            wait_http(f"{api}/api/stats", server, headers=ADMIN_HEADERS)
            time.sleep(10)

            sim.terminate(timeout=120)  # graceful: drains every outbox
            assert sim.popen is not None and sim.popen.returncode == 0, sim.log()
            time.sleep(3)
        finally:
            sim.terminate()
            server.terminate()

    produced = _produced(tmp_path / "devices")
    assert len({device for device, _ in produced}) == 18
    assert {boot for _, boot in produced} == {1, 2}, "the killed agents restarted with a new boot"

    with sqlite3.connect(db_path) as db:
        stored = db.execute("SELECT device_id, boot, COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq) FROM events GROUP BY device_id, boot").fetchall()
        rows = db.execute("SELECT type, historical, event_time, sent_time FROM events").fetchall()
    stored_map = {(d, b): (n, distinct, lo, hi) for d, b, n, distinct, lo, hi in stored}
    assert set(stored_map) == set(produced)
    for key, last_seq in produced.items():
        assert stored_map[key] == (last_seq, last_seq, 1, last_seq), f"{key}: stored {stored_map[key]}, produced 1..{last_seq}"

    # Held-back events are historical: anything sent more than 120 s of hall
    # time (2 s of real time at 60×) after it happened was held back.
    held_back = [r for r in rows if (datetime.fromisoformat(r[3]) - datetime.fromisoformat(r[2])).total_seconds() > 120]
    assert len(held_back) > 18 * OUTAGE_S // 2, "the outage held events back"
    assert all(r[1] for r in held_back), "every held-back event is marked historical"
    kinds = {r[0] for r in rows}
    assert {"punch", "seat", "heartbeat", "seat_heartbeat"} <= kinds
