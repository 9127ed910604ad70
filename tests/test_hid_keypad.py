"""USB HID keypads: key events → ratings and pauses, and the missing-device path.

Real ``evdev.InputEvent`` objects and key codes; no virtual keyboard, because
this machine's kernel has no /dev/uinput (a test that skipped for it would
fail in CI).  Reading a real keyboard is therefore not exercised here; see
docs/evaluators.md.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from evdev import InputEvent, ecodes
from agent_sources import recorded, running
from procs import wait_for

from agent.config import AgentSettings
from agent.runtime import AgentRuntime
from agent.sources import load_sources
from broker.config_file import ConfigError
from sensors.evaluator_frames import Pause, Rating
from sensors.hid_keypad import DEFAULT_KEYS, KeyMap, evaluator_hid_source
from sensors.serial_evaluator import KeypadSession

DOWN, UP, REPEAT = 1, 0, 2


def key(name: str, value: int, sec: int = 1_700_000_000) -> InputEvent:
    return InputEvent(sec, 0, ecodes.EV_KEY, ecodes.ecodes[name], value)


def press(name: str) -> list[InputEvent]:
    """What a USB keyboard reports for one press held long enough to auto-repeat."""
    code = ecodes.ecodes[name]
    return [
        InputEvent(1, 0, ecodes.EV_MSC, ecodes.MSC_SCAN, 0x7001E),
        InputEvent(1, 0, ecodes.EV_KEY, code, DOWN),
        InputEvent(1, 0, ecodes.EV_SYN, ecodes.SYN_REPORT, 0),
        InputEvent(1, 500_000, ecodes.EV_KEY, code, REPEAT),
        InputEvent(1, 533_000, ecodes.EV_KEY, code, REPEAT),
        InputEvent(1, 0, ecodes.EV_SYN, ecodes.SYN_REPORT, 0),
        InputEvent(2, 0, ecodes.EV_MSC, ecodes.MSC_SCAN, 0x7001E),
        InputEvent(2, 0, ecodes.EV_KEY, code, UP),
        InputEvent(2, 0, ecodes.EV_SYN, ecodes.SYN_REPORT, 0),
    ]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (key("KEY_5", DOWN), Rating(5)),
        (key("KEY_1", DOWN), Rating(1)),
        (key("KEY_KP3", DOWN), Rating(3)),
        (key("KEY_5", UP), None),
        (key("KEY_5", REPEAT), None),
        (key("KEY_A", DOWN), None),  # not on the map
        (key("KEY_6", DOWN), None),  # there is no sixth level
        (InputEvent(1, 0, ecodes.EV_MSC, ecodes.MSC_SCAN, 0x7001E), None),
        (InputEvent(1, 0, ecodes.EV_SYN, ecodes.SYN_REPORT, 0), None),
        (InputEvent(1, 0, ecodes.EV_LED, ecodes.LED_NUML, 1), None),
    ],
)
def test_the_default_map_turns_a_key_press_into_its_rating(event: InputEvent, message: Rating | None) -> None:
    assert KeyMap(DEFAULT_KEYS).message(event) == message


def test_a_configured_map_with_pause_keys() -> None:
    keymap = KeyMap({"KEY_F1": "rate_5", "KEY_F5": "rate_1", "KEY_P": "pause", "KEY_R": "resume", "BTN_0": "rate_3"})
    assert [keymap.message(key(name, DOWN)) for name in ("KEY_F1", "KEY_F5", "KEY_P", "KEY_R", "BTN_0", "KEY_1")] == [
        Rating(5),
        Rating(1),
        Pause(True),
        Pause(False),
        Rating(3),
        None,  # the default keys are replaced, not merged
    ]


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[AgentRuntime]:
    settings = AgentSettings.model_validate(
        {
            "device": {"hall_id": "demo", "device_id": "ev-02", "kind": "evaluator", "windows": ["w02"]},
            "outbox": {"path": str(tmp_path / "ev-02.db")},
        }
    )
    agent = AgentRuntime(settings)
    yield agent
    agent.outbox.close()



def test_held_and_repeated_keys_are_one_rating_each_and_pauses_are_sent_once(runtime: AgentRuntime) -> None:
    keymap = KeyMap({**DEFAULT_KEYS, "KEY_F1": "pause", "KEY_F2": "resume"})
    session = KeypadSession("w02", runtime.emit)
    for name in ("KEY_4", "KEY_Q", "KEY_F1", "KEY_F1", "KEY_F2", "KEY_KP5"):
        for event in press(name):
            message = keymap.message(event)
            if message is not None:
                session.handle(message)
    assert recorded(runtime) == [
        ("rating", {"window_id": "w02", "level": 4, "clerk_id": None, "ticket": None, "cases": []}),
        ("pause", {"window_id": "w02", "paused": True, "source": "evaluator", "reason": None}),
        ("pause", {"window_id": "w02", "paused": False, "source": "evaluator", "reason": None}),
        ("rating", {"window_id": "w02", "level": 5, "clerk_id": None, "ticket": None, "cases": []}),
    ]



@pytest.mark.parametrize(
    ("where", "why"),
    [
        ({"device": "missing-event-kbd"}, "No such file or directory"),
        ({"name": "HallWatch Evaluator Keypad"}, "no input device named 'HallWatch Evaluator Keypad'"),
        ({"device": "not-an-input-device"}, "Inappropriate ioctl for device"),
    ],
)
def test_a_missing_keypad_is_a_fault_and_is_looked_for_again(
    where: dict[str, str], why: str, tmp_path: Path, runtime: AgentRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sensors.serial_evaluator")
    (tmp_path / "not-an-input-device").write_bytes(b"")  # a file, but no keyboard behind it
    options = {k: str(tmp_path / v) if k == "device" else v for k, v in where.items()}
    source = evaluator_hid_source(window_id="w02", retry_min_s=0.05, retry_max_s=0.1, **options)

    def retries() -> int:
        return sum("retrying in" in r.getMessage() for r in caplog.records)

    with running(source, runtime):
        wait_for(lambda: retries() >= 3, 10, "three attempts to open the keypad")
        assert (runtime.fault or "").startswith("评价器未连接 keypad disconnected:")
        assert why in (runtime.fault or "")
    assert recorded(runtime) == []


def test_an_agent_file_with_a_bad_hid_option_fails_at_start_naming_it(tmp_path: Path) -> None:
    def settings(**source: Any) -> AgentSettings:
        return AgentSettings.model_validate(
            {
                "device": {"hall_id": "demo", "device_id": "ev-02", "kind": "evaluator", "windows": ["w02"]},
                "outbox": {"path": str(tmp_path / "ev.db")},
                "sources": [{"kind": "evaluator_hid", "window_id": "w02", **source}],
            }
        )

    assert len(load_sources(settings(name="USB Keypad", keys={"KEY_KP1": "rate_1", "KEY_KPENTER": "pause"}))) == 1
    for bad, words in [
        ({}, "exactly one of device"),
        ({"device": "/dev/input/event3", "name": "USB Keypad"}, "exactly one of device"),
        ({"name": "USB Keypad", "keys": {"KEY_NOPE": "rate_1"}}, "unknown key names"),
        ({"name": "USB Keypad", "keys": {"REL_X": "rate_1"}}, "unknown key names"),
        ({"name": "USB Keypad", "keys": {"KEY_1": "rate_6"}}, "keys.KEY_1"),
    ]:
        with pytest.raises(ConfigError, match=rf"(?s)sources\[0\] \(evaluator_hid\):.*{words}"):
            load_sources(settings(**bad))
