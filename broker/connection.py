"""How every side connects to the broker: URL, credentials, TLS.

Secrets never live in config files in the repo: a password comes from a
file with restricted permissions or from an environment variable.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from pydantic import BaseModel, ConfigDict, Field, field_validator


class BrokerSettings(BaseModel):
    """Where the broker is and how to authenticate to it."""

    model_config = ConfigDict(extra="forbid")

    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password_file: Path | None = None
    password_env: str = "HALLWATCH_MQTT_PASSWORD"
    ca_file: Path | None = None
    keepalive_s: int = Field(default=30, ge=5, le=600)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
            raise ValueError("must look like mqtt://host:1883 or mqtts://host:8883")
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"

    def password(self) -> str | None:
        """The password from its file (first line) or the environment."""
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").splitlines()[0].strip()
        return os.environ.get(self.password_env)


def make_client(settings: BrokerSettings, client_id: str, *, clean_session: bool, manual_ack: bool = False) -> mqtt.Client:
    """A configured paho 2 client (MQTT 3.1.1, which amqtt and Mosquitto both speak)."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean_session,
        protocol=mqtt.MQTTv311,
        manual_ack=manual_ack,
    )
    if settings.username:
        client.username_pw_set(settings.username, settings.password())
    if settings.tls:
        context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
        client.tls_set_context(context)
    return client
