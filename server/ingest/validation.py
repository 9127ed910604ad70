"""Every inbound message is checked here before anything is stored — pure.

A device may speak only for itself, only in its own hall, only the event
types its kind produces, and only about the windows it is registered to.
Anything else is rejected with a reason a hall's IT officer can act on.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.protocol import (
    DeviceStatus,
    Event,
    ProtocolError,
    decode,
    decode_event,
    parse_device_topic,
)

KIND_EVENTS: dict[str, frozenset[str]] = {
    "face_terminal": frozenset({"punch"}),
    "window_camera": frozenset({"seat", "seat_heartbeat"}),
    "evaluator": frozenset({"rating", "pause", "clerk_login"}),
    "pause_button": frozenset({"pause"}),
    "queue_gateway": frozenset({"pause", "rating", "clerk_login", "ticket"}),
}
COMMON_EVENTS = frozenset({"heartbeat", "ack"})


@dataclass(frozen=True)
class KnownDevice:
    hall_id: str
    kind: str
    windows: frozenset[str]


@dataclass(frozen=True)
class Rejection:
    reason: str
    device_id: str | None = None


Checked = Event | DeviceStatus | Rejection


def check_message(topic: str, payload: bytes, registry: dict[str, KnownDevice]) -> Checked:
    """Validate one MQTT message against the protocol and the device registry."""
    try:
        where = parse_device_topic(topic)
    except ValueError as exc:
        return Rejection(str(exc))
    device = registry.get(where.device_id)
    if device is None:
        return Rejection(f"unknown device {where.device_id!r}", where.device_id)
    if device.hall_id != where.hall_id:
        return Rejection(f"device {where.device_id!r} belongs to hall {device.hall_id!r}, not {where.hall_id!r}", where.device_id)
    try:
        if where.channel == "status":
            message: Event | DeviceStatus = decode(payload, DeviceStatus)
        elif where.channel == "evt":
            message = decode_event(payload)
        else:
            return Rejection(f"devices do not publish on {where.channel!r}", where.device_id)
    except ProtocolError as exc:
        return Rejection(exc.reason, where.device_id)
    if message.hall_id != where.hall_id or message.device_id != where.device_id:
        return Rejection(
            f"topic is for {where.hall_id}/{where.device_id} but the message says {message.hall_id}/{message.device_id}",
            where.device_id,
        )
    if isinstance(message, DeviceStatus):
        if message.kind != device.kind:
            return Rejection(f"device {where.device_id!r} is registered as {device.kind}, not {message.kind}", where.device_id)
        return message
    if message.type != where.event_type:
        return Rejection(f"topic says {where.event_type!r} but the message is {message.type!r}", where.device_id)
    if message.type not in KIND_EVENTS.get(device.kind, frozenset()) | COMMON_EVENTS:
        return Rejection(f"a {device.kind} may not send {message.type!r} events", where.device_id)
    window_id = getattr(message.body, "window_id", None)
    if window_id is not None and window_id not in device.windows:
        return Rejection(f"device {where.device_id!r} does not serve window {window_id!r}", where.device_id)
    return message
