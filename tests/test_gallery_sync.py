"""Gallery sync: sealing, key files, the server's download endpoint and a face terminal end to end.

The end-to-end tests run the real pieces: Mosquitto with the production
config (accounts, ACL), the download router served by uvicorn on a real
port, and an agent runtime with its gallery sync.  The "must show" of
issue 4 is ``test_terminal_installs_replaces_refuses_and_restarts_offline``:
a tampered gallery is refused by a terminal, which keeps running the last
good one.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from agent.config import AgentSettings
from agent.gallery_sync import GALLERY_FILE, GallerySync
from agent.runtime import AgentRuntime
from broker.mosquitto import BrokerAuthFiles
from broker.protocol import AckBody, GalleryNotice, ServerStatus, decode_event, device_topic, encode, server_status_topic
from server.faces.gallery import GalleryPublisher, gallery_devices, gallery_router
from server.ingest.validation import KnownDevice
from vision.gallery_seal import (
    GALLERY_KEY_ENV,
    GALLERY_KEY_FILE,
    SIGNING_KEY_ENV,
    SIGNING_KEY_FILE,
    VERIFY_KEY_ENV,
    VERIFY_KEY_FILE,
    GalleryKeyError,
    GalleryRefused,
    ServerKeys,
    TerminalKeys,
    new_key_files,
    seal,
    unseal,
    write_private_files,
)

from mosquitto_proc import free_port, start_mosquitto
from procs import AppServer, wait_for

HALL = "demo"
V1 = b"gallery v1: persons c01, c02 and their templates"
V2 = b"gallery v2: person c01 only (c02 was deleted)"
V3 = b"gallery v3: person c01 and c03"
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)


def _key_env(directory: Path) -> dict[str, str]:
    return {
        GALLERY_KEY_ENV: str(directory / GALLERY_KEY_FILE),
        SIGNING_KEY_ENV: str(directory / SIGNING_KEY_FILE),
        VERIFY_KEY_ENV: str(directory / VERIFY_KEY_FILE),
    }


@dataclass(frozen=True)
class Keys:
    directory: Path
    server: ServerKeys
    terminal: TerminalKeys

    def env(self) -> dict[str, str]:
        return _key_env(self.directory)


def _make_keys(directory: Path) -> Keys:
    write_private_files(directory, new_key_files())
    env = _key_env(directory)
    return Keys(directory, ServerKeys.from_env(env), TerminalKeys.from_env(env))


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return _make_keys(tmp_path / "keys")


def _seal(keys: Keys, payload: bytes, version: int) -> bytes:
    return seal(payload, version, keys.server.signing_key, keys.server.gallery_key)


def _unseal(keys: Keys, blob: bytes, not_before: int = 0) -> tuple[int, bytes]:
    return unseal(blob, keys.terminal.verify_key, keys.terminal.gallery_key, not_before_version=not_before)


def _flip(blob: bytes, offset: int) -> bytes:
    changed = bytearray(blob)
    changed[offset] ^= 0x01
    return bytes(changed)


# --------------------------------------------------------------------------
# Sealing
# --------------------------------------------------------------------------


def test_seal_round_trip(keys: Keys) -> None:
    blob = _seal(keys, V1, 7)
    assert V1 not in blob, "the payload travels encrypted"
    assert _unseal(keys, blob) == (7, V1)
    assert _unseal(keys, blob, not_before=7) == (7, V1), "the installed version itself reloads"


# Layout: magic 0-5 | version 6-9 | nonce 10-21 | ciphertext + tag | signature (last 64)
FLIPS = {
    "format tag": (0, "not a sealed HallWatch gallery"),
    "version": (9, "bad signature"),
    "nonce": (15, "bad signature"),
    "ciphertext": (30, "bad signature"),
    "GCM tag": (-65, "bad signature"),
    "signature": (-1, "bad signature"),
}


@pytest.mark.parametrize(("offset", "reason"), FLIPS.values(), ids=FLIPS.keys())
def test_a_flipped_byte_anywhere_is_refused(keys: Keys, offset: int, reason: str) -> None:
    blob = _seal(keys, V1, 1)
    with pytest.raises(GalleryRefused) as refused:
        _unseal(keys, _flip(blob, offset))
    assert refused.value.reason.startswith(reason)


@pytest.mark.parametrize("blob", [b"", b"HWGAL\x01", b"not a gallery" * 10, b"HWGAL\x02" + bytes(100)])
def test_what_is_not_a_sealed_gallery_is_refused(keys: Keys, blob: bytes) -> None:
    with pytest.raises(GalleryRefused, match="not a sealed HallWatch gallery"):
        _unseal(keys, blob)


def test_a_truncated_gallery_is_refused(keys: Keys) -> None:
    with pytest.raises(GalleryRefused, match="bad signature"):
        _unseal(keys, _seal(keys, V1, 1)[:-1])


def test_another_servers_signature_is_refused(keys: Keys, tmp_path: Path) -> None:
    other = _make_keys(tmp_path / "other")
    forged = seal(V1, 1, other.server.signing_key, keys.server.gallery_key)
    with pytest.raises(GalleryRefused, match="bad signature"):
        _unseal(keys, forged)


def test_a_wrong_gallery_key_cannot_decrypt(keys: Keys, tmp_path: Path) -> None:
    other = _make_keys(tmp_path / "other")
    blob = seal(V1, 1, keys.server.signing_key, other.server.gallery_key)
    with pytest.raises(GalleryRefused, match="cannot decrypt"):
        _unseal(keys, blob)


def test_an_older_version_is_a_rollback(keys: Keys) -> None:
    with pytest.raises(GalleryRefused, match="rollback: version 2 is older than version 3"):
        _unseal(keys, _seal(keys, V2, 2), not_before=3)


@pytest.mark.parametrize("version", [0, -1, 2**31])
def test_seal_refuses_versions_outside_the_protocol_counter(keys: Keys, version: int) -> None:
    with pytest.raises(ValueError, match="version"):
        _seal(keys, V1, version)


# --------------------------------------------------------------------------
# Key files
# --------------------------------------------------------------------------


def test_new_key_files_are_0600_in_a_0700_folder(keys: Keys) -> None:
    for path in keys.directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(os.stat(keys.directory).st_mode) == 0o700


@pytest.mark.parametrize("name", [GALLERY_KEY_FILE, SIGNING_KEY_FILE])
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_secret_key_files_readable_by_others_are_refused(keys: Keys, name: str, mode: int) -> None:
    path = keys.directory / name
    path.chmod(mode)
    with pytest.raises(GalleryKeyError) as error:
        ServerKeys.from_env(keys.env())
    assert str(path) in str(error.value) and "chmod 600" in str(error.value)


def test_the_public_verify_key_may_be_readable_but_not_writable_by_others(keys: Keys) -> None:
    path = keys.directory / VERIFY_KEY_FILE
    path.chmod(0o644)
    TerminalKeys.from_env(keys.env())
    path.chmod(0o666)
    with pytest.raises(GalleryKeyError, match=f"{path}: key file is writable by others"):
        TerminalKeys.from_env(keys.env())


def test_missing_and_malformed_key_files_are_named(keys: Keys) -> None:
    env = keys.env()
    with pytest.raises(GalleryKeyError, match=f"{VERIFY_KEY_ENV} is not set"):
        TerminalKeys.from_env({GALLERY_KEY_ENV: env[GALLERY_KEY_ENV]})
    (keys.directory / GALLERY_KEY_FILE).write_text("c2hvcnQ=\n")
    with pytest.raises(GalleryKeyError, match=f"{keys.directory / GALLERY_KEY_FILE}: not a gallery key"):
        TerminalKeys.from_env(env)
    with pytest.raises(GalleryKeyError, match=f"{keys.directory / VERIFY_KEY_FILE}: not an Ed25519 private key"):
        ServerKeys.from_env(env | {SIGNING_KEY_ENV: env[VERIFY_KEY_ENV]})
    with pytest.raises(GalleryKeyError, match="nowhere.pem: cannot read the key file"):
        ServerKeys.from_env(env | {SIGNING_KEY_ENV: str(keys.directory / "nowhere.pem")})


def test_faces_keys_init_writes_0600_files_once(tmp_path: Path) -> None:
    from server.cli import app
    from server.faces.registry import KEY_FILE_ENV, template_cipher

    target = tmp_path / "new-keys"
    result = CliRunner().invoke(app, ["faces", "keys", "init", str(target)])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in target.iterdir())
    assert files == sorted([GALLERY_KEY_FILE, SIGNING_KEY_FILE, VERIFY_KEY_FILE, "face-templates.key"])
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in target.iterdir())
    env = _key_env(target)
    for variable in (*env, KEY_FILE_ENV):
        assert variable in result.output, f"the output says where {variable} points"
    server, terminal = ServerKeys.from_env(env), TerminalKeys.from_env(env)
    assert unseal(seal(V1, 1, server.signing_key, server.gallery_key), terminal.verify_key, terminal.gallery_key, not_before_version=0) == (1, V1)
    template_cipher({KEY_FILE_ENV: str(target / "face-templates.key")})  # the register accepts its key

    before = {p.name: p.read_bytes() for p in target.iterdir()}
    again = CliRunner().invoke(app, ["faces", "keys", "init", str(target)])
    assert again.exit_code == 2 and "refusing to overwrite" in again.output
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before


# --------------------------------------------------------------------------
# The server: publisher and download endpoint
# --------------------------------------------------------------------------


@dataclass
class Sent:
    notices: list[tuple[str, GalleryNotice]] = field(default_factory=list)

    def __call__(self, device_id: str, payload: bytes) -> None:
        self.notices.append((device_id, GalleryNotice.model_validate_json(payload)))


REGISTRY = {
    "ft-01": KnownDevice(HALL, "face_terminal", frozenset()),
    "ft-02": KnownDevice(HALL, "face_terminal", frozenset()),
    "cam-01": KnownDevice(HALL, "window_camera", frozenset({"w01"})),
    "ev-01": KnownDevice(HALL, "evaluator", frozenset({"w01"})),
    "ft-09": KnownDevice("other-hall", "face_terminal", frozenset()),
}


def _publisher(directory: Path, sent: Sent) -> GalleryPublisher:
    return GalleryPublisher(directory, sent, lambda: gallery_devices(REGISTRY, HALL), clock=lambda: NOW)


def test_publisher_announces_to_every_gallery_device_of_the_hall_and_keeps_one_file(keys: Keys, tmp_path: Path) -> None:
    sent = Sent()
    publisher = _publisher(tmp_path / "srv", sent)
    first = publisher.publish(_seal(keys, V1, 1))
    assert [d for d, _ in sent.notices] == ["cam-01", "ft-01", "ft-02"], "terminals and window cameras (seated identity), not evaluators"
    assert all(n == first for _, n in sent.notices)
    assert (first.version, first.size, first.issued_at) == (1, len(publisher.blob(1) or b""), NOW)
    second = publisher.publish(_seal(keys, V2, 2))
    assert publisher.blob(1) is None and publisher.blob(2) is not None
    files = list((tmp_path / "srv").iterdir())
    assert [p.name for p in files] == ["gallery.sealed"], "the superseded version is not kept"
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    with pytest.raises(ValueError, match="not newer"):
        publisher.publish(_seal(keys, V1, 2))

    restarted = _publisher(tmp_path / "srv", Sent())
    assert restarted.current is not None
    assert (restarted.current.notice.version, restarted.current.notice.sha256) == (2, second.sha256)


def _router_app(publisher: GalleryPublisher, passwd: Path | None) -> TestClient:
    app = FastAPI()
    app.include_router(gallery_router(publisher, passwd))
    return TestClient(app)


def test_download_needs_a_gallery_device_of_this_hall(keys: Keys, tmp_path: Path) -> None:
    auth = BrokerAuthFiles(tmp_path / "auth")
    passwords = {d: auth.add_device(REGISTRY[d].hall_id, d, kind=REGISTRY[d].kind) for d in REGISTRY}  # type: ignore[arg-type]
    auth.add_server(HALL)
    publisher = _publisher(tmp_path / "srv", Sent())
    publisher.publish(_seal(keys, V1, 1))
    blob = publisher.blob(1)
    client = _router_app(publisher, auth.passwd_path)

    assert client.get("/api/gallery/1").status_code == 401
    assert client.get("/api/gallery/1").headers["www-authenticate"].startswith("Basic")
    assert client.get("/api/gallery/1", auth=("ft-01", "wrong")).status_code == 401
    assert client.get("/api/gallery/1", auth=("nobody", "x")).status_code == 401
    assert client.get("/api/gallery/1", auth=("ev-01", passwords["ev-01"])).status_code == 403, "an evaluator has no use for faces"
    assert client.get("/api/gallery/1", auth=("cam-01", passwords["cam-01"])).status_code == 200, "a window camera identifies who is seated"
    assert client.get("/api/gallery/1", auth=("ft-09", passwords["ft-09"])).status_code == 403, "another hall's terminal"
    ok = client.get("/api/gallery/1", auth=("ft-01", passwords["ft-01"]))
    assert ok.status_code == 200 and ok.content == blob
    assert ok.headers["content-type"] == "application/octet-stream" and ok.headers["cache-control"] == "no-store"
    assert client.get("/api/gallery/2", auth=("ft-01", passwords["ft-01"])).status_code == 404
    assert client.get("/api/gallery/0", auth=("ft-01", passwords["ft-01"])).status_code == 422

    auth.remove_device("ft-01")
    assert client.get("/api/gallery/1", auth=("ft-01", passwords["ft-01"])).status_code == 401, "removed at once, no reload"


def test_without_a_passwd_file_the_download_is_open(keys: Keys, tmp_path: Path) -> None:
    publisher = _publisher(tmp_path / "srv", Sent())
    client = _router_app(publisher, None)
    assert client.get("/api/gallery/1").status_code == 404
    publisher.publish(_seal(keys, V1, 1))
    assert client.get("/api/gallery/1").content == publisher.blob(1)


# --------------------------------------------------------------------------
# The terminal, against real servers
# --------------------------------------------------------------------------


def HttpServer(publisher: GalleryPublisher, passwd: Path | None, port: int | None = None) -> AppServer:
    """The gallery router on a real uvicorn."""
    app = FastAPI()
    app.include_router(gallery_router(publisher, passwd))
    return AppServer(app, port)


class ServerSide:
    """The HallWatch server's MQTT account: says online, sends notices, reads acks."""

    def __init__(self, port: int, password: str | None) -> None:
        self.events: list = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="hallwatch-server")
        if password is not None:
            self.client.username_pw_set("hallwatch-server", password)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *a: c.subscribe(f"hw/v1/{HALL}/dev/+/evt/+", qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        status = encode(ServerStatus(state="online", time=NOW))
        self.client.publish(server_status_topic(HALL), status, qos=1, retain=True).wait_for_publish(5)

    def _on_message(self, client, userdata, msg) -> None:  # type: ignore[no-untyped-def]
        with self.lock:
            self.events.append(decode_event(msg.payload))

    def send(self, device_id: str, payload: bytes) -> None:
        self.client.publish(device_topic(HALL, device_id, "gal"), payload, qos=1, retain=True).wait_for_publish(5)

    def gallery_acks(self) -> list[AckBody]:
        with self.lock:
            return [e.body for e in self.events if e.type == "ack" and e.body.ref == "gallery"]

    def ack_for(self, version: int) -> AckBody:
        return wait_for(lambda: next((a for a in self.gallery_acks() if a.ref_id == str(version)), None), 15, f"the ack of v{version}")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@dataclass
class Terminal:
    runtime: AgentRuntime
    sync: GallerySync
    installed: list[tuple[int, bytes]]

    def stop(self) -> None:
        self.sync.stop()
        self.runtime.stop()


def _terminal(
    tmp_path: Path, keys: Keys, broker_port: int, server_url: str, password: str | None, **sync_options: float
) -> Terminal:
    secret = tmp_path / "ft-01.secret"
    if password is not None:
        secret.write_text(password + "\n")
        secret.chmod(0o600)
    settings = AgentSettings.model_validate(
        {
            "device": {"hall_id": HALL, "device_id": "ft-01", "kind": "face_terminal"},
            "broker": {"url": f"mqtt://127.0.0.1:{broker_port}"}
            | ({"username": "ft-01", "password_file": str(secret)} if password is not None else {}),
            "outbox": {"path": str(tmp_path / "terminal" / "ft-01.outbox.db")},
            "heartbeat_s": 3600,
            "reconnect_min_s": 0.2,
        }
    )
    (tmp_path / "terminal").mkdir(exist_ok=True)
    runtime = AgentRuntime(settings)
    installed: list[tuple[int, bytes]] = []
    options = {"timeout_s": 5.0, "attempts": 2, "backoff_s": 0.1, "retry_s": 60.0} | sync_options
    sync = GallerySync(
        runtime,
        tmp_path / "terminal" / "gallery",
        server_url,
        keys.terminal,
        lambda version, payload: installed.append((version, payload)),
        **options,  # type: ignore[arg-type]
    )
    sync.start()
    runtime.start()
    return Terminal(runtime, sync, installed)


def _gallery_dir(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "terminal" / "gallery").iterdir())


@pytest.mark.mosquitto
def test_terminal_installs_replaces_refuses_and_restarts_offline(keys: Keys, tmp_path: Path) -> None:
    auth = BrokerAuthFiles(tmp_path / "auth")
    password = auth.add_device(HALL, "ft-01", kind="face_terminal")
    server_password = auth.add_server(HALL)
    broker = start_mosquitto(tmp_path, auth=auth)
    server = ServerSide(broker.port, server_password)
    publisher = GalleryPublisher(tmp_path / "server-gallery", server.send, lambda: ["ft-01"])
    http = HttpServer(publisher, auth.passwd_path).start()
    terminal: Terminal | None = None
    try:
        publisher.publish(_seal(keys, V1, 1))
        terminal = _terminal(tmp_path, keys, broker.port, http.url, password)
        assert server.ack_for(1).ok
        assert terminal.installed == [(1, V1)] and terminal.sync.version == 1
        assert _gallery_dir(tmp_path) == [GALLERY_FILE]
        assert stat.S_IMODE(terminal.sync.path.stat().st_mode) == 0o600

        # A person is deleted: the server publishes v2, the terminal replaces v1 everywhere.
        publisher.publish(_seal(keys, V2, 2))
        assert server.ack_for(2).ok
        assert terminal.installed[-1] == (2, V2)
        assert _gallery_dir(tmp_path) == [GALLERY_FILE], "v1 is gone from the terminal's disk"
        assert _unseal(keys, terminal.sync.path.read_bytes()) == (2, V2)
        assert list((tmp_path / "server-gallery").iterdir()) == [publisher.path], "and from the server's"

        # A tampered gallery (announced with its own digest, so only the signature can tell).
        publisher.publish(_flip(_seal(keys, V3, 3), 40))
        refused = server.ack_for(3)
        assert not refused.ok and refused.detail is not None and refused.detail.startswith("bad signature")
        assert terminal.sync.version == 2 and terminal.installed[-1] == (2, V2)
        assert _unseal(keys, terminal.sync.path.read_bytes()) == (2, V2), "the last good gallery stays on disk"
        assert _gallery_dir(tmp_path) == [GALLERY_FILE]
        assert terminal.runtime.wait_drained(10)
        assert [(a.ref_id, a.ok) for a in server.gallery_acks()] == [("1", True), ("2", True), ("3", False)]
    finally:
        if terminal is not None:
            terminal.stop()
        http.stop()
        server.close()
        broker.stop()

    # The server and the broker are gone: the terminal restarts with v2 from its disk.
    offline = _terminal(tmp_path, keys, broker.port, http.url, password)
    try:
        assert offline.installed == [(2, V2)] and offline.sync.version == 2
    finally:
        offline.stop()


def test_a_gallery_file_tampered_on_disk_is_refused_at_start(keys: Keys, tmp_path: Path) -> None:
    directory = tmp_path / "terminal" / "gallery"
    directory.mkdir(parents=True)
    (directory / GALLERY_FILE).write_bytes(_flip(_seal(keys, V1, 1), 30))
    (directory / f".{GALLERY_FILE}.crashed").write_bytes(b"staging left by a power cut")
    terminal = _terminal(tmp_path, keys, free_port(), "http://127.0.0.1:9", None)
    try:
        assert terminal.installed == [] and terminal.sync.version is None
        assert _gallery_dir(tmp_path) == [GALLERY_FILE], "staging leftovers are deleted at start"
    finally:
        terminal.stop()


def _acks_in_outbox(runtime: AgentRuntime) -> list[AckBody]:
    """The gallery acks a terminal has emitted (no broker here: they stay in its outbox)."""
    events = [p.event for p in runtime.outbox.pending(after_row=0, limit=1000)]
    return [e.body for e in events if e.type == "ack" and e.body.ref == "gallery"]


def _next_ack(runtime: AgentRuntime, seen: list[AckBody]) -> AckBody:
    """Wait for one more ack than ``seen`` holds; append it and return it."""
    acks = wait_for(lambda: (a := _acks_in_outbox(runtime)) and len(a) > len(seen) and a, 15, f"ack number {len(seen) + 1}")
    assert len(acks) == len(seen) + 1, f"more acks than expected: {acks[len(seen):]}"
    seen.append(acks[-1])
    return acks[-1]


def _notice(blob: bytes, version: int) -> GalleryNotice:
    return GalleryNotice(version=version, sha256=hashlib.sha256(blob).hexdigest(), size=len(blob), issued_at=NOW)


def test_without_the_server_the_terminal_keeps_its_gallery_and_catches_up_later(keys: Keys, tmp_path: Path) -> None:
    publisher = GalleryPublisher(tmp_path / "server-gallery", lambda d, p: None, lambda: ["ft-01"])
    http = HttpServer(publisher, None).start()
    terminal = _terminal(tmp_path, keys, free_port(), http.url, None, retry_s=0.5)
    acks: list[AckBody] = []
    try:
        terminal.sync.on_notice(publisher.publish(_seal(keys, V1, 1)))
        assert _next_ack(terminal.runtime, acks) == AckBody(ref="gallery", ref_id="1", ok=True)
        http.stop()

        terminal.sync.on_notice(publisher.publish(_seal(keys, V2, 2)))
        failed = _next_ack(terminal.runtime, acks)
        assert (failed.ref_id, failed.ok) == ("2", False)
        assert failed.detail is not None and failed.detail.startswith("download failed")
        assert terminal.sync.version == 1 and terminal.installed == [(1, V1)]

        time.sleep(1.5)  # retries every 0.5 s meanwhile, without a new ack each time
        http = HttpServer(publisher, None, port=http.port).start()  # the server is back
        assert _next_ack(terminal.runtime, acks) == AckBody(ref="gallery", ref_id="2", ok=True)
        assert terminal.installed == [(1, V1), (2, V2)]
    finally:
        terminal.stop()
        http.stop()


def test_notices_that_do_not_match_or_go_back_are_refused(keys: Keys, tmp_path: Path) -> None:
    publisher = GalleryPublisher(tmp_path / "server-gallery", lambda d, p: None, lambda: ["ft-01"])
    http = HttpServer(publisher, None).start()
    terminal = _terminal(tmp_path, keys, free_port(), http.url, None)
    installed: list[tuple[int, bytes]] = []
    refuse = threading.Event()

    def on_gallery(version: int, payload: bytes) -> None:
        if refuse.is_set():
            raise ValueError("not a HallWatch gallery:\ntruncated")
        installed.append((version, payload))

    terminal.sync.on_gallery = on_gallery
    acks: list[AckBody] = []
    try:
        v2 = publisher.publish(_seal(keys, V2, 2))
        terminal.sync.on_notice(v2)
        assert _next_ack(terminal.runtime, acks).ok

        terminal.sync.on_notice(_notice(_seal(keys, V1, 1), 1))
        assert _next_ack(terminal.runtime, acks) == AckBody(ref="gallery", ref_id="1", ok=False, detail="older than the running version 2")
        terminal.sync.on_notice(v2)  # the retained notice again, e.g. after a reconnect
        assert _next_ack(terminal.runtime, acks) == AckBody(ref="gallery", ref_id="2", ok=True, detail="running")

        blob3 = _seal(keys, V3, 3)
        publisher.publish(_flip(blob3, 30))
        terminal.sync.on_notice(_notice(blob3, 3))  # announced one blob, the server serves another
        assert _next_ack(terminal.runtime, acks).detail == "sha256 differs from the notice"

        refuse.set()
        terminal.sync.on_notice(publisher.publish(_seal(keys, V3, 4)))
        refused = _next_ack(terminal.runtime, acks)
        assert (refused.ref_id, refused.ok) == ("4", False)
        assert refused.detail == "rejected by the terminal: not a HallWatch gallery: truncated"
        assert installed == [(2, V2)] and terminal.sync.version == 2
        assert _unseal(keys, terminal.sync.path.read_bytes()) == (2, V2)
    finally:
        terminal.stop()
        http.stop()


def test_an_older_gallery_is_refused_even_after_a_restart(keys: Keys, tmp_path: Path) -> None:
    """The newest version ever installed outlives the file: an older file put back is a rollback."""
    publisher = GalleryPublisher(tmp_path / "server-gallery", lambda d, p: None, lambda: ["ft-01"])
    http = HttpServer(publisher, None).start()
    terminal = _terminal(tmp_path, keys, free_port(), http.url, None)
    try:
        terminal.sync.on_notice(publisher.publish(_seal(keys, V2, 2)))
        assert _next_ack(terminal.runtime, []).ok
    finally:
        terminal.stop()
        http.stop()
    terminal.sync.path.write_bytes(_seal(keys, V1, 1))
    restarted = _terminal(tmp_path, keys, free_port(), http.url, None)
    try:
        assert restarted.installed == [] and restarted.sync.version is None
    finally:
        restarted.stop()


# --------------------------------------------------------------------------
# The protocol page documents the notice (docs/protocol.md, "Gallery sync")
# --------------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"


def _doc_section(heading: str) -> list[str]:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    return lines[start + 1 : end]


def test_protocol_page_documents_the_gallery_notice_as_the_model_is() -> None:
    import json
    import re

    section = _doc_section("#### GalleryNotice")
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section if line.startswith("|")]
    assert rows[0] == ["field", "type", "required", "meaning"]
    documented = {row[0].strip("`"): row[2].split()[0] for row in rows[2:]}
    expected = {name: "yes" if info.is_required() else "no" for name, info in GalleryNotice.model_fields.items()}
    assert documented == expected
    example = re.search(r"```json\n(.*?)```", "\n".join(section), flags=re.S)
    assert example is not None, "the section has a JSON example"
    GalleryNotice.model_validate_json(example[1])
    json.loads(example[1])

    topics = "\n".join(_doc_section("## Gallery sync (人脸库同步)"))
    template = device_topic("hall-x", "device-x", "gal").replace("hall-x", "{hall_id}").replace("device-x", "{device_id}")
    assert f"`{template}`" in topics
    ack = "\n".join(_doc_section("### ack"))
    assert "`gallery`" in ack

