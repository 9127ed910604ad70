"""Production Mosquitto support: password hashes, the passwd/acl files, the broker config.

HallWatch runs a stock Mosquitto 2.0 broker (Debian's package). Mosquitto has
no API for accounts, so the server host owns two plain files that the broker
reads (and re-reads on SIGHUP):

* ``passwd``: ``username:$7$<iterations>$<salt>$<hash>`` lines, the format
  ``mosquitto_passwd`` writes.  We compute it with :mod:`hashlib` so the
  provisioning tools work on hosts without ``mosquitto-clients``.
* ``acl``: ``user NAME`` followed by ``topic read|write TOPIC`` lines.  Every
  device gets exactly its own corner of the topic tree (see
  :func:`device_acl_topics`), so a stolen or buggy device cannot forge
  another device's punches or send commands.

Usernames are the device ids (unique across halls) and the server's name.
:class:`BrokerAuthFiles` edits both files in place, atomically, and keeps
entries it did not write.  :func:`render_mosquitto_conf` writes the broker
config that points at them.  ``docs/mosquitto.md`` is the operator's guide.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from broker.protocol import GALLERY_KINDS, MAX_PAYLOAD_BYTES, TOPIC_ROOT, DeviceKind, Ident

__all__ = [
    "ACL_FILE",
    "DEFAULT_SERVER_USER",
    "MAX_PACKET_SIZE",
    "MAX_QUEUED_MESSAGES",
    "PASSWD_FILE",
    "BrokerAuthFiles",
    "TLSFiles",
    "check_login",
    "device_acl_topics",
    "generate_password",
    "hash_password",
    "render_mosquitto_conf",
    "server_acl_topics",
    "verify_password",
]

PASSWD_FILE = "passwd"
ACL_FILE = "acl"
DEFAULT_SERVER_USER = "hallwatch-server"

MAX_PACKET_SIZE = MAX_PAYLOAD_BYTES + 4096
"""Broker-side packet limit: the largest payload the protocol accepts plus
room for the fixed header, the topic (under 200 bytes with 64-char ids) and
MQTT 5 properties.  Anything bigger is malformed or hostile and the broker
disconnects the sender before buffering it."""

MAX_QUEUED_MESSAGES = 100_000
"""Per-client QoS 1 queue.  Mosquitto's default (1000) would silently drop
events queued for the server's persistent session during a server restart
on a busy hall; 100k events of ~0.5 KiB each stay well under 100 MiB."""

_IDENT = re.compile(Ident.__metadata__[0].pattern)  # type: ignore[attr-defined]
"""protocol.Ident's pattern: the one rule for hall, device and user ids."""

_PBKDF2_ALG = "7"  # Mosquitto 2.0: PBKDF2-HMAC-SHA512
_SALT_BYTES = 12
_HASH_BYTES = 64


# --------------------------------------------------------------------------
# Passwords
# --------------------------------------------------------------------------


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = 101) -> str:
    """Hash a password the way Mosquitto 2.0 checks it.

    Returns ``$7$<iterations>$<base64 salt>$<base64 hash>``: PBKDF2-HMAC-SHA512
    over the UTF-8 password with a 12-byte random salt and a 64-byte key,
    standard base64 with padding, exactly what ``mosquitto_passwd`` writes.
    The salt must be 12 bytes: Mosquitto 2.0.11 loads a file with another
    salt length without complaint but then refuses every login of that user.
    101 iterations is Mosquitto's own default; the random 24+ character
    passwords from :func:`generate_password` do not need key stretching.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    if salt is None:
        salt = secrets.token_bytes(_SALT_BYTES)
    if len(salt) != _SALT_BYTES:
        # Mosquitto 2.0.11 parses any salt but then refuses the login.
        raise ValueError(f"Mosquitto needs a {_SALT_BYTES}-byte salt, got {len(salt)} bytes")
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, _HASH_BYTES)
    b64 = base64.b64encode
    return f"${_PBKDF2_ALG}${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    """True when ``password`` matches a ``$7$`` hash (for checks and tests)."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != _PBKDF2_ALG:
        raise ValueError(f"not a Mosquitto $7$ password hash: {hashed!r}")
    iterations = int(parts[2])
    salt = base64.b64decode(parts[3], validate=True)
    expected = hash_password(password, salt=salt, iterations=iterations)
    return hmac.compare_digest(expected, hashed)


def check_login(passwd_file: Path, username: str, password: str) -> bool:
    """True when ``username`` has a ``$7$`` line in ``passwd_file`` that ``password`` matches.

    Lets HTTP endpoints for devices (the gallery download) accept the same
    credentials the broker does, read fresh on every call so a re-keyed or
    removed device is refused at once, without a reload.  A user with
    another kind of hash (a hand-made account) never matches.  Raises
    OSError when the file cannot be read.
    """
    for line in passwd_file.read_text(encoding="utf-8").splitlines():
        if _passwd_user(line) == username:
            try:
                return verify_password(password, line.split(":", 1)[1])
            except ValueError:
                return False
    return False


def generate_password() -> str:
    """A fresh random password: 32 URL-safe characters (192 bits).

    URL-safe base64 has no ``:`` or ``$`` and no whitespace, so it survives
    config files, environment variables and shell quoting unchanged.
    """
    return secrets.token_urlsafe(24)


# --------------------------------------------------------------------------
# ACL topics
# --------------------------------------------------------------------------


def _check_ident(value: str, what: str) -> str:
    if not isinstance(value, str) or not _IDENT.fullmatch(value):
        raise ValueError(
            f"invalid {what} {value!r}: ids are 1-64 chars of a-z, 0-9, '_' and '-', "
            "starting with a letter or digit"
        )
    return value


def device_acl_topics(hall_id: str, device_id: str, kind: DeviceKind | None = None) -> list[tuple[str, str]]:
    """The ``(access, topic)`` grants of one device: its own corner only.

    It writes its events (one type level, as the protocol defines) and its
    retained status, which is also its last will (Mosquitto 2.0.11 accepts
    any will topic at CONNECT and silently drops a will the user may not
    write, so a wrong grant here shows up only as a missing offline status).
    It reads its own configuration and commands and its hall's server status
    (to know when to replay its outbox).  A device that runs the gallery (``GALLERY_KINDS``) also reads its
    own gallery notice (``gal``); other kinds, and a device added without a
    kind, get no gallery grant.  Everything else is denied.
    """
    _check_ident(hall_id, "hall id")
    _check_ident(device_id, "device id")
    base = f"{TOPIC_ROOT}/{hall_id}/dev/{device_id}"
    grants = [
        ("write", f"{base}/evt/+"),
        ("write", f"{base}/status"),
        ("read", f"{base}/cfg"),
        ("read", f"{base}/cmd"),
        ("read", f"{TOPIC_ROOT}/{hall_id}/server/status"),
    ]
    if kind in GALLERY_KINDS:
        grants.append(("read", f"{base}/gal"))
    return grants


def server_acl_topics(hall_id: str | None) -> list[tuple[str, str]]:
    """The ``(access, topic)`` grants of the HallWatch server.

    It reads every device's events and status and writes configuration,
    commands, gallery notices and its own server status.  With a
    ``hall_id`` the grants are limited to that hall; ``None`` grants every
    hall (``+``), for one server that supervises several halls.  Devices' ``status`` is written by the
    devices (and their wills), never by the server.
    """
    hall = "+" if hall_id is None else _check_ident(hall_id, "hall id")
    root = f"{TOPIC_ROOT}/{hall}"
    return [
        ("read", f"{root}/dev/+/evt/+"),
        ("read", f"{root}/dev/+/status"),
        ("write", f"{root}/dev/+/cfg"),
        ("write", f"{root}/dev/+/cmd"),
        ("write", f"{root}/dev/+/gal"),
        ("write", f"{root}/server/status"),
    ]


# --------------------------------------------------------------------------
# The passwd and acl files
# --------------------------------------------------------------------------

_MARKER = "# hallwatch:"
_ACL_HEADER = (
    "# HallWatch broker ACL, maintained by broker.mosquitto.BrokerAuthFiles.\n"
    "# Blocks marked '# hallwatch:' are rewritten by it; other blocks are kept.\n"
    "# Mosquitto re-reads this file on SIGHUP.\n"
)


@dataclass
class _AclBlock:
    """One ``user`` section of the acl file (with the comments just above it)."""

    username: str | None  # None: the preamble before the first ``user`` line
    lines: list[str]

    @property
    def kind(self) -> str | None:
        """``device``/``server`` for blocks we wrote, else None."""
        for line in self.lines:
            if line.startswith(_MARKER):
                return line[len(_MARKER) :].split()[0]
        return None


def _parse_acl(text: str) -> list[_AclBlock]:
    blocks = [_AclBlock(None, [])]
    for line in text.splitlines():
        token, _, rest = line.partition(" ")
        if token == "user" and not line.startswith("#"):
            # Comment lines directly above a user line belong to its block.
            current = blocks[-1].lines
            moved: list[str] = []
            while current and current[-1].startswith("#"):
                moved.insert(0, current.pop())
            blocks.append(_AclBlock(rest.lstrip(" "), moved + [line]))
        else:
            blocks[-1].lines.append(line)
    return blocks


def _render_acl(blocks: list[_AclBlock]) -> str:
    chunks = []
    for block in blocks:
        lines = list(block.lines)
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if lines:
            chunks.append("\n".join(lines) + "\n")
    return "\n".join(chunks)


def _passwd_user(line: str) -> str | None:
    if not line or line.startswith("#") or ":" not in line:
        return None
    return line.split(":", 1)[0]


class BrokerAuthFiles:
    """The broker's ``passwd`` (0600) and ``acl`` (0644) files in one directory.

    Each change rewrites a file atomically (temporary file in the same
    directory, fsync, ``os.replace``), so the broker never reads half a file,
    and an exclusive lock on ``.lock`` serialises concurrent provisioning.
    Entries are replaced by username, never duplicated; lines and blocks this
    class did not write are kept.  The acl file is written before the passwd
    file when adding and after it when removing, so no password is ever valid
    without its ACL.  Changes reach a running broker after ``SIGHUP``
    (``systemctl reload mosquitto``).

    Ownership: a replaced file keeps the owner and group of the file it
    replaces, so ``chown mosquitto`` once and it stays readable by the broker
    (which drops root for the ``mosquitto`` user).  New files get ``owner``
    when given (a user name or uid; needs root).
    """

    def __init__(self, directory: Path | str, *, owner: str | int | None = None) -> None:
        self.directory = Path(directory)
        self.owner = owner

    @property
    def passwd_path(self) -> Path:
        return self.directory / PASSWD_FILE

    @property
    def acl_path(self) -> Path:
        return self.directory / ACL_FILE

    # -- public API ---------------------------------------------------------

    def add_device(self, hall_id: str, device_id: str, *, kind: DeviceKind | None = None) -> str:
        """Create or replace a device's account; returns its new plaintext password.

        ``kind`` adds the grants only that kind needs (a face terminal reads
        its gallery notice, :func:`device_acl_topics`).

        The password is shown once and stored only as a hash.  Re-adding a
        device replaces its password and its ACL (so a device can move
        halls).  At the next reload Mosquitto 2.0.11 refuses the old password
        and also closes a connection still using it, so give the agent its
        new password before reloading.
        """
        _check_ident(hall_id, "hall id")
        _check_ident(device_id, "device id")
        with self._locked():
            self._refuse_kind_clash(device_id, "device")
            header = f"{_MARKER}device hall={hall_id} device={device_id}" + (f" kind={kind}" if kind else "")
            return self._put_user(device_id, header, device_acl_topics(hall_id, device_id, kind))

    def add_server(self, hall_id: str | None, username: str = DEFAULT_SERVER_USER) -> str:
        """Create or replace the server's account; returns its new plaintext password.

        ``hall_id`` limits the server to one hall; ``None`` grants all halls.
        """
        _check_ident(username, "server username")
        if hall_id is not None:
            _check_ident(hall_id, "hall id")
        with self._locked():
            self._refuse_kind_clash(username, "server")
            header = f"{_MARKER}server hall={hall_id or '+'} user={username}"
            return self._put_user(username, header, server_acl_topics(hall_id))

    def remove_device(self, device_id: str) -> None:
        """Delete a device's password and ACL; KeyError if it is not a device.

        At the next reload the broker refuses the device and closes its open
        connection.
        """
        _check_ident(device_id, "device id")
        with self._locked():
            blocks = self._read_acl()
            if not any(b.username == device_id and b.kind == "device" for b in blocks):
                raise KeyError(f"no device {device_id!r} in {self.acl_path}")
            self._write_passwd([ln for ln in self._read_passwd() if _passwd_user(ln) != device_id])
            self._write_acl([b for b in blocks if b.username != device_id])

    def device_ids(self) -> list[str]:
        """The device accounts in the acl file, sorted."""
        return sorted({b.username for b in self._read_acl() if b.kind == "device" and b.username})

    # -- internals ----------------------------------------------------------

    def _refuse_kind_clash(self, username: str, kind: str) -> None:
        for block in self._read_acl():
            if block.username == username and block.kind not in (None, kind):
                raise ValueError(f"{username!r} is already a {block.kind} account, not a {kind}")

    def _put_user(self, username: str, header: str, grants: list[tuple[str, str]]) -> str:
        password = generate_password()
        entry = f"{username}:{hash_password(password)}"
        block = _AclBlock(username, [header, f"user {username}"] + [f"topic {a} {t}" for a, t in grants])
        blocks = [b for b in self._read_acl() if b.username != username]
        self._write_acl(blocks + [block])
        lines: list[str] = []
        for line in self._read_passwd():
            if _passwd_user(line) != username:
                lines.append(line)
            elif entry not in lines:
                lines.append(entry)  # replace in place, drop duplicates
        if entry not in lines:
            lines.append(entry)
        self._write_passwd(lines)
        return password

    def _read_passwd(self) -> list[str]:
        try:
            text = self.passwd_path.read_text()
        except FileNotFoundError:
            return []
        return [ln for ln in text.splitlines() if ln.strip()]

    def _write_passwd(self, lines: list[str]) -> None:
        self._atomic_write(self.passwd_path, "".join(ln + "\n" for ln in lines), 0o600)

    def _read_acl(self) -> list[_AclBlock]:
        try:
            text = self.acl_path.read_text()
        except FileNotFoundError:
            text = _ACL_HEADER
        return _parse_acl(text)

    def _write_acl(self, blocks: list[_AclBlock]) -> None:
        self._atomic_write(self.acl_path, _render_acl(blocks), 0o644)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _ownership(self, path: Path) -> tuple[int, int] | None:
        try:
            st = path.stat()
            return st.st_uid, st.st_gid
        except FileNotFoundError:
            pass
        if self.owner is None:
            return None
        import pwd

        entry = pwd.getpwuid(self.owner) if isinstance(self.owner, int) else pwd.getpwnam(self.owner)
        return entry.pw_uid, entry.pw_gid

    def _atomic_write(self, path: Path, text: str, mode: int) -> None:
        ownership = self._ownership(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                os.fchmod(fh.fileno(), mode)
                if ownership is not None and ownership != (os.geteuid(), os.getegid()):
                    os.fchown(fh.fileno(), *ownership)
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# --------------------------------------------------------------------------
# The broker configuration
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TLSFiles:
    """PEM files of the TLS listener devices use on the hall network.

    ``cafile`` is the CA that signed ``certfile`` (devices pin it);
    ``keyfile`` must be readable by the broker's user.  ``bind`` None
    listens on every interface.
    """

    cafile: Path
    certfile: Path
    keyfile: Path
    port: int = 8883
    bind: str | None = None


def _conf_path(path: Path | str, *, directory: bool = False) -> str:
    text = str(path)
    if any(c.isspace() for c in text):
        raise ValueError(f"Mosquitto config paths cannot contain whitespace: {text!r}")
    if directory and not text.endswith("/"):
        text += "/"  # Mosquitto joins persistence_location + file name as is
    return text


def render_mosquitto_conf(
    auth_dir: Path,
    *,
    port: int = 1883,
    bind: str = "127.0.0.1",
    persistence_dir: Path | None = None,
    tls: TLSFiles | None = None,
    username_as_clientid: bool = True,
) -> str:
    """A complete production ``mosquitto.conf`` for HallWatch (Mosquitto 2.0).

    It replaces Debian's ``/etc/mosquitto/mosquitto.conf`` (it is not a
    ``conf.d`` snippet).  ``auth_dir`` holds the :class:`BrokerAuthFiles`
    files.  The plain listener binds ``bind`` (loopback by default: only the
    co-located server uses it); devices reach the broker through the TLS
    listener when ``tls`` is given.  ``persistence_dir`` defaults to Debian's
    ``/var/lib/mosquitto/``.

    ``username_as_clientid`` (on by default) makes the broker use the
    username as the MQTT client id.  Mosquitto does not tie client ids to
    accounts: without it any device could connect with the server's client
    id, disconnect the server and replace its persistent session (the events
    queued for it are lost).  The price: one connection per account at a
    time (a second connection with the same account closes the first), so a
    server that needs two connections needs two accounts.
    """
    persistence = _conf_path(persistence_dir or Path("/var/lib/mosquitto"), directory=True)
    per_listener = [
        # Client id = username: no account can take over (and wipe) another
        # account's session by reusing its client id.
        f"use_username_as_clientid {'true' if username_as_clientid else 'false'}",
    ]
    lines = [
        "# HallWatch Mosquitto configuration, generated by broker.mosquitto.render_mosquitto_conf.",
        "# Regenerate it instead of editing it; see docs/mosquitto.md.",
        "",
        "# One set of accounts and ACLs for every listener: the TLS listener for",
        "# devices and the loopback listener for the server check the same files.",
        "per_listener_settings false",
        "",
        "# No anonymous access: every device and the server have their own",
        "# account, and the ACL gives each only its own topics.  Both files are",
        "# re-read on SIGHUP (systemctl reload mosquitto).",
        "allow_anonymous false",
        f"password_file {_conf_path(auth_dir / PASSWD_FILE)}",
        f"acl_file {_conf_path(auth_dir / ACL_FILE)}",
        "",
        "# Persistence: retained status/config and the server's queued session",
        "# survive a broker restart.  Events are durable in each agent's outbox",
        "# until the broker acknowledges them; saving every 10 s narrows the",
        "# window in which an acknowledged, not yet consumed event lives only",
        "# in broker memory.  SIGTERM (systemctl stop) saves before exiting.",
        "persistence true",
        f"persistence_location {persistence}",
        "autosave_interval 10",
        "autosave_on_changes false",
        "",
        "# The server keeps a persistent session (clean session false).  While it",
        "# restarts, events queue for it; the default limit of 1000 would drop",
        "# events silently on a busy hall.",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        "",
        "# Sessions of decommissioned clients do not live (and queue) forever.",
        "persistent_client_expiration 30d",
        "",
        f"# protocol.MAX_PAYLOAD_BYTES ({MAX_PAYLOAD_BYTES}) plus headers and topic:",
        "# larger packets are malformed or hostile; the sender is disconnected.",
        f"max_packet_size {MAX_PACKET_SIZE}",
        "",
        "# Logs go to stderr, which systemd keeps in the journal.  Connection",
        "# messages record which device connected from where.",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
        "",
        "# Listener options below each 'listener' line apply to that listener.",
        "# Never put one above the first listener: Mosquitto would open its",
        "# default listener (port 1883, every interface) to hold it.",
        "",
        "# Plain MQTT for the co-located server (loopback by default).",
        f"listener {int(port)} {bind}",
        *per_listener,
    ]
    if tls is not None:
        listener = f"listener {int(tls.port)}" + (f" {tls.bind}" if tls.bind else "")
        lines += [
            "",
            "# MQTT over TLS for devices: they verify the broker against our own CA",
            "# and authenticate with their username and password.  TLS 1.2 is the",
            "# minimum; 1.3 is negotiated when both sides support it.",
            listener,
            *per_listener,
            f"cafile {_conf_path(tls.cafile)}",
            f"certfile {_conf_path(tls.certfile)}",
            f"keyfile {_conf_path(tls.keyfile)}",
            "tls_version tlsv1.2",
            "require_certificate false",
        ]
    return "\n".join(lines) + "\n"
