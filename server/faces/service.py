"""Keeping the terminals' gallery in step with the staff register.

Whenever faces are enrolled or deleted — through the admin API, or with
``hallwatch faces …`` while the server runs — the gallery is recalibrated,
sealed (encrypted and signed) and published; terminals then replace theirs.
The server checks for changes made by the command line on every sweep, so a
deletion reaches the terminals within seconds either way.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from broker.config_file import ConfigError

from server.db import GalleryVersionRow
from server.faces.registry import FaceRegistry, RegistryError, cipher_from_file
from server.faces.gallery import GalleryPublisher
from vision.faces import FaceSettings
from vision.gallery_seal import GalleryKeyError, ServerKeys, read_gallery_key, read_signing_key, seal

log = logging.getLogger(__name__)


class FaceService:
    """Builds, seals and publishes the gallery (one at a time)."""

    def __init__(self, registry: FaceRegistry, keys: ServerKeys, publisher: GalleryPublisher, target_far: float = 0.01) -> None:
        self.registry = registry
        self.keys = keys
        self.publisher = publisher
        self.target_far = target_far
        self._lock = threading.Lock()
        self._announced = 0

    def rebuild(self) -> dict[str, Any]:
        """A new gallery version from the register, published to every device that runs the gallery."""
        with self._lock:
            return self._rebuild()

    def _rebuild(self) -> dict[str, Any]:
        gallery, calibration = self.registry.build_gallery(self.target_far)
        notice = self.publisher.publish(seal(gallery.to_bytes(), gallery.version, self.keys.signing_key, self.keys.gallery_key))
        log.info("gallery version %d published: %d people, threshold %.2f, margin %.3f", notice.version, len(gallery.people), gallery.thresholds.threshold, gallery.thresholds.margin)
        return {"version": notice.version, "people": len(gallery.people), **calibration.to_dict()}

    def tick(self, connection: int) -> None:
        """On every sweep: publish CLI changes, and announce again after a reconnect
        (a broker that restarted without persistence lost the retained notices)."""
        self.catch_up()
        if connection and connection != self._announced:
            self.publisher.announce()
            self._announced = connection

    def catch_up(self) -> None:
        """Publish if the register has a gallery version newer than the one served (a CLI change).

        Checked under the rebuild lock: an API rebuild writes its version row
        before it publishes, and the sweep must not take that row for a CLI
        change and build yet another version.
        """
        with self._lock:
            with Session(self.registry.engine) as session:
                latest = session.scalar(select(func.max(GalleryVersionRow.version)))
            current = self.publisher.current
            if latest is not None and (current is None or latest > current.notice.version):
                self._rebuild()


def face_service(
    engine: Engine, publisher: GalleryPublisher, face_key: Path | None, gallery_key: Path | None, signing_key: Path | None, target_far: float
) -> FaceService | None:
    """The service when all three keys are configured; None (face features off) otherwise.

    A key that is configured but unreadable or too open stops the server with
    the file and the reason: a half-configured face setup must not run.
    """
    if face_key is None or gallery_key is None or signing_key is None:
        missing = [name for name, value in (("face template key", face_key), ("gallery key", gallery_key), ("gallery signing key", signing_key)) if value is None]
        log.warning("face clock-in is off: no %s configured (hallwatch faces keys init)", ", ".join(missing))
        return None
    try:
        registry = FaceRegistry(engine, cipher_from_file(face_key), FaceSettings())
        keys = ServerKeys(read_signing_key(signing_key), read_gallery_key(gallery_key))
    except (RegistryError, GalleryKeyError) as exc:
        raise ConfigError(str(exc)) from None
    return FaceService(registry, keys, publisher, target_far)
