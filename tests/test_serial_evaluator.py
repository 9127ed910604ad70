"""Evaluator keypads on a serial port: the frame formats, and the driver through a real pseudo-terminal.

The pty stands in for the keypad's cable: the test writes the keypad's
bytes to the master side, the driver opens the slave through a symlink the
test controls (like /dev/serial/by-id/...), so unplugging is "remove the
link and close the master" and plugging back is a new pty behind the link.
"""

from __future__ import annotations

import os
import select
import threading
import time
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from agent_sources import recorded, running
from procs import wait_for

from agent.config import AgentSettings
from agent.runtime import AgentRuntime
from agent.sources import load_sources
from broker.config_file import ConfigError
from sensors.evaluator_frames import (
    CMD_ACK,
    CMD_LOGIN,
    CMD_LOGOUT,
    CMD_PAUSE,
    CMD_RATING,
    FrameFormat,
    HallwatchV1,
    KeypadMessage,
    Login,
    Pause,
    Rating,
    TextV1,
    hallwatch_v1_frame,
    load_format,
)
from sensors.serial_evaluator import KeypadSession, evaluator_serial_source

# --------------------------------------------------------------------------
# Frames as a keypad would send them
# --------------------------------------------------------------------------


def rating(seq: int, level: int, ticket: str = "", *cases: str) -> bytes:
    fields = b"\x1f".join(x.encode() for x in (ticket, *cases)) if ticket or cases else b""
    return hallwatch_v1_frame(seq, CMD_RATING, bytes([level]) + fields)


def pause(seq: int, on: bool, reason: str = "") -> bytes:
    return hallwatch_v1_frame(seq, CMD_PAUSE, bytes([on]) + reason.encode())


def login(seq: int, clerk: str) -> bytes:
    return hallwatch_v1_frame(seq, CMD_LOGIN, clerk.encode())


def logout(seq: int) -> bytes:
    return hallwatch_v1_frame(seq, CMD_LOGOUT)


def ack(seq: int) -> bytes:
    return hallwatch_v1_frame(seq, CMD_ACK)


def bad_crc(frame: bytes) -> bytes:
    return frame[:-1] + bytes([frame[-1] ^ 0x01])


def decode_bytewise(decoder: FrameFormat, stream: bytes) -> list[KeypadMessage]:
    return [m for i in range(len(stream)) for m in decoder.feed(stream[i : i + 1])]


# --------------------------------------------------------------------------
# hallwatch-v1, decoded directly
# --------------------------------------------------------------------------


def _crc16_bitwise(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc


def test_the_worked_example_in_the_docs_is_a_real_frame_with_a_standard_crc() -> None:
    assert _crc16_bitwise(b"123456789") == 0x29B1  # the published check value of CRC-16/CCITT-FALSE
    frame = rating(0x07, 5, "A023")
    assert frame.hex(" ") == "aa 55 05 07 01 05 41 30 32 33 be 79"
    assert int.from_bytes(frame[-2:], "big") == _crc16_bitwise(frame[2:-2])
    assert ack(0x07).hex(" ") == "aa 55 00 07 80 c4 83"
    assert "aa 55 05 07 01 05 41 30 32 33 be 79" in (Path(__file__).parents[1] / "docs/evaluators.md").read_text()


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (rating(1, 5, "A023"), Rating(5, "A023")),
        (rating(1, 1), Rating(1)),
        (rating(1, 4, "B007", "330802-2025-000481", "330802-2025-000482"), Rating(4, "B007", ("330802-2025-000481", "330802-2025-000482"))),
        (rating(1, 3, "", "330802-2025-000481"), Rating(3, None, ("330802-2025-000481",))),
        (pause(1, True, "业务咨询"), Pause(True, "业务咨询")),
        (pause(1, True), Pause(True)),
        (pause(1, False, "ignored when resuming"), Pause(False)),
        (login(1, "c01"), Login("c01")),
        (logout(1), Login(None)),
    ],
)
def test_each_command_decodes_to_its_message_and_is_acknowledged(frame: bytes, message: KeypadMessage) -> None:
    decoder = HallwatchV1()
    assert decoder.feed(frame) == [message]
    assert decoder.take_replies() == ack(1)
    assert decoder.take_replies() == b""


@pytest.mark.parametrize(
    ("frame", "reason", "acknowledged"),
    [
        (bad_crc(rating(1, 5, "A023")), "checksum", False),
        (b"\xaa\x55\xc9" + bytes(210), "length", False),  # LEN 201 > 200
        (hallwatch_v1_frame(1, 0x09, b"x"), "command", True),
        (rating(1, 0), "payload", True),
        (rating(1, 6), "payload", True),
        (hallwatch_v1_frame(1, CMD_RATING), "payload", True),  # no level byte
        (rating(1, 5, "A０23"), "payload", True),  # a full-width digit: not ASCII
        (rating(1, 5, "A023", ""), "payload", True),  # an empty case number
        (login(1, "张三"), "payload", True),
        (login(1, "C01"), "payload", True),  # ids are lowercase
        (hallwatch_v1_frame(1, CMD_LOGIN), "payload", True),
        (hallwatch_v1_frame(1, CMD_LOGOUT, b"c01"), "payload", True),
        (hallwatch_v1_frame(1, CMD_PAUSE, b"\x02"), "payload", True),
        (hallwatch_v1_frame(1, CMD_PAUSE, b"\x01\xff\xfe"), "payload", True),  # reason not UTF-8
    ],
)
def test_a_malformed_frame_is_dropped_with_its_reason_and_the_next_frame_still_decodes(frame: bytes, reason: str, acknowledged: bool) -> None:
    decoder = HallwatchV1()
    assert decoder.feed(frame + rating(2, 4, "A030")) == [Rating(4, "A030")]
    assert decoder.stats[reason] == 1
    assert decoder.stats["frames"] == 1
    # A frame with a good CRC is acknowledged even when refused, or the keypad would resend it forever.
    assert decoder.take_replies() == (ack(1) if acknowledged else b"") + ack(2)


def test_noise_before_between_and_inside_frames_is_skipped_and_a_byte_by_byte_stream_decodes_the_same() -> None:
    damaged = rating(3, 2, "A025")
    stream = (
        b"\x00\xff\x13noise"
        + login(1, "c01")
        + b"\xaa\x55\x07"  # a false header whose length reaches into the next frame
        + rating(2, 5, "A024")
        + damaged[:6] + b"\x00" + damaged[6:]  # noise inside a frame: that frame is lost, not repaired
        + b"\xaa"
        + rating(4, 3, "A026")
    )
    expected = [Login("c01"), Rating(5, "A024"), Rating(3, "A026")]
    whole, bytewise = HallwatchV1(), HallwatchV1()
    assert whole.feed(stream) == expected
    assert decode_bytewise(bytewise, stream) == expected
    assert whole.take_replies() == bytewise.take_replies() == ack(1) + ack(2) + ack(4)
    assert whole.stats["checksum"] >= 2 and whole.stats["garbage_bytes"] > 0


def test_a_frame_whose_length_byte_was_corrupted_is_given_up_when_the_line_goes_quiet() -> None:
    decoder = HallwatchV1()
    swollen = bytearray(rating(1, 5, "A023"))
    swollen[2] = 150  # claims 150 payload bytes: it would swallow the frames after it
    assert decoder.feed(bytes(swollen) + rating(2, 4, "A024")) == []
    assert decoder.idle() == [Rating(4, "A024")]
    assert decoder.stats["incomplete"] == 1
    assert decoder.idle() == []


def test_a_resent_frame_is_acknowledged_again_but_recorded_once_also_across_a_reconnect() -> None:
    decoder = HallwatchV1()
    assert decoder.feed(rating(9, 5, "A023") + rating(9, 5, "A023")) == [Rating(5, "A023")]
    decoder.reset()  # the port was reopened; the keypad never saw the ACK
    assert decoder.feed(rating(9, 5, "A023")) == []
    assert decoder.feed(rating(10, 5, "A023")) == [Rating(5, "A023")]  # the same rating, a new press
    assert decoder.take_replies() == ack(9) * 3 + ack(10)
    assert decoder.stats["resent"] == 2


frames = st.lists(
    st.one_of(
        st.builds(
            lambda level, ticket: (CMD_RATING, bytes([level]) + ticket.encode(), Rating(level, ticket or None)),
            st.integers(1, 5),
            st.from_regex(r"[A-Z][0-9]{3}", fullmatch=True) | st.just(""),
        ),
        st.builds(lambda clerk: (CMD_LOGIN, clerk.encode(), Login(clerk)), st.from_regex(r"[a-z][a-z0-9]{0,7}", fullmatch=True)),
        st.builds(lambda on: (CMD_PAUSE, bytes([on]), Pause(on)), st.booleans()),
    ),
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(frames, st.lists(st.binary(max_size=12), min_size=7, max_size=7), st.randoms(use_true_random=False))
def test_any_noise_between_frames_and_any_split_yields_exactly_the_frames(
    sent: list[tuple[int, bytes, KeypadMessage]], noise: list[bytes], rng: Any
) -> None:
    stream = noise[0] + b"".join(hallwatch_v1_frame(seq, command, payload) + noise[seq] for seq, (command, payload, _) in enumerate(sent, start=1))
    decoder = HallwatchV1()
    cuts = sorted(rng.sample(range(len(stream) + 1), min(5, len(stream) + 1)))
    decoded: list[KeypadMessage] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)]):
        decoded += decoder.feed(stream[start:end])
    decoded += decoder.idle()
    assert decoded == [message for _, _, message in sent]


# --------------------------------------------------------------------------
# text-v1 and vendor formats
# --------------------------------------------------------------------------


def test_text_lines_decode_and_a_line_with_noise_is_dropped_whole() -> None:
    decoder = TextV1()
    stream = (
        b"LOGIN c01\r\n"
        b"RATE 5 A023\r\n"
        b"RATE 4 B007 330802-2025-000481 330802-2025-000482\n"
        b"\x00\xffRATE 5 A024\r\n"  # noise on the line: no checksum to tell what it meant
        b"RATE 6 A025\r\n"
        b"RATE 0\r\n"
        b"RATE \xef\xbc\x95\r\n"  # a full-width 5
        b"rate 5\r\n"
        b"LOGIN \xe5\xbc\xa0\xe4\xb8\x89\r\n"
        b"\r\n"
        b"PAUSE ON \xe4\xb8\x9a\xe5\x8a\xa1 \xe5\x92\xa8\xe8\xaf\xa2\r\n"
        b"PAUSE OFF\r\n"
        b"LOGOUT\r\n"
    )
    expected = [
        Login("c01"),
        Rating(5, "A023"),
        Rating(4, "B007", ("330802-2025-000481", "330802-2025-000482")),
        Pause(True, "业务 咨询"),
        Pause(False),
        Login(None),
    ]
    assert decode_bytewise(decoder, stream) == expected
    assert decoder.stats["payload"] == 6 and decoder.stats["frames"] == 6


def test_a_text_line_that_never_ends_is_dropped_and_the_next_line_decodes() -> None:
    decoder = TextV1()
    assert decoder.feed(b"RATE 5" + b"x" * 300) == []
    assert decoder.feed(b"more\r\nRATE 3\r\n") == [Rating(3)]
    assert decoder.feed(b"RATE 5 half") == []
    assert decoder.idle() == []
    assert decoder.feed(b"\r\nRATE 2\r\n") == [Rating(2)]  # the half line was given up, not completed
    assert decoder.stats["length"] == 1 and decoder.stats["incomplete"] == 1


class OneByteVendor(FrameFormat):
    """A made-up vendor format: one ASCII digit per rating, nothing else."""

    name = "one-byte"

    def feed(self, data: bytes) -> list[KeypadMessage]:
        messages: list[KeypadMessage] = []
        for byte in data:
            if 0x31 <= byte <= 0x35:
                messages.append(Rating(byte - 0x30))
            else:
                self._drop("payload", f"byte {byte:#04x}")
        return messages


def test_formats_are_found_by_name_or_module_and_class() -> None:
    assert load_format("hallwatch-v1") is HallwatchV1
    assert load_format("text-v1") is TextV1
    vendor = load_format(f"{__name__}:OneByteVendor")
    assert vendor().feed(b"5x1") == [Rating(5), Rating(1)]
    for spec, words in [
        ("acme-v2", "unknown frame format 'acme-v2'"),
        ("no_such_module:Format", "cannot be loaded"),
        (f"{__name__}:NoSuchClass", "cannot be loaded"),
        (f"{__name__}:Rating", "is not a sensors.evaluator_frames.FrameFormat subclass"),
    ]:
        with pytest.raises(ValueError, match=words):
            load_format(spec)


# --------------------------------------------------------------------------
# The driver on a real pseudo-terminal
# --------------------------------------------------------------------------


def make_runtime(tmp_path: Path, kind: str = "evaluator", windows: tuple[str, ...] = ("w01",)) -> AgentRuntime:
    """A real runtime whose outbox is in tmp_path; never connected (emit still commits to the outbox)."""
    settings = AgentSettings.model_validate(
        {
            "device": {"hall_id": "demo", "device_id": "ev-01", "kind": kind, "windows": list(windows)},
            "outbox": {"path": str(tmp_path / "ev-01.db")},
        }
    )
    return AgentRuntime(settings)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[AgentRuntime]:
    agent = make_runtime(tmp_path)
    yield agent
    agent.outbox.close()




class Cable:
    """The keypad's end of a pseudo-terminal, reached by the agent through ``link``."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master: int | None = None
        self.heard = b""

    def plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        name = os.ttyname(slave)
        os.close(slave)
        fresh = self.link.with_name(self.link.name + ".new")
        fresh.symlink_to(name)
        os.replace(fresh, self.link)
        self.master, self.heard = master, b""

    def unplug(self) -> None:
        assert self.master is not None
        self.link.unlink()
        os.close(self.master)
        self.master = None

    def send(self, data: bytes, *, bytewise: bool = False) -> None:
        assert self.master is not None
        for piece in ([data[i : i + 1] for i in range(len(data))] if bytewise else [data]):
            os.write(self.master, piece)
            if bytewise:
                time.sleep(0.001)  # separate reads on the agent's side

    def listen(self) -> bytes:
        """Everything the agent has written back so far (its ACKs)."""
        assert self.master is not None
        while select.select([self.master], [], [], 0)[0]:
            self.heard += os.read(self.master, 4096)
        return self.heard


def keypad_disconnected(runtime: AgentRuntime) -> bool:
    return (runtime.fault or "").startswith("评价器未连接 keypad disconnected:")


def plug_in(cable: Cable, runtime: AgentRuntime) -> None:
    """Plug the keypad in and wait until the agent has opened the port (the fault it had clears)."""
    assert keypad_disconnected(runtime)
    cable.plug()
    wait_for(lambda: runtime.fault is None, 10, "the keypad's port to open")


def serial_source(cable: Cable, **options: Any) -> Any:
    return evaluator_serial_source(port=str(cable.link), window_id="w01", retry_min_s=0.05, retry_max_s=0.2, **options)


def test_a_serial_keypad_records_what_it_says_and_survives_an_unplug(tmp_path: Path, runtime: AgentRuntime) -> None:
    cable = Cable(tmp_path / "ttyEVAL0")
    with running(serial_source(cable), runtime):
        # The agent started before the keypad was plugged in: the device says why it cannot work.
        wait_for(lambda: keypad_disconnected(runtime), 10, "the keypad-missing fault")
        assert "No such file or directory" in (runtime.fault or "")
        plug_in(cable, runtime)

        damaged = rating(5, 1, "A025")
        cable.send(
            b"\x00\xff\x13"
            + login(1, "c01")
            + b"\x7f\xaa\x55\x09"
            + rating(2, 5, "A023")
            + bad_crc(rating(3, 1, "A024"))
            + rating(4, 0)
            + rating(6, 6)
            + damaged[:5] + b"\xaa\x55" + damaged[5:]
            + pause(7, True, "业务咨询")
            + pause(8, True, "pressed twice")
            + pause(9, False)
            + rating(10, 4, "A026", "330802-2025-000481", "330802-2025-000482")
            + rating(10, 4, "A026", "330802-2025-000481", "330802-2025-000482"),  # resent: no ACK seen yet
            bytewise=True,
        )
        cable.send(login(11, "c01") + pause(12, True, "午间交接"))  # c01 again (nothing new), then a sentinel
        expected = [
            ("clerk_login", {"window_id": "w01", "clerk_id": "c01"}),
            ("rating", {"window_id": "w01", "level": 5, "clerk_id": "c01", "ticket": "A023", "cases": []}),
            ("pause", {"window_id": "w01", "paused": True, "source": "evaluator", "reason": "业务咨询"}),
            ("pause", {"window_id": "w01", "paused": False, "source": "evaluator", "reason": None}),
            ("rating", {"window_id": "w01", "level": 4, "clerk_id": "c01", "ticket": "A026", "cases": ["330802-2025-000481", "330802-2025-000482"]}),
            ("pause", {"window_id": "w01", "paused": True, "source": "evaluator", "reason": "午间交接"}),
        ]
        wait_for(lambda: len(recorded(runtime)) >= len(expected), 10, "the keypad's events")
        assert recorded(runtime) == expected
        acks = [ack(seq) for seq in (1, 2, 4, 6, 7, 8, 9, 10, 10, 11, 12)]  # every frame with a good CRC
        wait_for(lambda: cable.listen() == b"".join(acks), 10, "the acknowledgements")

        cable.unplug()
        wait_for(lambda: keypad_disconnected(runtime), 10, "the unplugged fault")
        assert recorded(runtime) == expected

        plug_in(cable, runtime)
        cable.send(pause(12, True, "午间交接") + rating(13, 3, "A027") + login(14, "c02"))  # the unacknowledged frame again, then new ones
        wait_for(lambda: len(recorded(runtime)) >= len(expected) + 2, 10, "events after the replug")
        assert recorded(runtime)[len(expected) :] == [
            ("rating", {"window_id": "w01", "level": 3, "clerk_id": None, "ticket": "A027", "cases": []}),  # who was logged in is not assumed
            ("clerk_login", {"window_id": "w01", "clerk_id": "c02"}),
        ]
        wait_for(lambda: cable.listen() == ack(12) + ack(13) + ack(14), 10, "acknowledgements after the replug")
    assert all(p.event.device_id == "ev-01" for p in runtime.outbox.pending(after_row=0, limit=100))


def test_a_text_keypad_on_a_serial_port(tmp_path: Path, runtime: AgentRuntime) -> None:
    cable = Cable(tmp_path / "ttyEVAL1")
    with running(serial_source(cable, format="text-v1", baudrate=115200), runtime):
        wait_for(lambda: keypad_disconnected(runtime), 10, "the keypad-missing fault")
        plug_in(cable, runtime)
        cable.send(b"\xffLOGIN c07\r\nRATE 6 A001\r\nRATE 2 A002\r\n", bytewise=True)
        cable.send(b"PAUSE ON \xe6\x9a\x82\xe7\xa6\xbb\r\n")
        wait_for(lambda: len(recorded(runtime)) >= 2, 10, "the keypad's events")
        assert recorded(runtime) == [
            ("rating", {"window_id": "w01", "level": 2, "clerk_id": None, "ticket": "A002", "cases": []}),
            ("pause", {"window_id": "w01", "paused": True, "source": "evaluator", "reason": "暂离"}),
        ]
        assert cable.listen() == b""  # text-v1 has no acknowledgements


def test_without_pauses_and_logins_only_ratings_are_sent_and_still_carry_the_clerk(runtime: AgentRuntime) -> None:
    session = KeypadSession("w01", runtime.emit, pauses=False, logins=False)
    for message in [Login("c01"), Pause(True), Rating(5, "A023"), Pause(False), Login(None), Rating(4)]:
        session.handle(message)
    assert recorded(runtime) == [
        ("rating", {"window_id": "w01", "level": 5, "clerk_id": "c01", "ticket": "A023", "cases": []}),
        ("rating", {"window_id": "w01", "level": 4, "clerk_id": None, "ticket": None, "cases": []}),
    ]


def test_a_keypad_for_a_window_the_device_does_not_serve_is_a_configuration_fault(tmp_path: Path) -> None:
    agent = make_runtime(tmp_path, windows=("w02",))
    try:
        stop = threading.Event()
        evaluator_serial_source(port=str(tmp_path / "tty"), window_id="w01")(agent, stop)  # returns at once
        assert agent.fault == "配置错误 configuration: window w01 is not in this device's windows"
    finally:
        agent.outbox.close()


def test_an_agent_file_with_a_bad_keypad_option_fails_at_start_naming_it(tmp_path: Path) -> None:
    def settings(**source: Any) -> AgentSettings:
        return AgentSettings.model_validate(
            {
                "device": {"hall_id": "demo", "device_id": "ev-01", "kind": "evaluator", "windows": ["w01"]},
                "outbox": {"path": str(tmp_path / "ev.db")},
                "sources": [{"kind": "evaluator_serial", "port": "/dev/ttyUSB0", "window_id": "w01", **source}],
            }
        )

    assert len(load_sources(settings(format=f"{__name__}:OneByteVendor", baudrate=19200, parity="even"))) == 1
    for bad, words in [
        ({"format": "acme-v2"}, "format"),
        ({"baudrate": 50}, "baudrate"),
        ({"window_id": "W 01"}, "window_id"),
        ({"retry_min_s": 60, "retry_max_s": 1}, "retry_min_s"),
        ({"speed": 9600}, "speed"),
    ]:
        with pytest.raises(ConfigError, match=rf"(?s)sources\[0\] \(evaluator_serial\):.*{words}"):
            load_sources(settings(**bad))
