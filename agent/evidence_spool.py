"""Evidence pictures wait on the camera's disk until the server has them.

A vacancy's snapshot matters most when the network is poor, so it is written
to a spool folder first (0600 files, written to a temporary name and renamed,
so a crash never leaves half a picture) and uploaded by a background thread
that retries with backoff.  The seat event names the picture's id at once;
the picture follows.  The spool is bounded: beyond ``max_files`` the oldest
pictures go first (a camera offline for weeks must not fill its disk).
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx

from agent.server_http import device_credentials, server_client
from broker.connection import BrokerSettings

log = logging.getLogger(__name__)


class EvidenceSpool:
    """Pictures on disk, each with its description, uploaded in the order they were taken."""

    def __init__(
        self,
        directory: Path,
        server_url: str,
        device_id: str,
        broker: BrokerSettings,
        *,
        max_files: int = 500,
        backoff_s: tuple[float, float] = (1.0, 300.0),
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.device_id = device_id
        self.broker = broker
        self.max_files = max_files
        self.backoff_s = backoff_s
        self._http = server_client(server_url, broker)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.uploaded = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._last_seq = 0
        self._clean_leftovers()

    def add(self, evidence_id: str, window_id: str, cause: str, taken_at: datetime, picture: bytes) -> None:
        """Keep a picture for upload (safe from any thread)."""
        with self._lock:  # file times can be coarse (FAT: 2 s), so the order is a counter kept in the description
            self._last_seq = max(self._last_seq + 1, time.time_ns())
            seq = self._last_seq
        meta = {"id": evidence_id, "window_id": window_id, "cause": cause, "taken_at": taken_at.isoformat(), "seq": seq}
        self._write(self.directory / f"{evidence_id}.jpg", picture)
        self._write(self.directory / f"{evidence_id}.json", json.dumps(meta).encode())
        self._prune()
        self._wake.set()

    def pending(self) -> list[Path]:
        """The descriptions of the pictures not yet uploaded, oldest first (an unreadable one first: it is dropped)."""
        return sorted(self.directory.glob("*.json"), key=_order)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"{self.device_id}-evidence", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._http.close()

    # ------------------------------------------------------------ internals

    def _clean_leftovers(self) -> None:
        """After a crash: half-written files, and pictures whose description was never written."""
        for part in self.directory.glob("*.part"):
            part.unlink(missing_ok=True)
        for picture in self.directory.glob("*.jpg"):
            if not picture.with_suffix(".json").exists():
                log.warning("evidence %s has no description (interrupted while spooling), dropped", picture.stem)
                picture.unlink(missing_ok=True)

    def _write(self, path: Path, data: bytes) -> None:
        staging = path.with_name(path.name + ".part")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, path)

    def _prune(self) -> None:
        waiting = self.pending()
        for meta in waiting[: max(0, len(waiting) - self.max_files)]:
            self._remove(meta)
            self.dropped += 1
            log.warning("evidence spool full: %s dropped unsent", meta.stem)

    def _remove(self, meta: Path) -> None:
        meta.with_suffix(".jpg").unlink(missing_ok=True)
        meta.unlink(missing_ok=True)

    def _run(self) -> None:
        delay = self.backoff_s[0]
        while not self._stop.is_set():
            waiting = self.pending()
            if not waiting:
                self._wake.wait(5.0)
                self._wake.clear()
                continue
            if self._upload(waiting[0]):
                delay = self.backoff_s[0]
                continue
            self._stop.wait(delay * random.uniform(0.8, 1.2))
            delay = min(self.backoff_s[1], delay * 2)

    def _upload(self, meta_path: Path) -> bool:
        try:
            meta = json.loads(meta_path.read_text())
            picture = meta_path.with_suffix(".jpg").read_bytes()
        except (OSError, ValueError) as exc:
            log.error("evidence %s unreadable, dropped: %s", meta_path.stem, exc)
            self._remove(meta_path)
            return True
        params = {"id": meta["id"], "device": self.device_id, "window_id": meta["window_id"], "taken_at": meta["taken_at"], "cause": meta["cause"]}
        try:
            response = self._http.post("/api/evidence", params=params, content=picture, headers={"Content-Type": "image/jpeg"}, auth=device_credentials(self.broker))
        except (httpx.HTTPError, OSError) as exc:
            log.info("evidence %s not sent yet: %s", meta["id"], exc)
            return False
        if response.status_code in (200, 201):
            self._remove(meta_path)
            self.uploaded += 1
            return True
        if 400 <= response.status_code < 500 and response.status_code not in (401, 408, 429):
            log.error("evidence %s refused by the server (HTTP %d: %s), dropped", meta["id"], response.status_code, response.text[:200])
            self._remove(meta_path)
            return True
        log.info("evidence %s: HTTP %d, will retry", meta["id"], response.status_code)
        return False


def _order(meta: Path) -> tuple[int, str]:
    try:
        return int(json.loads(meta.read_text())["seq"]), meta.name
    except (OSError, ValueError, KeyError, TypeError):
        return 0, meta.name
