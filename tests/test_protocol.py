"""Behaviour of broker/protocol.py: models, encoding, decoding, topics.

Every side imports this module, so these tests pin down what a payload must
look like to be accepted and what the rejection says when it is not.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, get_args
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from broker.protocol import (
    BODY_TYPES,
    DROP_CLASS,
    EVENT_MODELS,
    MAX_PAYLOAD_BYTES,
    NEVER_DROPPED,
    TOPIC_ROOT,
    AckBody,
    ClerkLoginBody,
    Command,
    DeviceConfig,
    DeviceStatus,
    EventType,
    GalleryNotice,
    HeartbeatBody,
    PauseBody,
    ProtocolError,
    PunchBody,
    RatingBody,
    TicketBody,
    SeatBody,
    SeatHeartbeatBody,
    ServerStatus,
    decode,
    decode_event,
    device_topic,
    encode,
    make_event,
    parse_device_topic,
    server_status_topic,
    server_subscriptions,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2025, 3, 18, 9, 0, 0, tzinfo=SHANGHAI)
MSG_ID = uuid.UUID("3f2b8c1e-6d4a-4e7b-9a51-0c2d7e8f9a10")

BODIES: dict[str, BaseModel] = {
    "punch": PunchBody(person_id="c01", method="face", distance=0.31, margin=0.22, liveness=0.98, quality=0.87),
    "seat": SeatBody(window_id="w01", seat="main", state="occupied", confidence=0.97, occupant="c01", snapshot_id="s-1"),
    "seat_heartbeat": SeatHeartbeatBody(window_id="w01", state="vacant", confidence=0.9),
    "rating": RatingBody(window_id="w01", level=5, clerk_id="c01", ticket="A023", cases=["330802-2025-000481"]),
    "ticket": TicketBody(window_id="w01", ticket="A023", state="finished", clerk_id="c01"),
    "pause": PauseBody(window_id="w01", paused=True, source="evaluator", reason="午间交接"),
    "clerk_login": ClerkLoginBody(window_id="w01", clerk_id=None),
    "heartbeat": HeartbeatBody(uptime_s=12.5, outbox_pending=3, dropped_heartbeats=0, dropped_states=1),
    "ack": AckBody(ref="command", ref_id="c-1", ok=True, detail="pong"),
}

OTHERS: list[BaseModel] = [
    DeviceStatus(
        hall_id="demo", device_id="cam-01", kind="window_camera", boot=3, state="online",
        time=T0, heartbeat_s=30, software="hallwatch-agent/0.1",
    ),
    DeviceStatus(
        hall_id="demo", device_id="cam-01", kind="window_camera", boot=3, state="offline",
        time=T0, heartbeat_s=0.5, software="x", reason="connection lost",
    ),
    ServerStatus(state="online", time=T0),
    ServerStatus(state="offline", time=T0.astimezone(timezone.utc)),
    DeviceConfig(version=4, issued_at=T0, settings={"heartbeat_s": 30, "nested": {"a": [1, 2]}, "名称": "值"}),
    Command(cmd_id="c-20250318_0001", name="ping", issued_at=T0),
    Command(cmd_id="X", name="snapshot", args={"window_id": "w01"}, issued_at=T0),
    GalleryNotice(version=12, sha256="9f2c" * 16, size=1843212, issued_at=T0),
]


def _event(event_type: str = "seat", **fields: Any) -> Any:
    values: dict[str, Any] = dict(
        hall_id="demo", device_id="cam-01", boot=3, seq=118, event_time=T0, body=BODIES[event_type], msg_id=MSG_ID
    )
    values.update(fields)
    return make_event(**values)


def _raw(event_type: str = "seat") -> dict[str, Any]:
    """A valid event as a plain JSON object, to be broken by a test."""
    return json.loads(encode(_event(event_type)))


def _payload(raw: Any) -> bytes:
    return json.dumps(raw, ensure_ascii=False).encode("utf-8")


def _reason(payload: bytes, model: type[BaseModel] | None = None) -> str:
    with pytest.raises(ProtocolError) as caught:
        if model is None:
            decode_event(payload)
        else:
            decode(payload, model)
    assert caught.value.reason == str(caught.value)
    return caught.value.reason


# --------------------------------------------------------------------------
# Round trips and the discriminator
# --------------------------------------------------------------------------


def test_sample_bodies_cover_every_event_type() -> None:
    assert set(BODIES) == set(EVENT_MODELS) == set(get_args(EventType)) == set(BODY_TYPES.values())


@pytest.mark.parametrize("event_type", list(EVENT_MODELS))
def test_event_round_trip(event_type: str) -> None:
    event = _event(event_type)
    decoded = decode_event(encode(event))
    assert decoded == event
    assert type(decoded) is EVENT_MODELS[event_type]
    assert decoded.event_time.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize("event_type", list(EVENT_MODELS))
def test_event_round_trip_with_sent_time_and_historical(event_type: str) -> None:
    event = _event(event_type).model_copy(
        update={"sent_time": T0 + timedelta(seconds=1.25), "historical": True}
    )
    decoded = decode_event(encode(event))
    assert decoded == event
    assert decoded.historical is True
    assert decoded.sent_time == T0 + timedelta(seconds=1.25)


@pytest.mark.parametrize("message", OTHERS, ids=lambda m: type(m).__name__)
def test_other_models_round_trip(message: BaseModel) -> None:
    assert decode(encode(message), type(message)) == message


def test_encode_is_compact_utf8_json_that_keeps_nulls() -> None:
    payload = encode(_event("pause"))
    assert isinstance(payload, bytes)
    assert b"\n" not in payload and b", " not in payload
    raw = json.loads(payload.decode("utf-8"))
    assert raw["sent_time"] is None and raw["historical"] is False and raw["schema_version"] == 1
    assert raw["type"] == "pause" and raw["body"]["reason"] == "午间交接"
    assert raw["msg_id"] == str(MSG_ID)


@pytest.mark.parametrize("event_type", list(EVENT_MODELS))
def test_discriminator_picks_the_body_named_by_type(event_type: str) -> None:
    decoded = decode_event(_payload(_raw(event_type)))
    body_model = EVENT_MODELS[event_type].model_fields["body"].annotation
    assert decoded.type == event_type
    assert type(decoded.body) is body_model


def test_discriminator_uses_type_not_the_body_shape() -> None:
    # A seat_heartbeat body is also a valid seat body: the type decides.
    raw = _raw("seat_heartbeat")
    raw["type"] = "seat"
    decoded = decode_event(_payload(raw))
    assert type(decoded.body) is SeatBody and decoded.body.occupant is None
    # ... and a seat body (with occupant) is not a seat_heartbeat body.
    raw = _raw("seat")
    raw["type"] = "seat_heartbeat"
    assert "seat_heartbeat.body.occupant" in _reason(_payload(raw))


def test_defaults_are_filled_in() -> None:
    raw = _raw("seat")
    for name in ("schema_version", "sent_time", "historical"):
        del raw[name]
    del raw["body"]["seat"], raw["body"]["occupant"], raw["body"]["snapshot_id"]
    decoded = decode_event(_payload(raw))
    assert decoded.schema_version == 1 and decoded.sent_time is None and decoded.historical is False
    assert decoded.body.seat == "main" and decoded.body.occupant is None


# --------------------------------------------------------------------------
# Rejections
# --------------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = raw
        for part in parents:
            target = target[part]
        target[last] = value

    return change


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def change(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = raw
        for part in parents:
            target = target[part]
        del target[last]

    return change


REJECTED: list[tuple[str, str, Callable[[dict[str, Any]], None], list[str]]] = [
    # (case, event type, change, substrings of the reason)
    ("unknown type", "seat", _set("type", "coffee"), ["'coffee'", "does not match"]),
    ("missing type", "seat", _drop("type"), ["discriminator 'type'"]),
    ("type of another body", "seat", _set("type", "rating"), ["rating.body"]),
    ("missing msg_id", "seat", _drop("msg_id"), ["seat.msg_id", "Field required"]),
    ("msg_id not a uuid", "seat", _set("msg_id", "msg-1"), ["seat.msg_id"]),
    ("missing hall_id", "seat", _drop("hall_id"), ["seat.hall_id", "Field required"]),
    ("naive event_time", "seat", _set("event_time", "2025-03-18T09:00:00"), ["seat.event_time", "timezone"]),
    ("naive sent_time", "seat", _set("sent_time", "2025-03-18T09:00:01"), ["seat.sent_time", "timezone"]),
    ("event_time not a time", "seat", _set("event_time", "yesterday"), ["seat.event_time"]),
    ("missing event_time", "seat", _drop("event_time"), ["seat.event_time", "Field required"]),
    ("boot 0", "seat", _set("boot", 0), ["seat.boot", "greater than or equal to 1"]),
    ("boot negative", "seat", _set("boot", -1), ["seat.boot"]),
    ("seq 0", "seat", _set("seq", 0), ["seat.seq", "greater than or equal to 1"]),
    ("seq fractional", "seat", _set("seq", 1.5), ["seat.seq"]),
    ("schema_version 2", "seat", _set("schema_version", 2), ["seat.schema_version"]),
    ("rating level 0", "rating", _set("body.level", 0), ["rating.body.level", "greater than or equal to 1"]),
    ("rating level 6", "rating", _set("body.level", 6), ["rating.body.level", "less than or equal to 5"]),
    ("uppercase hall_id", "seat", _set("hall_id", "Demo"), ["seat.hall_id", "pattern"]),
    ("uppercase device_id", "seat", _set("device_id", "CAM-01"), ["seat.device_id", "pattern"]),
    ("space in device_id", "seat", _set("device_id", "cam 01"), ["seat.device_id", "pattern"]),
    ("slash in device_id", "seat", _set("device_id", "cam/01"), ["seat.device_id", "pattern"]),
    ("wildcard in device_id", "seat", _set("device_id", "+"), ["seat.device_id", "pattern"]),
    ("empty device_id", "seat", _set("device_id", ""), ["seat.device_id", "pattern"]),
    ("device_id of 65 chars", "seat", _set("device_id", "c" * 65), ["seat.device_id", "pattern"]),
    ("device_id starting with '-'", "seat", _set("device_id", "-cam"), ["seat.device_id", "pattern"]),
    ("chinese window_id", "seat", _set("body.window_id", "一号窗口"), ["seat.body.window_id", "pattern"]),
    ("uppercase window_id", "seat", _set("body.window_id", "W01"), ["seat.body.window_id", "pattern"]),
    ("slash in person_id", "punch", _set("body.person_id", "a/b"), ["punch.body.person_id", "pattern"]),
    ("extra envelope field", "seat", _set("priority", "high"), ["seat.priority", "Extra inputs are not permitted"]),
    ("extra body field", "seat", _set("body.camera", "x"), ["seat.body.camera", "Extra inputs are not permitted"]),
    ("missing body", "seat", _drop("body"), ["seat.body", "Field required"]),
    ("confidence above 1", "seat", _set("body.confidence", 1.5), ["seat.body.confidence"]),
    ("unknown seat state", "seat", _set("body.state", "away"), ["seat.body.state"]),
    ("unknown punch method", "punch", _set("body.method", "iris"), ["punch.body.method"]),
    ("negative distance", "punch", _set("body.distance", -0.1), ["punch.body.distance"]),
    ("liveness above 1", "punch", _set("body.liveness", 1.01), ["punch.body.liveness"]),
    ("pause reason too long", "pause", _set("body.reason", "长" * 201), ["pause.body.reason", "at most 200"]),
    ("unknown pause source", "pause", _set("body.source", "phone"), ["pause.body.source"]),
    ("clerk_login without clerk_id", "clerk_login", _drop("body.clerk_id"), ["clerk_login.body.clerk_id", "Field required"]),
    ("negative outbox_pending", "heartbeat", _set("body.outbox_pending", -1), ["heartbeat.body.outbox_pending"]),
    ("ack of unknown ref", "ack", _set("body.ref", "firmware"), ["ack.body.ref"]),
    ("ack detail too long", "ack", _set("body.detail", "x" * 501), ["ack.body.detail"]),
]


@pytest.mark.parametrize(("event_type", "change", "expected"), [c[1:] for c in REJECTED], ids=[c[0] for c in REJECTED])
def test_invalid_events_are_rejected_with_a_reason(
    event_type: str, change: Callable[[dict[str, Any]], None], expected: list[str]
) -> None:
    raw = _raw(event_type)
    change(raw)
    reason = _reason(_payload(raw))
    for part in expected:
        assert part in reason, f"reason {reason!r} should mention {part!r}"


@pytest.mark.parametrize("level", [1, 2, 3, 4, 5])
def test_every_rating_level_is_accepted(level: int) -> None:
    raw = _raw("rating")
    raw["body"]["level"] = level
    assert decode_event(_payload(raw)).body.level == level


@pytest.mark.parametrize("ident", ["a", "0", "cam-01", "w_12", "a" * 64, "9-_"])
def test_valid_ids_are_accepted(ident: str) -> None:
    raw = _raw("seat")
    raw["device_id"] = ident
    raw["body"]["window_id"] = ident
    decoded = decode_event(_payload(raw))
    assert decoded.device_id == ident and decoded.body.window_id == ident


@given(st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,63}\Z"))
def test_any_id_matching_the_rule_round_trips(ident: str) -> None:
    event = _event("seat", device_id=ident, hall_id=ident)
    assert decode_event(encode(event)) == event


NOT_JSON = [
    ("empty", b""),
    ("text", b"hello"),
    ("truncated", b'{"type": "seat"'),
    ("single quotes", b"{'type': 'seat'}"),
    ("trailing garbage", b'{"type": "seat"} x'),
]


@pytest.mark.parametrize("payload", [p for _, p in NOT_JSON], ids=[n for n, _ in NOT_JSON])
def test_non_json_is_rejected(payload: bytes) -> None:
    assert "Invalid JSON" in _reason(payload)


@pytest.mark.parametrize("payload", [b"[]", b'"seat"', b"42", b"null"], ids=["array", "string", "number", "null"])
def test_json_that_is_not_an_object_is_rejected(payload: bytes) -> None:
    _reason(payload)


def test_non_utf8_bytes_are_rejected() -> None:
    raw = _raw("pause")
    gbk = json.dumps(raw, ensure_ascii=False).encode("gbk")  # 午间交接 in GBK, not UTF-8
    assert "Invalid JSON" in _reason(gbk)
    assert "Invalid JSON" in _reason(b"\xff\xfe\x00{")
    assert "Invalid JSON" in _reason(_payload(raw).replace(b'"w01"', b'"w0\xff"'))


def test_non_utf8_bytes_are_rejected_for_other_models() -> None:
    # Latin-1 "é" (a lone 0xe9) is not UTF-8. (Careful: some GBK pairs, e.g. 值 = d6 b5, happen to be valid UTF-8.)
    payload = encode(OTHERS[4]).replace("值".encode(), "café".encode("latin-1"))
    assert "Invalid JSON" in _reason(payload, DeviceConfig)
    assert "Invalid JSON" in _reason(b'{"state": "online", "time": "\xc0\xaf"}', ServerStatus)


# --------------------------------------------------------------------------
# The size limit
# --------------------------------------------------------------------------


def _padded_event(size: int) -> bytes:
    """A valid event padded with JSON whitespace to exactly ``size`` bytes.

    No event body can reach 16 KiB within its fields' max_length, so the
    boundary is built with insignificant whitespace, which JSON allows.
    """
    payload = encode(_event("ack", body=AckBody(ref="config", ref_id="7", ok=False, detail="失" * 500)))
    assert len(payload) < size
    return payload[:-1] + b" " * (size - len(payload)) + b"}"


def _padded_config(size: int) -> bytes:
    """A valid DeviceConfig of exactly ``size`` bytes, padded inside a setting's string."""
    empty = encode(DeviceConfig(version=1, issued_at=T0, settings={"pad": ""}))
    config = DeviceConfig(version=1, issued_at=T0, settings={"pad": "x" * (size - len(empty))})
    payload = encode(config)
    assert len(payload) == size
    return payload


def test_event_exactly_at_the_limit_is_accepted() -> None:
    payload = _padded_event(MAX_PAYLOAD_BYTES)
    assert len(payload) == MAX_PAYLOAD_BYTES
    assert decode_event(payload).body.detail == "失" * 500


def test_event_one_byte_over_the_limit_is_rejected() -> None:
    payload = _padded_event(MAX_PAYLOAD_BYTES + 1)
    reason = _reason(payload)
    assert f"{MAX_PAYLOAD_BYTES + 1} bytes" in reason and f"{MAX_PAYLOAD_BYTES}-byte limit" in reason


def test_config_exactly_at_the_limit_is_accepted_and_one_byte_more_is_not() -> None:
    assert decode(_padded_config(MAX_PAYLOAD_BYTES), DeviceConfig).version == 1
    assert "limit" in _reason(_padded_config(MAX_PAYLOAD_BYTES + 1), DeviceConfig)


def test_limit_counts_bytes_not_characters() -> None:
    chars = MAX_PAYLOAD_BYTES // 2  # 3 bytes each in UTF-8: fewer characters than the limit, more bytes
    payload = encode(DeviceConfig(version=1, issued_at=T0, settings={"pad": "满" * chars}))
    assert len(payload.decode()) < MAX_PAYLOAD_BYTES < len(payload)
    assert "limit" in _reason(payload, DeviceConfig)


def test_size_is_checked_before_parsing() -> None:
    reason = _reason(b"\xff" * (MAX_PAYLOAD_BYTES * 4))
    assert "limit" in reason and "JSON" not in reason


# --------------------------------------------------------------------------
# Status, configuration and command payloads
# --------------------------------------------------------------------------


def _other_raw(model: type[BaseModel]) -> dict[str, Any]:
    message = next(m for m in OTHERS if type(m) is model)
    return json.loads(encode(message))


OTHER_REJECTED: list[tuple[str, type[BaseModel], str, Any, str]] = [
    # (case, model, field, value or _MISSING, part of the reason)
    ("status unknown kind", DeviceStatus, "kind", "printer", "kind"),
    ("status state", DeviceStatus, "state", "sleeping", "state"),
    ("status boot 0", DeviceStatus, "boot", 0, "boot"),
    ("status heartbeat 0", DeviceStatus, "heartbeat_s", 0, "heartbeat_s"),
    ("status heartbeat over an hour", DeviceStatus, "heartbeat_s", 3601, "heartbeat_s"),
    ("status naive time", DeviceStatus, "time", "2025-03-18T09:00:00", "time"),
    ("status uppercase device", DeviceStatus, "device_id", "Cam-01", "device_id"),
    ("status extra field", DeviceStatus, "ip", "10.0.0.5", "ip"),
    ("server naive time", ServerStatus, "time", "2025-03-18T09:00:00", "time"),
    ("server unknown state", ServerStatus, "state", "starting", "state"),
    ("config version 0", DeviceConfig, "version", 0, "version"),
    ("config settings not an object", DeviceConfig, "settings", [1], "settings"),
    ("command id with space", Command, "cmd_id", "c 1", "cmd_id"),
    ("command id too long", Command, "cmd_id", "c" * 65, "cmd_id"),
    ("command unknown name", Command, "name", "reboot", "name"),
    ("command extra field", Command, "ttl", 5, "ttl"),
    ("gallery version 0", GalleryNotice, "version", 0, "version"),
    ("gallery sha256 uppercase", GalleryNotice, "sha256", "9F2C" * 16, "sha256"),
    ("gallery sha256 short", GalleryNotice, "sha256", "9f2c" * 15, "sha256"),
    ("gallery size 0", GalleryNotice, "size", 0, "size"),
    ("gallery naive time", GalleryNotice, "issued_at", "2025-03-18T09:00:00", "issued_at"),
    ("gallery url smuggled in", GalleryNotice, "url", "http://evil/g", "url"),
]


@pytest.mark.parametrize(
    ("model", "field_name", "value", "expected"), [c[1:] for c in OTHER_REJECTED], ids=[c[0] for c in OTHER_REJECTED]
)
def test_invalid_status_config_and_commands_are_rejected(
    model: type[BaseModel], field_name: str, value: Any, expected: str
) -> None:
    raw = _other_raw(model)
    raw[field_name] = value
    assert _reason(_payload(raw), model).startswith(expected)


@pytest.mark.parametrize("model", [DeviceStatus, ServerStatus, DeviceConfig, Command, GalleryNotice])
def test_required_fields_of_other_models(model: type[BaseModel]) -> None:
    for name, info in model.model_fields.items():
        raw = _other_raw(model)
        del raw[name]
        if info.is_required():
            assert _reason(_payload(raw), model) == f"{name}: Field required"
        else:
            assert decode(_payload(raw), model) is not None


def test_a_status_is_not_an_event() -> None:
    assert "discriminator" in _reason(encode(OTHERS[0]))


# --------------------------------------------------------------------------
# Topics
# --------------------------------------------------------------------------


def test_topic_root_carries_the_schema_version() -> None:
    assert TOPIC_ROOT == "hw/v1"


@pytest.mark.parametrize("event_type", list(EVENT_MODELS))
def test_event_topic_round_trip(event_type: str) -> None:
    topic = device_topic("demo", "cam-01", "evt", event_type)
    assert topic == f"hw/v1/demo/dev/cam-01/evt/{event_type}"
    info = parse_device_topic(topic)
    assert (info.hall_id, info.device_id, info.channel, info.event_type) == ("demo", "cam-01", "evt", event_type)


@pytest.mark.parametrize("channel", ["status", "cfg", "cmd", "gal"])
def test_device_channel_topic_round_trip(channel: str) -> None:
    topic = device_topic("demo", "ev-01", channel)  # type: ignore[arg-type]
    assert topic == f"hw/v1/demo/dev/ev-01/{channel}"
    info = parse_device_topic(topic)
    assert (info.hall_id, info.device_id, info.channel, info.event_type) == ("demo", "ev-01", channel, None)


def test_server_topics() -> None:
    assert server_status_topic("demo") == "hw/v1/demo/server/status"
    assert server_subscriptions("demo") == ["hw/v1/demo/dev/+/evt/+", "hw/v1/demo/dev/+/status"]


MALFORMED_TOPICS = [
    ("evt without type", "hw/v1/demo/dev/cam-01/evt", "events need a type level"),
    ("status with type", "hw/v1/demo/dev/cam-01/status/seat", "events need a type level"),
    ("cfg with type", "hw/v1/demo/dev/cam-01/cfg/x", "events need a type level"),
    ("gal with type", "hw/v1/demo/dev/ft-01/gal/x", "events need a type level"),
    ("wrong version", "hw/v2/demo/dev/cam-01/evt/seat", "not a HallWatch device topic"),
    ("wrong root", "hallwatch/v1/demo/dev/cam-01/evt/seat", "not a HallWatch device topic"),
    ("leading slash", "/hw/v1/demo/dev/cam-01/evt/seat", "not a HallWatch device topic"),
    ("extra level after type", "hw/v1/demo/dev/cam-01/evt/seat/extra", "not a HallWatch device topic"),
    ("extra level after status", "hw/v1/demo/dev/cam-01/status/a/b", "not a HallWatch device topic"),
    ("trailing slash", "hw/v1/demo/dev/cam-01/evt/seat/", "not a HallWatch device topic"),
    ("empty type level", "hw/v1/demo/dev/cam-01/evt/", "not a HallWatch device topic"),
    ("extra level before dev", "hw/v1/demo/x/dev/cam-01/status", "not a HallWatch device topic"),
    ("missing dev level", "hw/v1/demo/cam-01/status", "not a HallWatch device topic"),
    ("empty hall", "hw/v1//dev/cam-01/status", "not a HallWatch device topic"),
    ("empty device", "hw/v1/demo/dev//status", "not a HallWatch device topic"),
    ("unknown channel", "hw/v1/demo/dev/cam-01/log", "not a HallWatch device topic"),
    ("server status", "hw/v1/demo/server/status", "not a HallWatch device topic"),
    ("empty", "", "not a HallWatch device topic"),
]


@pytest.mark.parametrize(("topic", "expected"), [c[1:] for c in MALFORMED_TOPICS], ids=[c[0] for c in MALFORMED_TOPICS])
def test_malformed_topics_are_rejected(topic: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected) as caught:
        parse_device_topic(topic)
    assert repr(topic) in str(caught.value)


@pytest.mark.parametrize("event_type", ["coffee", None, "", "SEAT", "seat/x"])
def test_device_topic_refuses_unknown_event_types(event_type: str | None) -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        device_topic("demo", "cam-01", "evt", event_type)


def test_parse_device_topic_rejects_unknown_event_types() -> None:
    with pytest.raises(ValueError):
        parse_device_topic("hw/v1/demo/dev/cam-01/evt/coffee")


def test_parse_device_topic_rejects_a_trailing_newline() -> None:
    with pytest.raises(ValueError):
        parse_device_topic("hw/v1/demo/dev/cam-01/status\n")


@pytest.mark.parametrize("field_name", ["boot", "seq"])
def test_boot_and_seq_beyond_32_bits_are_rejected(field_name: str) -> None:
    raw = _raw("seat")
    raw[field_name] = 2**31
    _reason(_payload(raw))


# --------------------------------------------------------------------------
# make_event, drop classes
# --------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", list(EVENT_MODELS))
def test_make_event_takes_the_type_from_the_body(event_type: str) -> None:
    event = make_event(hall_id="demo", device_id="cam-01", boot=1, seq=1, event_time=T0, body=BODIES[event_type])
    assert event.type == event_type
    assert type(event) is EVENT_MODELS[event_type]
    assert event.body == BODIES[event_type]
    assert BODY_TYPES[type(BODIES[event_type])] == event_type


def test_make_event_defaults() -> None:
    first = make_event(hall_id="demo", device_id="cam-01", boot=1, seq=1, event_time=T0, body=BODIES["seat"])
    second = make_event(hall_id="demo", device_id="cam-01", boot=1, seq=2, event_time=T0, body=BODIES["seat"])
    assert first.msg_id != second.msg_id and first.msg_id.version == 4
    assert first.sent_time is None and first.historical is False and first.schema_version == 1


def test_make_event_keeps_a_given_msg_id() -> None:
    assert _event("punch", msg_id=MSG_ID).msg_id == MSG_ID


def test_make_event_validates() -> None:
    with pytest.raises(ValueError, match="timezone"):
        _event("seat", event_time=datetime(2025, 3, 18, 9, 0))
    with pytest.raises(ValueError, match="seq"):
        _event("seat", seq=0)


def test_models_are_frozen() -> None:
    event = _event("seat")
    with pytest.raises(ValueError):
        event.seq = 2


def test_every_event_type_has_a_drop_class() -> None:
    assert set(DROP_CLASS) == set(EVENT_MODELS)
    assert {t for t, c in DROP_CLASS.items() if c == NEVER_DROPPED} == {"punch", "rating", "ticket", "ack"}
    assert max(DROP_CLASS.values()) == NEVER_DROPPED


@pytest.mark.parametrize("ref", ["command", "config", "gallery"])
def test_ack_refs(ref: str) -> None:
    event = _event("ack", body=AckBody(ref=ref, ref_id="12", ok=False, detail="bad signature: altered"))  # type: ignore[arg-type]
    assert decode_event(encode(event)) == event
    raw = _raw("ack")
    raw["body"]["ref"] = "photo"
    assert _reason(_payload(raw)).startswith("ack.body.ref")


def test_devices_may_not_publish_gallery_notices() -> None:
    from server.ingest.validation import KnownDevice, Rejection, check_message

    registry = {"ft-01": KnownDevice("demo", "face_terminal", frozenset())}
    notice = encode(OTHERS[-1])
    checked = check_message(device_topic("demo", "ft-01", "gal"), notice, registry)
    assert isinstance(checked, Rejection) and checked.reason == "devices do not publish on 'gal'"
