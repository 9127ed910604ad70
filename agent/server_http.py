"""HTTP from a device to the HallWatch server, as the device's broker account.

Large things do not fit an MQTT message (a sealed gallery, an evidence
picture), so they travel over HTTP.  The device logs in with the same
username and password it gives the broker (``server.devices.auth`` checks
them against the broker's passwd file) and trusts the same CA.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from broker.connection import BrokerSettings


def server_client(server_url: str, broker: BrokerSettings, *, ca_file: Path | None = None, timeout_s: float = 30.0) -> httpx.Client:
    """A client for the server at ``server_url``, verifying TLS with the broker's CA (or ``ca_file``)."""
    ca = ca_file or broker.ca_file
    return httpx.Client(base_url=server_url, timeout=timeout_s, verify=ssl.create_default_context(cafile=str(ca)) if ca else True)


def device_credentials(broker: BrokerSettings) -> tuple[str, str] | None:
    """The broker username and password for HTTP Basic, read now (a re-keyed device uses its new one)."""
    return (broker.username, broker.password() or "") if broker.username else None
