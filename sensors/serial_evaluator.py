"""Evaluator keypads (评价器) on a serial port: RS-232, RS-485 adapters, USB-serial.

The source opens the port with pyserial, decodes the keypad's frames with a
pluggable :class:`~sensors.evaluator_frames.FrameFormat` and emits ratings,
pauses and clerk logins for its window.  A rating carries the clerk logged
in on the keypad when it was pressed.

Unplugging is a normal event in a hall (cleaners, counters moved): the
source closes the port, marks the device offline with the reason (so the
server shows the window *unknown*, never idle or unrated), retries with
backoff and clears the fault once the port is open again.  What the keypad
said before the unplug — its partial frame, who was logged in, whether it
was paused — is forgotten rather than assumed: a rating after a replug
carries no clerk until the keypad announces one.

:class:`KeypadSession`, :class:`Backoff` and :func:`keep_connected` are
shared with the HID keypad driver.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

import serial
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent.config import CONFIG_DIR
from broker.protocol import Body, ClerkLoginBody, Ident, PauseBody, RatingBody
from sensors.evaluator_frames import FrameFormat, KeypadMessage, Login, Pause, Rating, load_format

if TYPE_CHECKING:
    from agent.runtime import AgentRuntime

log = logging.getLogger(__name__)

KEYPAD_KINDS = frozenset({"evaluator", "queue_gateway"})
"""Device kinds the server accepts ratings, pauses and logins from."""
READ_TIMEOUT_S = 0.2
"""How long one read waits: bounds how late ``stop`` and the frame timeout are noticed."""
Handle = TypeVar("Handle")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


# --------------------------------------------------------------------------
# Shared by every keypad driver
# --------------------------------------------------------------------------


class KeypadSession:
    """One keypad's messages → protocol bodies for its window, remembering who is logged in.

    A repeated login of the clerk already shown, or a pause while paused,
    changes nothing and is not sent again.  ``forget`` is called when the
    keypad is lost: afterwards nothing is assumed about it.
    """

    def __init__(self, window_id: str, emit: Callable[[Body], object], *, pauses: bool = True, logins: bool = True) -> None:
        self.window_id = window_id
        self._emit = emit
        self._pauses = pauses
        self._logins = logins
        self._clerk: str | None = None
        self._clerk_known = False
        self._paused: bool | None = None

    def handle(self, message: KeypadMessage) -> None:
        if isinstance(message, Rating):
            self._emit(RatingBody(window_id=self.window_id, level=message.level, clerk_id=self._clerk, ticket=message.ticket, cases=list(message.cases)))
        elif isinstance(message, Pause):
            if not self._pauses:
                log.info("window %s: pause key ignored (pauses = false: the queue system reports pauses)", self.window_id)
            elif message.paused != self._paused:
                self._paused = message.paused
                self._emit(PauseBody(window_id=self.window_id, paused=message.paused, source="evaluator", reason=message.reason))
        elif isinstance(message, Login):
            if self._clerk_known and message.clerk_id == self._clerk:
                return
            self._clerk, self._clerk_known = message.clerk_id, True
            if self._logins:
                self._emit(ClerkLoginBody(window_id=self.window_id, clerk_id=message.clerk_id))

    def forget(self) -> None:
        self._clerk, self._clerk_known, self._paused = None, False, None


class Backoff:
    """Retry delays: ``first`` doubling to ``most``, back to ``first`` after a success."""

    def __init__(self, first: float, most: float) -> None:
        self.first, self.most = first, most
        self._next = first

    def next(self) -> float:
        delay, self._next = self._next, min(self._next * 2, self.most)
        return delay

    def reset(self) -> None:
        self._next = self.first


def disconnected(reason: str) -> str:
    """The device's fault text while its keypad is unavailable.

    The status reason must be ≤ 200 characters without control characters,
    or publishing the device's status would fail; driver errors promise neither.
    """
    return _CONTROL.sub(" ", f"评价器未连接 keypad disconnected: {reason}")[:200]


def misconfigured(runtime: AgentRuntime, window_id: str) -> str | None:
    """Why this device cannot report for ``window_id`` (the server would reject every event), or None."""
    device = runtime.device
    if device.kind not in KEYPAD_KINDS:
        return f"配置错误 configuration: a {device.kind} may not send ratings (use kind evaluator)"
    if window_id not in device.windows:
        return f"配置错误 configuration: window {window_id} is not in this device's windows"
    return None


def keep_connected(
    runtime: AgentRuntime,
    stop: threading.Event,
    *,
    label: str,
    open_device: Callable[[], Handle],
    serve: Callable[[Handle], None],
    close: Callable[[Handle], None],
    errors: tuple[type[BaseException], ...],
    backoff: Backoff,
) -> None:
    """Open, serve until an error, close, say why, wait, reopen — until ``stop``.

    ``serve`` returns when ``stop`` is set and raises one of ``errors`` when
    the device is lost; the fault is set on every failure and cleared on
    every successful open.
    """
    last_reason: str | None = None
    while not stop.is_set():
        try:
            handle = open_device()
        except errors as exc:
            reason = str(exc) or type(exc).__name__
        else:
            backoff.reset()
            runtime.set_fault(None, part="keypad")
            last_reason = None
            log.info("keypad %s opened", label)
            try:
                serve(handle)
                continue
            except errors as exc:
                reason = str(exc) or type(exc).__name__
            finally:
                close(handle)
        runtime.set_fault(disconnected(reason), part="keypad")
        delay = backoff.next()
        log.log(logging.WARNING if reason != last_reason else logging.INFO, "keypad %s: %s; retrying in %.1f s", label, reason, delay)
        last_reason = reason
        stop.wait(delay)


# --------------------------------------------------------------------------
# The serial source
# --------------------------------------------------------------------------

PARITY = {"none": serial.PARITY_NONE, "even": serial.PARITY_EVEN, "odd": serial.PARITY_ODD}


class SerialEvaluatorOptions(BaseModel):
    """The ``evaluator_serial`` source's keys in an agent file."""

    model_config = ConfigDict(extra="forbid")

    port: str = Field(min_length=1, description="/dev/ttyUSB0, or better the stable /dev/serial/by-id/... name")
    window_id: Ident
    baudrate: int = Field(default=9600, ge=300, le=921_600)
    parity: Literal["none", "even", "odd"] = "none"
    stopbits: Literal[1, 2] = 1
    format: str = Field(default="hallwatch-v1", description="a built-in format name or 'module:Class'")
    pauses: bool = True
    """Send the keypad's pause key; false where the queue system reports pauses (one pause, one source)."""
    logins: bool = True
    """Send the keypad's logins; false where the queue system reports them.  Ratings carry the keypad's clerk either way."""
    frame_timeout_s: float = Field(default=2.0, gt=0, le=30)
    """Silence after which a partial frame is given up (a 206-byte frame takes 1.7 s at 1200 baud)."""
    retry_min_s: float = Field(default=0.5, gt=0, le=60)
    retry_max_s: float = Field(default=30.0, gt=0, le=600)

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        load_format(value)
        return value

    @model_validator(mode="after")
    def _retry_order(self) -> SerialEvaluatorOptions:
        if self.retry_min_s > self.retry_max_s:
            raise ValueError("retry_min_s must not exceed retry_max_s")
        return self


class SerialEvaluator:
    """One keypad on one port: read, decode, emit, acknowledge."""

    def __init__(self, options: SerialEvaluatorOptions, decoder: FrameFormat, session: KeypadSession) -> None:
        self.options = options
        self.decoder = decoder
        self.session = session

    def open(self) -> serial.Serial:
        """Open the port exclusively (two agents on one keypad would split its frames)."""
        return serial.Serial(
            self.options.port,
            baudrate=self.options.baudrate,
            parity=PARITY[self.options.parity],
            stopbits=self.options.stopbits,
            timeout=READ_TIMEOUT_S,
            write_timeout=1.0,
            exclusive=True,
        )

    def close(self, port: serial.Serial) -> None:
        port.close()
        self.session.forget()
        self.decoder.reset()
        log.info("keypad %s closed; frames so far: %s", self.options.port, dict(self.decoder.stats))

    def serve(self, port: serial.Serial, stop: threading.Event) -> None:
        """Read until ``stop``; a lost device raises SerialException (or OSError)."""
        quiet_since: float | None = None
        while not stop.is_set():
            data = port.read(max(1, port.in_waiting))
            if data:
                messages = self.decoder.feed(data)
                quiet_since = time.monotonic()
            elif quiet_since is not None and time.monotonic() - quiet_since >= self.options.frame_timeout_s:
                messages = self.decoder.idle()
                quiet_since = None
            else:
                continue
            for message in messages:
                self.session.handle(message)
            reply = self.decoder.take_replies()
            if reply:
                port.write(reply)


def evaluator_serial_source(config_dir: Path | None = None, **options: object) -> Callable[[AgentRuntime, threading.Event], None]:
    """Entry point ``hallwatch.sources: evaluator_serial``: keypad frames → ratings, pauses, logins.

    Bad options (an unknown format, a vendor class that cannot be imported)
    fail at agent start naming the key.
    """
    settings = SerialEvaluatorOptions.model_validate(options, context={CONFIG_DIR: config_dir})
    format_class = load_format(settings.format)

    def source(runtime: AgentRuntime, stop: threading.Event) -> None:
        problem = misconfigured(runtime, settings.window_id)
        if problem:
            runtime.set_fault(problem, part="keypad")
            log.error("evaluator on %s: %s", settings.port, problem)
            return
        session = KeypadSession(settings.window_id, runtime.emit, pauses=settings.pauses, logins=settings.logins)
        keypad = SerialEvaluator(settings, format_class(), session)
        keep_connected(
            runtime,
            stop,
            label=settings.port,
            open_device=keypad.open,
            serve=lambda port: keypad.serve(port, stop),
            close=keypad.close,
            errors=(serial.SerialException, OSError),
            backoff=Backoff(settings.retry_min_s, settings.retry_max_s),
        )

    return source
