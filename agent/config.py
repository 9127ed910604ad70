"""The agent's configuration file (TOML), validated at start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from broker.config_file import load_toml
from broker.connection import BrokerSettings
from broker.protocol import DeviceKind, Ident


class DeviceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hall_id: Ident
    device_id: Ident
    kind: DeviceKind
    windows: list[Ident] = Field(default_factory=list)


class OutboxSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Path
    max_events: int = Field(default=100_000, ge=10)


class SourceSettings(BaseModel):
    """One pluggable event source, named by its ``hallwatch.sources`` entry point."""

    model_config = ConfigDict(extra="allow")

    kind: str


class AgentSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: DeviceSettings
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    outbox: OutboxSettings
    heartbeat_s: float = Field(default=10.0, gt=0, le=3600)
    reconnect_min_s: float = Field(default=1.0, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    inflight_max: int = Field(default=100, ge=1, le=1000)
    sources: list[SourceSettings] = Field(default_factory=list)

    def source_options(self, index: int) -> dict[str, Any]:
        """A source's own keys (everything but ``kind``)."""
        return {k: v for k, v in self.sources[index].model_dump().items() if k != "kind"}


def load_agent_settings(path: Path) -> AgentSettings:
    """Load an agent file; relative outbox paths are taken from the file's folder."""
    settings = load_toml(path, AgentSettings)
    if not settings.outbox.path.is_absolute():
        settings.outbox.path = (path.parent / settings.outbox.path).resolve()
    return settings
