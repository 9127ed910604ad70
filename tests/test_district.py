"""The district file: one deployment's halls, each an ordinary hall file, checked together."""

from __future__ import annotations

from pathlib import Path

import pytest
from procs import ROOT

from broker.config_file import ConfigError
from server.config.district import district_of_hall, load_district

DEMO = ROOT / "config/districts/demo.toml"


def test_the_demo_district_has_its_centre_and_two_township_centres_of_different_sizes_and_presets() -> None:
    district = load_district(DEMO)
    assert district.info.name == "曲江新区政务服务"
    sizes = {h.hall.name: (len(h.windows), h.policy.preset) for h in district.halls}
    assert len(sizes) == 3 and len({n for n, _ in sizes.values()}) == 3 and len({p for _, p in sizes.values()}) == 3
    assert district.hall("demo").hall.name == "示范政务服务大厅"
    assert district.hall_of_window("dy-w02") is district.hall("dyz")
    with pytest.raises(KeyError, match="nowhere"):
        district.hall("nowhere")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _district(tmp_path: Path, *files: str) -> Path:
    listed = "".join(f'[[halls]]\nfile = "{f}"\n' for f in files)
    return _write(tmp_path, "district.toml", f'[district]\nid = "d"\nname = "测试区"\n{listed}')


def _hall(tmp_path: Path, name: str, hall_id: str, window: str, device: str) -> str:
    _write(tmp_path, name, f'[hall]\nid = "{hall_id}"\nname = "{hall_id}大厅"\n[[windows]]\nid = "{window}"\nname = "1号窗口"\ndepartment = "综合"\n'
                           f'[[devices]]\nid = "{device}"\nkind = "evaluator"\nwindows = ["{window}"]\n')  # fmt: skip
    return name


def test_a_window_or_device_id_in_two_halls_is_refused_naming_both_files(tmp_path: Path) -> None:
    first = _hall(tmp_path, "a.toml", "a", "w01", "ev-a")
    second = _hall(tmp_path, "b.toml", "b", "w01", "ev-b")
    with pytest.raises(ConfigError, match=r"window id 'w01' is in both .*a\.toml and .*b\.toml"):
        load_district(_district(tmp_path, first, second))
    third = _hall(tmp_path, "c.toml", "c", "w03", "ev-a")
    with pytest.raises(ConfigError, match=r"device id 'ev-a'"):
        load_district(_district(tmp_path, first, third))
    same_hall = _hall(tmp_path, "d.toml", "a", "w04", "ev-d")
    with pytest.raises(ConfigError, match=r"hall id 'a'"):
        load_district(_district(tmp_path, first, same_hall))


def test_a_hall_file_listed_twice_or_missing_is_refused_by_name(tmp_path: Path) -> None:
    first = _hall(tmp_path, "a.toml", "a", "w01", "ev-a")
    with pytest.raises(ConfigError, match="listed twice"):
        load_district(_district(tmp_path, first, first))
    with pytest.raises(ConfigError, match=r"missing\.toml: file not found"):
        load_district(_district(tmp_path, first, "missing.toml"))
    with pytest.raises(ConfigError, match=r"district\.toml: key halls"):
        load_district(_district(tmp_path))


def test_a_single_hall_file_is_a_district_of_one() -> None:
    district = district_of_hall(ROOT / "config/halls/demo.toml")
    assert [h.hall.id for h in district.halls] == ["demo"] and district.info.name == "示范政务服务大厅"
