"""The hall file: windows and the devices that watch them.

It seeds the device registry at server start; devices added later with
``hallwatch device add`` live in the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from broker.config_file import load_toml
from broker.protocol import DeviceKind, Ident


class HallInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Ident
    name: str = Field(min_length=1, max_length=100)
    timezone: str = "Asia/Shanghai"


class WindowSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Ident
    name: str = Field(min_length=1, max_length=100)
    department: str = Field(min_length=1, max_length=100)
    clerks: list[Ident] = Field(default_factory=list)
    """The roster: A post first, then B post(s) and the window lead (AB岗)."""
    lunch_duty: bool = False
    """On the lunch-time extended-service duty roster (延时服务)."""
    staffed: bool = True
    """False for a window not staffed at all (planned closure)."""


class PolicyChoice(BaseModel):
    """Which preset of config/policies/ the hall follows, and its own changes."""

    model_config = ConfigDict(extra="forbid")

    preset: str = "qujiang-2023"
    overrides: dict[str, Any] = Field(default_factory=dict)


class DeviceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Ident
    kind: DeviceKind
    windows: list[Ident] = Field(default_factory=list)


class HallConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hall: HallInfo
    policy: PolicyChoice = Field(default_factory=PolicyChoice)
    calendars: list[Path] = Field(default_factory=list)
    """Hall calendar files (next year's schedule, local days off); relative to this file."""
    windows: list[WindowSpec] = Field(min_length=1)
    devices: list[DeviceSpec] = Field(default_factory=list)

    def departments_of(self, window_ids: Iterable[str]) -> set[str]:
        """The departments (进驻部门) of these windows: what a window lead's scope is checked against."""
        wanted = set(window_ids)
        return {w.department for w in self.windows if w.id in wanted}

    @model_validator(mode="after")
    def _consistent(self) -> HallConfig:
        window_ids = [w.id for w in self.windows]
        if len(set(window_ids)) != len(window_ids):
            raise ValueError("window ids must be unique")
        device_ids = [d.id for d in self.devices]
        if len(set(device_ids)) != len(device_ids):
            raise ValueError("device ids must be unique")
        for device in self.devices:
            unknown = set(device.windows) - set(window_ids)
            if unknown:
                raise ValueError(f"device {device.id} names unknown windows {sorted(unknown)}")
        return self

    def camera_of(self, window_id: str) -> str | None:
        """The window camera that watches a window's staff seat, if any."""
        return next(
            (d.id for d in self.devices if d.kind == "window_camera" and window_id in d.windows), None
        )


def load_hall(path: Path) -> HallConfig:
    hall = load_toml(path, HallConfig)
    hall.calendars = [c if c.is_absolute() else (path.parent / c).resolve() for c in hall.calendars]
    return hall
