"""The face terminal's side of gallery sync: download, verify, install, acknowledge.

The server announces each gallery version with a small retained notice on
the terminal's ``gal`` topic (:class:`broker.protocol.GalleryNotice`); the
sealed gallery itself is downloaded over HTTP (``GET
/api/gallery/{version}``, see :mod:`server.faces.gallery`).  A notice
newer than the running version is worked on by one thread, off the MQTT
network thread:

1. download with a timeout, retried with exponential backoff, and never more
   bytes than the notice announced;
2. check size and SHA-256 against the notice, then :func:`unseal`
   (signature, rollback, decryption) and that the sealed version is the
   announced one;
3. stage it in a temporary file (0600, fsynced), hand it to ``on_gallery``
   (which parses and starts running it; raising refuses it), then rename it
   over the one gallery file, so the previous version — and any person
   deleted since — is gone from the disk in the same step;
4. acknowledge: an ``ack`` event, ref ``gallery``, ref_id = version, ``ok``
   false with the reason when refused.

Anything that fails leaves the last good gallery running and on disk.
Failures that may pass (network, server, a truncated download) are retried
every ``retry_s`` until a newer notice arrives; a gallery that is refused
(bad signature, rollback, wrong key, rejected by ``on_gallery``) or a
version the server no longer serves (404) is not.

At start the gallery file is unsealed again, so a terminal restarts
offline with its last good gallery, and a file altered on disk is refused.
The newest version ever installed is kept in the agent's state store
(the outbox), so an older gallery is refused even after a restart.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import httpx

from agent.runtime import AgentRuntime
from agent.server_http import device_credentials, server_client
from broker.protocol import AckBody, GalleryNotice
from vision.gallery_seal import GalleryRefused, TerminalKeys, unseal

log = logging.getLogger(__name__)

GALLERY_FILE = "gallery.sealed"
"""The one gallery file in the terminal's gallery directory."""
_STATE_KEY = "gallery_version"
_DETAIL_MAX = 500  # AckBody.detail

OnGallery = Callable[[int, bytes], None]
"""Runs a verified gallery ``(version, payload)`` from now on; raises to refuse it."""


class _Failed(Exception):
    """One install attempt failed; ``retry`` says whether trying again may help."""

    def __init__(self, reason: str, *, retry: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


class GallerySync:
    """Keeps one face terminal on the newest good gallery the server announces.

    ``directory`` holds only the gallery file (and, for a moment, its
    staging file).  ``server_url`` is the HallWatch server's base URL
    (``https://server.hall.local:8000``); the download authenticates with
    the device's broker username and password when it has them, and trusts
    ``ca_file`` (default: the broker's CA) for https.  Call :meth:`start`
    before the runtime connects and :meth:`stop` before the runtime stops.
    """

    def __init__(
        self,
        runtime: AgentRuntime,
        directory: Path,
        server_url: str,
        keys: TerminalKeys,
        on_gallery: OnGallery,
        *,
        ca_file: Path | None = None,
        timeout_s: float = 30.0,
        attempts: int = 4,
        backoff_s: float = 1.0,
        retry_s: float = 300.0,
    ) -> None:
        self.runtime = runtime
        self.directory = Path(directory)
        self.keys = keys
        self.on_gallery = on_gallery
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.retry_s = retry_s
        self._http = server_client(server_url, runtime.settings.broker, ca_file=ca_file, timeout_s=timeout_s)
        self._lock = threading.Condition()
        self._running: int | None = None
        self._wanted: GalleryNotice | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ API

    @property
    def path(self) -> Path:
        return self.directory / GALLERY_FILE

    @property
    def version(self) -> int | None:
        """The gallery version running now (None before the first one)."""
        with self._lock:
            return self._running

    def start(self) -> None:
        """Load the last good gallery from disk, then follow the server's notices."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._remove_staging_leftovers()
        self._load_from_disk()
        self.runtime.gallery_listeners.append(self.on_notice)
        if self.runtime.last_gallery_notice is not None:  # arrived before we listened (retained)
            self.on_notice(self.runtime.last_gallery_notice)
        self._thread = threading.Thread(target=self._work, name=f"{self.runtime.device.device_id}-gallery", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        self._http.close()

    def on_notice(self, notice: GalleryNotice) -> None:
        """A notice from the broker (network thread): answer at once or queue the work."""
        with self._lock:
            running = self._running
            if running is not None and notice.version <= running:
                ok = notice.version == running
                detail = "running" if ok else f"older than the running version {running}"
            elif self._wanted is None or notice.version > self._wanted.version:
                self._wanted = notice
                self._lock.notify_all()
                return
            else:
                return  # the same (or an older) version is being worked on
        self._ack(notice.version, ok, detail)

    # ------------------------------------------------------------ internals

    @property
    def _floor(self) -> int:
        """The newest version ever installed here: anything older is a rollback."""
        return int(self.runtime.outbox.saved(_STATE_KEY) or 0)  # type: ignore[call-overload]

    def _remove_staging_leftovers(self) -> None:
        """A crash while staging leaves a temporary copy (maybe of a gallery never run): delete it."""
        for leftover in self.directory.glob(f".{GALLERY_FILE}.*"):
            leftover.unlink(missing_ok=True)

    def _load_from_disk(self) -> None:
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            log.info("%s: no gallery on disk yet", self.runtime.device.device_id)
            return
        try:
            version, payload = unseal(blob, self.keys.verify_key, self.keys.gallery_key, not_before_version=self._floor)
            self.on_gallery(version, payload)
        except Exception as exc:  # a refused or unusable file: run without one until the server sends one
            log.error("%s: gallery file %s refused: %s", self.runtime.device.device_id, self.path, _reason(exc))
            return
        with self._lock:
            self._running = version
        log.info("%s: running gallery version %d from %s", self.runtime.device.device_id, version, self.path)

    def _work(self) -> None:
        acked_failure: tuple[int, str] | None = None
        while not self._stop.is_set():
            with self._lock:
                while self._wanted is None and not self._stop.is_set():
                    self._lock.wait()
                notice = self._wanted
            if notice is None:
                return
            try:
                self._install(notice)
            except _Failed as failure:
                if self._stop.is_set():
                    return
                log.warning("%s: gallery version %d not installed: %s", self.runtime.device.device_id, notice.version, failure.reason)
                if acked_failure != (notice.version, failure.reason):
                    self._ack(notice.version, False, failure.reason)
                    acked_failure = (notice.version, failure.reason)
                with self._lock:
                    if self._wanted is notice and not failure.retry:
                        self._wanted = None
                    elif self._wanted is notice:
                        self._lock.wait(self.retry_s)  # a newer notice or stop() wakes us early
                continue
            with self._lock:
                self._running = notice.version
                if self._wanted is notice:
                    self._wanted = None
            acked_failure = None
            log.info("%s: installed gallery version %d", self.runtime.device.device_id, notice.version)
            self._ack(notice.version, True, None)

    def _install(self, notice: GalleryNotice) -> None:
        blob = self._download(notice)
        if self._stop.is_set():
            raise _Failed("stopped", retry=False)  # the runtime (and its outbox) may be closing
        try:
            version, payload = unseal(blob, self.keys.verify_key, self.keys.gallery_key, not_before_version=self._floor)
        except GalleryRefused as exc:
            raise _Failed(exc.reason, retry=False) from None
        if version != notice.version:
            raise _Failed(f"the gallery is version {version}, the notice announced {notice.version}", retry=False)
        try:
            staged = self._stage(blob)
        except OSError as exc:
            raise _Failed(f"cannot store the gallery: {_reason(exc)}", retry=True) from None
        try:
            try:
                self.on_gallery(version, payload)
            except Exception as exc:  # the application refuses what it cannot run
                raise _Failed(f"rejected by the terminal: {_reason(exc)}", retry=False) from None
            try:
                os.replace(staged, self.path)
                _fsync_directory(self.directory)
            except OSError as exc:
                raise _Failed(f"running but not stored: {_reason(exc)}", retry=True) from None
            self.runtime.outbox.save(_STATE_KEY, version)
        finally:
            staged.unlink(missing_ok=True)

    def _download(self, notice: GalleryNotice) -> bytes:
        """The announced blob, checked against the notice; retried with backoff."""
        attempt, delay = 1, self.backoff_s
        while True:
            try:
                return self._fetch(notice)
            except _Failed as failure:
                if not failure.retry or attempt >= self.attempts:
                    raise
                log.info("%s: gallery download failed (%s), retrying", self.runtime.device.device_id, failure.reason)
            if self._stop.wait(delay * random.uniform(0.8, 1.2)):
                raise _Failed("stopped", retry=False)
            attempt, delay = attempt + 1, delay * 2

    def _fetch(self, notice: GalleryNotice) -> bytes:
        try:
            with self._http.stream("GET", f"/api/gallery/{notice.version}", auth=device_credentials(self.runtime.settings.broker)) as response:
                if response.status_code == 404:
                    raise _Failed(f"the server no longer serves version {notice.version}", retry=False)
                if response.status_code != 200:
                    raise _Failed(f"download refused: HTTP {response.status_code}", retry=True)
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > notice.size:
                        raise _Failed(f"larger than the announced {notice.size} bytes", retry=True)
                    chunks.append(chunk)
        except (httpx.HTTPError, OSError) as exc:  # OSError: the password file
            raise _Failed(f"download failed: {_reason(exc)}", retry=True) from None
        blob = b"".join(chunks)
        if len(blob) != notice.size:
            raise _Failed(f"got {len(blob)} bytes, the notice announced {notice.size}", retry=True)
        if hashlib.sha256(blob).hexdigest() != notice.sha256:
            raise _Failed("sha256 differs from the notice", retry=True)
        return blob

    def _stage(self, blob: bytes) -> Path:
        """Write the blob to a 0600 temporary file next to the gallery file and fsync it."""
        fd, name = tempfile.mkstemp(prefix=f".{GALLERY_FILE}.", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                os.fchmod(fh.fileno(), 0o600)
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
            raise
        return Path(name)

    def _ack(self, version: int, ok: bool, detail: str | None) -> None:
        self.runtime.emit(AckBody(ref="gallery", ref_id=str(version), ok=ok, detail=detail and detail[:_DETAIL_MAX]))


def _reason(exc: BaseException) -> str:
    """One printable line for logs and acks (AckBody.detail allows no control characters)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:_DETAIL_MAX]


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable, so a power cut cannot bring the old file back."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
