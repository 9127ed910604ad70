"""broker/mosquitto.py against the real Mosquitto broker.

Mosquitto drops an unauthorised MQTT 3.1.1 publish silently (the publisher
still gets its PUBACK) and grants every SUBSCRIBE, filtering per message on
delivery.  So "denied" is asserted as non-delivery, and every test proves the
positive case through the same connections, so it can fail.  Mosquitto
routes a QoS 1 publish before it sends the PUBACK: once a publish is
acknowledged, anything it would deliver is already queued ahead of later
messages to the same subscriber, so "the later message arrived, the earlier
one did not" is a bounded, non-flaky check.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import ssl
import stat
import subprocess
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from broker.mosquitto import (
    BrokerAuthFiles,
    TLSFiles,
    check_login,
    device_acl_topics,
    generate_password,
    hash_password,
    render_mosquitto_conf,
    verify_password,
)
from broker.protocol import MAX_PAYLOAD_BYTES, device_topic, server_status_topic
try:  # pytest puts tests/ on sys.path (no tests/__init__.py)
    from conftest import require_executable
    from mosquitto_proc import MosquittoProcess, free_port, start_mosquitto
except ImportError:  # tests/ became a package
    from tests.conftest import require_executable
    from tests.mosquitto_proc import MosquittoProcess, free_port, start_mosquitto

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(60)]

WAIT_S = 3.0  # longest wait for anything that should happen
QUIET_S = 0.3  # extra settle time before asserting that nothing arrived
HALL, OTHER_HALL = "h1", "h2"


# --------------------------------------------------------------------------
# A small synchronous wrapper around paho
# --------------------------------------------------------------------------


class Peer:
    """One MQTT connection with blocking connect/subscribe/publish."""

    def __init__(
        self,
        port: int,
        username: str | None,
        password: str | None,
        *,
        client_id: str | None = None,
        protocol: int = mqtt.MQTTv311,
        will: str | None = None,
        clean: bool = True,
    ) -> None:
        self.port = port
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"{username}-{uuid.uuid4().hex[:8]}",
            protocol=protocol,
            clean_session=clean if protocol != mqtt.MQTTv5 else None,
            reconnect_on_failure=False,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        if will:
            self.client.will_set(will, b"offline", qos=1, retain=True)
        self._cond = threading.Condition()
        self._messages: list[tuple[str, bytes]] = []
        self._connack: ReasonCode | None = None
        self._suback: dict[int, list[ReasonCode]] = {}
        self.disconnected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = lambda *a: self.disconnected.set()

    # callbacks (paho's network thread)
    def _on_connect(self, client, userdata, flags, rc, props) -> None:
        with self._cond:
            self._connack = rc
            self._cond.notify_all()

    def _on_message(self, client, userdata, msg) -> None:
        with self._cond:
            self._messages.append((msg.topic, msg.payload))
            self._cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, rcs, props) -> None:
        with self._cond:
            self._suback[mid] = list(rcs)
            self._cond.notify_all()

    def _wait(self, predicate, what: str):
        with self._cond:
            if not self._cond.wait_for(predicate, WAIT_S):
                raise AssertionError(f"timed out after {WAIT_S} s waiting for {what}")
            return predicate()

    # API
    def connect(self) -> ReasonCode:
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        return self._wait(lambda: self._connack, "CONNACK")

    def subscribe(self, *topics: str) -> list[ReasonCode]:
        _, mid = self.client.subscribe([(t, 1) for t in topics])
        return self._wait(lambda: self._suback.get(mid), "SUBACK")

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(WAIT_S)
        assert info.is_published(), f"no PUBACK for {topic}"

    def expect(self, topic: str, payload: bytes) -> None:
        self._wait(lambda: (topic, payload) in self._messages, f"{payload!r} on {topic}")

    def received(self, *, settle: float = QUIET_S) -> list[tuple[str, bytes]]:
        time.sleep(settle)
        with self._cond:
            return list(self._messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Hall:
    """A broker with the production config and HallWatch accounts:
    devices ``da``/``db`` in hall h1, ``dc`` in hall h2, the server of h1."""

    def __init__(self, tmp_path: Path) -> None:
        self.auth = BrokerAuthFiles(tmp_path / "auth")
        self.passwords = {
            "da": self.auth.add_device(HALL, "da"),
            "db": self.auth.add_device(HALL, "db"),
            "dc": self.auth.add_device(OTHER_HALL, "dc"),
            "hallwatch-server": self.auth.add_server(HALL),
        }
        self.broker = start_mosquitto(tmp_path, auth=self.auth)
        self.peers: list[Peer] = []

    def peer(self, user: str, password: str | None = None, **kw) -> Peer:
        peer = Peer(self.broker.port, user, password or self.passwords[user], **kw)
        self.peers.append(peer)
        return peer

    def connected(self, user: str, **kw) -> Peer:
        peer = self.peer(user, **kw)
        rc = peer.connect()
        assert not rc.is_failure, f"{user} refused: {rc}\n{self.broker.log()}"
        return peer

    def close(self) -> None:
        for peer in self.peers:
            peer.close()
        self.broker.stop()


@pytest.fixture
def hall(tmp_path: Path):
    require_executable("mosquitto")
    h = Hall(tmp_path)
    yield h
    h.close()


def evt(device: str, kind: str = "punch", hall: str = HALL) -> str:
    return device_topic(hall, device, "evt", kind)


def chan(device: str, channel: str, hall: str = HALL) -> str:
    return device_topic(hall, device, channel)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Passwords and files (no broker)
# --------------------------------------------------------------------------


def test_hash_password_format() -> None:
    hashed = hash_password("secret")
    m = re.fullmatch(r"\$7\$101\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)", hashed)
    assert m, hashed
    assert len(base64.b64decode(m[1])) == 12
    assert len(base64.b64decode(m[2])) == 64
    assert hash_password("secret") != hashed  # random salt
    assert hash_password("s", salt=b"x" * 12) == hash_password("s", salt=b"x" * 12)
    assert verify_password("secret", hashed) and not verify_password("Secret", hashed)
    with pytest.raises(ValueError):
        hash_password("s", iterations=0)
    with pytest.raises(ValueError, match="12-byte salt"):
        hash_password("s", salt=b"x" * 16)  # the broker would refuse it


def test_hash_password_matches_mosquitto_passwd(tmp_path: Path) -> None:
    exe = require_executable("mosquitto_passwd")
    pwfile = tmp_path / "pw"
    subprocess.run([exe, "-c", "-b", str(pwfile), "alice", "pä55:word"], check=True)
    theirs = pwfile.read_text().strip().split(":", 1)[1]
    salt = base64.b64decode(theirs.split("$")[3])
    assert hash_password("pä55:word", salt=salt) == theirs


def test_generate_password() -> None:
    passwords = {generate_password() for _ in range(50)}
    assert len(passwords) == 50
    for pw in passwords:
        assert len(pw) >= 24 and re.fullmatch(r"[A-Za-z0-9_-]+", pw)


def test_auth_files_replace_entries_and_keep_others(tmp_path: Path) -> None:
    auth = BrokerAuthFiles(tmp_path / "auth")
    (tmp_path / "auth").mkdir()
    auth.passwd_path.write_text("ops:$7$101$c2FsdHNhbHRzYWx0$AAAA\n")
    auth.acl_path.write_text("# site ops account\nuser ops\ntopic read $SYS/#\n")

    first = auth.add_device(HALL, "d1")
    auth.add_device(HALL, "d2")
    second = auth.add_device(OTHER_HALL, "d1")  # re-provisioned, moved hall
    auth.add_server(HALL)
    auth.add_server(HALL)

    passwd = auth.passwd_path.read_text().splitlines()
    users = [line.split(":", 1)[0] for line in passwd]
    assert users == ["ops", "d1", "d2", "hallwatch-server"]
    d1_hash = passwd[1].split(":", 1)[1]
    assert verify_password(second, d1_hash) and not verify_password(first, d1_hash)

    acl = auth.acl_path.read_text()
    assert acl.count("user d1\n") == 1 and acl.count("user hallwatch-server\n") == 1
    assert "# site ops account\nuser ops\ntopic read $SYS/#\n" in acl
    assert f"topic write hw/v1/{OTHER_HALL}/dev/d1/evt/+" in acl
    assert f"hw/v1/{HALL}/dev/d1/" not in acl
    assert auth.device_ids() == ["d1", "d2"]

    assert stat.S_IMODE(auth.passwd_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(auth.acl_path.stat().st_mode) == 0o644
    assert not [p for p in auth.directory.iterdir() if p.name.startswith(".passwd.") or p.name.startswith(".acl.")]

    auth.remove_device("d1")
    assert auth.device_ids() == ["d2"]
    assert "d1:" not in auth.passwd_path.read_text() and "user d1" not in auth.acl_path.read_text()
    assert "user ops" in auth.acl_path.read_text() and "ops:" in auth.passwd_path.read_text()
    with pytest.raises(KeyError, match="d1"):
        auth.remove_device("d1")
    with pytest.raises(KeyError, match="hallwatch-server"):
        auth.remove_device("hallwatch-server")  # not a device
    with pytest.raises(ValueError, match="hallwatch-server"):
        auth.add_device(HALL, "hallwatch-server")


def test_only_devices_that_run_the_gallery_read_its_notice() -> None:
    gal = ("read", f"hw/v1/{HALL}/dev/ft/gal")
    assert gal in device_acl_topics(HALL, "ft", "face_terminal")
    assert gal in device_acl_topics(HALL, "ft", "window_camera"), "seated identity"
    for kind in ("evaluator", "pause_button", "queue_gateway", None):
        assert not [t for _, t in device_acl_topics(HALL, "ft", kind) if t.endswith("/gal")], kind  # type: ignore[arg-type]


def test_check_login_reads_the_passwd_file(tmp_path: Path) -> None:
    auth = BrokerAuthFiles(tmp_path / "auth")
    password = auth.add_device(HALL, "d1", kind="face_terminal")
    auth.passwd_path.write_text(auth.passwd_path.read_text() + "ops:$6$salt$notpbkdf2\n")
    assert check_login(auth.passwd_path, "d1", password)
    assert not check_login(auth.passwd_path, "d1", password + "x")
    assert not check_login(auth.passwd_path, "d2", password)
    assert not check_login(auth.passwd_path, "ops", "anything"), "a hash HallWatch does not write never matches"
    assert "# hallwatch:device hall=h1 device=d1 kind=face_terminal" in auth.acl_path.read_text()
    auth.remove_device("d1")
    assert not check_login(auth.passwd_path, "d1", password)


@pytest.mark.parametrize(
    ("hall_id", "device_id", "bad"),
    [("H1", "d1", "H1"), ("h1", "d/1", "d/1"), ("h1", "#", "#"), ("h1", "", "''"), ("h 1", "d1", "h 1")],
)
def test_auth_files_reject_bad_ids(tmp_path: Path, hall_id: str, device_id: str, bad: str) -> None:
    auth = BrokerAuthFiles(tmp_path)
    with pytest.raises(ValueError, match=re.escape(bad)):
        auth.add_device(hall_id, device_id)
    assert not auth.passwd_path.exists()


def test_render_conf(tmp_path: Path) -> None:
    conf = render_mosquitto_conf(tmp_path / "auth", persistence_dir=tmp_path / "data")
    lines = set(conf.splitlines())
    for expected in [
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {tmp_path}/auth/passwd",
        f"acl_file {tmp_path}/auth/acl",
        "persistence true",
        f"persistence_location {tmp_path}/data/",
        "autosave_interval 10",
        "max_queued_messages 100000",
        "use_username_as_clientid true",
        "listener 1883 127.0.0.1",
    ]:
        assert expected in lines, expected
    size = int(re.search(r"^max_packet_size (\d+)$", conf, re.M)[1])  # type: ignore[index]
    assert MAX_PAYLOAD_BYTES + 200 < size <= 2 * MAX_PAYLOAD_BYTES
    assert "8883" not in conf and "cafile" not in conf
    # Listener options only after the first listener line (see below).
    first_listener = conf.index("\nlistener ")
    assert "use_username_as_clientid" not in conf[:first_listener]

    tls = TLSFiles(Path("/etc/hw/ca.crt"), Path("/etc/hw/broker.crt"), Path("/etc/hw/broker.key"))
    conf = render_mosquitto_conf(tmp_path, tls=tls)
    tls_block = conf[conf.index("\nlistener 8883\n") :]
    for expected in ["cafile /etc/hw/ca.crt", "certfile /etc/hw/broker.crt", "keyfile /etc/hw/broker.key"]:
        assert f"\n{expected}\n" in tls_block, expected
    assert "use_username_as_clientid true" in tls_block  # per listener: both have it
    assert conf.count("use_username_as_clientid true") == 2
    assert "tls_version tlsv1.2" in conf
    with pytest.raises(ValueError, match="whitespace"):
        render_mosquitto_conf(Path("/etc/hall watch"))


# --------------------------------------------------------------------------
# Against the broker
# --------------------------------------------------------------------------


def test_broker_opens_only_the_configured_listener(hall: Hall) -> None:
    """A listener option above the first 'listener' line makes Mosquitto 2.0
    open its default listener on port 1883 on every interface, silently."""
    opened = re.findall(r"Opening ipv[46] listen socket on port (\d+)", hall.broker.log())
    assert opened == [str(hall.broker.port)], hall.broker.log()


def test_device_connects_wrong_password_refused(hall: Hall) -> None:
    assert not hall.peer("da").connect().is_failure
    for user, password in [("da", "wrong-password"), ("da", hall.passwords["db"]), ("nobody", "x")]:
        rc = hall.peer(user, password).connect()
        assert rc == "Not authorized", (user, rc)
    anonymous = Peer(hall.broker.port, None, None)
    hall.peers.append(anonymous)
    assert anonymous.connect() == "Not authorized"


def test_hash_password_accepted_by_broker(tmp_path: Path) -> None:
    """Hand-written entries: our hash (non-default salt and iterations) and one
    made by mosquitto_passwd side by side; both log in."""
    require_executable("mosquitto")
    auth = BrokerAuthFiles(tmp_path / "auth")
    auth.add_server(HALL)  # creates both files
    with auth.passwd_path.open("a") as fh:
        fh.write(f"manual:{hash_password('m4nual', salt=b'0123456789ab', iterations=1000)}\n")
    passwd_exe = require_executable("mosquitto_passwd")
    subprocess.run([passwd_exe, "-b", str(auth.passwd_path), "theirs", "th3irs"], check=True)
    with start_mosquitto(tmp_path, auth=auth) as broker:
        for user, password, ok in [("manual", "m4nual", True), ("theirs", "th3irs", True), ("manual", "m4nuaL", False)]:
            peer = Peer(broker.port, user, password)
            try:
                assert peer.connect().is_failure is not ok, (user, password)
            finally:
                peer.close()


def test_device_publishes_only_its_own_events_and_status(hall: Hall) -> None:
    server = hall.connected("hallwatch-server")
    server.subscribe("hw/v1/+/dev/+/evt/+", "hw/v1/+/dev/+/status")
    da = hall.connected("da")
    da.subscribe(chan("da", "cfg"))
    db = hall.connected("db")

    # Forgeries first, each acknowledged (so already routed or dropped) ...
    da.publish(evt("db"), b"forged-evt")
    da.publish(chan("db", "status"), b"forged-status", retain=True)
    da.publish(chan("da", "cfg"), b"forged-cfg")
    da.publish(chan("da", "cmd"), b"forged-cmd")
    da.publish(evt("da").rsplit("/", 1)[0], b"no-type-level")
    da.publish(server_status_topic(HALL), b"forged-server-status")
    # ... then the real messages through the same connections.
    da.publish(evt("da"), b"real-evt")
    da.publish(chan("da", "status"), b"real-status", retain=True)
    db.publish(chan("db", "status"), b"db-status", retain=True)
    server.publish(chan("da", "cfg"), b"real-cfg", retain=True)
    server.expect(evt("da"), b"real-evt")
    server.expect(chan("da", "status"), b"real-status")
    server.expect(chan("db", "status"), b"db-status")
    da.expect(chan("da", "cfg"), b"real-cfg")

    assert [p for _, p in server.received() if p.startswith((b"forged", b"no-type"))] == []
    assert [p for _, p in da.received(settle=0) if p.startswith(b"forged")] == []

    # No forged retained message was stored either.
    late = hall.connected("hallwatch-server", client_id="late")
    late.subscribe(chan("db", "status"))
    late.expect(chan("db", "status"), b"db-status")
    assert late.received() == [(chan("db", "status"), b"db-status")]


def test_device_reads_only_its_own_cmd_cfg_and_server_status(hall: Hall) -> None:
    da = hall.connected("da")
    # Every SUBSCRIBE is granted, even '#'; the ACL filters on delivery.
    granted = da.subscribe(chan("db", "cmd"), chan("db", "cfg"), "#", chan("da", "cmd"), server_status_topic(HALL))
    assert all(not rc.is_failure for rc in granted), granted
    server = hall.connected("hallwatch-server")
    server.publish(chan("db", "cmd"), b"for-db")
    server.publish(chan("db", "cfg"), b"cfg-db", retain=True)
    server.publish(evt("db"), b"server-cannot-write-events")
    server.publish(chan("da", "cmd"), b"for-da")
    server.publish(server_status_topic(HALL), b"online", retain=True)

    da.expect(chan("da", "cmd"), b"for-da")
    da.expect(server_status_topic(HALL), b"online")
    assert sorted(da.received()) == sorted([(chan("da", "cmd"), b"for-da"), (server_status_topic(HALL), b"online")])

    db = hall.connected("db")
    db.subscribe(chan("db", "cmd"), chan("db", "cfg"))
    db.expect(chan("db", "cfg"), b"cfg-db")  # retained


def test_server_writes_cfg_cmd_and_reads_its_hall(hall: Hall) -> None:
    server = hall.connected("hallwatch-server")
    server.subscribe("hw/v1/+/dev/+/evt/+", "hw/v1/+/dev/+/status")
    devices = {d: hall.connected(d) for d in ("da", "db", "dc")}
    for device in ("da", "db"):
        devices[device].subscribe(chan(device, "cfg"), chan(device, "cmd"))
        server.publish(chan(device, "cfg"), f"cfg-{device}".encode(), retain=True)
        server.publish(chan(device, "cmd"), f"cmd-{device}".encode())
        devices[device].expect(chan(device, "cfg"), f"cfg-{device}".encode())
        devices[device].expect(chan(device, "cmd"), f"cmd-{device}".encode())

    devices["dc"].publish(evt("dc", hall=OTHER_HALL), b"other-hall")  # allowed for dc ...
    for device in ("da", "db"):
        devices[device].publish(evt(device, "rating"), f"rating-{device}".encode())
        server.expect(evt(device, "rating"), f"rating-{device}".encode())
    # ... but the h1 server is not allowed to read hall h2.
    assert b"other-hall" not in [p for _, p in server.received()]


def test_gallery_notice_reaches_only_its_face_terminal(hall: Hall) -> None:
    hall.passwords["ft"] = hall.auth.add_device(HALL, "ft", kind="face_terminal")
    hall.broker.reload()
    server = hall.connected("hallwatch-server")
    ft = hall.connected("ft")
    da = hall.connected("da")  # added without a kind: no gallery grant
    ft.subscribe(chan("ft", "gal"), chan("da", "gal"))
    da.subscribe(chan("da", "gal"), chan("ft", "gal"))

    # ft reads its own gal, so a forged notice it may write would come back to it.
    ft.publish(chan("ft", "gal"), b"forged-by-the-terminal", retain=True)
    server.publish(chan("da", "gal"), b"notice-da", retain=True)
    server.publish(chan("ft", "gal"), b"notice-ft", retain=True)
    ft.expect(chan("ft", "gal"), b"notice-ft")
    assert ft.received() == [(chan("ft", "gal"), b"notice-ft")]
    assert da.received() == []


def test_readding_device_replaces_password_and_remove_revokes(hall: Hall) -> None:
    """SIGHUP re-reads passwd/acl and, unlike what mosquitto.conf(5) says,
    2.0.11 also disconnects open connections whose credentials are gone."""
    old = hall.passwords["da"]
    live = hall.connected("da")
    bystander = hall.connected("dc")
    new = hall.auth.add_device(HALL, "da")
    assert new != old
    hall.broker.reload()
    assert live.disconnected.wait(WAIT_S), "old-password connection survived the reload"
    assert hall.peer("da", old).connect() == "Not authorized"
    assert not hall.peer("da", new).connect().is_failure

    db = hall.connected("db")
    hall.auth.remove_device("db")
    hall.broker.reload()
    assert db.disconnected.wait(WAIT_S), "removed device stayed connected"
    assert hall.peer("db").connect() == "Not authorized"
    assert not bystander.disconnected.is_set()


def test_device_cannot_take_over_the_server_session(hall: Hall) -> None:
    """Without use_username_as_clientid a device could connect with the
    server's client id, kick it off and replace its persistent session."""
    server = hall.connected("hallwatch-server", client_id="hallwatch-server", clean=False)
    server.subscribe(f"hw/v1/{HALL}/dev/+/evt/+")
    hall.connected("da", client_id="hallwatch-server", clean=False)
    db = hall.connected("db")
    db.publish(evt("db"), b"after-takeover-attempt")
    server.expect(evt("db"), b"after-takeover-attempt")
    assert not server.disconnected.is_set()


def test_last_will_on_own_status_is_delivered(hall: Hall) -> None:
    server = hall.connected("hallwatch-server")
    server.subscribe(f"hw/v1/{HALL}/dev/+/status")
    da = hall.connected("da", will=chan("da", "status"))
    db = hall.connected("db", will=chan("da", "status"))  # not db's topic: dropped
    for peer in (da, db):
        peer.client.loop_stop()
        peer.client.socket().close()  # vanish without DISCONNECT
    server.expect(chan("da", "status"), b"offline")
    assert server.received() == [(chan("da", "status"), b"offline")]


def test_mqtt5_publisher_sees_not_authorised(hall: Hall) -> None:
    """MQTT 5 reports the drop in the PUBACK (3.1.1 cannot)."""
    peer = hall.peer("da", protocol=mqtt.MQTTv5)
    results: dict[int, ReasonCode] = {}
    peer.client.on_publish = lambda c, u, mid, rc, props: results.__setitem__(mid, rc)
    assert not peer.connect().is_failure
    denied = peer.client.publish(evt("db"), b"x", qos=1)
    allowed = peer.client.publish(evt("da"), b"x", qos=1)
    allowed.wait_for_publish(WAIT_S)
    denied.wait_for_publish(WAIT_S)
    assert results[denied.mid] == "Not authorized"
    assert not results[allowed.mid].is_failure


def test_max_packet_size_fits_the_protocol_limit(hall: Hall) -> None:
    server = hall.connected("hallwatch-server")
    server.subscribe(f"hw/v1/{HALL}/dev/+/evt/+")
    da = hall.connected("da")
    largest = b"x" * MAX_PAYLOAD_BYTES
    da.publish(evt("da"), largest)
    server.expect(evt("da"), largest)
    da.client.publish(evt("da"), largest + b"x" * 4096, qos=1)
    assert da.disconnected.wait(WAIT_S), "oversized packet did not disconnect its sender"


def test_persistence_survives_stop_start(hall: Hall) -> None:
    server = hall.connected("hallwatch-server")
    server.publish(server_status_topic(HALL), b"online", retain=True)
    server.close()
    hall.peers.remove(server)
    port = hall.broker.port
    hall.broker.stop()
    hall.broker.start()
    assert hall.broker.port == port and hall.broker.url == f"mqtt://127.0.0.1:{port}"
    da = hall.connected("da")
    da.subscribe(server_status_topic(HALL))
    da.expect(server_status_topic(HALL), b"online")


def test_tls_listener(tmp_path: Path) -> None:
    """The TLS block works with a private CA made as docs/mosquitto.md says."""
    require_executable("mosquitto")
    openssl = require_executable("openssl")
    pki = tmp_path / "pki"
    pki.mkdir()

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=pki, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650", "-subj", "/CN=HallWatch CA")  # fmt: skip
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "broker.key", "-out", "broker.csr", "-subj", "/CN=localhost")  # fmt: skip
    (pki / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "broker.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "broker.crt", "-days", "825", "-extfile", "san.ext")  # fmt: skip

    auth = BrokerAuthFiles(tmp_path / "auth")
    password = auth.add_device(HALL, "da")
    port, tls_port = free_port(), free_port()
    tls = TLSFiles(pki / "ca.crt", pki / "broker.crt", pki / "broker.key", port=tls_port, bind="127.0.0.1")
    conf = render_mosquitto_conf(auth.directory, port=port, persistence_dir=tmp_path, tls=tls)
    conf += "user root\n" if os.geteuid() == 0 else ""  # as start_mosquitto does
    with MosquittoProcess(conf, port, workdir=tmp_path / "broker").start() as broker:
        with socket.create_connection(("127.0.0.1", tls_port), timeout=WAIT_S):
            pass
        peer = Peer(tls_port, "da", password)
        peer.client.tls_set(ca_certs=str(pki / "ca.crt"), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        try:
            assert not peer.connect().is_failure, broker.log()
        finally:
            peer.close()
        # Without trusting our CA the handshake fails.
        stranger = Peer(tls_port, "da", password)
        stranger.client.tls_set()  # system CAs only
        with pytest.raises(ssl.SSLError):
            stranger.connect()

