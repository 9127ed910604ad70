"""The InfluxDB sink against a real server taking the InfluxDB write API (VictoriaMetrics).

Points land with their tags, fields and event times and are read back; many
events make few HTTP writes; with the server stopped (for a minute in the
soak test) nothing is lost — every point is present exactly once afterwards;
the spool survives a sink restart, is bounded (oldest dropped, counted,
logged) and keeps what a wrong token or URL could not write.  The Grafana
dashboard names only series the sink writes, and its queries find them.
"""

from __future__ import annotations

import json
import logging
import re
import stat
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from procs import ROOT, wait_for
from timeseries import exported, expected, key, ms, points_in, wait_exported
from victoria_proc import VictoriaProcess, start_victoria

from broker.config_file import ConfigError
from broker.protocol import (
    AckBody,
    ClerkLoginBody,
    Event,
    HeartbeatBody,
    PauseBody,
    PunchBody,
    RatingBody,
    SeatBody,
    SeatHeartbeatBody,
    TicketBody,
    make_event,
)
from broker.timeutil import HALL_TZ
from server.db import WindowRow
from server.timeseries.influx_sink import InfluxSink, Spool, alert_lines, event_lines, window_lines
from server.ingest.batch import Changes

HALL = "h1"
DASHBOARD = ROOT / "config/grafana/hallwatch.json"
ALL = f'{{hall="{HALL}"}}'
"""Every series the sink writes for the test hall."""


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


class Device:
    """Numbers a device's events as its outbox would (boot 1, seq 1, 2, …)."""

    def __init__(self, device_id: str, hall: str = HALL) -> None:
        self.device_id, self.hall, self.seq = device_id, hall, 0

    def __call__(self, body: Any, at: datetime) -> Event:
        self.seq += 1
        return make_event(hall_id=self.hall, device_id=self.device_id, boot=1, seq=self.seq, event_time=at, body=body)


def make_sink(url: str, spool_dir: Path, **options: Any) -> InfluxSink:
    """A sink with short intervals, so tests do not wait for production pacing."""
    settings: dict[str, Any] = dict(
        bucket="hallwatch", org="city", spool_dir=spool_dir, hall_id=HALL,
        flush_interval_s=0.2, replay_interval_s=0.2, retry_interval_s=0.1, timeout_s=2.0,
    )
    return InfluxSink(url, **(settings | options))


def settled(sink: InfluxSink, timeout: float = 30) -> dict[str, Any]:
    """Wait until every point handed to the sink is written (nothing in flight, nothing spooled)."""
    wait_for(lambda: (s := sink.stats())["in_flight"] == 0 and s["pending"] == 0 and s["state"] == "live", timeout, f"the sink to settle: {sink.stats()}")
    return sink.stats()


@pytest.fixture
def vm(tmp_path: Path):
    with start_victoria(tmp_path) as server:
        yield server


# --------------------------------------------------------------------------
# Points land and are read back
# --------------------------------------------------------------------------


T0 = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=HALL_TZ)


def test_events_land_with_their_tags_fields_and_event_times(vm: VictoriaProcess, tmp_path: Path) -> None:
    cam, keypad, terminal = Device("cam-01"), Device("eval-01"), Device("term-01")
    events = [
        cam(SeatBody(window_id="w01", state="occupied", confidence=0.93, occupant="c01"), T0),
        cam(SeatHeartbeatBody(window_id="w01", state="vacant", confidence=0.8), T0 + timedelta(seconds=1)),
        keypad(RatingBody(window_id="w01", level=2, clerk_id="c01", ticket="A001"), T0 + timedelta(seconds=2)),
        keypad(RatingBody(window_id="w01", level=5), T0 + timedelta(seconds=3)),
        keypad(TicketBody(window_id="w01", ticket="A001", state="finished"), T0 + timedelta(seconds=4)),
        keypad(PauseBody(window_id="w01", paused=True, source="evaluator", reason="午休"), T0 + timedelta(seconds=5)),
        keypad(ClerkLoginBody(window_id="w01", clerk_id="c01"), T0 + timedelta(seconds=6)),
        terminal(PunchBody(person_id="c01", method="face", distance=0.31, liveness=0.97), T0 + timedelta(seconds=7)),
        terminal(HeartbeatBody(uptime_s=3600.5, outbox_pending=3, dropped_heartbeats=1, dropped_states=0), T0 + timedelta(seconds=8)),
        terminal(AckBody(ref="config", ref_id="v7", ok=True), T0 + timedelta(seconds=9)),
    ]
    sink = make_sink(vm.url, tmp_path / "spool")
    sink.start()
    sink.write_events(events)
    stats = settled(sink)
    sink.close()

    at = [ms(T0 + timedelta(seconds=s)) for s in range(10)]
    cam_tags = dict(hall=HALL, window="w01", seat="main", device="cam-01")
    assert wait_exported(vm, 15, ALL) == {
        key("seat_occupied", **cam_tags): {at[0]: 1, at[1]: 0},
        key("seat_confidence", **cam_tags): {at[0]: 0.93, at[1]: 0.8},
        key("rating_level", hall=HALL, window="w01", clerk="c01", device="eval-01"): {at[2]: 2},
        key("rating_level", hall=HALL, window="w01", device="eval-01"): {at[3]: 5},
        key("ticket_finished", hall=HALL, window="w01"): {at[4]: 1},
        key("pause_paused", hall=HALL, window="w01", source="evaluator"): {at[5]: 1},
        key("punch_count", hall=HALL, device="term-01", method="face"): {at[7]: 1},
        key("punch_distance", hall=HALL, device="term-01", method="face"): {at[7]: 0.31},
        key("punch_liveness", hall=HALL, device="term-01", method="face"): {at[7]: 0.97},
        key("heartbeat_uptime_s", hall=HALL, device="term-01"): {at[8]: 3600.5},
        key("heartbeat_outbox_pending", hall=HALL, device="term-01"): {at[8]: 3},
        key("heartbeat_dropped_heartbeats", hall=HALL, device="term-01"): {at[8]: 1},
        key("heartbeat_dropped_states", hall=HALL, device="term-01"): {at[8]: 0},
    }, "clerk logins and acks are not exported; the punching person is never a tag"
    assert at[0] % 1000 == 123, "the event time, not the arrival time, to the millisecond"
    assert (stats["written"], stats["spooled"], stats["errors"]) == (8, 0, 0)


def test_supervised_window_states_and_alerts_land(vm: VictoriaProcess, tmp_path: Path) -> None:
    """What the ingest followers get from the real store and supervisor: w02 vacant ten minutes, then staffed."""
    from test_supervisor import MONDAY_0900, Hall, seat

    hall = Hall(f"sqlite:///{tmp_path}/hw.db")
    hall.birth("cam-01", "window_camera")
    hall.send("cam-01", seat("occupied"), MONDAY_0900 - timedelta(minutes=30))
    hall.send("cam-01", seat("vacant"), MONDAY_0900)
    grace = hall.policy.thresholds.vacant_grace_s
    back = MONDAY_0900 + timedelta(minutes=10)
    batches = [Changes(windows=hall.tick(MONDAY_0900 + timedelta(seconds=grace))[1])]
    alerts, windows = hall.tick(MONDAY_0900 + timedelta(seconds=grace + 1))
    batches.append(Changes(alerts=alerts, windows=windows))
    hall.send("cam-01", seat("occupied"), back)
    alerts, windows = hall.tick(back + timedelta(seconds=5))
    batches.append(Changes(alerts=alerts, windows=windows))
    assert [a["state"] for b in batches for a in b.alerts] == ["active", "cleared"]

    sink = make_sink(vm.url, tmp_path / "spool", hall_id="demo")
    sink.start()
    for changes in batches:
        sink.follow(changes, True)
    window_rows = [w for b in batches for w in b.windows.values()]
    sink.follow(Changes(windows={w.id: w for w in window_rows[-1:]}), False)  # listed again, its state unchanged (a camera's health, say)
    written = settled(sink)["written"]
    sink.close()
    alert_points = len(alert_lines("demo", [a for b in batches for a in b.alerts]))
    states = {(w.id, w.state, w.state_since) for w in window_rows}
    assert written == alert_points + len(states), f"one point per window state, not per listing ({len(window_rows) + 1} listings)"

    samples = exported(vm, '{__name__=~"alert_.*|window_state_.*", window="w02"}')
    tags = dict(hall="demo", window="w02", type="vacant")
    vacant_since, back_ms = ms(MONDAY_0900), ms(back)
    assert samples[key("alert_raised", **tags)] == {vacant_since + grace * 1000: 1}
    assert samples[key("alert_cleared", **tags)] == {back_ms: 1}
    assert samples[key("alert_duration_s", **tags)] == {back_ms: 600}, "vacant minutes count from the condition's start"
    assert samples[key("window_state_vacant", hall="demo", window="w02")] == {vacant_since: 1, back_ms: 0}
    assert samples[key("window_state_staffed", hall="demo", window="w02")] == {vacant_since: 0, back_ms: 1}


# --------------------------------------------------------------------------
# Batching
# --------------------------------------------------------------------------


def test_many_events_make_few_http_writes(vm: VictoriaProcess, tmp_path: Path) -> None:
    cams = [Device(f"cam-{i:02d}") for i in range(10)]
    start = datetime.now(timezone.utc) - timedelta(hours=2)
    events = [cams[i % 10](SeatHeartbeatBody(window_id=f"w{i % 10:02d}", state="occupied", confidence=0.9), start + timedelta(milliseconds=10 * i)) for i in range(6000)]
    sink = make_sink(vm.url, tmp_path / "spool", batch_size=1000, flush_interval_s=1.0)
    sink.start()
    sink.write_events(events[:5000])  # one ingest batch of 5000
    for i in range(5000, 6000, 100):  # then ten small ones, inside one flush interval
        sink.write_events(events[i : i + 100])
    stats = settled(sink)
    sink.close()

    assert stats["written"] == 6000, "one point (line) per event"
    assert stats["batches"] <= 8, f"6,000 points in batches of 1000 need 6 writes, not one per call: {stats}"
    assert wait_exported(vm, 12000, ALL) == expected(events), "occupied and confidence: two samples per point"


# --------------------------------------------------------------------------
# The server stopped during a run
# --------------------------------------------------------------------------


class Producer(threading.Thread):
    """Events at a steady pace with wall-clock event times, as a hall produces them.

    Each tick (0.1 s): a seat heartbeat from each of five windows; every 10
    ticks a device heartbeat; every 5 a rating.  About 90 points a second.
    """

    def __init__(self, sink: InfluxSink) -> None:
        super().__init__(name="producer", daemon=True)
        self.sink = sink
        self.events: list[Event] = []
        self.stop = threading.Event()
        self.cams = [Device(f"cam-{w}") for w in range(5)]
        self.keypad, self.agent = Device("eval-01"), Device("agent-01")

    def run(self) -> None:
        tick = 0
        while not self.stop.is_set():
            now = datetime.now(timezone.utc)
            batch = [cam(SeatHeartbeatBody(window_id=f"w{w:02d}", state="occupied" if (tick // 7 + w) % 3 else "vacant", confidence=round(0.5 + (tick % 50) / 100, 2)), now) for w, cam in enumerate(self.cams)]
            if tick % 10 == 0:
                batch.append(self.agent(HeartbeatBody(uptime_s=tick / 10, outbox_pending=tick % 17, dropped_heartbeats=0, dropped_states=tick // 100), now))
            if tick % 5 == 0:
                batch.append(self.keypad(RatingBody(window_id=f"w{tick % 5:02d}", level=1 + tick % 5, clerk_id=f"c{tick % 3}"), now))
            self.sink.write_events(batch)
            self.events += batch
            tick += 1
            self.stop.wait(0.1)

    def points_between(self, start: datetime, end: datetime) -> int:
        """Points (one per event here) produced while the server was down."""
        return sum(1 for e in self.events if start <= e.event_time < end)


def _outage_run(vm: VictoriaProcess, tmp_path: Path, down_s: float) -> dict[str, Any]:
    """Produce, stop the server for ``down_s`` while producing, restart it on the same data, check every point."""
    sink = make_sink(vm.url, tmp_path / "spool", flush_interval_s=0.5, replay_interval_s=1.0)
    sink.start()
    producer = Producer(sink)
    producer.start()
    time.sleep(3)
    stopped = datetime.now(timezone.utc)
    vm.stop()
    time.sleep(down_s)
    vm.start()
    restarted = datetime.now(timezone.utc)
    time.sleep(3)
    producer.stop.set()
    producer.join()
    stats = settled(sink, timeout=60)
    sink.close()

    want = expected(producer.events)
    got = wait_exported(vm, points_in(want), ALL, timeout=60)
    assert got == want, "every point present, once, with its values"
    during = producer.points_between(stopped, restarted)
    assert stats["spooled"] >= during, "what was produced while the server was down went through the spool"
    assert stats["replayed"] == stats["spooled"] and stats["dropped"] == 0
    assert stats["written"] + stats["replayed"] == len(producer.events), "each point written once"
    return {
        "points": len(producer.events), "samples": points_in(want), "down_s": round((restarted - stopped).total_seconds(), 1), "produced_while_down": during,
        **{k: stats[k] for k in ("written", "batches", "retries", "errors", "spooled", "replayed", "dropped")},
    }


def test_server_stopped_briefly_nothing_lost(vm: VictoriaProcess, tmp_path: Path) -> None:
    result = _outage_run(vm, tmp_path, down_s=3)
    print(f"\ninflux outage (3 s): {result}")


@pytest.mark.soak
def test_server_stopped_for_a_minute_every_point_present(vm: VictoriaProcess, tmp_path: Path) -> None:
    result = _outage_run(vm, tmp_path, down_s=60)
    assert result["down_s"] >= 60
    print(f"\ninflux outage (60 s): {result}")


# --------------------------------------------------------------------------
# The spool
# --------------------------------------------------------------------------


def _ratings(n: int, start: datetime) -> list[Event]:
    keypad = Device("eval-01")
    return [keypad(RatingBody(window_id="w01", level=1 + i % 5), start + timedelta(seconds=i)) for i in range(n)]


def test_spool_survives_a_sink_restart(tmp_path: Path) -> None:
    vm = start_victoria(tmp_path)
    vm.stop()  # down from the start: nothing is written, everything is spooled
    spool = tmp_path / "spool"
    events = _ratings(300, datetime.now(timezone.utc) - timedelta(hours=1))
    first = make_sink(vm.url, spool)
    first.start()
    for i in range(0, 300, 30):
        first.write_events(events[i : i + 30])
    wait_for(lambda: first.stats()["in_flight"] == 0, 30, "the client to give up on its batches")
    first.close()
    stats = first.stats()
    assert (stats["written"], stats["spooled"], stats["pending"], stats["state"]) == (0, 300, 300, "stopped")
    assert stats["errors"] >= 1 and "Connection refused" in stats["last_error"]
    files = sorted(spool.iterdir())
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files), "the spool is private"
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700

    with vm:
        second = make_sink(vm.url, spool)
        second.start()
        stats = settled(second)
        second.close()
        assert (stats["replayed"], stats["written"], stats["pending"]) == (300, 0, 0)
        assert list(spool.iterdir()) == []
        assert wait_exported(vm, 300, ALL) == expected(events)


def test_bounded_spool_drops_the_oldest_counted_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    vm = start_victoria(tmp_path)
    vm.stop()
    spool = tmp_path / "spool"
    events = _ratings(400, datetime.now(timezone.utc) - timedelta(hours=1))
    sink = make_sink(vm.url, spool, spool_max_bytes=8000)
    sink.start()
    with caplog.at_level(logging.ERROR, logger="server.timeseries.influx_sink"):
        sink.write_events(events[:10])
        wait_for(lambda: sink.stats()["in_flight"] == 0, 30, "the client to give up on its first batch")
        for i in range(10, 400, 10):  # now straight to the spool, about 700 bytes at a time
            sink.write_events(events[i : i + 10])
        sink.close()
    stats = sink.stats()
    assert stats["pending_bytes"] <= 8000
    assert stats["dropped"] > 0 and stats["dropped"] + stats["pending"] == 400, stats
    assert any("is full" in r.getMessage() and "dropped its oldest" in r.getMessage() for r in caplog.records)

    with vm:
        replay = make_sink(vm.url, spool)
        replay.start()
        settled(replay)
        replay.close()
        kept = events[stats["dropped"] :]
        assert wait_exported(vm, len(kept), ALL) == expected(kept), "the newest points are kept, the oldest dropped"


def test_spool_segments_keep_their_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 2**20)
    spool.append(b"m v=1i 1\n")
    taken = spool.take()
    assert taken is not None
    spool.release(taken[0])  # the server was away
    spool.append(b"m v=2i 2\n")
    assert [p.name for p in tmp_path.iterdir()] == ["000000000001.lp"], "nothing newer: the same segment goes on"
    taken = spool.take()
    assert taken is not None and taken[1:] == (b"m v=1i 1\nm v=2i 2\n", 2)
    spool.append(b"m v=3i 3\n")  # while the first is being sent: behind it, in a new segment
    spool.done(taken[0])
    assert Spool(tmp_path, 2**20).take() == (tmp_path / "000000000002.lp", b"m v=3i 3\n", 1), "a restarted sink finds it"


def test_torn_last_line_is_dropped_on_replay(tmp_path: Path) -> None:
    (tmp_path / "000000000001.lp").write_bytes(b"rating,hall=h1 level=5i 1700000000000000000\nrating,hall=h1 lev")
    spool = Spool(tmp_path, 2**20)
    taken = spool.take()
    assert taken is not None and taken[1:] == (b"rating,hall=h1 level=5i 1700000000000000000\n", 1)
    assert spool.dropped == 1


def test_wrong_token_is_spooled_then_written_once_accepted(tmp_path: Path) -> None:
    token = tmp_path / "influx.token"
    token.write_text("not-the-password\n")
    token.chmod(0o600)
    vm = start_victoria(tmp_path, extra_args=["-httpAuth.username=hallwatch", "-httpAuth.password=secret"])
    events = _ratings(50, datetime.now(timezone.utc) - timedelta(hours=1))
    sink = make_sink(vm.url, tmp_path / "spool", token_file=token)
    sink.start()
    try:
        sink.write_events(events)
        wait_for(lambda: sink.stats()["spooled"] == 50, 30, "the refused batch in the spool")
        stats = sink.stats()
        assert stats["state"] == "spooling" and stats["written"] == 0 and "(401)" in stats["last_error"]
        assert vm.export('{__name__!=""}', auth=("hallwatch", "secret")) == [], "nothing got through"
        # Auth is lifted on the server (as if the token had been put right): the same sink replays.
        vm.stop()
        vm.extra_args = []
        vm.start()
        stats = settled(sink)
        assert (stats["replayed"], stats["pending"]) == (50, 0)
        assert wait_exported(vm, 50, ALL) == expected(events)
    finally:
        sink.close()
        vm.stop()


def test_wrong_url_is_spooled_and_replayed_by_the_corrected_sink(vm: VictoriaProcess, tmp_path: Path) -> None:
    events = _ratings(40, datetime.now(timezone.utc) - timedelta(hours=1))
    wrong = make_sink(f"{vm.url}/nope", tmp_path / "spool")  # VictoriaMetrics answers 400 for an unknown path
    wrong.start()
    wrong.write_events(events)
    wait_for(lambda: wrong.stats()["spooled"] == 40, 30, "the refused batch in the spool")
    wrong.close()
    assert "(400)" in (wrong.stats()["last_error"] or "") and wrong.stats()["pending"] == 40
    assert exported(vm, ALL) == {}

    fixed = make_sink(vm.url, tmp_path / "spool")
    fixed.start()
    assert settled(fixed)["replayed"] == 40
    fixed.close()
    assert wait_exported(vm, 40, ALL) == expected(events)


def test_unsafe_or_empty_token_file_is_refused(tmp_path: Path) -> None:
    token = tmp_path / "influx.token"
    token.write_text("secret\n")
    token.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        make_sink("http://127.0.0.1:1", tmp_path / "spool", token_file=token)
    token.write_text("\n")
    token.chmod(0o600)
    with pytest.raises(ConfigError, match="empty"):
        make_sink("http://127.0.0.1:1", tmp_path / "spool", token_file=token)


class _PartialWrite(BaseHTTPRequestHandler):
    """InfluxDB's answer to points beyond the bucket's retention: 422, the rest written."""

    bodies: list[bytes] = []

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        body = b'{"code":"unprocessable entity","message":"failure writing points to database: partial write: points beyond retention policy dropped=3"}'
        self.send_response(422)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_partial_write_is_not_retried_forever(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PartialWrite)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _PartialWrite.bodies = []
    sink = make_sink(f"http://127.0.0.1:{server.server_address[1]}", tmp_path / "spool")
    sink.start()
    try:
        sink.write_events(_ratings(3, datetime(2020, 1, 1, tzinfo=timezone.utc)))
        stats = settled(sink)
    finally:
        sink.close()
        server.shutdown()
    assert (stats["refused_batches"], stats["pending"]) == (1, 0), "the spool is not blocked by points the server will never take"
    assert len(_PartialWrite.bodies) == 2, "one live write, one replay"


# --------------------------------------------------------------------------
# The Grafana dashboard
# --------------------------------------------------------------------------


def _dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        exprs += [(panel["title"], target["expr"]) for target in panel["targets"]]
    return exprs


def _sample() -> tuple[list[Event], Changes]:
    """One of every point the sink writes: events, a window state, a cleared and a withdrawn alert."""
    cam, keypad, terminal = Device("cam-01"), Device("eval-01"), Device("term-01")
    events = [
        cam(SeatBody(window_id="w01", state="occupied", confidence=0.9), T0),
        keypad(RatingBody(window_id="w01", level=2, clerk_id="c01"), T0),
        keypad(TicketBody(window_id="w01", ticket="A1", state="finished"), T0),
        keypad(PauseBody(window_id="w01", paused=True, source="button"), T0),
        terminal(PunchBody(person_id="c01", method="face", distance=0.3, liveness=0.9), T0),
        terminal(HeartbeatBody(uptime_s=1, outbox_pending=0, dropped_heartbeats=0, dropped_states=0), T0),
    ]
    vacant = {"window_id": "w01", "type": "vacant", "raised_at": T0.isoformat(), "condition_since": T0.isoformat(), "cleared_at": (T0 + timedelta(minutes=5)).isoformat(), "facts": {}}
    withdrawn = vacant | {"type": "pause_overrun", "facts": {"withdrawn": "later observations show the condition did not last"}}
    window = WindowRow(id="w01", hall_id=HALL, name="1号窗口", department="d", state="vacant", state_since=T0)
    return events, Changes(windows={"w01": window}, alerts=[vacant, withdrawn])


def test_dashboard_is_valid_and_names_only_series_the_sink_writes() -> None:
    events, changes = _sample()
    written = set()
    for line in event_lines(events) + window_lines(changes.windows.values()) + alert_lines(HALL, changes.alerts):
        measurement = line.split(",", 1)[0]
        fields = line.split(" ")[1]
        written |= {f"{measurement}_{field.split('=')[0]}" for field in fields.split(",")}
    named = set()
    for title, expr in _dashboard_exprs():
        names = set(re.findall(r"\b([a-z][a-z0-9_]*)\{", expr))
        assert names, f"{title}: no series named in {expr}"
        named |= names
    assert named <= written, f"the dashboard names series the sink never writes: {named - written}"
    assert {"seat_occupied", "alert_duration_s", "rating_level", "heartbeat_outbox_pending"} <= named


def test_dashboard_queries_find_the_points(vm: VictoriaProcess, tmp_path: Path) -> None:
    """Every panel query is valid MetricsQL on the real server and finds data."""
    sink = make_sink(vm.url, tmp_path / "spool")
    sink.start()
    events, changes = _sample()
    sink.write_events(events)
    sink.follow(changes, True)
    settled(sink)
    sink.close()
    wait_exported(vm, 1, '{__name__="heartbeat_uptime_s"}')
    at = (T0 + timedelta(minutes=6)).timestamp()
    for title, expr in _dashboard_exprs():
        query = expr.replace("$__interval", "1h").replace("$__range", "1h").replace("$hall", ".*").replace("$bad_at_most", "2")
        assert vm.query(query, at=at), f"{title}: {query} found nothing"

