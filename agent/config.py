"""The agent's configuration file (TOML), validated at start."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo

from broker.config_file import load_toml
from broker.connection import BrokerSettings
from broker.protocol import DeviceKind, Ident


CONFIG_DIR = "config_dir"
"""The validation-context key (and source factory keyword) holding the agent file's folder."""


def _from_config_dir(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get(CONFIG_DIR)
    value = value.expanduser()
    return value if value.is_absolute() or base is None else (base / value).resolve()


def _camera_from_config_dir(value: str, info: ValidationInfo) -> str:
    if value.isdigit() or "://" in value:
        return value  # a USB camera index or a stream URL
    return str(_from_config_dir(Path(value), info))


ConfigPath = Annotated[Path, AfterValidator(_from_config_dir)]
"""A path in a ``[[sources]]`` entry: ``~`` is the agent user's home; a relative one is taken from the agent
file's folder, as the outbox path is, so an agent started from any directory (systemd, a shell elsewhere) finds its files.  Options
models validate with ``context={CONFIG_DIR: folder}``."""

CameraSpec = Annotated[str, Field(min_length=1, description="USB camera index, rtsp:// URL or a video file"), AfterValidator(_camera_from_config_dir)]
"""A camera: a USB index and a URL as written, a video file like a :data:`ConfigPath`."""


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
    _config_dir: Path | None = PrivateAttr(default=None)

    @property
    def config_dir(self) -> Path | None:
        """The agent file's folder (None for settings not loaded from a file): relative paths start there."""
        return self._config_dir

    def source_options(self, index: int) -> dict[str, Any]:
        """A source's own keys (everything but ``kind``)."""
        return {k: v for k, v in self.sources[index].model_dump().items() if k != "kind"}


def load_agent_settings(path: Path) -> AgentSettings:
    """Load an agent file; relative paths (the outbox, and a source's :data:`ConfigPath` keys) are taken from the file's folder."""
    settings = load_toml(path, AgentSettings)
    settings._config_dir = path.parent.resolve()
    if not settings.outbox.path.is_absolute():
        settings.outbox.path = (settings._config_dir / settings.outbox.path).resolve()
    return settings
