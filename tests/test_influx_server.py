"""The time-series export wired into the real server: MQTT in, VictoriaMetrics out.

Real processes throughout: Mosquitto with the production config (one broker
account per device, ACLs), ``hallwatch server`` started with ``--influx-url``
(and ``--influx-bucket``, ``--influx-org``, ``--influx-token-file``,
``--influx-spool-dir``), and VictoriaMetrics taking the InfluxDB write API.
Devices publish protocol events with their own credentials, as agents do.
What an operator would notice:

* every exported event is read back from VictoriaMetrics with the tags the
  sink gives it (hall, window, seat, device, clerk, source) at its event
  time, to the millisecond; the windows the events changed have their
  derived state there too;
* ``/api/stats`` reports the sink's counters next to the ingest counters:
  points written, nothing spooled, nothing pending;
* VictoriaMetrics stopped for a few seconds while events keep arriving: the
  server spools them (``/api/stats`` says so), replays them once it is back,
  and every point is present exactly once (one sample per series and event
  time, none missing).  VictoriaMetrics runs with deduplication, as InfluxDB
  keeps one point per series and time (tests/victoria_proc.py), so "once" is
  what a reader of the database sees; the sink's counters show the spool
  replayed all it held.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from mosquitto_proc import free_port, start_mosquitto
from procs import Proc, server_proc, wait_for, wait_http
from users import ADMIN_HEADERS, admin_token_file
from timeseries import Samples, expected, exported, key, ms, points_in, wait_exported
from victoria_proc import VictoriaProcess, start_victoria

from broker.connection import BrokerSettings, make_client
from broker.mosquitto import BrokerAuthFiles
from broker.protocol import (
    Body,
    Event,
    HeartbeatBody,
    PauseBody,
    RatingBody,
    SeatBody,
    TicketBody,
    device_topic,
    encode,
    make_event,
)
from broker.timeutil import HALL_TZ
from server.timeseries.influx_sink import WINDOW_STATES

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(120)]

HALL = "demo"
DEVICES = ("cam-01", "ev-02", "qg-01")
"""config/halls/demo.toml: cam-01 watches w01–w03, ev-02 is w02's keypad, qg-01 the queue system."""
BUCKET, ORG = "hallwatch-test", "test-city"
EVENT_SERIES = f'{{hall="{HALL}", __name__=~"(seat|rating|pause|ticket|heartbeat)_.+"}}'
"""The series made from device events (window states and alerts come from the supervisor)."""


# --------------------------------------------------------------------------
# Devices and the hall
# --------------------------------------------------------------------------


class Device:
    """One device on its own broker account, numbering its events as its outbox would (boot 1, seq 1, 2, …)."""

    def __init__(self, broker_url: str, device_id: str, password_file: Path) -> None:
        self.device_id = device_id
        self.seq = 0
        settings = BrokerSettings(url=broker_url, username=device_id, password_file=password_file)
        self.client = make_client(settings, device_id, clean_session=True)
        connected = threading.Event()
        self.client.on_connect = lambda client, userdata, flags, rc, props: None if rc.is_failure else connected.set()
        self.client.connect(settings.host, settings.port)
        self.client.loop_start()
        if not connected.wait(10):
            raise AssertionError(f"{device_id} could not connect to the broker")

    def send(self, body: Body, at: datetime) -> Event:
        """Publish one event (QoS 1, waiting for the broker's PUBACK)."""
        self.seq += 1
        event = make_event(hall_id=HALL, device_id=self.device_id, boot=1, seq=self.seq, event_time=at, body=body)
        info = self.client.publish(device_topic(HALL, self.device_id, "evt", event.type), encode(event), qos=1)
        info.wait_for_publish(10)
        assert info.is_published(), f"no PUBACK for {self.device_id} seq {self.seq}"
        return event

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Hall:
    api: str
    server: Proc
    vm: VictoriaProcess
    devices: dict[str, Device]
    spool_dir: Path

    def stats(self) -> dict[str, Any]:
        response = httpx.get(f"{self.api}/api/stats", headers=ADMIN_HEADERS, timeout=10)
        response.raise_for_status()
        return response.json()

    def windows(self) -> dict[str, dict[str, Any]]:
        response = httpx.get(f"{self.api}/api/windows", headers=ADMIN_HEADERS, timeout=10)
        response.raise_for_status()
        return {w["id"]: w for w in response.json()}

    def wait_stats(self, condition: Callable[[dict[str, Any]], bool], timeout: float, what: str) -> dict[str, Any]:
        """The stats once ``condition(stats)`` holds; the failure shows the last ones seen."""
        seen: list[dict[str, Any]] = [{}]

        def check() -> dict[str, Any] | None:
            seen[0] = self.stats()
            return seen[0] if condition(seen[0]) else None

        try:
            return wait_for(check, timeout, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last stats: {seen[0]}") from None

    def accepted(self, count: int) -> dict[str, Any]:
        """The stats once the server has stored ``count`` events."""
        return self.wait_stats(lambda s: s["accepted"] >= count, 20, f"{count} events accepted")

    def settled(self, timeout: float = 30) -> dict[str, Any]:
        """The stats once the sink has written everything it was handed (nothing in flight or spooled, writing live)."""
        return self.wait_stats(
            lambda s: (s["influx"]["state"], s["influx"]["in_flight"], s["influx"]["pending"]) == ("live", 0, 0), timeout, "the server's sink to settle"
        )


def _secret(directory: Path, name: str, value: str) -> Path:
    path = directory / f"{name}.secret"
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def hall(tmp_path: Path) -> Iterator[Hall]:
    """Mosquitto (production config), VictoriaMetrics, and the server exporting to it, logged in as its own user."""
    auth = BrokerAuthFiles(tmp_path / "auth")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    device_passwords = {d: _secret(secrets, d, auth.add_device(HALL, d)) for d in DEVICES}
    server_password = _secret(secrets, "server", auth.add_server(HALL))
    influx_token = _secret(secrets, "influx", "hallwatch-influx-token")  # VictoriaMetrics without -httpAuth ignores it
    spool_dir = tmp_path / "influx-spool"
    with start_mosquitto(tmp_path, auth=auth) as broker, start_victoria(tmp_path) as vm:
        port = free_port()
        server = server_proc(
            tmp_path,
            broker_url=broker.url,
            db_url=f"sqlite:///{tmp_path}/hw.db",
            port=port,
            extra=[
                "--username", "hallwatch-server", "--password-file", str(server_password), "--passwd-file", str(auth.passwd_path),
                "--admin-token-file", str(admin_token_file(tmp_path)),
                "--influx-url", vm.url, "--influx-bucket", BUCKET, "--influx-org", ORG,
                "--influx-token-file", str(influx_token), "--influx-spool-dir", str(spool_dir),
            ],
        ).start()
        devices: dict[str, Device] = {}
        try:
            api = f"http://127.0.0.1:{port}"
            wait_http(f"{api}/api/stats", server, headers=ADMIN_HEADERS)
            wait_for(lambda: b"server connected" in server.log_path.read_bytes(), 20, "the server's MQTT connection")
            devices = {d: Device(broker.url, d, device_passwords[d]) for d in DEVICES}
            yield Hall(api, server, vm, devices, spool_dir)
        finally:
            for device in devices.values():
                device.close()
            server.terminate()
        assert "Traceback" not in server.log_path.read_text(), server.log()


# --------------------------------------------------------------------------
# Reading VictoriaMetrics
# --------------------------------------------------------------------------


def lines_in(samples: Samples) -> int:
    """Line-protocol points behind the samples: one per measurement, tag set and time (each field is a series)."""
    lines = set()
    for (name, tags), values in samples.items():
        measurement = "window_state" if name.startswith("window_state_") else name.split("_", 1)[0]
        lines |= {(measurement, tags, t) for t in values}
    return len(lines)


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


def test_events_published_over_mqtt_are_in_victoria_metrics_and_counted_in_stats(hall: Hall) -> None:
    cam, keypad, queue = (hall.devices[d] for d in DEVICES)
    t0 = (datetime.now(HALL_TZ) - timedelta(minutes=5)).replace(microsecond=123456)
    at = [t0 + timedelta(seconds=s) for s in range(6)]
    cam.send(SeatBody(window_id="w01", state="occupied", confidence=0.93, occupant="c01"), at[0])
    cam.send(SeatBody(window_id="w02", state="vacant", confidence=0.8), at[1])
    keypad.send(RatingBody(window_id="w02", level=4, clerk_id="c02", ticket="A002"), at[2])
    keypad.send(PauseBody(window_id="w02", paused=True, source="evaluator", reason="午休"), at[3])
    queue.send(TicketBody(window_id="w03", ticket="A003", state="finished"), at[4])
    cam.send(HeartbeatBody(uptime_s=3600.5, outbox_pending=2, dropped_heartbeats=1, dropped_states=0), at[5])
    stats = hall.accepted(6)
    assert (stats["accepted"], stats["rejected"]) == (6, 0), stats

    t = [ms(moment) for moment in at]
    w01 = dict(hall=HALL, window="w01", seat="main", device="cam-01")
    w02 = dict(hall=HALL, window="w02", seat="main", device="cam-01")
    assert wait_exported(hall.vm, 11, EVENT_SERIES) == {
        key("seat_occupied", **w01): {t[0]: 1},
        key("seat_confidence", **w01): {t[0]: 0.93},
        key("seat_occupied", **w02): {t[1]: 0},
        key("seat_confidence", **w02): {t[1]: 0.8},
        key("rating_level", hall=HALL, window="w02", clerk="c02", device="ev-02"): {t[2]: 4},
        key("pause_paused", hall=HALL, window="w02", source="evaluator"): {t[3]: 1},
        key("ticket_finished", hall=HALL, window="w03"): {t[4]: 1},
        key("heartbeat_uptime_s", hall=HALL, device="cam-01"): {t[5]: 3600.5},
        key("heartbeat_outbox_pending", hall=HALL, device="cam-01"): {t[5]: 2},
        key("heartbeat_dropped_heartbeats", hall=HALL, device="cam-01"): {t[5]: 1},
        key("heartbeat_dropped_states", hall=HALL, device="cam-01"): {t[5]: 0},
    }, "each event under its hall/window/device tags, at its event time; no person id as a tag"
    assert t[0] % 1000 == 123, "the event time, not the arrival time, to the millisecond"

    # The windows the events touched: the state the live page shows, one 0/1 series per state, since when it holds.
    def window_states_match() -> bool:
        windows = hall.windows()
        states = exported(hall.vm, f'{{hall="{HALL}", __name__=~"window_state_.+"}}')
        for window_id in ("w01", "w02"):
            shown = windows[window_id]
            if shown["state_since"] is None:
                return False
            since = ms(datetime.fromisoformat(shown["state_since"]))
            one_hot = {s: states.get(key(f"window_state_{s}", hall=HALL, window=window_id), {}).get(since) for s in WINDOW_STATES}
            if one_hot != {s: int(s == shown["state"]) for s in WINDOW_STATES}:
                return False
        return True

    wait_for(window_states_match, 15, "the states of w01 and w02 in VictoriaMetrics as /api/windows shows them")

    stats = hall.settled()
    sink = stats["influx"]
    assert (sink["url"], sink["bucket"], sink["state"]) == (hall.vm.url, BUCKET, "live"), sink
    assert sink["written"] >= lines_in(exported(hall.vm, f'{{hall="{HALL}"}}')), f"every point in VictoriaMetrics was counted as written: {sink}"
    assert sink["batches"] >= 1, sink
    assert (sink["spooled"], sink["pending"], sink["replayed"], sink["errors"], sink["dropped"]) == (0, 0, 0, 0, 0), sink
    assert sink["last_error"] is None, sink
    assert not list(hall.spool_dir.glob("*.lp")), "nothing waits in the spool"


def test_victoria_metrics_down_for_seconds_the_spool_replays_every_point_once(hall: Hall) -> None:
    cam, keypad = hall.devices["cam-01"], hall.devices["ev-02"]
    events: list[Event] = []
    last = datetime.now(HALL_TZ)

    def burst(n: int = 4) -> list[Event]:
        """Seat changes on w01–w03, a rating and a heartbeat per round, at wall-clock event times."""
        nonlocal last
        sent: list[Event] = []
        for _ in range(n):
            last = max(datetime.now(HALL_TZ), last + timedelta(milliseconds=2))  # distinct milliseconds per series
            round_no = len(events) + len(sent)
            for w in range(3):
                state = "occupied" if (round_no + w) % 2 else "vacant"
                sent.append(cam.send(SeatBody(window_id=f"w0{w + 1}", state=state, confidence=0.5 + w / 10), last))
            sent.append(keypad.send(RatingBody(window_id="w02", level=1 + round_no % 5, clerk_id="c02"), last))
            sent.append(cam.send(HeartbeatBody(uptime_s=round_no, outbox_pending=0, dropped_heartbeats=0, dropped_states=0), last))
        events.extend(sent)
        return sent

    burst()
    hall.accepted(len(events))
    wait_exported(hall.vm, points_in(expected(events)), EVENT_SERIES)  # writing live

    hall.vm.stop()
    burst()  # the server's write of these fails: it switches to the spool
    hall.wait_stats(lambda s: s["influx"]["state"] == "spooling", 20, "the sink to start spooling")
    while_down = burst()  # go straight to the spool
    down = hall.wait_stats(
        lambda s: s["accepted"] == len(events) and s["influx"]["pending"] >= len(while_down), 20, "the events published while it is down in the spool"
    )["influx"]
    assert down["last_error"] and down["errors"] + down["retries"] >= 1, down
    assert list(hall.spool_dir.glob("*.lp")), "the spool is on disk, in --influx-spool-dir"

    hall.vm.start()
    hall.settled(timeout=30)  # the replayer sends the spool within its interval, then writing goes live again
    burst()  # live again
    hall.accepted(len(events))

    want = expected(events)
    assert wait_exported(hall.vm, points_in(want), EVENT_SERIES) == want, "every point present once, with its tags, time and value"
    stats = hall.settled()
    sink = stats["influx"]
    assert stats["accepted"] == len(events), stats
    assert sink["spooled"] >= len(while_down), sink
    assert (sink["replayed"], sink["pending"], sink["dropped"], sink["state"]) == (sink["spooled"], 0, 0, "live"), sink
    held = lines_in(exported(hall.vm, f'{{hall="{HALL}"}}'))
    assert sink["written"] + sink["replayed"] >= held, f"every point in VictoriaMetrics went live or through the spool: {sink}, {held} points"
    assert not list(hall.spool_dir.glob("*.lp")), "the replayed spool is removed"
