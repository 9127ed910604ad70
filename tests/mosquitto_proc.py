"""Run a real Mosquitto broker for a test.

    from mosquitto_proc import start_mosquitto   # pytest puts tests/ on sys.path

    def test_something(tmp_path):
        with start_mosquitto(tmp_path) as broker:       # anonymous broker
            client.connect("127.0.0.1", broker.port)
            ...
            broker.stop()                                # SIGTERM: saves persistence
            broker.start()                               # same port, same data
            broker.kill()                                # SIGKILL: loses unsaved state

With ``auth=BrokerAuthFiles(...)`` the broker runs the production config from
:func:`broker.mosquitto.render_mosquitto_conf` (no anonymous access,
passwd/acl files, ``use_username_as_clientid``: one connection per account,
a second one with the same username closes the first); ``broker.reload()``
(SIGHUP) makes it re-read them.  Skips locally and fails in CI when
``mosquitto`` is not installed.  A broker left running by a crashed test is
killed when the test process exits.

API: :func:`start_mosquitto`, :class:`MosquittoProcess` (``port``, ``url``,
``start()``, ``stop()``, ``kill()``, ``reload()``, ``log()``, context
manager) and :func:`free_port`.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from broker.mosquitto import BrokerAuthFiles, render_mosquitto_conf

try:  # pytest puts tests/ on sys.path (no tests/__init__.py)
    from conftest import require_executable
except ImportError:  # tests/ became a package
    from tests.conftest import require_executable

__all__ = ["MosquittoProcess", "free_port", "start_mosquitto"]

READY_TIMEOUT_S = 10.0
_running: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    """A test that crashed before stop() must not leave a broker behind."""
    for proc in list(_running):
        proc.kill()
        proc.wait()


def _die_with_parent() -> None:
    """In the child: SIGKILL the broker if the test process dies (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MosquittoProcess:
    """One ``mosquitto -c CONF`` process on 127.0.0.1:``port``.

    ``conf`` is the config text (written to ``workdir/mosquitto.conf``) or the
    path of an existing config file; it must make the broker listen on
    ``port``.  The broker's log goes to ``workdir/mosquitto.log`` (see
    :meth:`log`).  Construction does not start it: call :meth:`start`.
    """

    def __init__(self, conf: str | Path, port: int, *, workdir: Path) -> None:
        self.port = port
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if isinstance(conf, Path):
            self.conf_path = conf
        else:
            self.conf_path = self.workdir / "mosquitto.conf"
            self.conf_path.write_text(conf)
        self.log_path = self.workdir / "mosquitto.log"
        self._executable = require_executable("mosquitto")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        """Everything the broker logged so far (all of its runs)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = READY_TIMEOUT_S) -> MosquittoProcess:
        """Start the broker and wait until the port accepts connections.

        Raises RuntimeError with the broker's log when it exits or does not
        listen within ``timeout`` seconds.
        """
        if self.running:
            raise RuntimeError(f"mosquitto on port {self.port} is already running")
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [self._executable, "-c", str(self.conf_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                preexec_fn=_die_with_parent,
            )
        _running.add(self._proc)
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                _running.discard(self._proc)
                self._proc = None
                raise RuntimeError(f"mosquitto exited with code {code} on start:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"mosquitto did not listen on 127.0.0.1:{self.port} within {timeout} s:\n{self.log()}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait: the broker saves its persistence file first."""
        self._signal_and_wait(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL and wait: a crash, state since the last autosave is lost."""
        self._signal_and_wait(signal.SIGKILL, 10.0)

    def reload(self) -> None:
        """SIGHUP: re-read the passwd and acl files (and reloadable options)."""
        if not self.running:
            raise RuntimeError("mosquitto is not running")
        assert self._proc is not None
        self._proc.send_signal(signal.SIGHUP)
        # Mosquitto handles the flag in its main loop, within a few ms; there
        # is no acknowledgement to wait for.
        time.sleep(0.3)

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
            raise RuntimeError(f"mosquitto ignored {sig.name} for {timeout} s:\n{self.log()}") from None

    def __enter__(self) -> MosquittoProcess:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_mosquitto(
    tmp_path: Path, *, auth: BrokerAuthFiles | None = None, port: int | None = None
) -> MosquittoProcess:
    """Write a config under ``tmp_path`` and start a broker on 127.0.0.1.

    ``auth`` None: anonymous access, everything allowed (for tests of other
    components).  With ``auth``: the production config (no anonymous
    access, ``auth``'s passwd/acl).  Both persist to ``tmp_path`` so
    :meth:`MosquittoProcess.stop` + :meth:`~MosquittoProcess.start` keep
    retained messages and sessions.  ``port`` None picks a free one.
    """
    port = port or free_port()
    workdir = Path(tmp_path) / f"mosquitto-{port}"
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    if auth is None:
        conf = "\n".join(
            [
                "per_listener_settings false",
                "allow_anonymous true",
                "persistence true",
                f"persistence_location {data}/",
                "autosave_interval 10",
                "max_queued_messages 100000",
                "log_dest stderr",
                "log_type all",
                f"listener {port} 127.0.0.1",
            ]
        )
    else:
        conf = render_mosquitto_conf(auth.directory, port=port, bind="127.0.0.1", persistence_dir=data)
    if os.geteuid() == 0:
        # As root, Mosquitto switches to the 'mosquitto' user, which cannot
        # read root's 0600 passwd file or write into tmp_path.  Stay root.
        conf += "\nuser root\n"
    return MosquittoProcess(conf, port, workdir=workdir).start()
