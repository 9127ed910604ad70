"""The event store on both backends (SQLite file, real PostgreSQL).

Every message goes the way it goes in the server: an encoded payload on a
real device topic, checked by ``check_message`` against the registry the
store holds, then ``Store.ingest``.  The assertions are about what an
operator would see: rows in the tables, device health, window states and
rejection reasons.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.orm import Session

from broker.protocol import (
    MAX_PAYLOAD_BYTES,
    Body,
    DeviceStatus,
    PauseBody,
    RatingBody,
    SeatBody,
    device_topic,
    encode,
    make_event,
)
from server.rules.supervision import instant_state
from server.db import MIGRATIONS, DeviceRow, EventRow, RejectionRow, WindowRow, make_engine, migrate
from server.config.hall import load_hall
from server.ingest.batch import Changes, Inbound
from server.devices.register import add_device
from server.ingest.store import Store
from server.ingest.validation import check_message

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "config" / "halls" / "demo.toml"
HALL_ID = "demo"
T0 = datetime(2025, 3, 3, 1, 0, tzinfo=timezone.utc)  # 09:00 in the hall (Asia/Shanghai)
CST = timezone(timedelta(hours=8))


# --------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine):
    store = Store(engine)
    store.seed(load_hall(DEMO))
    return store


class Devices:
    """Builds inbound messages the way the ingest thread does."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.registry = store.registry()
        self._seq: dict[tuple[str, int], int] = defaultdict(int)

    def raw(self, topic: str, payload: bytes, received: datetime = T0) -> Inbound:
        return Inbound(topic, payload, received, check_message(topic, payload, self.registry))

    def event(
        self,
        device: str,
        body: Body,
        *,
        at: datetime = T0,
        boot: int = 1,
        seq: int | None = None,
        msg_id: uuid.UUID | None = None,
        received: datetime | None = None,
    ) -> Inbound:
        if seq is None:
            self._seq[device, boot] += 1
            seq = self._seq[device, boot]
        event = make_event(hall_id=HALL_ID, device_id=device, boot=boot, seq=seq, event_time=at, body=body, msg_id=msg_id)
        return self.raw(device_topic(HALL_ID, device, "evt", event.type), encode(event), received or at)

    def status(self, device: str, state: str, *, boot: int = 1, at: datetime = T0, heartbeat_s: float = 10) -> Inbound:
        kind = self.registry[device].kind
        status = DeviceStatus(
            hall_id=HALL_ID, device_id=device, kind=kind, boot=boot, state=state, time=at,
            heartbeat_s=heartbeat_s, software="hallwatch-agent 0.1.0",
        )
        return self.raw(device_topic(HALL_ID, device, "status"), encode(status), at)

    def ingest(self, *items: Inbound) -> Changes:
        return self.store.ingest(list(items))


@pytest.fixture
def dev(store):
    return Devices(store)


def seat(window: str, state: str = "occupied") -> SeatBody:
    return SeatBody(window_id=window, state=state, confidence=0.93)


def pause(window: str, paused: bool = True) -> PauseBody:
    return PauseBody(window_id=window, paused=paused, source="evaluator", reason="午休" if paused else None)


def rating(window: str, level: int = 5) -> RatingBody:
    return RatingBody(window_id=window, level=level)


def events(engine) -> list[EventRow]:
    with Session(engine) as session:
        return list(session.scalars(select(EventRow).order_by(EventRow.id)))


def rejections(engine) -> list[RejectionRow]:
    with Session(engine) as session:
        return list(session.scalars(select(RejectionRow).order_by(RejectionRow.id)))


def window(engine, window_id: str) -> WindowRow:
    with Session(engine) as session:
        row = session.get(WindowRow, window_id)
        assert row is not None
        return row


def state(engine, window_id: str) -> str:
    """The state the supervision core's rule gives for the stored facts during open hours."""
    row = window(engine, window_id)
    camera = device(engine, row.camera_device).status if row.camera_device else None
    occupied = None if row.seat_state is None else row.seat_state == "occupied"
    return instant_state(True, camera == "online", occupied, row.paused)


def device(engine, device_id: str) -> DeviceRow:
    with Session(engine) as session:
        row = session.get(DeviceRow, device_id)
        assert row is not None
        return row


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------


def test_seed_registers_the_hall(store, engine):
    registry = store.registry()
    assert len(registry) == 18
    assert registry["cam-01"].kind == "window_camera"
    assert registry["cam-01"].windows == frozenset({"w01", "w02", "w03"})
    assert registry["ft-01"].windows == frozenset()
    assert set(store.device_statuses().values()) == {"never_seen"}
    with Session(engine) as session:
        windows = session.scalars(select(WindowRow).order_by(WindowRow.id)).all()
        assert [w.id for w in windows] == [f"w{i:02d}" for i in range(1, 13)]
        assert {w.state for w in windows} == {"unknown"}
        assert window(engine, "w05").camera_device == "cam-02"
        assert window(engine, "w01").department == "市场监管局"


def test_reseeding_keeps_live_state(store, dev, engine):
    dev.ingest(dev.status("cam-01", "online"), dev.event("cam-01", seat("w01")))
    assert state(engine, "w01") == "staffed"
    store.seed(load_hall(DEMO))
    assert store.device_statuses()["cam-01"] == "online"
    assert state(engine, "w01") == "staffed"


def test_added_device_can_speak(store, engine):
    add_device(engine, HALL_ID, "btn-01", "pause_button", ["w07"])
    dev = Devices(store)
    changes = dev.ingest(dev.event("btn-01", PauseBody(window_id="w07", paused=True, source="button")))
    assert len(changes.events) == 1 and not changes.rejections
    assert store.device_statuses()["btn-01"] == "never_seen"


# --------------------------------------------------------------------------
# Exactly once
# --------------------------------------------------------------------------


def test_an_event_is_stored_once(dev, engine):
    item = dev.event("ev-01", rating("w01", 4), at=T0.astimezone(CST), received=T0 + timedelta(seconds=2))
    changes = dev.ingest(item)
    assert [e.msg_id for e in changes.events] == [item.checked.msg_id]
    assert changes.duplicates == 0 and changes.rejections == []
    [row] = events(engine)
    assert row.msg_id == str(item.checked.msg_id)
    assert (row.hall_id, row.device_id, row.boot, row.seq) == (HALL_ID, "ev-01", 1, 1)
    assert (row.type, row.window_id, row.historical) == ("rating", "w01", False)
    assert row.body == {"window_id": "w01", "level": 4, "clerk_id": None, "ticket": None, "cases": []}
    assert row.event_time == T0
    assert row.received_time == T0 + timedelta(seconds=2)
    assert rejections(engine) == []


def test_redelivered_message_is_a_duplicate(dev, engine):
    item = dev.event("ev-01", rating("w01"))
    first = dev.ingest(item)
    second = dev.ingest(item)
    assert (len(first.events), first.duplicates) == (1, 0)
    assert (len(second.events), second.duplicates) == (0, 1)
    assert len(events(engine)) == 1


def test_same_device_boot_seq_with_a_new_msg_id_is_a_duplicate(dev, engine):
    original = dev.event("ev-01", rating("w01", 5), seq=7)
    replay = dev.event("ev-01", rating("w01", 1), seq=7)  # same seq, fresh msg_id
    assert original.checked.msg_id != replay.checked.msg_id
    dev.ingest(original)
    changes = dev.ingest(replay)
    assert (len(changes.events), changes.duplicates) == (0, 1)
    [row] = events(engine)
    assert row.msg_id == str(original.checked.msg_id)
    assert row.body["level"] == 5


def test_same_msg_id_with_another_seq_is_a_duplicate(dev, engine):
    msg_id = uuid.uuid4()
    dev.ingest(dev.event("ev-01", rating("w01"), seq=1, msg_id=msg_id))
    changes = dev.ingest(dev.event("ev-01", rating("w01"), seq=2, msg_id=msg_id))
    assert (len(changes.events), changes.duplicates) == (0, 1)
    assert [r.seq for r in events(engine)] == [1]


def test_duplicates_within_one_batch(dev, engine):
    a = dev.event("ev-01", rating("w01", 5), seq=1)
    same_seq = dev.event("ev-01", rating("w01", 2), seq=1)
    b = dev.event("ev-01", rating("w01", 3), seq=2)
    changes = dev.ingest(a, a, same_seq, b, b)
    assert [e.seq for e in changes.events] == [1, 2]
    assert changes.duplicates == 3
    assert [(r.seq, r.body["level"]) for r in events(engine)] == [(1, 5), (2, 3)]


def test_a_new_boot_restarts_seq_without_duplicates(dev, engine):
    dev.ingest(dev.event("ev-01", rating("w01"), boot=1, seq=1))
    changes = dev.ingest(dev.event("ev-01", rating("w01"), boot=2, seq=1))
    assert (len(changes.events), changes.duplicates) == (1, 0)
    assert [(r.boot, r.seq) for r in events(engine)] == [(1, 1), (2, 1)]


def test_a_batch_mixing_new_old_and_rejected(dev, engine):
    old = dev.event("ev-02", rating("w02"))
    dev.ingest(old)
    new = dev.event("ev-02", rating("w02", 1))
    bad = dev.raw(device_topic(HALL_ID, "ev-02", "evt", "rating"), b"{}")
    changes = dev.ingest(old, bad, new)
    assert (len(changes.events), changes.duplicates, len(changes.rejections)) == (1, 1, 1)
    assert len(events(engine)) == 2 and len(rejections(engine)) == 1


# --------------------------------------------------------------------------
# Rejections: stored with reason and excerpt, never silently lost
# --------------------------------------------------------------------------


def _foreign_event(hall: str, device: str, body: Body) -> bytes:
    return encode(make_event(hall_id=hall, device_id=device, boot=1, seq=1, event_time=T0, body=body))


REJECTED = {
    "unknown device": (
        device_topic(HALL_ID, "cam-99", "evt", "seat"),
        _foreign_event(HALL_ID, "cam-99", seat("w01")),
        "cam-99",
        "unknown device 'cam-99'",
    ),
    "bad json": (
        device_topic(HALL_ID, "ev-01", "evt", "rating"),
        b'{"msg_id": "not even json',
        "ev-01",
        "Invalid JSON",
    ),
    "oversized": (
        device_topic(HALL_ID, "ev-01", "evt", "rating"),
        b'{"pad": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}',
        "ev-01",
        f"exceeds the {MAX_PAYLOAD_BYTES}-byte limit",
    ),
    "topic of another hall": (
        device_topic("other-hall", "ev-01", "evt", "rating"),
        _foreign_event("other-hall", "ev-01", rating("w01")),
        "ev-01",
        "belongs to hall 'demo', not 'other-hall'",
    ),
    "message for another hall": (
        device_topic(HALL_ID, "ev-01", "evt", "rating"),
        _foreign_event("other-hall", "ev-01", rating("w01")),
        "ev-01",
        "topic is for demo/ev-01 but the message says other-hall/ev-01",
    ),
    "speaking for another device": (
        device_topic(HALL_ID, "ev-01", "evt", "rating"),
        _foreign_event(HALL_ID, "ev-02", rating("w02")),
        "ev-01",
        "topic is for demo/ev-01 but the message says demo/ev-02",
    ),
    "window of another device": (
        device_topic(HALL_ID, "ev-01", "evt", "rating"),
        _foreign_event(HALL_ID, "ev-01", rating("w02")),
        "ev-01",
        "device 'ev-01' does not serve window 'w02'",
    ),
    "event type of another kind": (
        device_topic(HALL_ID, "ev-01", "evt", "seat"),
        _foreign_event(HALL_ID, "ev-01", seat("w01")),
        "ev-01",
        "a evaluator may not send 'seat' events",
    ),
    "status of another kind": (
        device_topic(HALL_ID, "ev-01", "status"),
        encode(DeviceStatus(hall_id=HALL_ID, device_id="ev-01", kind="window_camera", boot=1, state="online",
                            time=T0, heartbeat_s=10, software="x")),
        "ev-01",
        "registered as evaluator, not window_camera",
    ),
}


@pytest.mark.parametrize("case", list(REJECTED), ids=[c.replace(" ", "-") for c in REJECTED])
def test_rejection_is_stored_with_reason_and_excerpt(case, dev, engine, store):
    topic, payload, device_id, reason = REJECTED[case]
    received = T0 + timedelta(minutes=5)
    changes = dev.ingest(dev.raw(topic, payload, received))
    assert changes.events == [] and changes.duplicates == 0
    assert [r.reason for r in changes.rejections] == [rejections(engine)[0].reason]
    [row] = rejections(engine)
    assert reason in row.reason
    assert row.device_id == device_id
    assert row.topic == topic
    assert row.received_time == received
    assert row.excerpt == payload[:300].decode()
    assert len(row.excerpt) <= 300
    assert events(engine) == []
    assert set(store.device_statuses().values()) == {"never_seen"}  # a rejected status changes nothing
    assert {w.state for w in _all_windows(engine)} == {"unknown"}


def _all_windows(engine) -> list[WindowRow]:
    with Session(engine) as session:
        return list(session.scalars(select(WindowRow)))


def test_the_same_bad_message_twice_is_recorded_twice(dev, engine):
    bad = dev.raw(device_topic(HALL_ID, "ev-01", "evt", "rating"), b"garbage")
    dev.ingest(bad)
    dev.ingest(bad)
    assert len(rejections(engine)) == 2


def test_rejection_excerpt_of_non_utf8_payload(dev, engine):
    payload = "评价".encode("gbk") + b"\xff" * 400
    dev.ingest(dev.raw(device_topic(HALL_ID, "ev-01", "evt", "rating"), payload))
    [row] = rejections(engine)
    assert "Invalid JSON" in row.reason
    assert "\ufffd" in row.excerpt and len(row.excerpt) <= 300


# --------------------------------------------------------------------------
# Device health: birth and last will
# --------------------------------------------------------------------------


def test_birth_makes_a_device_online_and_its_will_offline(dev, store, engine):
    changes = dev.ingest(dev.status("cam-01", "online", boot=3, at=T0, heartbeat_s=15))
    assert store.device_statuses()["cam-01"] == "online"
    assert set(changes.devices) == {"cam-01"}
    row = device(engine, "cam-01")
    assert (row.boot, row.heartbeat_s, row.software) == (3, 15, "hallwatch-agent 0.1.0")
    assert row.last_seen == T0

    dev.ingest(dev.status("cam-01", "offline", boot=3, at=T0 + timedelta(minutes=1)))
    assert store.device_statuses()["cam-01"] == "offline"
    assert store.device_statuses()["cam-02"] == "never_seen"


def test_a_late_will_of_an_older_boot_leaves_the_device_online(dev, store, engine):
    dev.ingest(dev.status("cam-01", "online", boot=1, at=T0))
    dev.ingest(dev.status("cam-01", "online", boot=2, at=T0 + timedelta(seconds=30)))
    changes = dev.ingest(dev.status("cam-01", "offline", boot=1, at=T0 + timedelta(seconds=31)))
    assert store.device_statuses()["cam-01"] == "online"
    assert device(engine, "cam-01").boot == 2
    assert "cam-01" not in changes.devices


def test_a_late_will_in_the_same_batch_as_the_new_birth(dev, store, engine):
    dev.ingest(dev.status("cam-01", "online", boot=1))
    dev.ingest(
        dev.status("cam-01", "online", boot=2, at=T0 + timedelta(seconds=5)),
        dev.status("cam-01", "offline", boot=1, at=T0 + timedelta(seconds=6)),
    )
    assert store.device_statuses()["cam-01"] == "online"


# --------------------------------------------------------------------------
# Window state
# --------------------------------------------------------------------------


def test_camera_never_seen_leaves_an_occupied_window_unknown(dev, engine):
    dev.ingest(dev.event("cam-01", seat("w01", "occupied")))
    row = window(engine, "w01")
    assert row.seat_state == "occupied"
    assert state(engine, "w01") == "unknown"


def test_online_camera_and_occupied_seat_is_staffed(dev, engine):
    dev.ingest(dev.status("cam-01", "online"))
    assert state(engine, "w01") == "unknown"  # online, but no seat fact yet
    changes = dev.ingest(dev.event("cam-01", seat("w01", "occupied"), at=T0 + timedelta(seconds=1)))
    assert state(engine, "w01") == "staffed"
    assert "w01" in changes.windows
    assert state(engine, "w02") == "unknown"


def test_birth_and_seat_in_one_batch(dev, engine):
    dev.ingest(dev.event("cam-01", seat("w02")), dev.status("cam-01", "online"))
    assert state(engine, "w02") == "staffed"


def test_vacant_seat_is_vacant(dev, engine):
    dev.ingest(dev.status("cam-01", "online"), dev.event("cam-01", seat("w01", "occupied")))
    dev.ingest(dev.event("cam-01", seat("w01", "vacant"), at=T0 + timedelta(minutes=3)))
    row = window(engine, "w01")
    assert state(engine, "w01") == "vacant"
    assert row.seat_time == T0 + timedelta(minutes=3)


def test_pause_wins_over_the_seat_and_resume_restores_it(dev, engine):
    dev.ingest(dev.status("cam-01", "online"), dev.event("cam-01", seat("w01", "vacant")))
    dev.ingest(dev.event("ev-01", pause("w01", True), at=T0 + timedelta(minutes=1)))
    row = window(engine, "w01")
    assert (state(engine, "w01"), row.paused, row.pause_reason) == ("paused", True, "午休")
    dev.ingest(dev.event("ev-01", pause("w01", False), at=T0 + timedelta(minutes=30)))
    row = window(engine, "w01")
    assert (state(engine, "w01"), row.paused, row.pause_reason) == ("vacant", False, None)


def test_camera_offline_makes_windows_unknown_never_vacant(dev, engine):
    dev.ingest(
        dev.status("cam-01", "online"),
        dev.event("cam-01", seat("w01", "vacant")),
        dev.event("cam-01", seat("w02", "occupied")),
    )
    assert (state(engine, "w01"), state(engine, "w02")) == ("vacant", "staffed")
    changes = dev.ingest(dev.status("cam-01", "offline", at=T0 + timedelta(minutes=2)))
    assert {w: state(engine, w) for w in ("w01", "w02", "w03")} == {"w01": "unknown", "w02": "unknown", "w03": "unknown"}
    assert {"w01", "w02"} <= set(changes.windows)
    assert state(engine, "w04") == "unknown"  # another camera's windows untouched
    dev.ingest(dev.status("cam-01", "online", boot=2, at=T0 + timedelta(minutes=3)))
    assert (state(engine, "w01"), state(engine, "w02")) == ("vacant", "staffed")


def test_an_older_seat_event_does_not_roll_the_state_back(dev, engine):
    dev.ingest(dev.status("cam-01", "online"))
    newer = dev.event("cam-01", seat("w01", "occupied"), at=T0 + timedelta(minutes=10))
    older = dev.event("cam-01", seat("w01", "vacant"), at=T0 + timedelta(minutes=5), received=T0 + timedelta(minutes=11))
    dev.ingest(newer)
    changes = dev.ingest(older)
    assert len(changes.events) == 1  # stored for history ...
    row = window(engine, "w01")  # ... but the state stays
    assert (state(engine, "w01"), row.seat_state, row.seat_time) == ("staffed", "occupied", T0 + timedelta(minutes=10))
    assert "w01" not in changes.windows


def test_an_older_seat_event_in_the_same_batch_does_not_win(dev, engine):
    dev.ingest(
        dev.status("cam-01", "online"),
        dev.event("cam-01", seat("w01", "occupied"), at=T0 + timedelta(minutes=10)),
        dev.event("cam-01", seat("w01", "vacant"), at=T0 + timedelta(minutes=5)),
    )
    assert state(engine, "w01") == "staffed"


def test_an_older_pause_does_not_roll_back(dev, engine):
    dev.ingest(dev.status("cam-01", "online"), dev.event("cam-01", seat("w01")))
    dev.ingest(dev.event("ev-01", pause("w01", False), at=T0 + timedelta(minutes=10)))
    dev.ingest(dev.event("ev-01", pause("w01", True), at=T0 + timedelta(minutes=9)))
    assert state(engine, "w01") == "staffed"


def test_a_duplicate_seat_event_changes_nothing(dev, engine):
    dev.ingest(dev.status("cam-01", "online"))
    occupied = dev.event("cam-01", seat("w01", "occupied"), at=T0 + timedelta(minutes=1))
    dev.ingest(occupied)
    dev.ingest(dev.event("cam-01", seat("w01", "vacant"), at=T0 + timedelta(minutes=2)))
    changes = dev.ingest(occupied)  # redelivered old message
    assert changes.duplicates == 1 and changes.windows == {}
    assert state(engine, "w01") == "vacant"


# --------------------------------------------------------------------------
# Sweep: silence makes a device stale and its windows unknown
# --------------------------------------------------------------------------


def test_sweep_marks_a_silent_camera_stale_and_its_windows_unknown(dev, store, engine):
    dev.ingest(
        dev.status("cam-01", "online", heartbeat_s=10),
        dev.status("cam-02", "online", heartbeat_s=10),
        dev.event("cam-01", seat("w01")),
        dev.event("cam-02", seat("w04")),
    )
    assert (state(engine, "w01"), state(engine, "w04")) == ("staffed", "staffed")

    early = store.sweep(T0 + timedelta(seconds=25))  # within 3 × heartbeat
    assert early.devices == {} and early.windows == {}
    assert store.device_statuses()["cam-01"] == "online"

    dev.ingest(dev.event("cam-02", seat("w04"), at=T0 + timedelta(seconds=50)))  # cam-02 keeps talking
    later = T0 + timedelta(seconds=60)
    changes = store.sweep(later)
    statuses = store.device_statuses()
    assert statuses["cam-01"] == "stale"
    assert statuses["cam-02"] == "online"
    assert statuses["ev-01"] == "never_seen"
    assert set(changes.devices) == {"cam-01"}
    assert {w: state(engine, w) for w in ("w01", "w02", "w03")} == {"w01": "unknown", "w02": "unknown", "w03": "unknown"}
    assert state(engine, "w04") == "staffed"
    assert "w01" in changes.windows, "the page hears of the camera's windows"

    # the camera speaks again: online, and the window's facts count again
    dev.ingest(dev.event("cam-01", seat("w01"), at=later + timedelta(seconds=1)))
    assert store.device_statuses()["cam-01"] == "online"
    assert state(engine, "w01") == "staffed"


def test_sweep_far_ahead_marks_every_online_device_stale(dev, store, engine):
    dev.ingest(dev.status("cam-03", "online", heartbeat_s=30), dev.status("ev-07", "online", heartbeat_s=60))
    store.sweep(T0 + timedelta(days=1))
    statuses = store.device_statuses()
    assert (statuses["cam-03"], statuses["ev-07"]) == ("stale", "stale")
    assert statuses["cam-01"] == "never_seen"  # never seen is not stale
    assert store.sweep(T0 + timedelta(days=2)).devices == {}  # stale once


def test_sweep_leaves_offline_devices_offline(dev, store):
    dev.ingest(dev.status("cam-01", "online"), dev.status("cam-01", "offline"))
    store.sweep(T0 + timedelta(days=1))
    assert store.device_statuses()["cam-01"] == "offline"


# --------------------------------------------------------------------------
# Schema and time
# --------------------------------------------------------------------------


def _head() -> str:
    """The newest migration on disk, so adding one does not break this test."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def test_migrate_twice_is_harmless(dev, engine, store):
    dev.ingest(dev.status("cam-01", "online"), dev.event("cam-01", seat("w01")))
    migrate(engine)
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [_head()]
        assert conn.execute(select(func.count()).select_from(EventRow)).scalar() == 1
    assert set(inspect(engine).get_table_names()) >= {"devices", "windows", "events", "rejections", "alembic_version"}
    assert state(engine, "w01") == "staffed"
    assert len(store.registry()) == 18


def test_the_migrations_build_exactly_the_schema_the_models_declare(engine):
    """Tables, columns and indexes: a model changed without its migration (or the reverse) fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import server.web.app  # noqa: F401  (every capability's tables, patrol's among them, are declared by now)
    from server.db import Base

    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    structural = [d for d in diffs if d[0] in ("add_table", "remove_table", "add_column", "remove_column", "add_index", "remove_index")]
    assert structural == []


def _is_utc(value: datetime | None) -> bool:
    return value is not None and value.tzinfo is not None and value.utcoffset() == timedelta(0)


def test_times_come_back_timezone_aware_utc(dev, engine):
    local = datetime(2025, 3, 3, 9, 30, 15, 123456, tzinfo=CST)  # hall-local clock of the device
    received = datetime(2025, 3, 3, 1, 30, 16, tzinfo=timezone.utc)
    dev.ingest(
        dev.status("cam-01", "online", at=received),
        dev.event("cam-01", seat("w01"), at=local, received=received),
        dev.raw(device_topic(HALL_ID, "ev-01", "evt", "rating"), b"nope", received),
    )
    [event] = events(engine)
    assert _is_utc(event.event_time) and event.event_time == local
    assert event.event_time.hour == 1 and event.event_time.microsecond == 123456
    assert _is_utc(event.received_time) and event.received_time == received
    row = window(engine, "w01")
    assert _is_utc(row.seat_time) and row.seat_time == local
    assert _is_utc(device(engine, "cam-01").last_seen)
    assert _is_utc(rejections(engine)[0].received_time)


def test_naive_times_are_refused(engine):
    with pytest.raises(Exception, match="naive datetime"):
        with Session(engine) as session, session.begin():
            session.add(RejectionRow(received_time=datetime(2025, 1, 1), topic="t", reason="r", excerpt=""))


# --------------------------------------------------------------------------
# Hostile values that SQL cannot hold (NUL, huge integers, year 1): the good
# message of the batch is stored and the bad one is accounted for (stored, or
# recorded as a rejection), on both backends.
# --------------------------------------------------------------------------


def _evt_payload(**overrides) -> bytes:
    event = make_event(hall_id=HALL_ID, device_id="ev-01", boot=1, seq=1, event_time=T0, body=rating("w01"))
    return encode(event.model_copy(update=overrides))


POISON = {
    # case: (topic, payload factory)
    "nul-bytes-in-rejected-payload": (
        device_topic(HALL_ID, "ev-01", "evt", "rating"),
        lambda: b"\x00\x01garbage",
    ),
    "unknown-device-id-longer-than-64": (
        f"hw/v1/{HALL_ID}/dev/{'x' * 100}/evt/rating",
        lambda: b"{}",
    ),
    "seq-above-int32": (
        device_topic(HALL_ID, "ev-01", "evt", "rating"),
        lambda: _evt_payload(seq=2**31, msg_id=uuid.uuid4()),
    ),
    "seq-above-int64": (
        device_topic(HALL_ID, "ev-01", "evt", "rating"),
        lambda: _evt_payload(seq=2**63, msg_id=uuid.uuid4()),
    ),
    "status-boot-above-int32": (
        device_topic(HALL_ID, "cam-01", "status"),
        lambda: encode(DeviceStatus.model_construct(schema_version=1, reason=None, hall_id=HALL_ID, device_id="cam-01", kind="window_camera", boot=2**31,
                                    state="online", time=T0, heartbeat_s=10, software="x")),
    ),
    "event-time-in-year-1-with-offset": (
        device_topic(HALL_ID, "ev-01", "evt", "rating"),
        lambda: _evt_payload(msg_id=uuid.uuid4()).replace(b'"2025-03-03T01:00:00Z"', b'"0001-01-01T00:00:00+08:00"'),
    ),
    "nul-in-pause-reason": (
        device_topic(HALL_ID, "ev-01", "evt", "pause"),
        lambda: encode(make_event(hall_id=HALL_ID, device_id="ev-01", boot=1, seq=5, event_time=T0,
                                  body=PauseBody(window_id="w01", paused=True, source="evaluator", reason="a"))).replace(b'"reason":"a"', b'"reason":"a\\u0000b"'),
    ),
    "nul-in-status-software": (
        device_topic(HALL_ID, "cam-01", "status"),
        lambda: encode(DeviceStatus.model_construct(schema_version=1, reason=None, hall_id=HALL_ID, device_id="cam-01", kind="window_camera", boot=1,
                                    state="online", time=T0, heartbeat_s=10, software="agent\x00")),
    ),
}


@pytest.mark.parametrize("case", list(POISON))
def test_one_unstorable_message_does_not_sink_the_batch(case, request, db_url, dev, engine):
    topic, payload = POISON[case]
    good = dev.event("ev-02", rating("w02"), seq=1)
    hostile = dev.raw(topic, payload())
    changes = dev.ingest(good, hostile)
    assert str(good.checked.msg_id) in {r.msg_id for r in events(engine)}
    accounted = len(changes.events) + len(changes.rejections) + len(changes.devices)
    assert accounted == 2
