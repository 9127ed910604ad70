"""Run HallWatch's own commands as real processes for end-to-end tests.

Processes (not threads) so a test can SIGKILL the server or the agents
exactly as a power cut or an OOM kill would.  :class:`AppServer` runs an
app on a real uvicorn in a thread, for tests that need the server's clock
or a single router.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[1]


class Proc:
    """A ``python -m server.cli …`` child with its output in a log file."""

    def __init__(self, name: str, args: list[str], workdir: Path) -> None:
        self.name = name
        self.args = args
        self.log_path = workdir / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        log = self.log_path.open("ab")
        env = os.environ | {"PYTHONUNBUFFERED": "1"}
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "server.cli", *self.args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env
        )
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no goodbye, no flush — the crash case."""
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def terminate(self, timeout: float = 20) -> None:
        if self.alive():
            assert self.popen is not None
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


def server_proc(workdir: Path, *, broker_url: str, db_url: str, port: int, extra: list[str] | None = None) -> Proc:
    """``hallwatch server`` for the demo hall; its files (gallery, evidence, spool) under ``workdir/data``
    unless ``extra`` names a ``--data-dir``, never in the checkout's var/."""
    args = ["server", "--hall", str(ROOT / "config/halls/demo.toml"), "--db", db_url, "--broker", broker_url, "--port", str(port)]
    extra = list(extra or [])
    if "--data-dir" not in extra:
        extra += ["--data-dir", str(workdir / "data")]
    return Proc("server", args + extra, workdir)


def wait_http(url: str, proc: Proc, timeout: float = 60, headers: dict[str, str] | None = None) -> None:
    """Wait until ``url`` answers 200 (to a request with ``headers``), failing with the process log if it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise AssertionError(f"{proc.name} exited:\n{proc.log()}")
        try:
            if httpx.get(url, timeout=2, headers=headers).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s:\n{proc.log()}")


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):  # type: ignore[no-untyped-def]
    """Poll until ``predicate()`` is truthy; return its value or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class AppServer:
    """An ASGI app on a real uvicorn, in a thread, on ``port`` (a free one by default)."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        if port is None:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name=f"http-{port}", daemon=True)

    def start(self) -> AppServer:
        self.thread.start()
        wait_for(lambda: self.server.started, 30, "uvicorn to listen")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
