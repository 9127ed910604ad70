"""The edge agent runtime: outbox → MQTT, birth, last will, heartbeat.

One runtime per device.  Sources (a camera, a keypad, the simulator) call
:meth:`AgentRuntime.emit`; the event is committed to the outbox and then
published with QoS 1 by the pump thread, in order, and deleted only when the
broker acknowledges it.

Why a fresh paho client per connection: paho re-sends its own in-flight
messages on reconnect with their original payload, which would deliver a
held-back event as *live*.  With a new client per connection the outbox is
the only source of retries, and every held-back event goes out marked
``historical``.

Why replay waits for the server: the server publishes a retained online
state (and an offline last will).  While it is offline the agent keeps
events in its outbox rather than in the broker's bounded queue; when it
returns they are replayed as historical, so a stale event never raises a
live alert.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt

from agent.config import AgentSettings
from agent.outbox import Outbox
from broker.connection import make_client
from broker.protocol import (
    GALLERY_KINDS,
    AckBody,
    Body,
    Command,
    DeviceConfig,
    DeviceStatus,
    Event,
    GalleryNotice,
    HeartbeatBody,
    ProtocolError,
    ServerStatus,
    decode,
    device_topic,
    encode,
    server_status_topic,
)
from broker.timeutil import Clock, shanghai_now

log = logging.getLogger(__name__)
SOFTWARE = "hallwatch-agent/0.1"

CommandHandler = Callable[[dict[str, Any]], str | None]
"""Runs a command's arguments; returns a detail text or raises to fail it."""


class _Link:
    """One broker connection: its client and, once live, its epoch."""

    def __init__(self, client: mqtt.Client) -> None:
        self.client = client
        self.connected = False
        self.server_online = False
        self.epoch: str | None = None
        self.closed = threading.Event()


class AgentRuntime:
    """Runs one device: connection loop, outbox pump, heartbeat and sources."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        clock: Clock = shanghai_now,
        sources: list[Callable[[AgentRuntime, threading.Event], None]] | None = None,
    ) -> None:
        self.settings = settings
        self.device = settings.device
        self.clock = clock
        self.outbox = Outbox(
            settings.outbox.path,
            hall_id=self.device.hall_id,
            device_id=self.device.device_id,
            max_events=settings.outbox.max_events,
        )
        self._sources = list(sources or [])
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._lock = threading.Lock()
        self._link: _Link | None = None
        self._inflight: dict[int, int] = {}
        self._early_acks: set[int] = set()
        self._acked: list[int] = []
        self._cursor = 0
        self._started = time.monotonic()
        self._threads: list[threading.Thread] = []
        self.commands: dict[str, CommandHandler] = {"ping": lambda args: "pong"}
        self.config_listeners: list[Callable[[DeviceConfig], None]] = []
        self.gallery_listeners: list[Callable[[GalleryNotice], None]] = []
        """Called with each gallery notice (face terminals, window cameras), on the network
        thread: hand the work off, never block (agent.gallery_sync does)."""
        self._faults: dict[str, str] = {}
        self.last_gallery_notice: GalleryNotice | None = None
        """The newest notice seen, for a listener that starts after it arrived (retained)."""

    # ------------------------------------------------------------------ API

    @property
    def boot(self) -> int:
        return self.outbox.boot

    @property
    def live(self) -> bool:
        """Connected and the server is online: events go out as live."""
        link = self._link
        return link is not None and link.epoch is not None

    def emit(self, body: Body, event_time: datetime | None = None) -> Event | None:
        """Record an event durably and wake the pump.  Safe from any thread."""
        link = self._link
        event = self.outbox.add(body, event_time or self.clock(), link.epoch if link else None)
        with self._wake:
            self._wake.notify_all()
        return event

    @property
    def fault(self) -> str | None:
        """Every current fault, one line (None: the device works)."""
        with self._lock:
            return "; ".join(self._faults[part] for part in sorted(self._faults)) or None

    def set_fault(self, reason: str | None, *, part: str) -> None:
        """A part of the device cannot do its job (its camera is lost, its keypad unplugged): say so.

        While any part has a fault the device's retained status is
        ``offline`` with the reasons, at once and at every reconnect,
        although the connection is up — the server then treats its windows
        as unknown (a device fault), never as vacant.  Each ``part`` (a
        source) sets and clears its own fault, so one source coming back
        never hides another's; ``None`` clears it.  The reason is cut to
        what a status carries (one line, 200 characters in all).
        """
        with self._lock:
            before = dict(self._faults)
            if reason is None:
                self._faults.pop(part, None)
            else:
                self._faults[part] = " ".join(reason.split())[:200] or "fault"
            if self._faults == before:
                return
        link = self._link
        if link is not None and link.connected:
            link.client.publish(self._status_topic, encode(self._birth()), qos=1, retain=True)

    def start(self) -> None:
        """Start the connection loop, the pump, the heartbeat and every source."""
        targets: list[tuple[str, Callable[[], None]]] = [
            ("connect", self._connection_loop),
            ("pump", self._pump_loop),
            ("heartbeat", self._heartbeat_loop),
        ]
        for index, source in enumerate(self._sources):
            targets.append((f"source{index}", lambda s=source: s(self, self._stop)))
        for name, target in targets:
            thread = threading.Thread(target=target, name=f"{self.device.device_id}-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def wait_drained(self, timeout: float) -> bool:
        """Wait until every event has been acknowledged by the broker."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._flush_acks()
            if self.outbox.counts().pending == 0:
                return True
            time.sleep(0.05)
        return False

    def stop(self, timeout: float = 5.0) -> None:
        """Graceful stop: say offline (retained), disconnect, close the outbox."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        link = self._link
        if link is not None and link.connected:
            info = link.client.publish(self._status_topic, encode(self._status("offline", "stopped")), qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=2)
            except (RuntimeError, ValueError):
                pass
            link.client.disconnect()
        for thread in self._threads:
            thread.join(timeout)
        self._flush_acks()
        self.outbox.close()

    # ------------------------------------------------------------ internals

    @property
    def _status_topic(self) -> str:
        return device_topic(self.device.hall_id, self.device.device_id, "status")

    def _status(self, state: str, reason: str | None = None) -> DeviceStatus:
        return DeviceStatus(
            hall_id=self.device.hall_id,
            device_id=self.device.device_id,
            kind=self.device.kind,
            boot=self.boot,
            state=state,
            time=self.clock(),
            heartbeat_s=self.settings.heartbeat_s,
            software=SOFTWARE,
            reason=reason,
        )

    def _birth(self) -> DeviceStatus:
        fault = self.fault
        return self._status("offline", fault[:200]) if fault else self._status("online")

    def _connection_loop(self) -> None:
        delay = self.settings.reconnect_min_s
        client_id = f"{self.device.hall_id}.{self.device.device_id}"
        while not self._stop.is_set():
            link = _Link(make_client(self.settings.broker, client_id, clean_session=True))
            self._wire(link)
            began = time.monotonic()
            try:
                link.client.connect(self.settings.broker.host, self.settings.broker.port, self.settings.broker.keepalive_s)
            except OSError as exc:
                log.warning("%s: cannot reach broker %s: %s", self.device.device_id, self.settings.broker.url, exc)
                link.closed.set()
            else:
                self._link = link
                link.client.loop_start()
                while not link.closed.wait(0.2) and not self._stop.is_set():
                    pass
                if self._stop.is_set():
                    return  # stop() says offline and disconnects
                link.client.loop_stop()
                self._drop_link(link)
            if time.monotonic() - began > 10:
                delay = self.settings.reconnect_min_s
            wait = delay * random.uniform(0.8, 1.2)
            log.info("%s: reconnecting in %.1f s", self.device.device_id, wait)
            self._stop.wait(wait)
            delay = min(delay * 2, self.settings.reconnect_max_s)

    def _wire(self, link: _Link) -> None:
        hall, dev = self.device.hall_id, self.device.device_id
        link.client.will_set(self._status_topic, encode(self._status("offline", "connection lost")), qos=1, retain=True)
        cfg_topic = device_topic(hall, dev, "cfg")
        cmd_topic = device_topic(hall, dev, "cmd")
        srv_topic = server_status_topic(hall)
        gal_topic = device_topic(hall, dev, "gal")
        subscriptions = [(cfg_topic, 1), (cmd_topic, 1), (srv_topic, 1)]
        if self.device.kind in GALLERY_KINDS:
            subscriptions.append((gal_topic, 1))

        def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            if reason.is_failure:
                log.error("%s: broker refused connection: %s", dev, reason)
                link.closed.set()
                client.disconnect()
                return
            link.connected = True
            client.subscribe(subscriptions)
            client.publish(self._status_topic, encode(self._birth()), qos=1, retain=True)
            log.info("%s: connected to %s (boot %d)", dev, self.settings.broker.url, self.boot)

        def on_disconnect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            link.connected = False
            link.epoch = None
            link.closed.set()
            with self._wake:
                self._wake.notify_all()

        def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
            try:
                if msg.topic == srv_topic:
                    self._on_server_status(link, decode(msg.payload, ServerStatus))
                elif msg.topic == cfg_topic:
                    self._on_config(decode(msg.payload, DeviceConfig))
                elif msg.topic == cmd_topic:
                    self._on_command(decode(msg.payload, Command))
                elif msg.topic == gal_topic:
                    notice = decode(msg.payload, GalleryNotice)
                    self.last_gallery_notice = notice
                    for listener in self.gallery_listeners:
                        listener(notice)
            except ProtocolError as exc:
                log.warning("%s: ignored bad message on %s: %s", dev, msg.topic, exc.reason)

        def on_publish(client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
            with self._lock:
                if self._link is not link:
                    return
                row = self._inflight.pop(mid, None)
                if row is None:
                    self._early_acks.add(mid)
                else:
                    self._acked.append(row)
            with self._wake:
                self._wake.notify_all()

        link.client.on_connect = on_connect
        link.client.on_disconnect = on_disconnect
        link.client.on_message = on_message
        link.client.on_publish = on_publish

    def _on_server_status(self, link: _Link, status: ServerStatus) -> None:
        online = status.state == "online"
        if online and link.epoch is None and link.connected:
            link.epoch = uuid.uuid4().hex
            log.info("%s: server online, sending", self.device.device_id)
        elif not online:
            link.epoch = None
            log.info("%s: server offline, holding events", self.device.device_id)
        link.server_online = online
        with self._wake:
            self._wake.notify_all()

    def _on_config(self, config: DeviceConfig) -> None:
        current = self.outbox.saved("config_version") or 0
        if config.version > int(current):  # type: ignore[arg-type]
            self.outbox.save("config", config.model_dump(mode="json"))
            self.outbox.save("config_version", config.version)
            for listener in self.config_listeners:
                listener(config)
        self.emit(AckBody(ref="config", ref_id=str(config.version), ok=True))

    def _on_command(self, command: Command) -> None:
        handler = self.commands.get(command.name)
        if handler is None:
            self.emit(AckBody(ref="command", ref_id=command.cmd_id, ok=False, detail="not supported by this device"))
            return
        try:
            detail = handler(command.args)
        except Exception as exc:  # a failing handler is reported, never fatal
            self.emit(AckBody(ref="command", ref_id=command.cmd_id, ok=False, detail=str(exc)[:500]))
        else:
            self.emit(AckBody(ref="command", ref_id=command.cmd_id, ok=True, detail=detail))

    def _drop_link(self, link: _Link) -> None:
        """Forget a dead connection's in-flight state; the outbox resends it."""
        with self._lock:
            if self._link is link:
                self._link = None
            self._inflight.clear()
            self._early_acks.clear()
            self._cursor = 0

    def _flush_acks(self) -> None:
        with self._lock:
            rows, self._acked = self._acked, []
        if rows:
            self.outbox.acknowledge(rows)

    def _pump_loop(self) -> None:
        limit = self.settings.inflight_max
        while not self._stop.is_set():
            self._flush_acks()
            link = self._link
            with self._lock:
                room = limit - len(self._inflight)
                cursor = self._cursor
            if link is None or link.epoch is None or not link.connected or room <= 0:
                with self._wake:
                    self._wake.wait(0.5)
                continue
            batch = self.outbox.pending(after_row=cursor, limit=room)
            if not batch:
                with self._wake:
                    self._wake.wait(0.5)
                continue
            epoch = link.epoch
            for item in batch:
                if link.epoch != epoch:
                    break  # the server went offline: hold the rest
                event = item.event.model_copy(
                    update={"sent_time": self.clock(), "historical": item.link_epoch != epoch}
                )
                info = link.client.publish(
                    device_topic(event.hall_id, event.device_id, "evt", event.type), encode(event), qos=1
                )
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    break  # the link dropped; the connection loop resets the cursor
                with self._lock:
                    if self._link is not link:
                        break
                    self._cursor = item.row_id
                    if info.mid in self._early_acks:
                        self._early_acks.discard(info.mid)
                        self._acked.append(item.row_id)
                    else:
                        self._inflight[info.mid] = item.row_id

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self.settings.heartbeat_s):
            counts = self.outbox.counts()
            self.emit(
                HeartbeatBody(
                    uptime_s=round(time.monotonic() - self._started, 1),
                    outbox_pending=counts.pending,
                    dropped_heartbeats=counts.dropped_heartbeats,
                    dropped_states=counts.dropped_states,
                )
            )
