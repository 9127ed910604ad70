"""The agent's outbox: durable, ordered, bounded without losing what matters."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from agent.outbox import Outbox
from broker.protocol import HeartbeatBody, PunchBody, RatingBody, SeatBody

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
HB = HeartbeatBody(uptime_s=1, outbox_pending=0, dropped_heartbeats=0, dropped_states=0)
PUNCH = PunchBody(person_id="c01", method="face")
SEAT = SeatBody(window_id="w01", state="occupied", confidence=0.9)


def _outbox(path: Path, max_events: int = 100) -> Outbox:
    return Outbox(path / "o.db", hall_id="demo", device_id="ft-01", max_events=max_events)


def _types(box: Outbox) -> list[str]:
    return [p.event.type for p in box.pending(0, 1000)]


def test_boot_counter_and_sequence_survive_restart(tmp_path: Path) -> None:
    box = _outbox(tmp_path)
    first = [box.add(PUNCH, NOW, None) for _ in range(3)]
    assert [(e.boot, e.seq) for e in first] == [(1, 1), (1, 2), (1, 3)]
    box.close()
    box = _outbox(tmp_path)
    again = box.add(PUNCH, NOW, None)
    assert (again.boot, again.seq) == (2, 1)
    pending = box.pending(0, 10)
    assert [(p.event.boot, p.event.seq) for p in pending] == [(1, 1), (1, 2), (1, 3), (2, 1)]
    assert pending[0].event.msg_id == first[0].msg_id, "the same durable id is replayed"
    assert box.boots() == {1: 3, 2: 1}


def test_acknowledged_events_are_gone_and_order_is_kept(tmp_path: Path) -> None:
    box = _outbox(tmp_path)
    for _ in range(5):
        box.add(RatingBody(window_id="w01", level=5), NOW, "epoch")
    rows = box.pending(0, 10)
    box.acknowledge([rows[0].row_id, rows[2].row_id])
    assert [p.event.seq for p in box.pending(0, 10)] == [2, 4, 5]
    assert [p.event.seq for p in box.pending(rows[1].row_id, 10)] == [4, 5]
    assert rows[0].link_epoch == "epoch"


def test_full_outbox_drops_oldest_heartbeat_first(tmp_path: Path) -> None:
    box = _outbox(tmp_path, max_events=10)
    box.add(HB, NOW, None)
    for _ in range(4):
        box.add(PUNCH, NOW, None)
    box.add(HB, NOW, None)
    for _ in range(4):
        box.add(SEAT, NOW, None)
    assert box.counts().pending == 10
    box.add(PUNCH, NOW, None)
    assert _types(box).count("heartbeat") == 1
    assert box.pending(0, 1)[0].event.type == "punch", "the oldest heartbeat went"
    box.add(SEAT, NOW, None)
    assert "heartbeat" not in _types(box)
    counts = box.counts()
    assert (counts.pending, counts.dropped_heartbeats, counts.dropped_states) == (10, 2, 0)


def test_states_go_after_heartbeats_and_punches_never(tmp_path: Path) -> None:
    box = _outbox(tmp_path, max_events=10)
    for _ in range(5):
        box.add(SEAT, NOW, None)
    for _ in range(5):
        box.add(PUNCH, NOW, None)
    assert box.add(HB, NOW, None) is None, "a heartbeat never pushes out a state"
    box.add(SEAT, NOW, None)
    assert _types(box).count("seat") == 5
    for _ in range(10):
        box.add(PUNCH, NOW, None)
    types = _types(box)
    assert types.count("punch") == 15, "punches are never dropped: the outbox grows instead"
    assert types.count("seat") == 0
    counts = box.counts()
    assert (counts.dropped_heartbeats, counts.dropped_states) == (1, 6)


def test_bound_exactly_at_limit_drops_nothing(tmp_path: Path) -> None:
    box = _outbox(tmp_path, max_events=10)
    for _ in range(10):
        box.add(HB, NOW, None)
    assert box.counts() .pending == 10 and box.counts().dropped_heartbeats == 0
    box.add(HB, NOW, None)
    assert box.counts().pending == 10 and box.counts().dropped_heartbeats == 1


def test_saved_values_survive_restart(tmp_path: Path) -> None:
    box = _outbox(tmp_path)
    box.save("config", {"version": 3})
    box.close()
    assert _outbox(tmp_path).saved("config") == {"version": 3}
