"""What an evaluator keypad (评价器) says, and the wire formats it says it in.

Keypads speak vendor-specific serial protocols, so the format is a plug-in:
a :class:`FrameFormat` turns the bytes read from the port into
:data:`KeypadMessage` objects, keeping a partial frame between reads and
resynchronising after line noise.  Two formats are built in (see
``docs/evaluators.md`` for both byte by byte): ``hallwatch-v1``, a binary
frame with a CRC, sequence number and acknowledgement, and ``text-v1``, one
ASCII line per message.  A vendor's format is a subclass named in the agent
file as ``"module:Class"``.

The rule every format follows: a frame that is not exactly right is dropped
(logged, counted in :attr:`FrameFormat.stats`) and decoding resumes at the
next frame.  A dropped rating is a loss the log shows; a guessed rating is
a false record nobody can find.
"""

from __future__ import annotations

import binascii
import importlib
import logging
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from pydantic import TypeAdapter, ValidationError

from broker.protocol import Ident

log = logging.getLogger(__name__)

_IDENT: TypeAdapter[str] = TypeAdapter(Ident)
_CODE = re.compile(r"^[\x21-\x7e]{1,64}$")
"""Ticket and case numbers: printable ASCII without spaces, as printed on queue slips."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_CASES = 50
MAX_REASON = 200


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------


def _check_code(what: str, value: str) -> None:
    if not _CODE.match(value):
        raise ValueError(f"{what} {value!r} is not 1-64 printable ASCII characters")


@dataclass(frozen=True)
class Rating:
    """A citizen pressed a rating: 5 = 非常满意 … 1 = 非常不满意, optionally for a ticket and cases."""

    level: int
    ticket: str | None = None
    cases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.level <= 5:
            raise ValueError(f"rating level {self.level} is outside 1-5")
        if self.ticket is not None:
            _check_code("ticket", self.ticket)
        if len(self.cases) > MAX_CASES:
            raise ValueError(f"{len(self.cases)} case numbers, at most {MAX_CASES}")
        for case in self.cases:
            _check_code("case number", case)


@dataclass(frozen=True)
class Pause:
    """The clerk paused (暂停服务) or resumed service on the keypad."""

    paused: bool
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.reason is not None and (len(self.reason) > MAX_REASON or _CONTROL.search(self.reason)):
            raise ValueError(f"pause reason is longer than {MAX_REASON} characters or has control characters")


@dataclass(frozen=True)
class Login:
    """The clerk shown on the keypad changed; ``clerk_id`` None = logged out."""

    clerk_id: str | None

    def __post_init__(self) -> None:
        if self.clerk_id is not None:
            try:
                _IDENT.validate_python(self.clerk_id)
            except ValidationError:
                raise ValueError(f"clerk id {self.clerk_id!r} is not a HallWatch id (a-z, 0-9, _ and -)") from None


KeypadMessage = Rating | Pause | Login
"""Checked on construction: a message that exists is one the protocol accepts."""


# --------------------------------------------------------------------------
# The plug-in interface
# --------------------------------------------------------------------------


class FrameFormat(ABC):
    """Bytes from one keypad in, messages out.  One instance per port (it holds state).

    ``feed`` gets whatever the port delivered (a frame may arrive in pieces,
    with noise around it); ``idle`` is called once the line has been quiet
    for the driver's frame timeout, so a frame that can never complete
    (its length byte was corrupted) does not hold later frames hostage;
    ``reset`` forgets the partial frame when the port is reopened.
    A subclass that defines ``__init__`` calls ``super().__init__()``.
    """

    name: ClassVar[str]

    def __init__(self) -> None:
        self.stats: Counter[str] = Counter()
        """Decoded frames (``frames``), noise (``garbage_bytes``) and drops by reason."""
        self._buffer = bytearray()

    @abstractmethod
    def feed(self, data: bytes) -> list[KeypadMessage]:
        """Decode every complete message in what has arrived so far."""

    def idle(self) -> list[KeypadMessage]:
        """The line went quiet: give up on any partial frame (and decode what follows it)."""
        return []

    def reset(self) -> None:
        self._buffer.clear()

    def take_replies(self) -> bytes:
        """Bytes to send back to the keypad, asked for after the messages of the last feed are recorded.

        A format with acknowledgements answers here, so the keypad stops
        resending only what is already in the outbox.
        """
        return b""

    def _drop(self, reason: str, detail: str) -> None:
        self.stats[reason] += 1
        log.warning("%s: dropped a frame (%s): %s", self.name, reason, detail)

    def _garbage(self, count: int) -> None:
        self.stats["garbage_bytes"] += count
        log.debug("%s: skipped %d bytes of noise", self.name, count)


# --------------------------------------------------------------------------
# hallwatch-v1: binary frames with CRC-16, sequence number and ACK
# --------------------------------------------------------------------------

HEADER = b"\xaa\x55"
MAX_PAYLOAD = 200
CMD_RATING, CMD_PAUSE, CMD_LOGIN, CMD_LOGOUT, CMD_ACK = 0x01, 0x02, 0x03, 0x04, 0x80
FIELD_SEPARATOR = 0x1F
"""ASCII unit separator between the ticket and each case number in a rating."""


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF): catches every burst of up to 16 bits,
    which a one-byte XOR (two flips in one bit column cancel) does not."""
    return binascii.crc_hqx(data, 0xFFFF)


def hallwatch_v1_frame(seq: int, command: int, payload: bytes = b"") -> bytes:
    """One frame: AA 55, LEN, SEQ, CMD, PAYLOAD, CRC-16 (big-endian) over LEN..PAYLOAD."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes, at most {MAX_PAYLOAD}")
    body = bytes([len(payload), seq & 0xFF, command]) + payload
    return HEADER + body + crc16(body).to_bytes(2, "big")


def _ascii(raw: bytes, what: str) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"{what} is not ASCII: {raw.hex(' ')}") from None


def _rating(payload: bytes) -> KeypadMessage:
    if not payload:
        raise ValueError("rating without a level byte")
    fields = payload[1:].split(bytes([FIELD_SEPARATOR])) if len(payload) > 1 else []
    ticket = _ascii(fields[0], "ticket") if fields and fields[0] else None
    return Rating(level=payload[0], ticket=ticket, cases=tuple(_ascii(raw, "case number") for raw in fields[1:]))


def _pause(payload: bytes) -> KeypadMessage:
    if not payload or payload[0] not in (0, 1):
        raise ValueError(f"pause state must be 00 or 01, got {payload[:1].hex() or 'nothing'}")
    try:
        reason = payload[1:].decode("utf-8") or None
    except UnicodeDecodeError:
        raise ValueError(f"pause reason is not UTF-8: {payload[1:].hex(' ')}") from None
    return Pause(paused=payload[0] == 1, reason=reason if payload[0] == 1 else None)


def _login(payload: bytes) -> KeypadMessage:
    return Login(clerk_id=_ascii(payload, "clerk id"))


def _logout(payload: bytes) -> KeypadMessage:
    if payload:
        raise ValueError(f"logout carries {len(payload)} unexpected bytes")
    return Login(clerk_id=None)


_COMMANDS: dict[int, Callable[[bytes], KeypadMessage]] = {CMD_RATING: _rating, CMD_PAUSE: _pause, CMD_LOGIN: _login, CMD_LOGOUT: _logout}
"""Payload decoders by command byte; each raises ValueError for content that is not exactly right."""


class HallwatchV1(FrameFormat):
    """``AA 55 LEN SEQ CMD PAYLOAD CRC16``; every frame with a good CRC is acknowledged.

    The keypad resends a frame until it sees ``ACK(SEQ)``, so a rating
    pressed while the cable was out, or whose ACK was lost, still arrives.
    A frame identical to the last one (same SEQ, command and payload) is a
    resend: acknowledged again, never recorded twice.  It is remembered
    across :meth:`reset`, because a resend after a replug is the usual case.
    """

    name: ClassVar[str] = "hallwatch-v1"

    def __init__(self) -> None:
        super().__init__()
        self._last: bytes | None = None
        self._replies = bytearray()

    def feed(self, data: bytes) -> list[KeypadMessage]:
        buffer = self._buffer
        buffer += data
        messages: list[KeypadMessage] = []
        while True:
            start = buffer.find(HEADER)
            if start < 0:
                keep = 1 if buffer.endswith(HEADER[:1]) else 0  # maybe the first half of a header
                if len(buffer) > keep:
                    self._garbage(len(buffer) - keep)
                    del buffer[: len(buffer) - keep]
                return messages
            if start:
                self._garbage(start)
                del buffer[:start]
            if len(buffer) < 3:
                return messages
            length = buffer[2]
            if length > MAX_PAYLOAD:
                self._drop("length", f"LEN {length} > {MAX_PAYLOAD}")
                del buffer[:1]  # resynchronise at the next header
                continue
            size = len(HEADER) + 3 + length + 2
            if len(buffer) < size:
                return messages
            frame = bytes(buffer[:size])
            if crc16(frame[2:-2]) != int.from_bytes(frame[-2:], "big"):
                self._drop("checksum", f"CRC mismatch in {frame.hex(' ')}")
                del buffer[:1]
                continue
            del buffer[:size]
            message = self._accept(frame)
            if message is not None:
                messages.append(message)

    def _accept(self, frame: bytes) -> KeypadMessage | None:
        seq, command, payload = frame[3], frame[4], frame[5:-2]
        if command == CMD_ACK:
            self._drop("command", "an ACK sent to the host (is the line looped back?)")
            return None
        self._replies += hallwatch_v1_frame(seq, CMD_ACK)
        content = frame[3:-2]
        if content == self._last:
            self.stats["resent"] += 1
            log.info("%s: frame SEQ %d resent by the keypad; acknowledged again, not recorded twice", self.name, seq)
            return None
        self._last = content
        decode = _COMMANDS.get(command)
        if decode is None:
            self._drop("command", f"unknown command 0x{command:02x}")
            return None
        try:
            message = decode(payload)
        except ValueError as exc:
            self._drop("payload", str(exc))
            return None
        self.stats["frames"] += 1
        return message

    def idle(self) -> list[KeypadMessage]:
        messages: list[KeypadMessage] = []
        while self._buffer:
            if self._buffer.startswith(HEADER):
                self._drop("incomplete", f"frame never completed: {bytes(self._buffer[:16]).hex(' ')}…")
            else:
                self._garbage(1)
            del self._buffer[:1]
            messages += self.feed(b"")
        return messages

    def take_replies(self) -> bytes:
        replies, self._replies = bytes(self._replies), bytearray()
        return replies


# --------------------------------------------------------------------------
# text-v1: one ASCII line per message
# --------------------------------------------------------------------------

MAX_LINE = 256


class TextV1(FrameFormat):
    """``RATE 5 A023``, ``PAUSE ON 业务咨询``, ``PAUSE OFF``, ``LOGIN c01``, ``LOGOUT``, each ending in LF.

    No checksum, so a line with noise in it cannot be repaired: it is
    dropped whole.  For keypads whose vendor protocol is text, or a
    USB-serial bridge on a short cable; prefer hallwatch-v1.
    """

    name: ClassVar[str] = "text-v1"

    def __init__(self) -> None:
        super().__init__()
        self._overlong = False

    def feed(self, data: bytes) -> list[KeypadMessage]:
        self._buffer += data
        messages: list[KeypadMessage] = []
        while (end := self._buffer.find(b"\n")) >= 0:
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if self._overlong:
                self._overlong = False
                continue
            message = self._line(line[:-1] if line.endswith(b"\r") else line)
            if message is not None:
                messages.append(message)
        if len(self._buffer) > MAX_LINE and not self._overlong:
            self._drop("length", f"line longer than {MAX_LINE} bytes")
            self._overlong = True
        if self._overlong:
            self._buffer.clear()
        return messages

    def idle(self) -> list[KeypadMessage]:
        if self._buffer:
            self._drop("incomplete", f"line without an end: {bytes(self._buffer[:40])!r}")
        self.reset()
        return []

    def reset(self) -> None:
        super().reset()
        self._overlong = False

    def _line(self, raw: bytes) -> KeypadMessage | None:
        if not raw:
            return None
        try:
            text = raw.decode("utf-8")
            message = _text_message(text)
        except (UnicodeDecodeError, ValueError) as exc:
            self._drop("payload", f"{raw!r}: {exc}")
            return None
        self.stats["frames"] += 1
        return message


def _text_message(line: str) -> KeypadMessage:
    words = line.split(" ")
    match words:
        case ["RATE", level, *codes] if len(level) == 1 and "0" <= level <= "9" and "" not in codes:
            return Rating(level=int(level), ticket=codes[0] if codes else None, cases=tuple(codes[1:]))
        case ["PAUSE", "ON"]:
            return Pause(paused=True)
        case ["PAUSE", "ON", *_]:
            return Pause(paused=True, reason=line.split(" ", 2)[2].strip() or None)
        case ["PAUSE", "OFF"]:
            return Pause(paused=False)
        case ["LOGIN", clerk]:
            return Login(clerk_id=clerk)
        case ["LOGOUT"]:
            return Login(clerk_id=None)
    raise ValueError("not a text-v1 message")


# --------------------------------------------------------------------------
# Choosing a format
# --------------------------------------------------------------------------

BUILT_IN: dict[str, type[FrameFormat]] = {HallwatchV1.name: HallwatchV1, TextV1.name: TextV1}


def load_format(spec: str) -> type[FrameFormat]:
    """A built-in format by name, or a vendor's ``"package.module:Class"``; ValueError says what is wrong."""
    if spec in BUILT_IN:
        return BUILT_IN[spec]
    module_name, colon, class_name = spec.partition(":")
    if not colon or not module_name or not class_name:
        raise ValueError(f"unknown frame format {spec!r} (built in: {', '.join(BUILT_IN)}; or 'module:Class')")
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"frame format {spec!r} cannot be loaded: {exc}") from None
    if not (isinstance(found, type) and issubclass(found, FrameFormat)):
        raise ValueError(f"frame format {spec!r} is not a sensors.evaluator_frames.FrameFormat subclass")
    return found
