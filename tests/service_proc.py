"""A real server process for a test (Mosquitto, VictoriaMetrics): started, waited for, stopped, never left behind.

Subclasses say how to run the server (:meth:`ServiceProcess.command`) and how
to tell it is ready (:meth:`ServiceProcess.ready`).  The child is SIGKILLed if
the test process dies, and a server a crashed test did not stop is killed
when the test process exits.  Skips locally and fails in CI when the
executable is not installed (``require_executable``).
"""

from __future__ import annotations

import atexit
import ctypes
import signal
import socket
import subprocess
import time
from pathlib import Path

from conftest import require_executable

_running: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    """A test that crashed before stop() must not leave a server behind."""
    for proc in list(_running):
        proc.kill()
        proc.wait()


def _die_with_parent() -> None:
    """In the child: SIGKILL the server if the test process dies (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    """One server process on 127.0.0.1:``port`` with its working folder and its log (``workdir/<log_name>``)."""

    executable_name = ""
    log_name = "server.log"
    stop_timeout_s = 10.0
    ready_timeout_s = 10.0

    def __init__(self, port: int, *, workdir: Path) -> None:
        self.port = port
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / self.log_name
        self._executable = require_executable(self.executable_name)
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The command line that runs the server."""
        raise NotImplementedError

    def ready(self) -> bool:
        """Whether the started server answers yet."""
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        """Everything the server logged so far (all of its runs)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout: float | None = None) -> ServiceProcess:
        """Start the server and wait until it is ready; RuntimeError with its log when it exits or never is."""
        if self.running:
            raise RuntimeError(f"{self.executable_name} on port {self.port} is already running")
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir, preexec_fn=_die_with_parent
            )
        _running.add(self._proc)
        deadline = time.monotonic() + (timeout or self.ready_timeout_s)
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                _running.discard(self._proc)
                self._proc = None
                raise RuntimeError(f"{self.executable_name} exited with code {code} on start:\n{self.log()}")
            if self.ready():
                return self
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.executable_name} was not ready on 127.0.0.1:{self.port} within {timeout or self.ready_timeout_s} s:\n{self.log()}")
            time.sleep(0.05)

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM and wait: the server saves its state first."""
        self._signal_and_wait(signal.SIGTERM, timeout or self.stop_timeout_s)

    def kill(self) -> None:
        """SIGKILL and wait: a crash; what the server had not saved is lost."""
        self._signal_and_wait(signal.SIGKILL, 10.0)

    def _signal(self, sig: signal.Signals) -> None:
        if not self.running:
            raise RuntimeError(f"{self.executable_name} is not running")
        assert self._proc is not None
        self._proc.send_signal(sig)

    def _signal_and_wait(self, sig: signal.Signals, timeout: float) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        _running.discard(proc)
        if proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"{self.executable_name} ignored {sig.name} for {timeout} s:\n{self.log()}") from None

    def __enter__(self) -> ServiceProcess:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
