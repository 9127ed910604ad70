"""Run a real VictoriaMetrics (Debian's ``victoria-metrics``) for a test.

    from victoria_proc import start_victoria      # pytest puts tests/ on sys.path

    def test_something(tmp_path):
        with start_victoria(tmp_path) as vm:      # 127.0.0.1:free port, data in tmp_path
            sink = InfluxSink(vm.url, ...)
            ...
            vm.stop()                             # SIGTERM: flushes to disk
            vm.start()                            # same port, same data dir
            rows = vm.export('{__name__=~"seat_.*"}')

It accepts the InfluxDB line-protocol write API (``/write``, ``/api/v2/write``)
and answers Prometheus-style queries (``/api/v1/query``, ``/api/v1/export``):
the sink writes as it would to InfluxDB, the test reads the points back.
``-search.latencyOffset=0s`` and ``-search.disableCache`` make a point
queryable as soon as the storage has it (about a second), instead of 30 s
later.  ``-dedup.minScrapeInterval=1ms`` keeps one sample per series and
millisecond, as InfluxDB keeps one point per series and timestamp: a point the
sink writes twice (a replay after an unclear failure) is stored once.
``extra_args`` adds flags (e.g. ``-httpAuth.username``).  Skips locally and
fails in CI when ``victoria-metrics`` is not installed; a server left running
by a crashed test is killed when the test process exits.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

try:  # pytest puts tests/ on sys.path (no tests/__init__.py)
    from conftest import require_executable
    from mosquitto_proc import free_port
except ImportError:  # tests/ became a package
    from tests.conftest import require_executable
    from tests.mosquitto_proc import free_port

__all__ = ["VictoriaProcess", "start_victoria"]

READY_TIMEOUT_S = 20.0
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


class VictoriaProcess:
    """One ``victoria-metrics`` process on 127.0.0.1:``port`` storing into ``workdir/data``.

    Construction does not start it: call :meth:`start`.  Its log goes to
    ``workdir/victoria.log`` (see :meth:`log`).
    """

    def __init__(self, port: int, *, workdir: Path, extra_args: list[str] | None = None) -> None:
        self.port = port
        self.workdir = Path(workdir)
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "victoria.log"
        self.extra_args = list(extra_args or [])
        self._executable = require_executable("victoria-metrics")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        """Everything the server logged so far (all of its runs)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = READY_TIMEOUT_S) -> VictoriaProcess:
        """Start the server and wait until ``/health`` answers OK.

        Raises RuntimeError with the server's log when it exits or is not
        ready within ``timeout`` seconds.
        """
        if self.running:
            raise RuntimeError(f"victoria-metrics on port {self.port} is already running")
        args = [
            self._executable,
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.data_dir}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-dedup.minScrapeInterval=1ms",
            "-loggerLevel=WARN",
            *self.extra_args,
        ]
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir, preexec_fn=_die_with_parent
            )
        _running.add(self._proc)
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                _running.discard(self._proc)
                self._proc = None
                raise RuntimeError(f"victoria-metrics exited with code {code} on start:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"victoria-metrics was not ready on {self.url} within {timeout} s:\n{self.log()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM and wait: the server writes its in-memory rows to disk first."""
        self._signal_and_wait(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL and wait: a crash, the last second or so of rows is lost."""
        self._signal_and_wait(signal.SIGKILL, 10.0)

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
            raise RuntimeError(f"victoria-metrics ignored {sig.name} for {timeout} s:\n{self.log()}") from None

    # ------------------------------------------------------------ reading

    def export(self, match: str, *, auth: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        """Every raw sample of the series ``match`` selects: one dict per series,
        ``{"metric": {labels}, "values": [...], "timestamps": [ms, ...]}``."""
        response = httpx.post(
            f"{self.url}/api/v1/export", data={"match[]": match, "start": "0", "end": str(2**31)}, auth=auth, timeout=30
        )
        response.raise_for_status()
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]

    def query(self, expr: str, *, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query (PromQL / MetricsQL) at ``at`` (unix seconds, default now)."""
        params = {"query": expr} | ({"time": str(at)} if at is not None else {})
        response = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=30)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def __enter__(self) -> VictoriaProcess:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_victoria(tmp_path: Path, *, port: int | None = None, extra_args: list[str] | None = None) -> VictoriaProcess:
    """Start a server on 127.0.0.1 (``port`` None: a free one) with its data under ``tmp_path``."""
    port = port or free_port()
    return VictoriaProcess(port, workdir=Path(tmp_path) / f"victoria-{port}", extra_args=extra_args).start()
