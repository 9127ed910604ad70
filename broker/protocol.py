"""The one HallWatch MQTT protocol: topic tree and message models.

Agents, the server, the simulator and the tests all import this module, so a
change here is a change for every side at once. `docs/protocol.md` documents
the same models; `tests/test_protocol_docs.py` fails when the two disagree.

Design notes (why it looks like this):

* Every event carries a durable ``msg_id`` plus ``(device_id, boot, seq)``.
  The id lets the server drop redeliveries; boot and seq let it see gaps and
  tell a restarted agent from a replaying one (Sparkplug B does the same).
* ``event_time`` drives the rules; ``sent_time`` is filled in when the outbox
  actually publishes, so lag is visible.  ``historical`` is true for events
  that were held back (broker or server down, agent restarted): they fill
  history and never raise live alerts.
* Device status is retained and doubles as the MQTT last will, so a consumer
  that starts late still sees which devices are alive (Frigate's
  availability topic), and counts are never "only on change".
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

SCHEMA_VERSION = 1
TOPIC_ROOT = f"hw/v{SCHEMA_VERSION}"
MAX_PAYLOAD_BYTES = 16 * 1024
"""Largest accepted payload. Evidence images travel separately, so any
event above this size is malformed or hostile."""

Ident = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
"""Hall, device, window and person ids: lowercase, safe inside a topic."""

Counter = Annotated[int, Field(ge=1, le=2**31 - 1)]
"""Boot counters and sequence numbers: positive and within a SQL INTEGER."""


def _text(max_length: int) -> Any:
    """Free text a person may read: bounded, no control characters (NUL breaks PostgreSQL)."""
    return Annotated[str, StringConstraints(max_length=max_length, pattern=r"^[^\x00-\x1f\x7f]*$")]


def _plausible(value: datetime) -> datetime:
    if not 2000 <= value.year < 2100:
        raise ValueError("time must be between the years 2000 and 2099")
    return value


HallTime = Annotated[AwareDatetime, AfterValidator(_plausible)]
"""A timestamp with its UTC offset, in a plausible range (a zeroed device clock is rejected)."""

EventType = Literal[
    "punch", "seat", "seat_heartbeat", "rating", "ticket", "pause", "clerk_login", "heartbeat", "ack"
]

# Outbox drop classes: when the outbox is full, class 0 goes first, then
# class 1. Class 2 (punches, ratings, acknowledgements) is never dropped.
DROP_CLASS: dict[str, int] = {
    "heartbeat": 0,
    "seat_heartbeat": 0,
    "seat": 1,
    "pause": 1,
    "clerk_login": 1,
    "punch": 2,
    "rating": 2,
    "ticket": 2,
    "ack": 2,
}
NEVER_DROPPED = 2


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# --------------------------------------------------------------------------
# Event bodies
# --------------------------------------------------------------------------


class PunchBody(_Model):
    """A clock-in punch from a face terminal (or its PIN/card fallback)."""

    person_id: Ident
    method: Literal["face", "pin", "card"]
    distance: float | None = Field(default=None, ge=0)
    margin: float | None = Field(default=None, ge=0)
    liveness: float | None = Field(default=None, ge=0, le=1)
    challenge: Literal["turn_left", "turn_right", "blink"] | None = None
    quality: float | None = Field(default=None, ge=0, le=1)


UNKNOWN_OCCUPANT = "unknown"
"""``SeatBody.occupant`` for a face seen in the seat that matches nobody enrolled."""


class SeatBody(_Model):
    """A staff seat changed between occupied and vacant, or its seated person was identified.

    Sent on change; the event time is when the change began (the camera
    decides a few seconds later, by hysteresis).  ``occupant`` is the
    identified person, ``UNKNOWN_OCCUPANT`` for a face that matches nobody,
    or None when no face could be identified (not visible).
    """

    window_id: Ident
    seat: Ident = "main"
    state: Literal["occupied", "vacant"]
    confidence: float = Field(ge=0, le=1)
    occupant: Ident | None = None
    snapshot_id: _text(128) | None = None


class SeatHeartbeatBody(_Model):
    """The seat's current state, repeated so a late consumer is never wrong."""

    window_id: Ident
    seat: Ident = "main"
    state: Literal["occupied", "vacant"]
    confidence: float = Field(ge=0, le=1)


class RatingBody(_Model):
    """One rating pressed on an evaluator keypad: 5 = 非常满意 … 1 = 非常不满意.

    One rating per transaction (一事一评): the queue ticket and, for a batch
    of cases filed together by one person (批量业务), all their case numbers
    — the batch is rated once.
    """

    window_id: Ident
    level: int = Field(ge=1, le=5)
    clerk_id: Ident | None = None
    ticket: _text(64) | None = None
    cases: list[_text(64)] = Field(default_factory=list, max_length=50)


class TicketBody(_Model):
    """The queue-calling system (叫号系统) called a ticket to a window, or the window finished serving it.

    The server learns from it which transactions were served (a rating with
    no served ticket is suspicious; a finished ticket never rated gets the
    policy's default rating after its deadline).
    """

    window_id: Ident
    ticket: _text(64)
    state: Literal["called", "finished"]
    clerk_id: Ident | None = None
    cases: list[_text(64)] = Field(default_factory=list, max_length=50)


class PauseBody(_Model):
    """The clerk paused (暂停服务) or resumed service at a window."""

    window_id: Ident
    paused: bool
    source: Literal["evaluator", "button", "queue"]
    reason: _text(200) | None = None


class ClerkLoginBody(_Model):
    """The clerk shown on an evaluator changed; ``clerk_id`` None = logged out."""

    window_id: Ident
    clerk_id: Ident | None


class HeartbeatBody(_Model):
    """Device liveness plus the outbox's health, so losses are never silent."""

    uptime_s: float = Field(ge=0)
    outbox_pending: int = Field(ge=0)
    dropped_heartbeats: int = Field(ge=0)
    dropped_states: int = Field(ge=0)


class AckBody(_Model):
    """A device acknowledges a command, a configuration version or a gallery
    version (``ok`` false with the reason when it refused the gallery)."""

    ref: Literal["command", "config", "gallery"]
    ref_id: _text(64)
    ok: bool
    detail: _text(500) | None = None


# --------------------------------------------------------------------------
# The event envelope
# --------------------------------------------------------------------------


class _Envelope(_Model):
    schema_version: Literal[1] = SCHEMA_VERSION
    msg_id: uuid.UUID
    hall_id: Ident
    device_id: Ident
    boot: Counter
    seq: Counter
    event_time: HallTime
    sent_time: HallTime | None = None
    historical: bool = False


class PunchEvent(_Envelope):
    type: Literal["punch"] = "punch"
    body: PunchBody


class SeatEvent(_Envelope):
    type: Literal["seat"] = "seat"
    body: SeatBody


class SeatHeartbeatEvent(_Envelope):
    type: Literal["seat_heartbeat"] = "seat_heartbeat"
    body: SeatHeartbeatBody


class RatingEvent(_Envelope):
    type: Literal["rating"] = "rating"
    body: RatingBody


class TicketEvent(_Envelope):
    type: Literal["ticket"] = "ticket"
    body: TicketBody


class PauseEvent(_Envelope):
    type: Literal["pause"] = "pause"
    body: PauseBody


class ClerkLoginEvent(_Envelope):
    type: Literal["clerk_login"] = "clerk_login"
    body: ClerkLoginBody


class HeartbeatEvent(_Envelope):
    type: Literal["heartbeat"] = "heartbeat"
    body: HeartbeatBody


class AckEvent(_Envelope):
    type: Literal["ack"] = "ack"
    body: AckBody


Event = Annotated[
    Union[
        PunchEvent,
        SeatEvent,
        SeatHeartbeatEvent,
        RatingEvent,
        TicketEvent,
        PauseEvent,
        ClerkLoginEvent,
        HeartbeatEvent,
        AckEvent,
    ],
    Field(discriminator="type"),
]
EVENT_MODELS: dict[str, type[_Envelope]] = {
    "punch": PunchEvent,
    "seat": SeatEvent,
    "seat_heartbeat": SeatHeartbeatEvent,
    "rating": RatingEvent,
    "ticket": TicketEvent,
    "pause": PauseEvent,
    "clerk_login": ClerkLoginEvent,
    "heartbeat": HeartbeatEvent,
    "ack": AckEvent,
}
Body = Union[
    PunchBody,
    SeatBody,
    SeatHeartbeatBody,
    RatingBody,
    TicketBody,
    PauseBody,
    ClerkLoginBody,
    HeartbeatBody,
    AckBody,
]
BODY_TYPES: dict[type[BaseModel], str] = {
    model.model_fields["body"].annotation: name for name, model in EVENT_MODELS.items()
}
_event_adapter: TypeAdapter[Any] = TypeAdapter(Event)


# --------------------------------------------------------------------------
# Device status (birth / last will), server status, configuration, commands
# --------------------------------------------------------------------------

DeviceKind = Literal["face_terminal", "window_camera", "evaluator", "pause_button", "queue_gateway"]
GALLERY_KINDS: frozenset[str] = frozenset({"face_terminal", "window_camera"})
"""Devices that run the face gallery: terminals identify who punches, window
cameras who sits in the staff seat.  Only these may read a gallery notice or
download the gallery."""


class DeviceStatus(_Model):
    """Retained on the device's status topic: the birth message on connect,
    and (with ``state`` offline) the last will the broker sends when the
    device vanishes.  ``boot`` ties birth and will to one agent run."""

    schema_version: Literal[1] = SCHEMA_VERSION
    hall_id: Ident
    device_id: Ident
    kind: DeviceKind
    boot: Counter
    state: Literal["online", "offline"]
    time: HallTime
    heartbeat_s: float = Field(gt=0, le=3600)
    software: _text(64)
    reason: _text(200) | None = None


class ServerStatus(_Model):
    """Retained server-online state. Agents replay their outbox only while
    it says online (Sparkplug's primary-host state)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    state: Literal["online", "offline"]
    time: HallTime


class DeviceConfig(_Model):
    """Retained per-device configuration pushed by the server; the device
    answers with an ``ack`` event (ref ``config``, ref_id = version)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    version: Counter
    issued_at: HallTime
    settings: dict[str, Any]


Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""A SHA-256 digest as 64 lowercase hex digits."""


class GalleryNotice(_Model):
    """Retained per-face-terminal notice that a gallery version is ready.

    The sealed gallery itself (megabytes for a large hall) is far above
    MAX_PAYLOAD_BYTES, so only this notice travels over MQTT; the terminal
    downloads the blob over HTTP, checks it against ``sha256`` and ``size``
    before anything else, then verifies its signature (see
    docs/gallery-sync.md).  Answered by an ``ack`` event (ref ``gallery``,
    ref_id = version)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    version: Counter
    sha256: Sha256Hex
    size: int = Field(ge=1)
    issued_at: HallTime


class Command(_Model):
    """A one-off instruction to a device; answered by an ``ack`` event."""

    schema_version: Literal[1] = SCHEMA_VERSION
    cmd_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    name: Literal["ping", "snapshot", "reload_config"]
    args: dict[str, Any] = Field(default_factory=dict)
    issued_at: HallTime


# --------------------------------------------------------------------------
# Topics
# --------------------------------------------------------------------------

Channel = Literal["evt", "status", "cfg", "cmd", "gal"]


_IDENT = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def device_topic(hall_id: str, device_id: str, channel: Channel, event_type: str | None = None) -> str:
    """The topic of one device channel; events add their type as last level."""
    for value in (hall_id, device_id):
        if not _IDENT.fullmatch(value):
            raise ValueError(f"not a valid id for a topic: {value!r}")
    if channel not in ("evt", "status", "cfg", "cmd", "gal"):
        raise ValueError(f"unknown channel {channel!r}")
    base = f"{TOPIC_ROOT}/{hall_id}/dev/{device_id}/{channel}"
    if channel == "evt":
        if event_type not in EVENT_MODELS:
            raise ValueError(f"unknown event type {event_type!r}")
        return f"{base}/{event_type}"
    if event_type is not None:
        raise ValueError(f"only events have a type level, not {channel!r}")
    return base


def server_status_topic(hall_id: str) -> str:
    """Retained server-online state of one hall."""
    return f"{TOPIC_ROOT}/{hall_id}/server/status"


def server_subscriptions(hall_id: str) -> list[str]:
    """What a hall's server listens to: every device's events and status."""
    return [f"{TOPIC_ROOT}/{hall_id}/dev/+/evt/+", f"{TOPIC_ROOT}/{hall_id}/dev/+/status"]

_DEVICE_TOPIC = re.compile(
    rf"{re.escape(TOPIC_ROOT)}/(?P<hall>[^/]+)/dev/(?P<device>[^/]+)/(?P<channel>evt|status|cfg|cmd|gal)(?:/(?P<type>[^/]+))?"
)


class TopicInfo(_Model):
    hall_id: str
    device_id: str
    channel: Channel
    event_type: str | None


def parse_device_topic(topic: str) -> TopicInfo:
    """Split a device topic; raises ValueError naming what is wrong."""
    match = _DEVICE_TOPIC.fullmatch(topic)
    if not match:
        raise ValueError(f"not a HallWatch device topic: {topic!r}")
    channel = match["channel"]
    if (channel == "evt") != (match["type"] is not None):
        raise ValueError(f"malformed topic {topic!r}: events need a type level, other channels none")
    if match["type"] is not None and match["type"] not in EVENT_MODELS:
        raise ValueError(f"unknown event type {match['type']!r} in topic {topic!r}")
    return TopicInfo(
        hall_id=match["hall"], device_id=match["device"], channel=channel, event_type=match["type"]
    )


# --------------------------------------------------------------------------
# Encoding and decoding
# --------------------------------------------------------------------------


class ProtocolError(ValueError):
    """A payload that the protocol does not accept; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def encode(message: BaseModel) -> bytes:
    """Serialise any protocol model to compact JSON bytes."""
    return message.model_dump_json(exclude_none=False).encode()


def _check_size(payload: bytes) -> None:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte limit")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(message)"
    return f"{where}: {err['msg']}"


def decode_event(payload: bytes) -> Event:
    """Validate an event payload; raises ProtocolError with the reason."""
    _check_size(payload)
    try:
        return _event_adapter.validate_json(payload)
    except ValidationError as exc:
        raise ProtocolError(_first_error(exc)) from None


def decode(payload: bytes, model: type[_Model]) -> Any:
    """Validate a non-event payload (status, config, command)."""
    _check_size(payload)
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        raise ProtocolError(_first_error(exc)) from None


def make_event(
    *,
    hall_id: str,
    device_id: str,
    boot: int,
    seq: int,
    event_time: datetime,
    body: Body,
    msg_id: uuid.UUID | None = None,
) -> Event:
    """Build an event around a body; the type follows from the body."""
    model = EVENT_MODELS[BODY_TYPES[type(body)]]
    return model(
        msg_id=msg_id or uuid.uuid4(),
        hall_id=hall_id,
        device_id=device_id,
        boot=boot,
        seq=seq,
        event_time=event_time,
        body=body,
    )
