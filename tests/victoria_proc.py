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

import json
from pathlib import Path
from typing import Any

import httpx
from service_proc import ServiceProcess, free_port

__all__ = ["VictoriaProcess", "start_victoria"]


class VictoriaProcess(ServiceProcess):
    """One ``victoria-metrics`` process on 127.0.0.1:``port`` storing into ``workdir/data``.

    Construction does not start it: call :meth:`start`.  Its log goes to
    ``workdir/victoria.log`` (see :meth:`log`).
    """

    executable_name = "victoria-metrics"
    log_name = "victoria.log"
    stop_timeout_s = 30.0
    ready_timeout_s = 20.0

    def __init__(self, port: int, *, workdir: Path, extra_args: list[str] | None = None) -> None:
        super().__init__(port, workdir=workdir)
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.extra_args = list(extra_args or [])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
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

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

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



def start_victoria(tmp_path: Path, *, port: int | None = None, extra_args: list[str] | None = None) -> VictoriaProcess:
    """Start a server on 127.0.0.1 (``port`` None: a free one) with its data under ``tmp_path``."""
    port = port or free_port()
    return VictoriaProcess(port, workdir=Path(tmp_path) / f"victoria-{port}", extra_args=extra_args).start()
