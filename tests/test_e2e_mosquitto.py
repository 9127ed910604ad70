"""A real client against real Mosquitto (production config) and the real server.

A message written from docs/protocol.md and sent with ``mosquitto_pub`` is
accepted and visible through the API; malformed, oversized and unknown-device
messages are rejected with a reason, and the server keeps running.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from conftest import require_executable
from mosquitto_proc import free_port, start_mosquitto
from procs import ROOT, server_proc, wait_for, wait_http
from users import ADMIN_HEADERS, admin_token_file

from broker.mosquitto import BrokerAuthFiles
from broker.protocol import MAX_PAYLOAD_BYTES

pytestmark = pytest.mark.mosquitto


def doc_example(name: str) -> dict:
    """The JSON example of one message section of docs/protocol.md."""
    text = (ROOT / "docs/protocol.md").read_text(encoding="utf-8")
    section = re.search(rf"^### `?{name}`?\b(.*?)(?=^### |\Z)", text, re.S | re.M)
    assert section, f"docs/protocol.md has no section for {name}"
    block = re.search(r"```json\n(.*?)```", section.group(1), re.S)
    assert block, f"section {name} has no JSON example"
    return json.loads(block.group(1))


@pytest.fixture
def hall(tmp_path: Path, db_url: str):
    """Mosquitto with generated passwd/ACL, and the server logged in as its own user,
    storing to SQLite and (second run) PostgreSQL."""
    pub = require_executable("mosquitto_pub")
    auth = BrokerAuthFiles(tmp_path / "auth")
    secrets = {name: auth.add_device("demo", name) for name in ("cam-01", "cam-99")}
    server_pw = tmp_path / "server.secret"
    server_pw.write_text(auth.add_server("demo") + "\n")
    server_pw.chmod(0o600)
    with start_mosquitto(tmp_path, auth=auth) as broker:
        port = free_port()
        server = server_proc(
            tmp_path,
            broker_url=broker.url,
            db_url=db_url,
            port=port,
            extra=[
                "--username", "hallwatch-server", "--password-file", str(server_pw), "--passwd-file", str(auth.passwd_path),
                "--admin-token-file", str(admin_token_file(tmp_path)),
            ],
        ).start()
        try:
            api = f"http://127.0.0.1:{port}"
            wait_http(f"{api}/api/stats", server, headers=ADMIN_HEADERS)
            wait_for(lambda: b"server connected" in server.log_path.read_bytes(), 20, "server MQTT connection")

            def publish(device: str, topic: str, payload: bytes) -> None:
                subprocess.run(
                    [pub, "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-u", device, "-P", secrets[device], "-t", topic, "-s"],
                    input=payload,
                    check=True,
                    timeout=10,
                )

            yield api, publish, server
        finally:
            server.terminate()


def test_hand_written_message_is_accepted_and_bad_ones_rejected(hall) -> None:
    api, publish, server = hall
    message = doc_example("seat")
    message |= {"hall_id": "demo", "device_id": "cam-01", "msg_id": str(uuid.uuid4())}
    message["event_time"] = datetime.now(timezone.utc).isoformat()
    message["body"]["window_id"] = "w01"
    topic = "hw/v1/demo/dev/cam-01/evt/seat"
    publish("cam-01", topic, json.dumps(message).encode())

    stored = wait_for(
        lambda: [e for e in httpx.get(f"{api}/api/events", headers=ADMIN_HEADERS, params={"device_id": "cam-01"}).json() if e["msg_id"] == message["msg_id"]],
        15,
        "the mosquitto_pub event in /api/events",
    )
    assert stored[0]["type"] == "seat" and stored[0]["window_id"] == "w01"

    publish("cam-01", topic, b'{"schema_version": 1, "msg_id": ')
    oversized = json.dumps(message | {"msg_id": str(uuid.uuid4()), "pad": "x" * MAX_PAYLOAD_BYTES}).encode()
    publish("cam-01", topic, oversized)
    stranger = message | {"device_id": "cam-99", "msg_id": str(uuid.uuid4())}
    publish("cam-99", "hw/v1/demo/dev/cam-99/evt/seat", json.dumps(stranger).encode())

    reasons = wait_for(
        lambda: (r := [x["reason"] for x in httpx.get(f"{api}/api/rejections", headers=ADMIN_HEADERS).json()]) and len(r) >= 3 and r,
        15,
        "three rejections",
    )
    assert any("Invalid JSON" in r or "EOF" in r for r in reasons), reasons
    assert any("exceeds" in r and str(MAX_PAYLOAD_BYTES) in r for r in reasons), reasons
    assert any("unknown device 'cam-99'" in r for r in reasons), reasons

    # The server is still up and still accepting.
    again = message | {"msg_id": str(uuid.uuid4()), "seq": message["seq"] + 1}
    publish("cam-01", topic, json.dumps(again).encode())
    wait_for(
        lambda: any(e["msg_id"] == again["msg_id"] for e in httpx.get(f"{api}/api/events", headers=ADMIN_HEADERS).json()),
        15,
        "a valid event after the rejections",
    )
    stats = httpx.get(f"{api}/api/stats", headers=ADMIN_HEADERS).json()
    assert stats["accepted"] == 2 and stats["rejected"] == 3
    assert server.alive()


def test_redelivered_message_is_stored_once(hall) -> None:
    api, publish, _ = hall
    message = doc_example("seat") | {"hall_id": "demo", "device_id": "cam-01", "msg_id": str(uuid.uuid4())}
    message["body"]["window_id"] = "w02"
    payload = json.dumps(message).encode()
    for _ in range(3):
        publish("cam-01", "hw/v1/demo/dev/cam-01/evt/seat", payload)
    wait_for(lambda: httpx.get(f"{api}/api/stats", headers=ADMIN_HEADERS).json()["duplicates"] == 2, 15, "two duplicates counted")
    events = [e for e in httpx.get(f"{api}/api/events", headers=ADMIN_HEADERS).json() if e["msg_id"] == message["msg_id"]]
    assert len(events) == 1
