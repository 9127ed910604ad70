"""The embedded broker (amqtt) used when no broker URL is given.

Good for the demo hall and a single small hall on one PC: pure Python, no
installation.  Not for a fleet (about 2,000 QoS 1 messages/s here); use
Mosquitto (see docs/mosquitto.md).  It listens on loopback only and allows
anonymous clients, so it must never be exposed to the hall network.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

from amqtt.broker import Broker

log = logging.getLogger(__name__)


class EmbeddedBroker:
    """An amqtt broker on its own thread and event loop."""

    def __init__(self, port: int = 1883, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="embedded-broker", daemon=True)
        self._broker: Broker | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def _config(self) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

    def start(self, timeout: float = 10.0) -> None:
        """Start listening; raises OSError with a clear text if the port is taken."""
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.host, self.port))
            except OSError as exc:
                raise OSError(f"port {self.host}:{self.port} is taken; give another with --broker-port or a --broker URL") from exc
        self._thread.start()

        async def _start() -> None:
            self._broker = Broker(self._config())
            await self._broker.start()

        asyncio.run_coroutine_threadsafe(_start(), self._loop).result(timeout)
        log.info("embedded broker listening on %s", self.url)

    def stop(self, timeout: float = 10.0) -> None:
        if self._broker is not None:
            asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
