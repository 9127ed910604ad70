"""Policy presets: complete, cited, faithful to the regulations; hall overrides."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path

import pytest

from broker.config_file import ConfigError
from server.config.policy import POLICIES_DIR, available_presets, load_hall_policy, load_policy
from server.rules.policy import Policy, leaf_keys

SEEDS_DIR = Path(__file__).resolve().parents[2] / "shared" / "seeds"
PRESETS = ["linfen", "qujiang-2023", "yuanzhou"]
DEFAULT_PREFIX = "HallWatch default (the regulation is silent"
QUOTE = re.compile(r"「([^」]+)」")
SEED_NUMBER = re.compile(r"(?<!\d)(00[0-4])(?!\d)")


def _values(policy: Policy) -> set[str]:
    return set(leaf_keys(policy.model_dump(exclude={"sources", "name"})))


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="module")
def seeds() -> dict[str, str]:
    if not SEEDS_DIR.is_dir():
        pytest.skip(f"regulation texts not found at {SEEDS_DIR}: cannot check that citations quote them")
    texts = {}
    for path in SEEDS_DIR.glob("*.txt"):
        texts[path.name[:3]] = _squash(path.read_text(encoding="utf-8"))
    return texts


# --------------------------------------------------------------------------
# Presets: present, loadable, every value cited, citations real
# --------------------------------------------------------------------------


def test_the_presets_are_available() -> None:
    assert POLICIES_DIR == Path(__file__).resolve().parents[1] / "config" / "policies"
    assert available_presets() == PRESETS


@pytest.mark.parametrize("preset", PRESETS)
def test_every_value_of_a_preset_has_a_citation(preset: str) -> None:
    policy = load_policy(preset)
    assert _values(policy) == set(policy.sources)
    for key, citation in policy.sources.items():
        assert citation.strip(), key
        if citation.startswith("HallWatch default"):
            assert citation.startswith(DEFAULT_PREFIX), f"{preset} {key}: a default must say the regulation is silent"
            assert "):" in citation and citation.split("):", 1)[1].strip(), f"{preset} {key}: say why"
        else:
            assert SEED_NUMBER.match(citation), f"{preset} {key}: a citation starts with the seed file number"
            assert QUOTE.search(citation), f"{preset} {key}: a citation quotes the regulation in 「」"


@pytest.mark.parametrize("preset", PRESETS)
def test_every_quote_occurs_in_the_seed_it_names(preset: str, seeds: dict[str, str]) -> None:
    policy = load_policy(preset)
    checked = 0
    for key, citation in policy.sources.items():
        named = set(SEED_NUMBER.findall(citation))
        for quote in QUOTE.findall(citation):
            assert named, f"{preset} {key}: quotes 「{quote}」 without naming the seed file"
            assert any(_squash(quote) in seeds[number] for number in named if number in seeds), (
                f"{preset} {key}: 「{quote}」 is not in seed {sorted(named)}"
            )
            checked += 1
    assert checked > 0


def test_each_preset_rests_on_its_own_seed() -> None:
    own = {"qujiang-2023": "003", "linfen": "000", "yuanzhou": "004"}
    for preset, number in own.items():
        cited = [c for c in load_policy(preset).sources.values() if not c.startswith("HallWatch default")]
        assert cited and all(c.startswith(number) for c in cited), preset


# --------------------------------------------------------------------------
# Values equal the regulations
# --------------------------------------------------------------------------

H = 3600
REGULATION_VALUES = [
    # Qujiang 003
    ("qujiang-2023", "thresholds.pause_max_s", 1800),
    ("qujiang-2023", "thresholds.away_overrun_s", 1800),
    ("qujiang-2023", "thresholds.vacant_grace_s", 180),
    ("qujiang-2023", "deadlines.dispute_working_days", 3),
    ("qujiang-2023", "deadlines.callback_working_days", 10),
    ("qujiang-2023", "deadlines.rectify_working_days", 10),
    ("qujiang-2023", "patrols.cctv_halfdays_per_week", 1.0),
    ("qujiang-2023", "schedule.sessions", [("上午", time(8, 20), time(12)), ("下午", time(13, 30), time(17))]),
    ("qujiang-2023", "schedule.extended_service", ("午间延时服务", time(12), time(13, 30))),
    ("qujiang-2023", "schedule.working_days_only", True),
    ("qujiang-2023", "ratings.bad_at_most", 2),  # 「对“不满意”或“非常不满意”的评价」
    ("qujiang-2023", "ratings.ticket_required", True),  # windows serve by queue ticket (叫号系统)
    # Linfen 000 篇9
    ("linfen", "schedule.sessions", [("上午", time(8), time(12)), ("下午", time(14, 30), time(18))]),
    ("linfen", "schedule.extended_service", None),
    ("linfen", "thresholds.pause_max_s", 1800),
    ("linfen", "thresholds.away_overrun_s", 1800),
    # Yuanzhou 004
    ("yuanzhou", "thresholds.pause_max_s", 1 * H),
    ("yuanzhou", "thresholds.away_overrun_s", 1 * H),
    ("yuanzhou", "schedule.extended_service", None),
]


def _get(policy: Policy, dotted: str):  # noqa: ANN202
    value = policy
    for part in dotted.split("."):
        value = getattr(value, part)
    if dotted == "schedule.sessions":
        return [(s.name, s.start, s.end) for s in value]
    if dotted == "schedule.extended_service" and value is not None:
        return (value.name, value.start, value.end)
    return value


@pytest.mark.parametrize(("preset", "key", "expected"), REGULATION_VALUES)
def test_values_equal_the_regulation(preset: str, key: str, expected: object) -> None:
    assert _get(load_policy(preset), key) == expected


def test_qujiang_patrols_twice_a_day_morning_and_afternoon() -> None:
    policy = load_policy("qujiang-2023")
    rounds = policy.patrols.rounds
    assert len(rounds) == 2
    morning, afternoon = policy.schedule.sessions
    assert morning.start <= rounds[0].at < morning.end
    assert afternoon.start <= rounds[1].at < afternoon.end


@pytest.mark.parametrize("preset", PRESETS)
def test_patrol_rounds_fall_in_open_hours_and_thresholds_are_coherent(preset: str) -> None:
    policy = load_policy(preset)
    for patrol in policy.patrols.rounds:
        assert any(s.start <= patrol.at < s.end for s in policy.schedule.sessions), patrol
    t = policy.thresholds
    assert t.vacant_grace_s < t.pause_max_s <= t.away_overrun_s
    assert policy.escalation.repeat_s <= policy.escalation.escalate_after_s < t.pause_max_s
    assert policy.deadlines.callback_working_days <= policy.deadlines.rectify_working_days


# --------------------------------------------------------------------------
# Hall overrides
# --------------------------------------------------------------------------


def test_an_override_changes_one_value_keeps_the_rest_and_is_cited_as_the_hall() -> None:
    hall = Path("/halls/kecheng.toml")
    preset = load_policy("qujiang-2023")
    changed = load_policy("qujiang-2023", {"thresholds": {"vacant_grace_s": 120}}, source=hall)
    assert changed.thresholds.vacant_grace_s == 120
    assert changed.sources["thresholds.vacant_grace_s"] == f"hall override in {hall}"
    before = preset.model_dump()
    after = changed.model_dump()
    before["thresholds"].pop("vacant_grace_s")
    after["thresholds"].pop("vacant_grace_s")
    before["sources"].pop("thresholds.vacant_grace_s")
    after["sources"].pop("thresholds.vacant_grace_s")
    assert before == after
    assert _values(changed) == set(changed.sources)


def test_overriding_a_list_or_adding_a_table_replaces_its_citations() -> None:
    hall = Path("/halls/h.toml")
    sessions = [{"name": "全天", "start": time(9), "end": time(17)}]
    lunch = {"name": "午间", "start": time(12), "end": time(13)}
    policy = load_policy("linfen", {"schedule": {"sessions": sessions, "extended_service": lunch}}, source=hall)
    assert [(s.start, s.end) for s in policy.schedule.sessions] == [(time(9), time(17))]
    assert policy.schedule.extended_service is not None
    assert "schedule.extended_service" not in policy.sources  # the "none" default no longer applies
    for key in ("schedule.sessions", "schedule.extended_service.start", "schedule.extended_service.end"):
        assert policy.sources[key] == f"hall override in {hall}"
    assert _values(policy) == set(policy.sources)
    assert policy.sources["thresholds.pause_max_s"].startswith("000 篇9")


def test_a_hall_file_names_a_preset_and_overrides(tmp_path: Path) -> None:
    hall = tmp_path / "hall.toml"
    hall.write_text(
        '[hall]\nid = "t"\n\n[policy]\npreset = "qujiang-2023"\n\n'
        "[policy.overrides.thresholds]\nvacant_grace_s = 120\n\n"
        "[policy.overrides.schedule.extended_service]\nend = 14:00:00\n",
        encoding="utf-8",
    )
    policy = load_hall_policy(hall)
    assert policy is not None
    assert policy.thresholds.vacant_grace_s == 120
    assert policy.schedule.extended_service is not None
    assert policy.schedule.extended_service.end == time(14)
    assert policy.schedule.extended_service.start == time(12)
    assert policy.sources["schedule.extended_service.end"] == f"hall override in {hall}"
    assert policy.sources["schedule.extended_service.start"].startswith("003")
    assert policy.thresholds.pause_max_s == 1800

    plain = tmp_path / "plain.toml"
    plain.write_text('[hall]\nid = "t"\n', encoding="utf-8")
    assert load_hall_policy(plain) is None


BAD_OVERRIDES = [
    ({"thresholds": {"pause_max_s": -5}}, "policy.overrides.thresholds.pause_max_s", "greater than or equal"),
    ({"thresholds": {"pause_max": 600}}, "policy.overrides.thresholds.pause_max", "unknown key"),
    ({"patrol": {"rounds": []}}, "policy.overrides.patrol", "unknown key"),
    ({"deadlines": {"dispute_working_days": "three"}}, "policy.overrides.deadlines.dispute_working_days", "integer"),
    (
        {
            "schedule": {
                "sessions": [
                    {"name": "上午", "start": time(8), "end": time(12)},
                    {"name": "下午", "start": time(11, 30), "end": time(18)},
                ]
            }
        },
        "policy.overrides.schedule.sessions",
        "overlap",
    ),
    (
        {"schedule": {"sessions": [{"name": "上午", "start": time(12), "end": time(8)}]}},
        "policy.overrides.schedule.sessions.0",
        "before it starts",
    ),
    ({"schedule": {"extended_service": {"start": time(12)}}}, "policy.overrides.schedule.extended_service.end", "required"),
    ({"sources": {"thresholds.pause_max_s": "my own"}}, "policy.overrides.sources", "cannot be overridden"),
]


@pytest.mark.parametrize(("overrides", "key", "reason"), BAD_OVERRIDES)
def test_a_bad_override_names_the_hall_file_the_key_and_the_reason(overrides: dict, key: str, reason: str) -> None:
    hall = Path("/halls/bad-hall.toml")
    with pytest.raises(ConfigError) as caught:
        load_policy("linfen", overrides, source=hall)
    message = str(caught.value)
    assert message.startswith(f"{hall}: ")
    assert key in message
    assert reason in message
    assert "linfen.toml" not in message  # the preset is not the file to fix


def test_a_bad_override_in_a_hall_file(tmp_path: Path) -> None:
    hall = tmp_path / "hall.toml"
    hall.write_text('[policy]\npreset = "yuanzhou"\n[policy.overrides.thresholds]\npause_max_s = -5\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"hall\.toml: key policy\.overrides\.thresholds\.pause_max_s"):
        load_hall_policy(hall)


def test_an_unknown_preset_lists_the_available_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_policy("qujiang")
    message = str(caught.value)
    assert "'qujiang'" in message
    for preset in PRESETS:
        assert preset in message

    hall = tmp_path / "hall.toml"
    hall.write_text('[policy]\npreset = "../secrets"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_hall_policy(hall)
    assert str(caught.value).startswith(f"{hall}: key policy.preset: unknown policy preset")
    assert "qujiang-2023" in str(caught.value)


def test_a_broken_preset_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import server.config.policy as policy_files

    good = (POLICIES_DIR / "linfen.toml").read_text(encoding="utf-8")
    monkeypatch.setattr(policy_files, "POLICIES_DIR", tmp_path)

    (tmp_path / "uncited.toml").write_text(good.replace('"thresholds.device_fault_s" = ', '"x" = '), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_policy("uncited")
    assert str(caught.value).startswith(str(tmp_path / "uncited.toml"))
    assert "x" in str(caught.value)  # cites a key that is not in the policy

    (tmp_path / "missing.toml").write_text(
        re.sub(r'^"thresholds\.device_fault_s" = .*$', "", good, flags=re.M), encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"missing\.toml: key sources: no citation for thresholds\.device_fault_s"):
        load_policy("missing")

    (tmp_path / "negative.toml").write_text(good.replace("pause_max_s = 1800", "pause_max_s = -1"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"negative\.toml: key thresholds\.pause_max_s"):
        load_policy("negative")

    (tmp_path / "broken.toml").write_text("name = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML"):
        load_policy("broken")


# --------------------------------------------------------------------------
# docs/policies.md shows the presets as they are
# --------------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[1] / "docs" / "policies.md"


def _shown(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, list):
        return ", ".join(_shown_item(item) for item in value) or "none"
    return str(value)


def _shown_item(item: dict) -> str:
    if "at" in item:
        return f"{item['name']} {_shown(item['at'])}"
    if "at_least" in item:  # attendance.monthly_escalations
        extra = f" (+{item['absent_halfdays']} 半天旷工)" if item["absent_halfdays"] else ""
        return f"≥{item['at_least']}: {item['name']}{extra}"
    return f"{item['name']} {_shown(item['start'])}–{_shown(item['end'])}"


@pytest.mark.parametrize("preset", PRESETS)
def test_the_docs_table_of_a_preset_matches_the_file(preset: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    heading = f"### `{preset}`"
    assert heading in text, f"docs/policies.md has no table for {preset}"
    section = text.split(heading, 1)[1].split("\n#", 1)[0]
    rows = dict(re.findall(r"^\| `([^`]+)` \| `([^`]*)`", section, flags=re.M))
    policy = load_policy(preset)
    data = policy.model_dump(exclude={"sources", "name"})
    assert set(rows) == _values(policy)
    for key, shown in rows.items():
        value = data
        for part in key.split("."):
            value = value[part]
        assert shown == _shown(value), f"docs/policies.md {preset} {key}"
