"""MQTT ingest: subscribe, validate, store, then acknowledge.

The server's session is persistent (clean_session false) and QoS 1 with
*manual* acknowledgement: a message is PUBACKed only after the batch that
holds it has been committed.  A server killed mid-batch therefore gets the
message again from the broker, and the store drops the copy — at least once
on the wire, exactly once in the database.

A retained online state with an offline last will tells agents when to
replay their outboxes (see agent/runtime.py).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import paho.mqtt.client as mqtt
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from broker.connection import BrokerSettings, make_client
from broker.protocol import ServerStatus, device_topic, encode, server_status_topic, server_subscriptions
from server.db import EventRow, RejectionRow
from server.ingest.batch import Changes, Inbound
from server.ingest.store import Store
from server.rules.calendar import CalendarGapError
from server.supervision.district import HallSupervisors
from server.ingest.validation import KnownDevice, Rejection, check_message

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Counters:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    historical: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _Raw:
    topic: str
    payload: bytes
    received: datetime
    mid: int
    qos: int
    generation: int


class Ingestor:
    """Owns the server's MQTT session and the single writer thread."""

    def __init__(
        self,
        store: Store,
        hall_ids: Sequence[str],
        broker: BrokerSettings,
        on_changes: Callable[[Changes], None],
        *,
        supervisor: HallSupervisors | None = None,
        followers: list[Callable[[Changes, bool], None]] | None = None,
        periodic: list[Callable[[], object]] | None = None,
        batch_max: int = 2000,
        sweep_s: float = 2.0,
    ) -> None:
        self.store = store
        self.hall_ids = tuple(hall_ids)
        """The halls this server serves (a district): it subscribes to and speaks for each."""
        self.broker = broker
        self.on_changes = on_changes
        self.supervisor = supervisor
        self._calendar_gap: int | None = None
        self.followers = list(followers or [])
        """Work that follows the supervisor after each committed batch (``sweep`` False) and each
        sweep (True), e.g. the ratings service; it may add alerts to the changes it is given."""
        self.periodic = list(periodic or [])
        """Work run on the writer thread at each sweep (scheduled patrol rounds)."""
        self.batch_max = batch_max
        self.sweep_s = sweep_s
        self.counters = self._initial_counters()
        self.connected = threading.Event()
        self._queue: queue.Queue[_Raw] = queue.Queue()
        self._stop = threading.Event()
        self._generation = 0
        self._registry: dict[str, KnownDevice] = store.registry()
        self._registry_loaded = time.monotonic()
        self._client = make_client(broker, f"hallwatch-server.{self.hall_ids[0]}", clean_session=False, manual_ack=True)
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)

    def _initial_counters(self) -> Counters:
        with Session(self.store.engine) as session:
            accepted = session.scalar(select(func.count()).select_from(EventRow)) or 0
            historical = session.scalar(select(func.count()).select_from(EventRow).where(EventRow.historical)) or 0
            rejected = session.scalar(select(func.count()).select_from(RejectionRow)) or 0
        return Counters(accepted=accepted, historical=historical, rejected=rejected)

    def start(self) -> None:
        client = self._client
        # MQTT has one will per session: it speaks for the first hall; a clean stop says offline for every hall.
        client.will_set(server_status_topic(self.hall_ids[0]), encode(ServerStatus(state="offline", time=utc_now())), qos=1, retain=True)
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._writer.start()
        client.connect_async(self.broker.host, self.broker.port, self.broker.keepalive_s)
        client.loop_start()

    def stop(self) -> None:
        """Say offline (retained), disconnect, finish the last batch."""
        if self.connected.is_set():
            for hall_id in self.hall_ids:
                info = self._client.publish(server_status_topic(hall_id), encode(ServerStatus(state="offline", time=utc_now())), qos=1, retain=True)
                try:
                    info.wait_for_publish(timeout=2)
                except (RuntimeError, ValueError):
                    pass
        self._client.disconnect()
        self._client.loop_stop()
        self._stop.set()
        self._writer.join(10)

    @property
    def connection(self) -> int:
        """Counts broker connections: a change means retained state may need sending again."""
        return self._generation

    def publish_to_device(self, device_id: str, channel: str, payload: bytes, *, retain: bool) -> None:
        """Send configuration or a command to one device, under the hall it is registered to."""
        known = self._registry.get(device_id) or self.store.registry().get(device_id)
        if known is None:
            raise KeyError(f"no device {device_id!r} is registered")
        self._client.publish(device_topic(known.hall_id, device_id, channel), payload, qos=1, retain=retain)  # type: ignore[arg-type]

    # ---------------------------------------------------------- callbacks

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the server: %s", reason)
            return
        self._generation += 1
        client.subscribe([(topic, 1) for hall_id in self.hall_ids for topic in server_subscriptions(hall_id)])
        for hall_id in self.hall_ids:
            client.publish(server_status_topic(hall_id), encode(ServerStatus(state="online", time=utc_now())), qos=1, retain=True)
        self.connected.set()
        log.info("server connected to %s", self.broker.url)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("server lost the broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._queue.put(_Raw(msg.topic, msg.payload, utc_now(), msg.mid, msg.qos, self._generation))

    # ------------------------------------------------------------- writer

    def _check(self, raw: _Raw) -> Inbound:
        checked = check_message(raw.topic, raw.payload, self._registry)
        if isinstance(checked, Rejection) and checked.reason.startswith("unknown device") and time.monotonic() - self._registry_loaded > 5:
            self._registry = self.store.registry()  # a device may have been added since start
            self._registry_loaded = time.monotonic()
            checked = check_message(raw.topic, raw.payload, self._registry)
        return Inbound(raw.topic, raw.payload, raw.received, checked)

    def _write_loop(self) -> None:
        next_sweep = time.monotonic() + self.sweep_s
        while not (self._stop.is_set() and self._queue.empty()):
            batch: list[_Raw] = []
            try:
                batch.append(self._queue.get(timeout=0.2))
                while len(batch) < self.batch_max:
                    batch.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            if batch:
                self._store_batch(batch)
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + self.sweep_s
                changes = self._with_retry(lambda: self.store.sweep(utc_now()))
                self._supervise(changes, every_window=True)
                self._follow(changes, sweep=True)
                self._publish(changes)
                for task in self.periodic:
                    try:
                        task()
                    except Exception:
                        log.exception("periodic task %s failed", getattr(task, "__qualname__", task))

    def _with_retry(self, work: Callable[[], Changes]) -> Changes:
        """Keep trying while the database is unreachable; nothing is acked meanwhile."""
        while True:
            try:
                return work()
            except OperationalError as exc:
                log.error("database unavailable, retrying in 1 s: %s", exc.orig)
                time.sleep(1)

    def _store_batch(self, batch: list[_Raw]) -> None:
        inbound = [self._check(raw) for raw in batch]
        for item in inbound:
            if isinstance(item.checked, Rejection):
                log.warning("rejected %s: %s", item.topic, item.checked.reason)
        try:
            changes = self._with_retry(lambda: self.store.ingest(inbound))
        except Exception:  # one unstorable message must not stop ingest
            log.exception("batch refused by the database; storing its messages one by one")
            changes = Changes()
            for item in inbound:
                changes.merge(self._store_alone(item))
        for raw in batch:
            if raw.qos > 0 and raw.generation == self._generation:
                self._client.ack(raw.mid, raw.qos)
        self.counters.accepted += len(changes.events)
        self.counters.historical += sum(1 for e in changes.events if e.historical)
        self.counters.duplicates += changes.duplicates
        self.counters.rejected += len(changes.rejections)
        self._supervise(changes, every_window=False)
        self._follow(changes, sweep=False)
        self._publish(changes)

    def _store_alone(self, item: Inbound) -> Changes:
        """Store one message; if the database refuses it, keep it as a rejection."""
        try:
            return self._with_retry(lambda: self.store.ingest([item]))
        except Exception as exc:
            device = getattr(item.checked, "device_id", None)
            refused = Rejection(f"the database refused it: {type(exc).__name__}: {exc}"[:500], device)
            return self._with_retry(lambda: self.store.ingest([Inbound(item.topic, item.payload, item.received, refused)]))

    def _supervise(self, changes: Changes, *, every_window: bool) -> None:
        """Feed the rules core; a failure there is logged, never stops ingest."""
        if self.supervisor is None:
            return
        try:
            self.supervisor.observe(changes.events, list(changes.devices), changes.repeats)
            changes.alerts, windows = self.supervisor.tick(every_window=every_window)
            changes.windows |= windows
        except CalendarGapError as exc:
            if self._calendar_gap != exc.year:  # say it once, not every sweep
                self._calendar_gap = exc.year
                log.error("supervision paused: %s", exc)
        except Exception:
            log.exception("supervision failed; events are stored, alerts will catch up on the next sweep")

    def _follow(self, changes: Changes, *, sweep: bool) -> None:
        """Run the followers; a failure there is logged, never stops ingest (the next sweep catches up)."""
        for follower in self.followers:
            try:
                follower(changes, sweep)
            except Exception:
                log.exception("%s failed; events are stored and will be taken up again", getattr(follower, "__qualname__", follower))

    def _publish(self, changes: Changes) -> None:
        if changes.events or changes.windows or changes.devices or changes.rejections or changes.duplicates or changes.alerts:
            try:
                self.on_changes(changes)
            except Exception:  # a broken listener must not stop ingest
                log.exception("change listener failed")
