"""The server's side of gallery sync: keep the current sealed gallery, announce it, serve it.

A sealed gallery (:mod:`vision.gallery_seal`) can be megabytes, far above
what one MQTT message may carry, so the server publishes a small retained
:class:`~broker.protocol.GalleryNotice` to every device that runs the gallery (face
terminals, and window cameras for seated identity) and serves the blob over
HTTP (``GET /api/gallery/{version}``).  The devices'
side is :mod:`agent.gallery_sync`; docs/gallery-sync.md shows the flow.

Only the **current** version exists, in memory and as one 0600 file: a new
version replaces the file in one rename, so a person deleted from the
register is gone from the server's copy too, and an older version answers
404.  Retained notices carry no personal data (version, digest, size).

Downloads authenticate like the broker does: HTTP Basic with the device's
broker username and password, checked against Mosquitto's ``passwd`` file
(read on every request, so a re-keyed or removed device is refused at
once) — :mod:`server.devices.auth` — and only a device of this hall that
runs the gallery is served.  Without a passwd
file (the embedded demo broker has no accounts) the endpoint is open.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path as PathParam, Response

from broker.protocol import GALLERY_KINDS, GalleryNotice, encode
from broker.timeutil import HALL_TZ, Clock, shanghai_now
from server.devices.auth import device_login
from server.ingest.validation import KnownDevice
from vision.gallery_seal import MAX_VERSION, sealed_version

log = logging.getLogger(__name__)

GALLERY_FILE = "gallery.sealed"

SendNotice = Callable[[str, bytes], None]
"""Publish an encoded notice to one device's ``gal`` topic, QoS 1, retained:
``lambda device, payload: ingestor.publish_to_device(device, "gal", payload, retain=True)``."""


def gallery_devices(registry: Mapping[str, KnownDevice], hall_id: str) -> list[str]:
    """The devices of one hall that run the gallery (face terminals, window cameras), sorted."""
    return sorted(d for d, known in registry.items() if known.kind in GALLERY_KINDS and known.hall_id == hall_id)


@dataclass(frozen=True)
class CurrentGallery:
    """The sealed gallery being served, and the notice that announces it."""

    blob: bytes
    notice: GalleryNotice


class GalleryPublisher:
    """Holds the current sealed gallery and tells every device that runs the gallery about it.

    ``directory`` (created 0700) keeps the one gallery file across restarts.
    ``terminals`` is asked at every announcement, so terminals registered
    later are included.
    """

    def __init__(
        self,
        directory: Path,
        send: SendNotice,
        terminals: Callable[[], Iterable[str]],
        *,
        clock: Clock = shanghai_now,
    ) -> None:
        self.directory = Path(directory)
        self.send = send
        self.terminals = terminals
        self.clock = clock
        self._lock = threading.RLock()  # publish and announce in order: the last retained notice is the newest
        self._current = self._load()

    @property
    def path(self) -> Path:
        return self.directory / GALLERY_FILE

    @property
    def current(self) -> CurrentGallery | None:
        return self._current

    def publish(self, sealed: bytes) -> GalleryNotice:
        """Make ``sealed`` the current gallery and announce it; its version must be newer.

        The previous version's file is replaced (not kept), so its contents
        are gone once this returns.
        """
        version = sealed_version(sealed)
        with self._lock:
            current = self._current
            if current is not None and version <= current.notice.version:
                raise ValueError(f"gallery version {version} is not newer than the current version {current.notice.version}")
            self._write(sealed)
            notice = _notice(sealed, version, self.clock())
            self._current = CurrentGallery(sealed, notice)
            self.announce()
        return notice

    def announce(self, device_ids: Iterable[str] | None = None) -> None:
        """(Re)publish the current notice to these devices (default: every device that runs the gallery).

        Call it when the server starts (a broker that lost its retained
        messages) and when a face terminal is registered.
        """
        with self._lock:
            current = self._current
            if current is None:
                return
            payload = encode(current.notice)
            for device_id in self.terminals() if device_ids is None else device_ids:
                self.send(device_id, payload)

    def blob(self, version: int) -> bytes | None:
        """The sealed gallery of ``version`` if it is the current one, else None."""
        current = self._current
        return current.blob if current is not None and current.notice.version == version else None

    def _load(self) -> CurrentGallery | None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return None
        issued_at = datetime.fromtimestamp(self.path.stat().st_mtime, HALL_TZ)
        return CurrentGallery(blob, _notice(blob, sealed_version(blob), issued_at))

    def _write(self, sealed: bytes) -> None:
        fd, name = tempfile.mkstemp(prefix=f".{GALLERY_FILE}.", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                os.fchmod(fh.fileno(), 0o600)
                fh.write(sealed)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(name, self.path)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _notice(blob: bytes, version: int, issued_at: datetime) -> GalleryNotice:
    return GalleryNotice(version=version, sha256=hashlib.sha256(blob).hexdigest(), size=len(blob), issued_at=issued_at)


def gallery_router(publisher: GalleryPublisher, passwd_file: Path | None) -> APIRouter:
    """``GET /api/gallery/{version}``: the current sealed gallery, for face terminals and window cameras.

    ``passwd_file`` is the broker's passwd file; ``None`` leaves the
    endpoint open (the demo's embedded broker has no accounts).  401 for
    missing or wrong credentials, 403 for a device of this hall that does not
    run the gallery, 404 for any version but the current one.
    """
    router = APIRouter(tags=["gallery"])
    device = device_login(
        passwd_file,
        "hallwatch gallery",
        lambda device_id: None if device_id in set(publisher.terminals()) else f"{device_id} does not run the face gallery of this hall",
    )

    @router.get("/api/gallery/{version}", response_class=Response)
    def get_gallery(
        version: Annotated[int, PathParam(ge=1, le=MAX_VERSION)],
        device_id: str | None = Depends(device),
    ) -> Response:
        """The sealed (encrypted and signed) gallery of this version, if it is the current one."""
        blob = publisher.blob(version)
        if blob is None:
            raise HTTPException(404, f"gallery version {version} is not the current one")
        log.info("gallery version %d sent to %s", version, device_id or "an unauthenticated client")
        return Response(blob, media_type="application/octet-stream", headers={"Cache-Control": "no-store"})

    return router
