"""The agent runtime against a real Mosquitto: gating, replay, birth, will, commands."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from mosquitto_proc import start_mosquitto
from procs import ROOT, wait_for

from agent.config import CONFIG_DIR, AgentSettings, CameraSpec, ConfigPath
from agent.runtime import AgentRuntime
from broker.protocol import (
    Command,
    DeviceConfig,
    PunchBody,
    ServerStatus,
    decode_event,
    device_topic,
    encode,
    server_status_topic,
)

pytestmark = pytest.mark.mosquitto
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)


class Watcher:
    """A plain subscriber standing in for the server's side of the broker."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="watcher")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("hw/v1/#", qos=1)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:  # type: ignore[no-untyped-def]
        with self.lock:
            self.messages.append((msg.topic, msg.payload, msg.retain))

    def events(self) -> list:
        with self.lock:
            return [decode_event(p) for t, p, _ in self.messages if "/evt/" in t]

    def statuses(self, device: str) -> list[dict]:
        with self.lock:
            return [json.loads(p) for t, p, _ in self.messages if t == device_topic("demo", device, "status") and p]

    def server(self, state: str) -> None:
        payload = encode(ServerStatus(state=state, time=datetime.now(timezone.utc)))  # type: ignore[arg-type]
        self.client.publish(server_status_topic("demo"), payload, qos=1, retain=True).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _settings(tmp_path: Path, port: int) -> AgentSettings:
    return AgentSettings.model_validate(
        {
            "device": {"hall_id": "demo", "device_id": "ft-01", "kind": "face_terminal"},
            "broker": {"url": f"mqtt://127.0.0.1:{port}"},
            "outbox": {"path": str(tmp_path / "ft-01.db")},
            "heartbeat_s": 3600,
            "reconnect_min_s": 0.2,
        }
    )


@pytest.fixture
def broker(tmp_path: Path):
    with start_mosquitto(tmp_path) as process:
        yield process


def test_events_wait_for_the_server_and_held_ones_are_historical(tmp_path: Path, broker) -> None:
    watcher = Watcher(broker.port)
    runtime = AgentRuntime(_settings(tmp_path, broker.port))
    runtime.start()
    try:
        wait_for(lambda: watcher.statuses("ft-01"), 10, "the birth message")
        held = [runtime.emit(PunchBody(person_id=f"c0{i}", method="face"), NOW) for i in range(3)]
        time.sleep(1)
        assert watcher.events() == [], "nothing is sent while the server is not online"
        watcher.server("online")
        wait_for(lambda: len(watcher.events()) == 3, 10, "the replay")
        live = runtime.emit(PunchBody(person_id="c09", method="pin"), NOW)
        wait_for(lambda: len(watcher.events()) == 4, 10, "the live event")
        events = watcher.events()
        assert [e.msg_id for e in events] == [e.msg_id for e in held] + [live.msg_id], "in order"
        assert [e.historical for e in events] == [True, True, True, False]
        assert all(e.sent_time is not None for e in events)
        assert runtime.wait_drained(5)
    finally:
        runtime.stop()
        watcher.close()


def test_restart_replays_unsent_events_under_their_first_boot(tmp_path: Path, broker) -> None:
    first = AgentRuntime(_settings(tmp_path, broker.port))
    first.start()
    kept = first.emit(PunchBody(person_id="c01", method="face"), NOW)
    first.stop()  # the server never came online: the punch stays in the outbox
    watcher = Watcher(broker.port)
    watcher.server("online")
    second = AgentRuntime(_settings(tmp_path, broker.port))
    second.start()
    try:
        assert second.boot == 2
        event = wait_for(lambda: [e for e in watcher.events() if e.type == "punch"], 10, "the replayed punch")[0]
        assert (event.msg_id, event.boot, event.seq, event.historical) == (kept.msg_id, 1, 1, True)
        birth = wait_for(lambda: [s for s in watcher.statuses("ft-01") if s["boot"] == 2], 10, "the second birth")
        assert birth[-1]["state"] == "online"
    finally:
        second.stop()
        watcher.close()


def test_graceful_stop_says_offline(tmp_path: Path, broker) -> None:
    watcher = Watcher(broker.port)
    runtime = AgentRuntime(_settings(tmp_path, broker.port))
    runtime.start()
    wait_for(lambda: watcher.statuses("ft-01"), 10, "birth")
    runtime.stop()
    last = wait_for(lambda: [s for s in watcher.statuses("ft-01") if s["state"] == "offline"], 10, "offline status")[-1]
    assert last["reason"] == "stopped"
    watcher.close()


def test_each_part_reports_its_own_fault_and_one_coming_back_never_hides_another(tmp_path: Path, broker) -> None:
    watcher = Watcher(broker.port)
    runtime = AgentRuntime(_settings(tmp_path, broker.port))
    runtime.start()
    try:
        wait_for(lambda: [s for s in watcher.statuses("ft-01") if s["state"] == "online"], 10, "birth")
        runtime.set_fault("摄像头无画面 camera lost: cannot read", part="camera")
        runtime.set_fault("评价器未连接 keypad\ndisconnected " + "x" * 300, part="keypad")
        both = wait_for(lambda: [s for s in watcher.statuses("ft-01") if s["reason"] and "keypad" in s["reason"]], 10, "both faults")[-1]
        assert both["state"] == "offline" and both["reason"].startswith("摄像头无画面 camera lost: cannot read; 评价器未连接 keypad disconnected x")
        assert len(both["reason"]) == 200, "cut to what a status carries, on one line"
        runtime.set_fault(None, part="camera")
        keypad = wait_for(lambda: [s for s in watcher.statuses("ft-01") if s["reason"] and "camera" not in s["reason"]], 10, "the camera back")[-1]
        assert keypad["state"] == "offline" and keypad["reason"].startswith("评价器未连接"), "the keypad is still out"
        runtime.set_fault(None, part="keypad")
        wait_for(lambda: watcher.statuses("ft-01")[-1]["state"] == "online", 10, "online once every part works")
        assert runtime.fault is None
    finally:
        runtime.stop()
        watcher.close()


def test_killed_agent_leaves_its_last_will(tmp_path: Path, broker) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        f"""
heartbeat_s = 1
[device]
hall_id = "demo"
device_id = "ft-01"
kind = "face_terminal"
[broker]
url = "mqtt://127.0.0.1:{broker.port}"
[outbox]
path = "ft-01.db"
"""
    )
    watcher = Watcher(broker.port)
    agent = subprocess.Popen([sys.executable, "-m", "server.cli", "agent", str(config)], cwd=ROOT)
    try:
        wait_for(lambda: any(s["state"] == "online" for s in watcher.statuses("ft-01")), 20, "birth from the agent process")
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        will = wait_for(lambda: [s for s in watcher.statuses("ft-01") if s["state"] == "offline"], 10, "the last will")
        assert will[-1]["reason"] == "connection lost" and will[-1]["boot"] == 1
        assert (tmp_path / "ft-01.db").exists(), "a relative outbox path is taken from the config file's folder"
    finally:
        if agent.poll() is None:
            agent.kill()
        watcher.close()


def test_commands_and_configuration_are_acknowledged(tmp_path: Path, broker) -> None:
    watcher = Watcher(broker.port)
    watcher.server("online")
    runtime = AgentRuntime(_settings(tmp_path, broker.port))
    runtime.start()
    try:
        wait_for(lambda: runtime.live, 10, "live link")
        command = Command(cmd_id="c-1", name="ping", issued_at=datetime.now(timezone.utc))
        watcher.client.publish(device_topic("demo", "ft-01", "cmd"), encode(command), qos=1)
        unsupported = Command(cmd_id="c-2", name="snapshot", issued_at=datetime.now(timezone.utc))
        watcher.client.publish(device_topic("demo", "ft-01", "cmd"), encode(unsupported), qos=1)
        config = DeviceConfig(version=4, issued_at=datetime.now(timezone.utc), settings={"debounce_s": 30})
        watcher.client.publish(device_topic("demo", "ft-01", "cfg"), encode(config), qos=1, retain=True)
        acks = wait_for(lambda: (a := [e.body for e in watcher.events() if e.type == "ack"]) and len(a) >= 3 and a, 10, "three acks")
        by_ref = {a.ref_id: a for a in acks}
        assert by_ref["c-1"].ok and by_ref["c-1"].detail == "pong"
        assert not by_ref["c-2"].ok and "not supported" in (by_ref["c-2"].detail or "")
        assert by_ref["4"].ref == "config" and by_ref["4"].ok
        assert runtime.outbox.saved("config")["settings"] == {"debounce_s": 30}  # type: ignore[index]
    finally:
        runtime.stop()
        watcher.close()


def test_bad_agent_file_names_file_key_and_reason(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[device]\nhall_id = "Demo Hall"\ndevice_id = "ft-01"\nkind = "toaster"\n[outbox]\npath = "x.db"\n')
    result = subprocess.run([sys.executable, "-m", "server.cli", "agent", str(config)], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert str(config) in message.replace(" ", "") or config.name in message
    assert "device.hall_id" in message and "device.kind" in message


def test_unknown_source_kind_is_refused_at_start(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        '[device]\nhall_id = "demo"\ndevice_id = "cam-01"\nkind = "window_camera"\n'
        '[outbox]\npath = "x.db"\n[[sources]]\nkind = "no-such-camera"\nurl = "rtsp://10.0.0.5/1"\n'
    )
    result = subprocess.run([sys.executable, "-m", "server.cli", "agent", str(config)], cwd=ROOT, capture_output=True, text=True, timeout=30)
    message = " ".join(result.stderr.split())
    assert result.returncode == 2
    assert "sources[0].kind" in message and "no-such-camera" in message
    assert not (tmp_path / "x.db").exists(), "nothing started"


@pytest.mark.parametrize(
    ("written", "meant"),
    [("ref.png", "/etc/hallwatch/ref.png"), ("../shared/ref.png", "/etc/shared/ref.png"), ("/srv/ref.png", "/srv/ref.png"), ("~/ref.png", str(Path.home() / "ref.png"))],
)
def test_a_path_in_an_agent_file_is_read_from_the_files_folder(written: str, meant: str) -> None:
    from pydantic import TypeAdapter

    context = {CONFIG_DIR: Path("/etc/hallwatch")}
    assert TypeAdapter(ConfigPath).validate_python(written, context=context) == Path(meant)
    assert TypeAdapter(ConfigPath).validate_python(written) == Path(written).expanduser(), "no agent file (a test, a script): as written"


@pytest.mark.parametrize(
    ("written", "meant"),
    [("0", "0"), ("rtsp://10.0.0.5/sub", "rtsp://10.0.0.5/sub"), ("clips/w01.mp4", "/etc/hallwatch/clips/w01.mp4"), ("/dev/video2", "/dev/video2")],
)
def test_a_camera_is_an_index_a_url_or_a_file_from_the_files_folder(written: str, meant: str) -> None:
    from pydantic import TypeAdapter

    assert TypeAdapter(CameraSpec).validate_python(written, context={CONFIG_DIR: Path("/etc/hallwatch")}) == meant
