"""Evaluator keypads that appear as a USB keyboard (HID), read with python-evdev.

Cheap five-button keypads enumerate as a keyboard and "type" a key per
button.  The source opens the keyboard's event device (by path, or by the
name the kernel reports), grabs it exclusively — so a rating typed into
the clerk's PC never lands in an open document and no other program sees
the citizen's key presses — and maps key codes to ratings and pause keys.

Only a key going down counts: the release and the auto-repeat of a held
key are not further ratings.  Such a keypad cannot log a clerk in, so its
ratings carry no clerk; the server attributes them from the clerk on duty.

Unplugging is handled as for serial keypads (:func:`keep_connected`): the
device's status is offline with the reason until the keyboard is back.
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from evdev import InputDevice, InputEvent, ecodes, list_devices
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent.config import CONFIG_DIR
from broker.protocol import Ident
from sensors.evaluator_frames import KeypadMessage, Pause, Rating
from sensors.serial_evaluator import READ_TIMEOUT_S, Backoff, KeypadSession, keep_connected, misconfigured

if TYPE_CHECKING:
    from agent.runtime import AgentRuntime

log = logging.getLogger(__name__)

Action = Literal["rate_1", "rate_2", "rate_3", "rate_4", "rate_5", "pause", "resume"]
KEY_DOWN = 1
"""evdev key values: 0 release, 1 press, 2 auto-repeat."""
DEFAULT_KEYS: dict[str, Action] = {
    "KEY_1": "rate_1", "KEY_2": "rate_2", "KEY_3": "rate_3", "KEY_4": "rate_4", "KEY_5": "rate_5",
    "KEY_KP1": "rate_1", "KEY_KP2": "rate_2", "KEY_KP3": "rate_3", "KEY_KP4": "rate_4", "KEY_KP5": "rate_5",
}
"""The number typed is the number of stars (5 = 非常满意), from the top row or the numeric pad."""


class KeypadNotFound(OSError):
    """No input device has the configured name (yet): a missing keypad, like an unplugged one."""


class KeyMap:
    """Key events → keypad messages."""

    def __init__(self, keys: dict[str, Action]) -> None:
        self._actions = {ecodes.ecodes[name]: action for name, action in keys.items()}

    def message(self, event: InputEvent) -> KeypadMessage | None:
        """The message for a key press; None for releases, repeats, unmapped keys and non-key events."""
        if event.type != ecodes.EV_KEY or event.value != KEY_DOWN:
            return None
        action = self._actions.get(event.code)
        if action is None:
            log.debug("unmapped key %s ignored", ecodes.KEY.get(event.code, event.code))
            return None
        if action == "pause":
            return Pause(paused=True)
        if action == "resume":
            return Pause(paused=False)
        return Rating(level=int(action.removeprefix("rate_")))


class HidKeypadOptions(BaseModel):
    """The ``evaluator_hid`` source's keys in an agent file: ``device`` or ``name``, not both."""

    model_config = ConfigDict(extra="forbid")

    device: str | None = Field(default=None, min_length=1, description="e.g. /dev/input/by-id/usb-…-event-kbd")
    name: str | None = Field(default=None, min_length=1, description="the device name evdev reports, exactly")
    window_id: Ident
    keys: dict[str, Action] = Field(default_factory=lambda: dict(DEFAULT_KEYS))
    grab: bool = True
    """Take the keyboard for this source alone; off only to share it while testing."""
    retry_min_s: float = Field(default=0.5, gt=0, le=60)
    retry_max_s: float = Field(default=30.0, gt=0, le=600)

    @field_validator("keys")
    @classmethod
    def _known_keys(cls, keys: dict[str, Action]) -> dict[str, Action]:
        unknown = sorted(k for k in keys if not k.startswith(("KEY_", "BTN_")) or k not in ecodes.ecodes)
        if unknown:
            raise ValueError(f"unknown key names {unknown} (use evdev names such as KEY_1, KEY_KP5, KEY_F1)")
        return keys

    @model_validator(mode="after")
    def _one_device(self) -> HidKeypadOptions:
        if (self.device is None) == (self.name is None):
            raise ValueError("give exactly one of device (a path) or name")
        if self.retry_min_s > self.retry_max_s:
            raise ValueError("retry_min_s must not exceed retry_max_s")
        return self


class HidKeypad:
    """One keyboard-like keypad: find, grab, read key presses."""

    def __init__(self, options: HidKeypadOptions, keymap: KeyMap, session: KeypadSession) -> None:
        self.options = options
        self.keymap = keymap
        self.session = session

    @property
    def label(self) -> str:
        return self.options.device or f"named {self.options.name!r}"

    def open(self) -> InputDevice:
        device = InputDevice(self.options.device) if self.options.device else self._find(self.options.name or "")
        if self.options.grab:
            try:
                device.grab()
            except OSError:
                device.close()
                raise
        return device

    @staticmethod
    def _find(name: str) -> InputDevice:
        for path in list_devices():
            try:
                device = InputDevice(path)
            except OSError:
                continue  # not ours to read (permissions) or gone meanwhile
            if device.name == name:
                return device
            device.close()
        raise KeypadNotFound(f"no input device named {name!r}")

    def close(self, device: InputDevice) -> None:
        device.close()  # closing releases the grab
        self.session.forget()

    def serve(self, device: InputDevice, stop: threading.Event) -> None:
        """Read key presses until ``stop``; an unplugged keyboard raises OSError (ENODEV)."""
        while not stop.is_set():
            ready, _, _ = select.select([device.fd], [], [], READ_TIMEOUT_S)
            if not ready:
                continue
            try:
                events = list(device.read())
            except BlockingIOError:
                continue
            for event in events:
                message = self.keymap.message(event)
                if message is not None:
                    self.session.handle(message)


def evaluator_hid_source(config_dir: Path | None = None, **options: object) -> Callable[[AgentRuntime, threading.Event], None]:
    """Entry point ``hallwatch.sources: evaluator_hid``: key presses → ratings and pauses."""
    settings = HidKeypadOptions.model_validate(options, context={CONFIG_DIR: config_dir})
    keymap = KeyMap(settings.keys)

    def source(runtime: AgentRuntime, stop: threading.Event) -> None:
        problem = misconfigured(runtime, settings.window_id)
        if problem:
            runtime.set_fault(problem, part="keypad")
            log.error("HID evaluator: %s", problem)
            return
        keypad = HidKeypad(settings, keymap, KeypadSession(settings.window_id, runtime.emit))
        keep_connected(
            runtime,
            stop,
            label=keypad.label,
            open_device=keypad.open,
            serve=lambda device: keypad.serve(device, stop),
            close=keypad.close,
            errors=(OSError,),
            backoff=Backoff(settings.retry_min_s, settings.retry_max_s),
        )

    return source
