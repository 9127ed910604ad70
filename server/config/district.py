"""The district file: the halls one deployment serves, and the district's name.

Seed 003 supervises a district's centre and every township/street 便民服务中心
from one 督查 office; one ``hallwatch server --district FILE`` serves them
all from one process and one database.  Each hall stays an ordinary hall
file (its windows, devices, policy preset, calendars); the district file only
lists them::

    [district]
    id = "qujiang"
    name = "曲江新区"

    [[halls]]
    file = "../halls/demo.toml"      # relative to this file

Window and device ids must be unique across the district: a device id is
its broker login (one broker serves every hall), and a window id names one
window in alerts, ratings and findings wherever they are read.  A single
hall file is a district of one (:func:`district_of_hall`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from broker.config_file import ConfigError, load_toml
from broker.protocol import Ident
from server.config.hall import HallConfig, load_hall


class DistrictInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Ident
    name: str = Field(min_length=1, max_length=100)


class HallEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: Path


class DistrictFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    district: DistrictInfo
    halls: list[HallEntry] = Field(min_length=1)


class District(BaseModel):
    """The district and its halls, loaded and checked together."""

    model_config = ConfigDict(frozen=True)

    info: DistrictInfo
    halls: tuple[HallConfig, ...]
    files: tuple[Path, ...]
    """Each hall's file, in the order of ``halls`` (what a problem is reported against)."""

    def hall(self, hall_id: str) -> HallConfig:
        """The hall with this id (KeyError naming it otherwise)."""
        for hall in self.halls:
            if hall.hall.id == hall_id:
                return hall
        raise KeyError(f"no hall {hall_id!r} in district {self.info.id!r}")

    def hall_of_window(self, window_id: str) -> HallConfig | None:
        return next((h for h in self.halls if any(w.id == window_id for w in h.windows)), None)


def load_district(path: Path) -> District:
    """Read a district file and every hall it lists; ConfigError naming the file, the key and the reason."""
    listed = load_toml(path, DistrictFile)
    files = tuple((entry.file if entry.file.is_absolute() else path.parent / entry.file).resolve() for entry in listed.halls)
    halls = tuple(load_hall(file) for file in files)
    _check_unique(path, halls, files)
    return District(info=listed.district, halls=halls, files=files)


def district_of_hall(path: Path) -> District:
    """A single hall file as a district of one (``--hall FILE``)."""
    return district_of(load_hall(path), path.resolve())


def district_of(hall: HallConfig, file: Path) -> District:
    """A loaded hall (from ``file``) as a district of one, named after the hall."""
    return District(info=DistrictInfo(id=hall.hall.id, name=hall.hall.name), halls=(hall,), files=(file,))


def _check_unique(path: Path, halls: tuple[HallConfig, ...], files: tuple[Path, ...]) -> None:
    """Hall, window and device ids are unique across the district; the error names both files."""
    twice = sorted({str(f) for f in files if files.count(f) > 1})
    if twice:
        raise ConfigError(f"{path}: hall file {twice[0]} is listed twice")
    seen: dict[tuple[str, str], Path] = {}
    for hall, file in zip(halls, files, strict=True):
        ids = [("hall", hall.hall.id)] + [("window", w.id) for w in hall.windows] + [("device", d.id) for d in hall.devices]
        for kind, ident in ids:
            first = seen.setdefault((kind, ident), file)
            if first != file:
                raise ConfigError(f"{path}: {kind} id {ident!r} is in both {first} and {file}; ids must be unique across the district")
