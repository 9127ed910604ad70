"""Time-series export: the server's committed events as InfluxDB points.

A city reviews many halls at once in Grafana; the SQL store answers "what
happened in this hall", a time-series database answers "how did occupancy,
ratings and devices go everywhere this month".  This module feeds one.

Why it looks like this:

* Input is what the ingest writer committed (:meth:`InfluxSink.follow` is an
  ``Ingestor`` follower), so only stored, deduplicated events are exported,
  each at its *event time*: held-back (historical) events land where they
  belong, not when they arrived.
* influxdb-client's batching write API does the writing: points are grouped
  by count or time into few HTTP writes, on one background thread, so the
  ingest thread never waits for the network.
* Nothing is lost while the database is down: a batch the client gives up on
  (``error_callback``) is appended to an on-disk spool, and from the first
  sign of trouble (``retry_callback``) new points go straight to the spool,
  so no backlog builds up in memory.  A replayer thread sends the spool,
  oldest segment first, until it is empty, then writing goes live again.
* Replaying twice is harmless: InfluxDB keeps one point per series and
  timestamp (a rewrite overwrites it), and VictoriaMetrics does the same with
  ``-dedup.minScrapeInterval=1ms``.  So a segment whose write failed in an
  unclear way is simply sent again.
* Only numbers are written (0/1 for states): VictoriaMetrics, which also
  accepts this write API, stores a string field as 0.  Person ids are never
  tags (personal data, and one series per person).

A crash (SIGKILL) loses what the client held in memory, at most about one
flush interval of points; the events themselves stay in the SQL store.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS, WriteApi, WriteOptions, WriteType
from influxdb_client.rest import ApiException
from reactivex.scheduler import ThreadPoolScheduler

from broker.config_file import ConfigError
from broker.key_files import KeyFileError, read_key_file

if TYPE_CHECKING:
    from broker.protocol import Event
    from server.db import WindowRow
    from server.ingest.batch import Changes

log = logging.getLogger(__name__)

WINDOW_STATES = ("staffed", "paused", "vacant", "closed", "unknown")
"""The supervision core's window states (``server.rules.supervision.State``), one 0/1 field each."""

SPOOL_SUFFIX = ".lp"
PARTIAL_WRITE = 422
"""InfluxDB's answer when it wrote the batch except points it will never take
(e.g. older than the bucket's retention): retrying cannot help."""


# --------------------------------------------------------------------------
# Events → line protocol
# --------------------------------------------------------------------------


def _point(measurement: str, time: datetime, tags: Mapping[str, str | None], fields: Mapping[str, int | float]) -> str:
    """One line; tags without a value are left out (line protocol has no empty tag)."""
    point = Point(measurement).time(time, WritePrecision.NS)
    for key, value in tags.items():
        if value:
            point.tag(key, value)
    for key, number in fields.items():
        point.field(key, number)
    return point.to_line_protocol()


def event_lines(events: Iterable[Event]) -> list[str]:
    """The points of the exported event types; clerk logins and acks carry no measure."""
    lines: list[str] = []
    for event in events:
        body: Any = event.body
        base = {"hall": event.hall_id}
        at = event.event_time
        if event.type in ("seat", "seat_heartbeat"):
            tags = base | {"window": body.window_id, "seat": body.seat, "device": event.device_id}
            lines.append(_point("seat", at, tags, {"occupied": int(body.state == "occupied"), "confidence": float(body.confidence)}))
        elif event.type == "rating":
            tags = base | {"window": body.window_id, "clerk": body.clerk_id, "device": event.device_id}
            lines.append(_point("rating", at, tags, {"level": body.level}))
        elif event.type == "ticket":
            lines.append(_point("ticket", at, base | {"window": body.window_id}, {"finished": int(body.state == "finished")}))
        elif event.type == "pause":
            lines.append(_point("pause", at, base | {"window": body.window_id, "source": body.source}, {"paused": int(body.paused)}))
        elif event.type == "punch":
            fields: dict[str, int | float] = {"count": 1}
            fields |= {name: float(value) for name in ("distance", "liveness") if (value := getattr(body, name)) is not None}
            lines.append(_point("punch", at, base | {"device": event.device_id, "method": body.method}, fields))
        elif event.type == "heartbeat":
            fields = {
                "uptime_s": float(body.uptime_s),
                "outbox_pending": body.outbox_pending,
                "dropped_heartbeats": body.dropped_heartbeats,
                "dropped_states": body.dropped_states,
            }
            lines.append(_point("heartbeat", at, base | {"device": event.device_id}, fields))
    return lines


def window_lines(windows: Iterable[WindowRow]) -> list[str]:
    """A window's derived state at the time it began: one 0/1 field per state."""
    return [
        _point("window_state", w.state_since, {"hall": w.hall_id, "window": w.id}, {s: int(w.state == s) for s in WINDOW_STATES})
        for w in windows
        if w.state_since is not None
    ]


def alert_lines(hall_id: str, alerts: Iterable[Mapping[str, Any]]) -> list[str]:
    """``raised`` at the raise time; ``cleared`` with its ``duration_s`` (condition
    start to clear, so vacant minutes add up), or ``withdrawn``, at the clear time.

    An alert is published again when acknowledged or escalated; its points
    keep their times, so the rewrite is a no-op.
    """
    lines: list[str] = []
    for alert in alerts:
        tags = {"hall": hall_id, "window": alert["window_id"], "type": alert["type"]}
        lines.append(_point("alert", datetime.fromisoformat(alert["raised_at"]), tags, {"raised": 1}))
        if alert.get("cleared_at"):
            cleared = datetime.fromisoformat(alert["cleared_at"])
            if (alert.get("facts") or {}).get("withdrawn"):
                fields: dict[str, int | float] = {"withdrawn": 1}
            else:
                since = datetime.fromisoformat(alert.get("condition_since") or alert["raised_at"])
                fields = {"cleared": 1, "duration_s": max(0.0, (cleared - since).total_seconds())}
            lines.append(_point("alert", cleared, tags, fields))
    return lines


# --------------------------------------------------------------------------
# The spool
# --------------------------------------------------------------------------


class Spool:
    """Line-protocol segment files in one directory, sent oldest first.

    A segment is only ever appended to (fsync'd before :meth:`append`
    returns) and removed whole once the server took it, so a crash leaves at
    worst a torn last line, which :meth:`take` drops.  The spool is bounded:
    an append that would pass ``max_bytes`` drops the oldest segments first,
    counted in ``dropped`` and logged.  Not thread-safe: the sink serialises
    calls under its lock.
    """

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.segment_bytes = max(1, min(2**20, max_bytes // 8))
        """Segments are small against the bound, so a drop loses a small part of the spool."""
        self.dropped = 0
        self._segments: dict[Path, list[int]] = {}
        """Path → [bytes, points], oldest first."""
        for path in sorted(self.directory.glob(f"*{SPOOL_SUFFIX}")):
            data = path.read_bytes()
            self._segments[path] = [len(data), data.count(b"\n")]
        self._next = int(max(self._segments).stem) + 1 if self._segments else 1
        self._open: Path | None = None
        """The segment appends go to; a segment sent (taken) is closed for appends."""
        self._taken: Path | None = None

    @property
    def points(self) -> int:
        return sum(points for _, points in self._segments.values())

    @property
    def bytes(self) -> int:
        return sum(size for size, _ in self._segments.values())

    def append(self, data: bytes) -> None:
        """Add newline-terminated lines, durably."""
        self._make_room(len(data))
        if self._open is None or self._segments[self._open][0] >= self.segment_bytes:
            self._open = self.directory / f"{self._next:012d}{SPOOL_SUFFIX}"
            self._next += 1
            self._segments[self._open] = [0, 0]
        fd = os.open(self._open, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if self._segments[self._open][0] == 0:
            self._fsync_directory()  # the new file's name is durable too
        self._segments[self._open][0] += len(data)
        self._segments[self._open][1] += data.count(b"\n")

    def _make_room(self, incoming: int) -> None:
        while self.bytes + incoming > self.max_bytes:
            oldest = next((p for p in self._segments if p != self._taken), None)
            if oldest is None:
                return  # only the segment being sent is left: the bound gives way to one append
            _, points = self._segments.pop(oldest)
            oldest.unlink(missing_ok=True)
            if oldest == self._open:
                self._open = None
            self.dropped += points
            log.error(
                "time-series spool %s is full (%d bytes max): dropped its oldest %d points (%s); %d dropped so far",
                self.directory, self.max_bytes, points, oldest.name, self.dropped,
            )

    def take(self) -> tuple[Path, bytes, int] | None:
        """The oldest segment to send — (path, lines, points) — closed for appends; None when empty."""
        path = next(iter(self._segments), None)
        if path is None:
            return None
        if path == self._open:
            self._open = None
        self._taken = path
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):  # torn by a crash mid-append
            data = data[: data.rfind(b"\n") + 1]
            self.dropped += 1
            log.error("time-series spool %s: dropped a torn last line", path)
        return path, data, data.count(b"\n")

    def done(self, path: Path) -> None:
        """The server has the segment: remove it."""
        self._segments.pop(path, None)
        path.unlink(missing_ok=True)
        self._taken = None
        self._fsync_directory()

    def release(self, path: Path) -> None:
        """Sending failed: the segment stays first in line.

        If nothing was spooled after it, appends go on filling it, so a long
        outage does not leave one small file per replay attempt.
        """
        self._taken = None
        if self._open is None and path == next(reversed(self._segments)):
            self._open = path

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------
# The sink
# --------------------------------------------------------------------------


def _read_token(path: Path) -> str:
    """The API token; a file others can read, or an empty one, is a configuration error."""
    try:
        token = read_key_file(path).decode().strip()
    except KeyFileError as exc:
        raise ConfigError(str(exc)) from None
    if not token:
        raise ConfigError(f"{path}: the time-series token file is empty")
    return token


def _lines_in(data: bytes) -> int:
    """Points in a batch body (lines joined by newlines, with or without a final one)."""
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1) if data else 0


class InfluxSink:
    """Writes committed events to InfluxDB (or anything speaking its v2 write API).

    The constructor maps the server options one to one: ``--influx-url``,
    ``--influx-bucket``, ``--influx-org``, ``--influx-token-file``,
    ``--influx-spool-dir``.  ``hall_id`` tags the alerts, which do not name
    their hall.  Call :meth:`start`, feed it with :meth:`follow` (an ingest
    follower) or :meth:`write_events`, and :meth:`close` at shutdown.
    """

    def __init__(
        self,
        url: str,
        *,
        bucket: str,
        spool_dir: Path,
        hall_id: str,
        org: str = "hallwatch",
        token_file: Path | None = None,
        batch_size: int = 1000,
        flush_interval_s: float = 1.0,
        spool_max_bytes: int = 256 * 2**20,
        max_retries: int = 2,
        retry_interval_s: float = 0.5,
        replay_interval_s: float = 5.0,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self.bucket = bucket
        self.org = org
        self.hall_id = hall_id
        self._token = _read_token(token_file) if token_file else None
        retry_budget_ms = int((retry_interval_s * 8 + timeout_s * (max_retries + 1)) * 1000)
        self._options = WriteOptions(
            write_type=WriteType.batching,
            batch_size=batch_size,
            flush_interval=int(flush_interval_s * 1000),
            retry_interval=int(retry_interval_s * 1000),
            max_retries=max_retries,
            max_retry_delay=int(retry_interval_s * 4000),
            max_retry_time=retry_budget_ms,
            # Spooling starts at the first retry, so only the few batches formed before it can
            # still be retrying at close; ten times one batch's budget is plenty.
            max_close_wait=retry_budget_ms * 10,
            write_scheduler=ThreadPoolScheduler(max_workers=1),  # one writer: batches stay in order
        )
        self._timeout_ms = int(timeout_s * 1000)
        self.replay_interval_s = replay_interval_s
        self._spool = Spool(spool_dir, spool_max_bytes)
        self._lock = threading.Lock()
        """Guards the counters, the spool and the spooling flag; callbacks take it."""
        self._handoff = threading.Lock()
        """Held while handing points to the client, so close() never pulls it away mid-write."""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._client: InfluxDBClient | None = None
        self._batching: WriteApi | None = None
        self._replayer: threading.Thread | None = None
        self._spooling = False
        self._window_states: dict[str, tuple[str, datetime | None]] = {}
        """The state (and since when) last exported per window: see :meth:`follow`."""
        self._counts = dict.fromkeys(("written", "batches", "retries", "errors", "spooled", "replayed", "refused_batches", "in_flight"), 0)
        self._last_error: tuple[str, str] | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect the batching writer and the replayer; a spool left by the last run is sent first."""
        self._client = InfluxDBClient(url=self.url, token=self._token, org=self.org, timeout=self._timeout_ms)
        self._batching = self._client.write_api(
            write_options=self._options,
            success_callback=self._on_success,
            error_callback=self._on_error,
            retry_callback=self._on_retry,
        )
        with self._lock:
            self._spooling = self._spool.points > 0
        if self._spooling:
            log.info("time-series spool %s holds %d points from the last run; replaying them first", self._spool.directory, self._spool.points)
        self._replayer = threading.Thread(target=self._replay_loop, name="influx-replay", daemon=True)
        self._replayer.start()

    def close(self) -> None:
        """Flush the client's batches (to the server, or to the spool when it fails), stop the replayer.

        What is still spooled stays on disk and is replayed by the next :meth:`start`.
        """
        with self._handoff:
            batching, self._batching = self._batching, None  # from here on, new points go to the spool
        if batching is not None:
            batching.close()
        self._stop.set()
        self._wake.set()
        if self._replayer is not None:
            self._replayer.join()
        self._options.write_scheduler.executor.shutdown(wait=True)
        if self._client is not None:
            self._client.close()
        if self._spool.points:
            log.warning("time-series sink closed with %d points in the spool %s; the next start replays them", self._spool.points, self._spool.directory)

    # --------------------------------------------------------------- input

    def follow(self, changes: Changes, sweep: bool) -> None:
        """Ingest follower: the batch's events, the windows whose state changed, the alerts.

        A batch lists a window whenever anything of it changed (a seat, a pause, its camera's
        health); only a new state, or a new start of it, makes a point, so the database is not
        written the same point again and again.  Called from the ingest thread only."""
        windows = [w for w in changes.windows.values() if self._window_states.get(w.id) != (w.state, w.state_since)]
        self._window_states.update({w.id: (w.state, w.state_since) for w in windows})
        self._submit(event_lines(changes.events) + window_lines(windows) + alert_lines(self.hall_id, changes.alerts))

    def write_events(self, events: Iterable[Event]) -> None:
        """Export committed protocol events (see :func:`event_lines` for what becomes a point)."""
        self._submit(event_lines(events))

    def _submit(self, lines: list[str]) -> None:
        if not lines:
            return
        with self._handoff:
            with self._lock:
                if self._batching is None or self._spooling:
                    self._to_spool("\n".join(lines).encode() + b"\n", len(lines))
                    return
                self._counts["in_flight"] += len(lines)
            # Outside _lock: the client calls back (taking _lock) while holding its own locks.
            self._batching.write(self.bucket, self.org, lines, WritePrecision.NS)

    # ----------------------------------------------------- client callbacks

    def _on_success(self, conf: tuple[str, str, str], data: bytes) -> None:
        points = _lines_in(data)
        with self._lock:
            self._counts["written"] += points
            self._counts["batches"] += 1
            self._counts["in_flight"] -= points

    def _on_retry(self, conf: tuple[str, str, str], data: bytes, error: Exception) -> None:
        """The first sign of trouble: stop feeding the client, the spool takes new points."""
        with self._lock:
            self._counts["retries"] += 1
            self._note_error(error)
            self._start_spooling()

    def _on_error(self, conf: tuple[str, str, str], data: bytes, error: Exception) -> None:
        """The client gave up on a batch (retries exhausted, or an error not worth retrying)."""
        points = _lines_in(data)
        with self._lock:
            self._counts["errors"] += 1
            self._counts["in_flight"] -= points
            self._note_error(error)
            self._start_spooling()
            self._to_spool(data.rstrip(b"\n") + b"\n", points)

    # -------------------------------------------------- spool (under _lock)

    def _to_spool(self, data: bytes, points: int) -> None:
        self._spool.append(data)
        self._counts["spooled"] += points
        self._wake.set()

    def _note_error(self, error: Exception) -> None:
        self._last_error = (datetime.now(timezone.utc).isoformat(timespec="seconds"), f"{type(error).__name__}: {error}"[:500])

    def _start_spooling(self) -> None:
        if not self._spooling:
            self._spooling = True
            log.warning("time-series writes to %s failing (%s); spooling to %s until it takes them again", self.url, self._last_error and self._last_error[1], self._spool.directory)

    # ------------------------------------------------------------ replayer

    def _replay_loop(self) -> None:
        assert self._client is not None
        writer = self._client.write_api(write_options=SYNCHRONOUS)
        while not self._stop.is_set():
            sent = self._replay_one(writer)
            if sent is None:  # empty: sleep until something is spooled
                self._wake.wait(self.replay_interval_s)
                self._wake.clear()
            elif not sent:  # the server is still away: wait the full interval, however much is spooled meanwhile
                self._stop.wait(self.replay_interval_s)

    def _replay_one(self, writer: WriteApi) -> bool | None:
        """Send the oldest segment: True when it went (the next may follow at once),
        False when the server did not take it, None when the spool is empty."""
        with self._lock:
            taken = self._spool.take()
            if taken is None:
                # Live again only once the client holds nothing either: a batch it is still retrying
                # would otherwise meet the outage again and switch back (or reach the spool late).
                if self._spooling and self._batching is not None and self._counts["in_flight"] == 0:
                    self._spooling = False
                    log.info("time-series spool empty (%d points replayed in all); writing live to %s again", self._counts["replayed"], self.url)
                return None
        path, data, points = taken
        try:
            if data:
                writer.write(self.bucket, self.org, data, WritePrecision.NS)
        except ApiException as exc:
            if exc.status != PARTIAL_WRITE:
                return self._replay_failed(path, exc)
            log.error("time-series server refused part of %s for good and wrote the rest: %s", path.name, exc.body)
            with self._lock:
                self._counts["refused_batches"] += 1
        except Exception as exc:  # connection refused, timeout: the server is still away
            return self._replay_failed(path, exc)
        with self._lock:
            self._spool.done(path)
            self._counts["replayed"] += points
        return True

    def _replay_failed(self, path: Path, error: Exception) -> bool:
        with self._lock:
            self._spool.release(path)
            self._counts["errors"] += 1
            self._note_error(error)
        return False

    # --------------------------------------------------------------- stats

    def stats(self) -> dict[str, Any]:
        """Counters for the page and the API.

        Counts are of points (line-protocol lines; VictoriaMetrics stores one
        sample per field), except ``batches`` (successful HTTP writes),
        ``retries``, ``errors`` and ``refused_batches``.
        """
        with self._lock:
            return {
                "url": self.url,
                "bucket": self.bucket,
                "state": "stopped" if self._batching is None else ("spooling" if self._spooling else "live"),
                **self._counts,
                "dropped": self._spool.dropped,
                "pending": self._spool.points,
                "pending_bytes": self._spool.bytes,
                "last_error": self._last_error[1] if self._last_error else None,
                "last_error_at": self._last_error[0] if self._last_error else None,
            }
