"""Ingest benchmark: end-to-end latency and sustained rate, against a plain-subscriber baseline.

    .venv/bin/python bench/ingest.py [--events N] [--rate R] [--db sqlite|URL]

One run starts its own Mosquitto (temporary config, free loopback port,
anonymous) and the real server (``python -m server.cli server`` in its own
process, fresh SQLite database in a temporary directory, or the scratch database
given by ``--db URL``), then measures:

1. **Latency** — M rating events (``--latency-events``, default 2000) from the
   hall's evaluators at a fixed ``--rate`` (default 200/s), QoS 1; a WebSocket
   client on ``/ws`` stamps the arrival of each ``{"kind": "event"}`` message.
   Latency = WebSocket arrival - publish call, both on this process's
   monotonic clock.  Reported: p50, p99, max.
2. **Sustained ingest** — N fresh events (``--events``, default 50,000)
   published as fast as one paho client can (QoS 1, 1000 in flight); the rate
   is N / (first publish -> ``/api/stats`` ``accepted`` reaching N more).
3. **Baseline** — the identical N payloads published again, on topics the
   server does not subscribe to, drained by a plain paho subscriber in its own
   process (QoS 1, ``json.loads`` of each payload, nothing else); the rate is
   N / (first publish -> last message received).

Everything (broker, server, temporary files) is stopped and removed at the end,
also on error or Ctrl-C; ``--timeout`` (default 270 s) bounds the whole run.
Prints a table and writes it as Markdown to ``bench/results/ingest-<date>.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402

from bench.machine import code_version, write_json  # noqa: E402
from bench.machine import machine_info as host_info  # noqa: E402

DEFAULT_HALL = ROOT / "config" / "halls" / "demo.toml"
RESULTS = ROOT / "bench" / "results"
PUBLISH_INFLIGHT = 1000
MAX_OUTSTANDING = 20_000  # paho's message ids wrap at 65535 and are not checked for reuse
STATS_POLL_S = 0.05
QUICK_EVENTS = 6000
QUICK_LATENCY = 600


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


class BenchError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(what: str, predicate: Any, timeout: float, interval: float = 0.05) -> Any:
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _die_with_parent() -> None:
    """Child processes get SIGKILL if the bench itself is killed (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def peak_rss_mib(pid: int) -> float | None:
    """The process's peak resident memory (VmHWM), MiB; None where /proc does not say."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """Busy and steal CPU seconds of the whole machine so far (all cores), from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError):
        return float("nan"), float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def quarter_rates(samples: list[tuple[float, int]], total: int) -> list[float]:
    """The stored rate in each quarter of the run, events/s, from (time, stored so far) samples.

    The time each quarter's last event was stored is interpolated between the
    two samples around it, so the poll interval does not round the quarters.
    """
    marks = []
    for k in range(1, 5):
        goal = total * k / 4
        (ta, na), (tb, nb) = next((a, b) for a, b in zip(samples, samples[1:]) if b[1] >= goal)
        marks.append(ta + (tb - ta) * (goal - na) / max(nb - na, 1))
    starts = [samples[0][0], *marks[:-1]]
    return [total / 4 / max(end - begin, 1e-9) for begin, end in zip(starts, marks, strict=True)]


def percentile(values: list[float], p: float) -> float:
    """Linear-interpolated percentile (numpy's default method)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass(frozen=True)
class Api:
    """The server under test: its HTTP port and the administrator token the bench calls it with
    (the API answers 401 without a login since it has users and roles)."""

    port: int
    token: str

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str) -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=self.headers())
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)


def admin_token_file(workdir: Path) -> tuple[Path, str]:
    """A fresh administrator token in a 0600 file, as the server requires."""
    token = secrets.token_hex(24)
    path = workdir / "admin.token"
    path.touch(mode=0o600)
    path.write_text(token + "\n", encoding="utf-8")
    return path, token


def new_client(client_id: str, *, clean_session: bool = True) -> mqtt.Client:
    return mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session, protocol=mqtt.MQTTv311
    )


# ---------------------------------------------------------------------------
# machine description
# ---------------------------------------------------------------------------


def machine_info(mosquitto: str) -> dict[str, str]:
    import sqlite3

    import paho.mqtt
    import pydantic
    import sqlalchemy
    import uvicorn

    try:
        out = subprocess.run([mosquitto, "-h"], capture_output=True, text=True, timeout=5)
        mosq_version = (out.stdout or out.stderr).splitlines()[0].replace("mosquitto version", "").strip()
    except (OSError, IndexError, subprocess.SubprocessError):
        mosq_version = "unknown"
    return {
        **host_info(),
        "Mosquitto": mosq_version,
        "Libraries": (
            f"paho-mqtt {paho.mqtt.__version__}, pydantic {pydantic.VERSION}, SQLAlchemy {sqlalchemy.__version__}, "
            f"uvicorn {uvicorn.__version__}, SQLite {sqlite3.sqlite_version}"
        ),
    }


# ---------------------------------------------------------------------------
# processes: Mosquitto, the server, the baseline subscriber
# ---------------------------------------------------------------------------


def find_mosquitto() -> str:
    import shutil

    path = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if os.path.exists(p)), None
    )
    if path is None:
        raise BenchError("mosquitto is not installed (apt-get install mosquitto)")
    return path


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, sig: int = signal.SIGTERM, grace: float = 15.0) -> None:
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            self.popen.send_signal(sig)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.popen.kill()
            self.popen.wait(5)


def spawn(name: str, argv: list[str], log: Path, **kwargs: Any) -> Proc:
    handle = log.open("wb")
    try:
        popen = subprocess.Popen(  # noqa: S603
            argv, stdout=handle, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent, **kwargs
        )
    finally:
        handle.close()
    return Proc(name, popen, log)


def start_mosquitto(executable: str, workdir: Path, inflight: int) -> tuple[Proc, int]:
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        "\n".join(
            [
                "# HallWatch ingest bench: throwaway anonymous broker on loopback",
                f"listener {port} 127.0.0.1",
                "allow_anonymous true",
                "persistence false",
                "max_queued_messages 1000000",
                f"max_inflight_messages {inflight}",
                "log_dest stderr",
                "log_type error",
                "log_type warning",
                "",
            ]
        )
    )
    proc = spawn("mosquitto", [executable, "-c", str(conf)], workdir / "mosquitto.log")

    def listening() -> bool:
        if not proc.alive():
            raise BenchError(f"mosquitto exited:\n{proc.tail()}")
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_until("mosquitto to listen", listening, 10)
    return proc, port


def start_server(hall: Path, db_url: str, broker_port: int, workdir: Path) -> tuple[Proc, Api]:
    token_file, token = admin_token_file(workdir)
    api = Api(free_port(), token)
    argv = [
        sys.executable, "-m", "server.cli", "server",
        "--hall", str(hall), "--db", db_url, "--admin-token-file", str(token_file),
        "--broker", f"mqtt://127.0.0.1:{broker_port}", "--port", str(api.port),
    ]  # fmt: skip
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = spawn("server", argv, workdir / "server.log", cwd=ROOT, env=env)

    def answering() -> bool:
        if not proc.alive():
            raise BenchError(f"the server exited:\n{proc.tail()}")
        try:
            api.get("/api/stats")
        except urllib.error.HTTPError as exc:
            raise BenchError(f"the server answers /api/stats with {exc.code} {exc.reason}") from None
        except OSError:
            return False
        return True

    wait_until("the server's /api/stats", answering, 60, 0.1)
    return proc, api


def start_baseline_subscriber(broker_port: int, topic: str, count: int, workdir: Path) -> Proc:
    argv = [sys.executable, str(Path(__file__).resolve()), "--baseline-subscriber",
            "--broker-port", str(broker_port), "--topic", topic, "--events", str(count)]  # fmt: skip
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = spawn("baseline subscriber", argv, workdir / "baseline.log", cwd=ROOT, env=env)
    wait_until("the baseline subscriber to subscribe", lambda: _subscriber_line(proc, "READY"), 20)
    return proc


def _subscriber_line(proc: Proc, prefix: str) -> str | None:
    if not proc.alive() and proc.popen.returncode not in (0, None):
        raise BenchError(f"the baseline subscriber exited:\n{proc.tail()}")
    with contextlib.suppress(OSError):
        for line in proc.log.read_text().splitlines():
            if line.startswith(prefix):
                return line
    return None


def baseline_subscriber_main(port: int, topic: str, count: int, timeout: float) -> int:
    """The baseline: a plain QoS 1 paho subscriber that json-decodes each payload."""
    received = 0
    first = last = 0.0
    done = threading.Event()

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        client.subscribe(topic, qos=1)

    def on_subscribe(client: mqtt.Client, userdata: Any, mid: Any, reasons: Any, props: Any) -> None:
        print("READY", flush=True)

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        nonlocal received, first, last
        json.loads(msg.payload)
        received += 1
        if received == 1:
            first = time.monotonic()
        if received == count:
            last = time.monotonic()
            done.set()

    client = new_client(f"bench-baseline-{os.getpid()}")
    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    client.connect("127.0.0.1", port, 30)
    client.loop_start()
    finished = done.wait(timeout)
    client.disconnect()
    client.loop_stop()
    cpu = sum(os.times()[:2])
    print("RESULT " + json.dumps({"received": received, "first": first, "last": last, "complete": finished, "cpu": cpu}), flush=True)
    return 0 if finished else 1


# ---------------------------------------------------------------------------
# the publisher and the WebSocket listener
# ---------------------------------------------------------------------------


@dataclass
class Message:
    msg_id: str
    topic: str
    payload: bytes


class Publisher:
    """One paho client, QoS 1, with a large in-flight window."""

    def __init__(self, port: int) -> None:
        self.client = new_client(f"bench-publisher-{os.getpid()}")
        self.client.max_inflight_messages_set(PUBLISH_INFLIGHT)
        self.client.max_queued_messages_set(0)
        self._lock = threading.Lock()
        self.acked = 0
        self.sent = 0
        self.retained: dict[str, bytes] = {}
        connected = threading.Event()
        self.client.on_connect = lambda *args: connected.set()
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()
        if not connected.wait(10):
            raise BenchError("the publisher could not connect to mosquitto")

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._lock:
            self.acked += 1

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.retained[msg.topic] = msg.payload

    def watch(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        while self.sent - self.acked >= MAX_OUTSTANDING:
            time.sleep(0.001)
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise BenchError(f"publish failed: {mqtt.error_string(info.rc)}")
        self.sent += 1

    def wait_acked(self, timeout: float) -> float:
        """Wait until the broker acknowledged everything sent; returns the time it did."""
        wait_until("the broker to acknowledge every publish", lambda: self.acked >= self.sent, timeout, 0.001)
        return time.monotonic()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        with contextlib.suppress(Exception):
            self.client.loop_stop()


@dataclass
class WsListener:
    """A live-page stand-in: stamps each event message as it arrives."""

    url: str
    headers: dict[str, str]
    """The administrator token: the WebSocket, like the API, answers only a logged-in caller."""
    arrivals: dict[str, float] = field(default_factory=dict)
    events: int = 0
    batches: int = 0  # the server sends one "stats" message per stored batch
    messages: int = 0
    closed_at: float | None = None
    close_reason: str = ""

    def __post_init__(self) -> None:
        from websockets.sync.client import connect

        self._stop = threading.Event()
        self._ws = connect(self.url, additional_headers=self.headers, max_size=None, max_queue=4096, open_timeout=10)
        self._thread = threading.Thread(target=self._run, name="ws-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from websockets.exceptions import ConnectionClosed

        while not self._stop.is_set():
            try:
                raw = self._ws.recv(timeout=0.2)
            except TimeoutError:
                continue
            except ConnectionClosed as exc:
                if not self._stop.is_set():
                    self.closed_at = time.monotonic()
                    self.close_reason = str(exc)
                return
            now = time.monotonic()
            for message in json.loads(raw):  # a frame: one batch's messages
                self.messages += 1
                if message.get("kind") == "event":
                    self.events += 1
                    self.arrivals.setdefault(message["event"]["msg_id"], now)
                elif message.get("kind") == "stats":
                    self.batches += 1

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            self._ws.close()
        self._thread.join(5)


# ---------------------------------------------------------------------------
# events
# ---------------------------------------------------------------------------


MIX: tuple[tuple[str, int], ...] = (
    # A window's day, in proportion: the camera's seat heartbeats dominate, then the queue's
    # tickets, device heartbeats, seat changes, ratings, pauses and the clerks' punches.
    ("seat_heartbeat", 70), ("ticket", 8), ("heartbeat", 8), ("seat", 6), ("rating", 4), ("pause", 2), ("punch", 2),
)  # fmt: skip


@dataclass
class WindowDay:
    """What the factory remembers of one window, so that its events tell a consistent day."""

    window: str
    camera: str
    evaluator: str | None
    clerks: tuple[str, ...]
    occupied: bool = True
    paused: bool = False
    called: str | None = None
    finished: list[str] = field(default_factory=list)
    tickets: int = 0


def day_span(timezone_name: str) -> tuple[datetime, datetime]:
    """Today in the hall so far: the events' times run from just after midnight to a few seconds ago."""
    from zoneinfo import ZoneInfo

    now = datetime.now(ZoneInfo(timezone_name))
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + min(timedelta(minutes=1), (now - midnight) / 2), now - min(timedelta(seconds=5), (now - midnight) / 4)


class EventFactory:
    """A hall's day of valid events in the proportions of :data:`MIX`, fresh msg_ids, increasing seq and time.

    Each window's events are consistent (a ticket is called, then finished,
    then rated; a heartbeat repeats the seat's state; pauses alternate), and
    the events' times advance through the day in publishing order, as a hall's
    would, so the server sees a day grow rather than one instant.
    """

    def __init__(self, hall: Any, boot: int, seed: int = 1) -> None:
        self.hall_id = hall.hall.id
        kinds = {d.id: d.kind for d in hall.devices}
        camera_of = {w: d.id for d in hall.devices if d.kind == "window_camera" for w in d.windows}
        evaluator_of = {w: d.id for d in hall.devices if d.kind == "evaluator" for w in d.windows}
        self.gateway = next((d.id for d in hall.devices if d.kind == "queue_gateway"), None)
        self.terminal = next((d.id for d in hall.devices if d.kind == "face_terminal"), None)
        self.windows = [
            WindowDay(w.id, camera_of[w.id], evaluator_of.get(w.id), tuple(w.clerks)) for w in hall.windows if w.id in camera_of
        ]  # fmt: skip
        if not self.windows or self.gateway is None or not any(w.evaluator for w in self.windows):
            raise BenchError("the hall needs window cameras, evaluators and a queue gateway for the bench's mix of events")
        self.devices = sorted(kinds.items())
        self.boot = boot
        self.seq = dict.fromkeys(kinds, 0)
        self.rng = random.Random(seed)
        self.types = [t for t, weight in MIX for _ in range(weight)]
        self.counts: dict[str, int] = {t: 0 for t, _ in MIX}
        """Events made, by type (a rating at a window without an evaluator becomes a seat heartbeat)."""

    def make(self, count: int, start: datetime, end: datetime) -> list[Message]:
        """``count`` events whose times run evenly from ``start`` to ``end``."""
        from broker.protocol import device_topic, encode, make_event

        out = []
        step = (end - start) / max(count, 1)
        for i in range(count):
            kind = self.rng.choice(self.types)
            device, body = self._event(kind, self.rng.choice(self.windows))
            self.seq[device] += 1
            event = make_event(hall_id=self.hall_id, device_id=device, boot=self.boot, seq=self.seq[device],
                               event_time=start + step * i, body=body)  # fmt: skip
            self.counts[event.type] += 1
            out.append(Message(str(event.msg_id), device_topic(self.hall_id, device, "evt", event.type), encode(event)))
        return out

    def _event(self, kind: str, w: WindowDay) -> tuple[str, Any]:
        from broker.protocol import (
            HeartbeatBody, PauseBody, PunchBody, RatingBody, SeatBody, SeatHeartbeatBody, TicketBody,
        )  # fmt: skip

        rng = self.rng
        if kind == "seat":
            w.occupied = not w.occupied
            return w.camera, SeatBody(window_id=w.window, state="occupied" if w.occupied else "vacant", confidence=0.9)
        if kind == "ticket":
            if w.called is None:
                w.tickets += 1
                w.called = f"{w.window}-{w.tickets:05d}"
                return self.gateway, TicketBody(window_id=w.window, ticket=w.called, state="called")
            number, w.called = w.called, None
            w.finished.append(number)
            return self.gateway, TicketBody(window_id=w.window, ticket=number, state="finished")
        if kind == "rating" and w.evaluator:
            ticket = w.finished.pop(0) if w.finished else None
            return w.evaluator, RatingBody(window_id=w.window, level=rng.choices((1, 2, 3, 4, 5), (1, 1, 3, 10, 40))[0], ticket=ticket)
        if kind == "pause":
            w.paused = not w.paused
            return self.gateway, PauseBody(window_id=w.window, paused=w.paused, source="queue")
        if kind == "punch" and self.terminal and w.clerks:
            return self.terminal, PunchBody(person_id=rng.choice(w.clerks), method="pin")
        if kind == "heartbeat":
            device = rng.choice(self.devices)[0]
            return device, HeartbeatBody(uptime_s=3600.0, outbox_pending=0, dropped_heartbeats=0, dropped_states=0)
        state = "occupied" if w.occupied else "vacant"
        return w.camera, SeatHeartbeatBody(window_id=w.window, state=state, confidence=0.9)

    def births(self) -> list[Message]:
        from broker.protocol import DeviceStatus, device_topic, encode

        now = datetime.now(timezone.utc)
        return [
            Message(
                "",
                device_topic(self.hall_id, device, "status"),
                encode(DeviceStatus(hall_id=self.hall_id, device_id=device, kind=kind, boot=self.boot,
                                    state="online", time=now, heartbeat_s=60, software="bench")),  # fmt: skip
            )
            for device, kind in self.devices
        ]


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------


@dataclass
class Results:
    machine: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    """The figures as numbers, for ``--json`` (units in the keys)."""
    parameters: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> Iterator[tuple[str, str, str]]:
        for section, items in (("Machine", self.machine), ("Input", self.inputs), ("Result", self.figures)):
            for i, (key, value) in enumerate(items.items()):
                yield (section if i == 0 else "", key, value)

    def markdown(self, command: str) -> str:
        lines = [
            f"# Ingest benchmark, {date.today().isoformat()}",
            "",
            f"Command: `{command}`",
            "",
            "| | Item | Value |",
            "|---|---|---|",
        ]
        lines += [f"| {s} | {k} | {v.replace('|', '/')} |" for s, k, v in self.rows()]
        if self.notes:
            lines += ["", *[f"- {n}" for n in self.notes]]
        return "\n".join(lines) + "\n"


def run(args: argparse.Namespace, results: Results, cleanup: contextlib.ExitStack) -> None:
    from server.config.hall import load_hall

    hall = load_hall(args.hall)
    mosquitto = find_mosquitto()
    results.machine = machine_info(mosquitto)
    external_db = args.db != "sqlite"
    boot = int(time.time()) if external_db else 1  # a reused database must not see (device, boot, seq) again
    factory = EventFactory(hall, boot)

    tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="hallwatch-bench-")))
    args.workdir = tmp
    db_url = args.db if external_db else f"sqlite:///{tmp / 'hallwatch.db'}"

    total = 2 * len(factory.devices) + args.latency_events + args.events
    print(f"building {total} events ...", flush=True)
    day_start, day_end = day_span(hall.hall.timezone)
    step = (day_end - day_start) / total
    warmup = factory.make(2 * len(factory.devices), day_start, day_start + step * 2 * len(factory.devices))
    latency_msgs = factory.make(args.latency_events, day_start + step * len(warmup), day_start + step * (len(warmup) + args.latency_events))
    sustained_msgs = factory.make(args.events, day_start + step * (len(warmup) + args.latency_events), day_end)
    baseline_prefix = "bench/baseline/"  # the server subscribes to hw/v1/<hall>/... only
    payload_bytes = sum(len(m.payload) for m in sustained_msgs) / len(sustained_msgs)
    # The prebuilt messages are a few hundred thousand objects: freeze them, so that a full
    # collection in this process (publisher, WebSocket listener) does not walk them mid-run.
    gc.collect()
    gc.freeze()

    results.inputs = {
        "Server code": code_version("server", "broker"),
        "Hall": f"{hall.hall.id} ({args.hall.relative_to(ROOT) if args.hall.is_relative_to(ROOT) else args.hall}), "
        f"{len(factory.windows)} windows, {len(factory.devices)} devices publishing",
        "Events": ", ".join(f"{kind} {n:,}" for kind, n in sorted(factory.counts.items(), key=lambda kv: -kv[1]))
        + f"; QoS 1, {payload_bytes:.0f} B JSON payload on average; times from {day_start:%H:%M} to {day_end:%H:%M} hall time",
        "Database": "SQLite (fresh file, WAL, synchronous=NORMAL)"
        if not external_db
        else f"{args.db.split(':', 1)[0]} at {args.db.split('@')[-1].split('://')[-1]} (given by --db)",
        "Broker": f"Mosquitto, anonymous, loopback, max_inflight_messages {args.inflight or 'unlimited'}",
        "Latency run": f"{args.latency_events} events at {args.rate:g}/s (after {len(warmup)} warm-up events)",
        "Sustained run": f"{args.events} events, one publisher, {PUBLISH_INFLIGHT} in flight",
        "Baseline run": f"same {args.events} payloads, plain paho subscriber (QoS 1, json.loads)",
    }

    # Processes first (before this process has threads: fork + preexec_fn).
    broker, broker_port = start_mosquitto(mosquitto, tmp, args.inflight)
    cleanup.callback(broker.stop, signal.SIGTERM, 5)
    baseline_sub = start_baseline_subscriber(broker_port, f"{baseline_prefix}#", args.events, tmp)
    cleanup.callback(baseline_sub.stop, signal.SIGTERM, 5)
    print(f"mosquitto on 127.0.0.1:{broker_port}; starting the server ...", flush=True)
    server, api = start_server(args.hall, db_url, broker_port, tmp)
    cleanup.callback(server.stop, signal.SIGINT, 20)

    publisher = Publisher(broker_port)
    cleanup.callback(publisher.close)
    from broker.protocol import server_status_topic

    status_topic = server_status_topic(hall.hall.id)
    publisher.watch(status_topic)
    wait_until("the server's retained online status",
               lambda: b'"online"' in publisher.retained.get(status_topic, b""), 30)  # fmt: skip

    # Device births (retained), as the agents send them on connect.
    for birth in factory.births():
        publisher.publish(birth.topic, birth.payload, retain=True)
    publisher.wait_acked(10)
    ours = {d for d, _ in factory.devices}
    with contextlib.suppress(BenchError):
        wait_until("the devices to be online",
                   lambda: all(d["status"] == "online" for d in api.get("/api/devices") if d["id"] in ours),
                   10, 0.1)  # fmt: skip

    ws = WsListener(f"ws://127.0.0.1:{api.port}/ws", api.headers())
    cleanup.callback(ws.close)

    # Warm-up: first statements compiled, first WebSocket frames sent.
    for m in warmup:
        publisher.publish(m.topic, m.payload)
    wait_until("the warm-up events on the WebSocket", lambda: all(m.msg_id in ws.arrivals for m in warmup), 20)

    # ---- 1. latency at a fixed, modest rate
    print(f"latency: {len(latency_msgs)} events at {args.rate:g}/s ...", flush=True)
    published: dict[str, float] = {}
    interval = 1.0 / args.rate
    start = time.monotonic()
    for i, m in enumerate(latency_msgs):
        delay = start + i * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        published[m.msg_id] = time.monotonic()
        publisher.publish(m.topic, m.payload)
    publish_span = time.monotonic() - start
    with contextlib.suppress(BenchError):
        wait_until("the latency events on the WebSocket", lambda: all(k in ws.arrivals for k in published), 15)
    latencies = [(ws.arrivals[k] - t) * 1000 for k, t in published.items() if k in ws.arrivals]
    missing = len(published) - len(latencies)

    # ---- 2. sustained ingest, as fast as the publisher can
    print(f"sustained: {len(sustained_msgs)} events as fast as possible ...", flush=True)
    publisher.wait_acked(30)
    stats0 = api.get("/api/stats")
    target = stats0["accepted"] + len(sustained_msgs)
    ws_events0, ws_batches0 = ws.events, ws.batches
    stored_at: list[float] = []
    samples: list[tuple[float, int]] = []  # (time, events stored in this run), for the quarters
    last_stats: dict[str, int] = dict(stats0)
    stop_polling = threading.Event()

    def poll() -> None:
        while not stop_polling.is_set():
            with contextlib.suppress(OSError, ValueError):
                stats = api.get("/api/stats")
                last_stats.update(stats)
                samples.append((time.monotonic(), stats["accepted"] - stats0["accepted"]))
                if stats["accepted"] >= target:
                    stored_at.append(samples[-1][0])
                    return
            time.sleep(STATS_POLL_S)

    poller = threading.Thread(target=poll, name="stats-poller", daemon=True)
    cpu0 = {"server": cpu_seconds(server.pid), "mosquitto": cpu_seconds(broker.pid), "bench": sum(os.times()[:2])}
    machine0 = machine_cpu()
    poller.start()
    t0 = time.monotonic()
    for m in sustained_msgs:
        publisher.publish(m.topic, m.payload)
    t_handed = time.monotonic()
    t_acked = publisher.wait_acked(120)
    budget = max(10.0, args.deadline - time.monotonic() - 60)  # leave time for the baseline and cleanup
    poller.join(budget)
    stop_polling.set()
    poller.join(2)
    t_end = stored_at[0] if stored_at else time.monotonic()
    cpu1 = {"server": cpu_seconds(server.pid), "mosquitto": cpu_seconds(broker.pid), "bench": sum(os.times()[:2])}
    machine1 = machine_cpu()
    ours_cpu = sum(cpu1[k] - cpu0[k] for k in cpu1)
    others = machine1[0] - machine0[0] - ours_cpu
    steal = machine1[1] - machine0[1]
    stored = last_stats["accepted"] - stats0["accepted"]
    server_rate = stored / (t_end - t0)
    settle = time.monotonic() + 5  # the last batch's frame may still be on its way to the page
    while ws.events - ws_events0 < stored and time.monotonic() < settle:
        time.sleep(0.05)
    ws_events = ws.events - ws_events0
    ws_batches = ws.batches - ws_batches0
    sustained_wall = t_end - t0
    quarters = quarter_rates([(t0, 0), *samples], len(sustained_msgs)) if stored_at else []

    # ---- 3. baseline: the same payloads to a plain subscriber
    print(f"baseline: the same {len(sustained_msgs)} payloads to a plain paho subscriber ...", flush=True)
    cpu_b0 = {"subscriber": cpu_seconds(baseline_sub.pid), "mosquitto": cpu_seconds(broker.pid), "bench": sum(os.times()[:2])}
    b0 = time.monotonic()
    for m in sustained_msgs:
        publisher.publish(baseline_prefix + m.topic, m.payload)
    b_acked = publisher.wait_acked(120)
    line = wait_until("the baseline subscriber to finish", lambda: _subscriber_line(baseline_sub, "RESULT"),
                      min(120.0, max(10.0, args.deadline - time.monotonic() - 20)), 0.02)  # fmt: skip
    cpu_b1 = {"subscriber": cpu_seconds(baseline_sub.pid), "mosquitto": cpu_seconds(broker.pid), "bench": sum(os.times()[:2])}
    base = json.loads(line.split(" ", 1)[1])
    cpu_b1["subscriber"] = base["cpu"]  # the subscriber has exited: it reports its own CPU time
    base_end = base["last"] if base["complete"] else time.monotonic()
    base_rate = base["received"] / (base_end - b0)
    base_wall = base_end - b0

    # ---- figures
    final = api.get("/api/stats")
    complete = stored >= len(sustained_msgs)
    results.figures = {
        "Latency p50": f"{percentile(latencies, 50):.1f} ms",
        "Latency p99": f"{percentile(latencies, 99):.1f} ms",
        "Latency max": f"{max(latencies):.1f} ms" if latencies else "n/a",
        "Latency sample": f"{len(latencies)} of {len(published)} events seen on /ws"
        f"{f' ({missing} missing)' if missing else ''}, published over {publish_span:.1f} s",
        "Server ingest": f"{server_rate:,.0f} events/s"
        f"{'' if complete else f' (INCOMPLETE: {stored} of {len(sustained_msgs)} stored)'}"
        f" — {stored:,} stored in {sustained_wall:.2f} s",
        "Server ingest, by quarter": (
            f"first quarter {quarters[0]:,.0f} events/s, last quarter {quarters[-1]:,.0f} events/s "
            f"(last / first {quarters[-1] / quarters[0]:.2f})" if quarters else "n/a (the run did not complete)"
        ),
        "Baseline subscriber": f"{base_rate:,.0f} events/s — {base['received']:,} received in {base_wall:.2f} s"
        f"{'' if base['complete'] else ' (INCOMPLETE)'}",
        "Ratio server / baseline": f"{server_rate / base_rate:.2f}× ({base_rate / server_rate:.1f}× slower)",
        "Publisher (broker acks)": f"sustained run: all {len(sustained_msgs):,} acked by the broker after {t_acked - t0:.2f} s "
        f"({len(sustained_msgs) / (t_acked - t0):,.0f}/s); baseline run: {b_acked - b0:.2f} s",
        "CPU, sustained run": f"server {cpu1['server'] - cpu0['server']:.1f} s, mosquitto "
        f"{cpu1['mosquitto'] - cpu0['mosquitto']:.1f} s, bench {cpu1['bench'] - cpu0['bench']:.1f} s "
        f"in {sustained_wall:.1f} s wall; server {(cpu1['server'] - cpu0['server']) / max(stored, 1) * 1e6:.0f} µs CPU per event",
        "CPU, baseline run": f"subscriber {cpu_b1['subscriber'] - cpu_b0['subscriber']:.1f} s, mosquitto "
        f"{cpu_b1['mosquitto'] - cpu_b0['mosquitto']:.1f} s, bench {cpu_b1['bench'] - cpu_b0['bench']:.1f} s "
        f"in {base_wall:.1f} s wall; subscriber "
        f"{(cpu_b1['subscriber'] - cpu_b0['subscriber']) / max(base['received'], 1) * 1e6:.0f} µs CPU per event",
        "Other load, sustained run": f"other processes {max(others, 0):.1f} CPU-s"
        f"{' (includes the database server)' if external_db else ''}, hypervisor steal {steal:.1f} s "
        f"(machine: {os.cpu_count()} × {t_end - t0:.1f} s = {(os.cpu_count() or 1) * (t_end - t0):.0f} CPU-s)",
        "Server counters": f"accepted {final['accepted']}, duplicates {final['duplicates']}, "
        f"rejected {final['rejected']}, historical {final['historical']}",
        "WebSocket, sustained run": f"{ws_events:,} of {len(sustained_msgs):,} event messages received in "
        f"{ws_batches:,} batches ({ws_events / max(ws_batches, 1):.0f} events per batch on average)"
        + (f"; disconnected by the server after {ws.closed_at - t0:.1f} s" if ws.closed_at else ""),
    }
    server_cpu = cpu1["server"] - cpu0["server"]
    results.parameters = {"hall": hall.hall.id, "windows": len(factory.windows), "devices": len(factory.devices),
                          "events": len(sustained_msgs), "events_by_type": dict(factory.counts), "latency_events": len(published),
                          "latency_rate_per_s": args.rate, "database": "sqlite" if not external_db else args.db.split(":", 1)[0],
                          "qos": 1, "broker_inflight": args.inflight}  # fmt: skip
    results.numbers = {
        "events_per_s": server_rate, "baseline_events_per_s": base_rate, "ratio_to_baseline": server_rate / base_rate,
        "stored": stored, "complete": complete, "sustained_s": sustained_wall, "baseline_s": base_wall,
        "first_quarter_events_per_s": quarters[0] if quarters else None, "last_quarter_events_per_s": quarters[-1] if quarters else None,
        "last_quarter_over_first": quarters[-1] / quarters[0] if quarters else None,
        "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99), "max_ms": max(latencies, default=None),
        "latency_missing": missing, "server_cpu_us_per_event": server_cpu / max(stored, 1) * 1e6,
        "baseline_cpu_us_per_event": (cpu_b1["subscriber"] - cpu_b0["subscriber"]) / max(base["received"], 1) * 1e6,
        "server_peak_rss_mib": peak_rss_mib(server.pid), "other_cpu_s": max(others, 0.0), "steal_s": steal,
    }  # fmt: skip
    results.figures["Server memory"] = f"peak RSS {results.numbers['server_peak_rss_mib']:.0f} MiB (VmHWM)"
    if t_handed - t0 > 0:
        results.notes.append(
            f"The publisher handed all sustained events to paho in {t_handed - t0:.2f} s; "
            "rates count from the first publish call."
        )
    if (others > 0.1 * (t_end - t0) and not external_db) or steal > 0.1 * (t_end - t0):
        results.notes.append(
            f"WARNING: other processes ({others:.1f} CPU-s) or the hypervisor ({steal:.1f} s steal) took CPU during "
            "the sustained run; its figures are lower than on an idle machine. Rerun when the machine is idle."
        )
    if final["duplicates"] or final["rejected"]:
        results.notes.append("The server counted duplicates or rejections: the input was not all fresh, valid events.")


def render(results: Results) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"HallWatch ingest benchmark ({date.today().isoformat()})", show_lines=False)
    table.add_column("")
    table.add_column("Item", style="bold")
    table.add_column("Value")
    previous = None
    for section, key, value in results.rows():
        if section and previous is not None:
            table.add_section()
        table.add_row(section, key, value)
        previous = section
    console = Console()
    if not console.is_terminal:
        console = Console(width=130)
    console.print(table)
    for note in results.notes:
        console.print(f"• {note}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000, help="events in the sustained and baseline runs (50000)")
    parser.add_argument("--rate", type=float, default=200.0, help="publish rate of the latency run, events/s (200)")
    parser.add_argument("--latency-events", type=int, default=2000, help="events in the latency run (2000)")
    parser.add_argument("--db", default="sqlite", help="'sqlite' (fresh temporary file) or a scratch database URL")
    parser.add_argument("--hall", type=Path, default=DEFAULT_HALL, help="hall file (config/halls/demo.toml)")
    parser.add_argument("--inflight", type=int, default=0,
                        help="Mosquitto max_inflight_messages; 0 = unlimited (default), 20 = Mosquitto's default")
    parser.add_argument("--timeout", type=float, default=270.0, help="hard limit for the whole run, seconds (270)")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/ingest-<date>.md")
    parser.add_argument("--output", type=Path, help="Markdown file to write instead of bench/results/ingest-<date>.md")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON (docs/benchmarks.md describes the shape)")
    parser.add_argument("--quick", action="store_true", help=f"smoke run for CI: {QUICK_EVENTS} events, {QUICK_LATENCY} in the latency run")
    # internal: the baseline subscriber runs as a child process of the bench
    parser.add_argument("--baseline-subscriber", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--broker-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.latency_events = QUICK_EVENTS, QUICK_LATENCY
    if args.events < 1 or args.latency_events < 1 or args.rate <= 0:
        parser.error("--events, --latency-events and --rate must be positive")
    args.hall = args.hall.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.baseline_subscriber:
        return baseline_subscriber_main(args.broker_port, args.topic, args.events, args.timeout)

    args.deadline = time.monotonic() + args.timeout

    def on_signal(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    def on_alarm(signum: int, frame: Any) -> None:
        raise BenchError(f"the run exceeded --timeout {args.timeout:.0f} s")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.timeout) + 1)

    results = Results()
    shown = list(argv if argv is not None else sys.argv[1:])
    for flag in ("--output", "--no-save"):  # where the table goes does not change what was measured
        while flag in shown:
            i = shown.index(flag)
            del shown[i : i + (2 if flag == "--output" else 1)]
    command = "python bench/ingest.py " + " ".join(shown)
    try:
        with contextlib.ExitStack() as cleanup:
            try:
                run(args, results, cleanup)
            except BaseException:
                workdir = getattr(args, "workdir", None)
                for log in ("server.log", "mosquitto.log", "baseline.log") if workdir else ():
                    with contextlib.suppress(OSError):
                        text = (workdir / log).read_text(errors="replace").strip()
                        if text:
                            print(f"--- {log} (last lines) ---\n" + "\n".join(text.splitlines()[-20:]), file=sys.stderr)
                raise
            finally:
                signal.alarm(int(max(1, args.deadline - time.monotonic())) + 30)  # cleanup gets its own bound
    except (BenchError, KeyboardInterrupt) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)

    render(results)
    if args.json:
        write_json(args.json, "ingest", results.parameters, results.numbers,
                   **{k: results.numbers[k] for k in ("events_per_s", "baseline_events_per_s", "ratio_to_baseline", "last_quarter_over_first", "p99_ms")})  # fmt: skip
    if not args.no_save:
        out = args.output or RESULTS / f"ingest-{date.today().isoformat()}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(results.markdown(command.strip()))
        print(f"written to {out.relative_to(ROOT) if out.resolve().is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
