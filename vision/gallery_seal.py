"""Seal a gallery for the trip to the terminals: AES-256-GCM inside, Ed25519 outside.

A gallery holds face templates, which are sensitive personal information
(PIPL art. 28), and it decides who may clock in.  So it is encrypted (only
holders of the gallery key can read it, in transit and on the terminal's
disk) and signed (only the server, which alone holds the signing key, can
make one a terminal accepts).  The payload is opaque bytes here; the
gallery's own format is :mod:`vision.gallery`.

Layout of a sealed gallery::

    "HWGAL" 0x01 | version (4 bytes, big-endian) | nonce (12) | ciphertext + GCM tag | signature (64)

The header is the AES-GCM associated data, so the version cannot be
swapped under a ciphertext, and the Ed25519 signature covers everything
before it.  :func:`unseal` checks in the order that gives the most useful
reason: format, then signature (anything altered, or not made by this
server), then rollback (a validly signed but older version), then
decryption (a wrong gallery key).

Key files (``hallwatch faces keys init DIR`` writes them, docs/gallery-sync.md
says where each goes): the gallery key (server and terminals), the signing
key (server only) and the verify key (terminals).  Secret key files must be
readable by their owner only; the public verify key may be readable by
anyone but writable by its owner only, because whoever can replace it can
make the terminal accept their own galleries.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.key_files import KeyFileError, read_key_file

MAGIC = b"HWGAL\x01"
"""Format tag and format version; a later layout changes the last byte."""
_HEADER = struct.Struct(">6sI12s")  # magic, version, nonce
_TAG_BYTES = 16
_SIGNATURE_BYTES = 64
_KEY_BYTES = 32
MAX_VERSION = 2**31 - 1
"""Versions are protocol Counters (they travel in a GalleryNotice)."""

GALLERY_KEY_ENV = "HALLWATCH_GALLERY_KEY_FILE"
SIGNING_KEY_ENV = "HALLWATCH_GALLERY_SIGNING_KEY_FILE"
VERIFY_KEY_ENV = "HALLWATCH_GALLERY_VERIFY_KEY_FILE"
GALLERY_KEY_FILE = "gallery.key"
SIGNING_KEY_FILE = "gallery-signing.pem"
VERIFY_KEY_FILE = "gallery-verify.pem"


class GalleryRefused(ValueError):
    """A sealed gallery that must not be installed; ``reason`` says why (it goes into the ack)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GalleryKeyError(KeyFileError):
    """A key file that is missing, unsafe or malformed; the message names the file."""


# --------------------------------------------------------------------------
# Sealing
# --------------------------------------------------------------------------


def seal(payload: bytes, version: int, signing_key: Ed25519PrivateKey, gallery_key: bytes) -> bytes:
    """Encrypt ``payload`` as gallery ``version`` and sign the result."""
    if not 1 <= version <= MAX_VERSION:
        raise ValueError(f"gallery version must be 1..{MAX_VERSION}, got {version}")
    nonce = os.urandom(12)
    header = _HEADER.pack(MAGIC, version, nonce)
    body = header + _cipher(gallery_key).encrypt(nonce, payload, header)
    return body + signing_key.sign(body)


def sealed_version(blob: bytes) -> int:
    """The version a sealed gallery *claims*, without checking anything else.

    For the server, which stores what it sealed itself.  A terminal trusts
    the version only as returned by :func:`unseal`.
    """
    if len(blob) < _HEADER.size + _TAG_BYTES + _SIGNATURE_BYTES or not blob.startswith(MAGIC):
        raise GalleryRefused(f"not a sealed HallWatch gallery ({len(blob)} bytes, format tag {blob[:6]!r})")
    return int(_HEADER.unpack_from(blob)[1])


def unseal(
    blob: bytes, verify_key: Ed25519PublicKey, gallery_key: bytes, *, not_before_version: int
) -> tuple[int, bytes]:
    """Check and decrypt a sealed gallery; returns ``(version, payload)``.

    ``not_before_version`` is the newest version this terminal has
    installed: an older one is a rollback (it may still hold a person who
    was deleted since) and is refused.  The same version is accepted, so a
    terminal can reload its own file.  Raises :class:`GalleryRefused`.
    """
    sealed_version(blob)  # format first: a clear reason for a file that is not a gallery at all
    body, signature = blob[:-_SIGNATURE_BYTES], blob[-_SIGNATURE_BYTES:]
    try:
        verify_key.verify(signature, body)
    except InvalidSignature:
        raise GalleryRefused("bad signature: the gallery was altered or was not signed by this server's key") from None
    _, version, nonce = _HEADER.unpack_from(body)
    if version < not_before_version:
        raise GalleryRefused(f"rollback: version {version} is older than version {not_before_version} already installed")
    header = body[: _HEADER.size]
    try:
        payload = _cipher(gallery_key).decrypt(nonce, body[_HEADER.size :], header)
    except InvalidTag:
        raise GalleryRefused("cannot decrypt: the gallery key differs from the server's") from None
    return int(version), payload


def _cipher(gallery_key: bytes) -> AESGCM:
    if len(gallery_key) != _KEY_BYTES:
        raise ValueError(f"the gallery key must be {_KEY_BYTES} bytes, got {len(gallery_key)}")
    return AESGCM(gallery_key)


# --------------------------------------------------------------------------
# Key files
# --------------------------------------------------------------------------


def _read(path: Path, *, secret: bool) -> bytes:
    try:
        return read_key_file(path, secret=secret)
    except KeyFileError as exc:
        raise GalleryKeyError(str(exc)) from None


def read_gallery_key(path: Path) -> bytes:
    """The shared AES-256 gallery key: 32 bytes, base64 on one line."""
    data = _read(path, secret=True)
    try:
        key = base64.b64decode(data.strip(), validate=True)
    except binascii.Error:
        key = b""
    if len(key) != _KEY_BYTES:
        raise GalleryKeyError(f"{path}: not a gallery key (expected {_KEY_BYTES} bytes in base64)")
    return key


def read_signing_key(path: Path) -> Ed25519PrivateKey:
    """The server's Ed25519 private key (PEM, PKCS#8, unencrypted: the file mode protects it)."""
    data = _read(path, secret=True)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise GalleryKeyError(f"{path}: not an Ed25519 private key in PEM")
    return key


def read_verify_key(path: Path) -> Ed25519PublicKey:
    """The terminals' copy of the server's Ed25519 public key (PEM)."""
    data = _read(path, secret=False)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise GalleryKeyError(f"{path}: not an Ed25519 public key in PEM")
    return key


def _env_path(name: str, environ: Mapping[str, str] | None) -> Path:
    value = (os.environ if environ is None else environ).get(name)
    if not value:
        raise GalleryKeyError(f"{name} is not set: name the key file (create keys with `hallwatch faces keys init DIR`)")
    return Path(value)


@dataclass(frozen=True)
class ServerKeys:
    """What the server seals with."""

    signing_key: Ed25519PrivateKey
    gallery_key: bytes

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerKeys:
        """From the files named by HALLWATCH_GALLERY_SIGNING_KEY_FILE and HALLWATCH_GALLERY_KEY_FILE."""
        return cls(
            read_signing_key(_env_path(SIGNING_KEY_ENV, environ)),
            read_gallery_key(_env_path(GALLERY_KEY_ENV, environ)),
        )


@dataclass(frozen=True)
class TerminalKeys:
    """What a terminal unseals with."""

    verify_key: Ed25519PublicKey
    gallery_key: bytes

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TerminalKeys:
        """From the files named by HALLWATCH_GALLERY_VERIFY_KEY_FILE and HALLWATCH_GALLERY_KEY_FILE."""
        return cls(
            read_verify_key(_env_path(VERIFY_KEY_ENV, environ)),
            read_gallery_key(_env_path(GALLERY_KEY_ENV, environ)),
        )


def new_key_files() -> dict[str, bytes]:
    """Fresh gallery key material: file name → content (see the module docstring)."""
    signing = Ed25519PrivateKey.generate()
    return {
        GALLERY_KEY_FILE: base64.b64encode(AESGCM.generate_key(bit_length=256)) + b"\n",
        SIGNING_KEY_FILE: signing.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        VERIFY_KEY_FILE: signing.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }


def write_private_files(directory: Path, files: Mapping[str, bytes]) -> list[Path]:
    """Create each file with mode 0600 from the first byte on; refuse to overwrite.

    Overwriting a key would make every gallery (and, for the template key,
    every stored template) unreadable, so nothing is written when any of the
    files already exists.  The directory is created 0700 if missing.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths = [directory / name for name in files]
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        raise FileExistsError(f"refusing to overwrite existing key files: {', '.join(existing)}")
    written: list[Path] = []
    try:
        for path, content in zip(paths, files.values()):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            written.append(path)
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
    except BaseException:
        for path in written:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        raise
    return paths
