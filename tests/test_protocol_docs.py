"""docs/protocol.md and broker/protocol.py must agree.

The page is what device makers build against, so every drift is a bug: a
field documented that the models reject, a field the models need that the
page never mentions, an example that would be rejected, a topic template that
is not what the code publishes to.  Each failure names the section (the
``### name`` heading) and the field that differs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import annotated_types
import pytest
from pydantic import BaseModel

from broker import protocol
from broker.protocol import (
    DROP_CLASS,
    EVENT_MODELS,
    MAX_PAYLOAD_BYTES,
    Command,
    DeviceConfig,
    DeviceKind,
    DeviceStatus,
    ProtocolError,
    RatingBody,
    ServerStatus,
    decode,
    decode_event,
    device_topic,
    parse_device_topic,
    server_status_topic,
)
from server.ingest.validation import COMMON_EVENTS, KIND_EVENTS, KnownDevice, Rejection, check_message

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "protocol.md"
DEMO_HALL = ROOT / "config" / "halls" / "demo.toml"

FIELD_HEADER = ["field", "type", "required", "meaning"]
TOPIC_HEADER = ["topic", "direction", "QoS", "retained", "payload"]

OTHER_MODELS: dict[str, type[BaseModel]] = {
    "DeviceStatus": DeviceStatus,
    "ServerStatus": ServerStatus,
    "DeviceConfig": DeviceConfig,
    "Command": Command,
}
ENVELOPE = "envelope"
WIRE_ONLY_REQUIRED = {"type"}
"""Envelope fields with a default in the model that are still required on the
wire: ``type`` is the discriminator, so a payload without it is rejected."""


def _envelope_fields() -> dict[str, Any]:
    """The envelope base's fields plus ``type`` and ``body``, common to every event."""
    fields = dict(protocol._Envelope.model_fields)
    for name in ("type", "body"):
        fields[name] = EVENT_MODELS["punch"].model_fields[name]
    return fields


def _model_fields(section: str) -> tuple[str, dict[str, Any]]:
    """(model name, fields) that a ``### section`` must document."""
    if section == ENVELOPE:
        return "the event envelope", _envelope_fields()
    if section in EVENT_MODELS:
        body = EVENT_MODELS[section].model_fields["body"].annotation
        assert isinstance(body, type)
        return body.__name__, dict(body.model_fields)
    model = OTHER_MODELS[section]
    return model.__name__, dict(model.model_fields)


ALL_SECTIONS = [ENVELOPE, *EVENT_MODELS, *OTHER_MODELS]


# --------------------------------------------------------------------------
# A small Markdown reader: headings, tables and fenced blocks
# --------------------------------------------------------------------------


@dataclass
class Section:
    name: str
    line: int
    lines: list[str] = field(default_factory=list)


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    line: int


def _doc_text() -> str:
    assert DOC.is_file(), f"{DOC.relative_to(ROOT)} is missing"
    return DOC.read_text(encoding="utf-8")


def _sections(text: str) -> list[Section]:
    """Every ``### name`` section, up to the next heading of level 1-3 (fences respected)."""
    sections: list[Section] = []
    current: Section | None = None
    in_fence = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("```"):
            in_fence = not in_fence
        heading = None if in_fence else re.match(r"^(#{1,3})\s+(.*?)\s*$", line)
        if heading:
            current = None
            if len(heading[1]) == 3:
                current = Section(heading[2], number)
                sections.append(current)
            continue
        if current is not None:
            current.lines.append(line)
    return sections


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _tables(lines: list[str], first_line: int = 1) -> list[Table]:
    tables: list[Table] = []
    block: list[tuple[int, str]] = []
    in_fence = False
    for offset, line in enumerate([*lines, ""]):
        if line.startswith("```"):
            in_fence = not in_fence
        if not in_fence and line.lstrip().startswith("|"):
            block.append((first_line + offset, line))
            continue
        if len(block) >= 2:
            header = _cells(block[0][1])
            rows = [_cells(text) for _, text in block[1:] if not re.fullmatch(r"[\s|:-]+", text)]
            tables.append(Table(header, rows, block[0][0]))
        block = []
    return tables


def _name(cell: str) -> str:
    """A table cell's name: the first word, without backticks or trailing notes."""
    return cell.split()[0].strip("`") if cell.split() else ""


def _json_blocks(lines: list[str]) -> list[str]:
    text = "\n".join(lines)
    return re.findall(r"^```json[ \t]*\n(.*?)^```", text, flags=re.S | re.M)


def _section(name: str) -> Section:
    found = [s for s in _sections(_doc_text()) if s.name == name]
    assert found, f"docs/protocol.md has no '### {name}' section"
    assert len(found) == 1, f"'### {name}' appears {len(found)} times (lines {[s.line for s in found]})"
    return found[0]


def _field_table(section: Section) -> Table:
    tables = [t for t in _tables(section.lines, section.line + 1) if t.header == FIELD_HEADER]
    assert tables, (
        f"section '### {section.name}' (line {section.line}) has no field table "
        f"with the header | {' | '.join(FIELD_HEADER)} |"
    )
    assert len(tables) == 1, f"section '### {section.name}' has {len(tables)} field tables; keep one"
    return tables[0]


def _table_with_header(first_cell: str) -> Table:
    tables = [t for t in _tables(_doc_text().splitlines()) if t.header and t.header[0].startswith(first_cell)]
    assert tables, f"docs/protocol.md has no table whose first column is '{first_cell}'"
    assert len(tables) == 1, f"docs/protocol.md has {len(tables)} tables whose first column is '{first_cell}'"
    return tables[0]


def _demo_registry() -> dict[str, KnownDevice]:
    from server.config.hall import load_hall

    hall = load_hall(DEMO_HALL)
    return {d.id: KnownDevice(hall.hall.id, d.kind, frozenset(d.windows)) for d in hall.devices}


# --------------------------------------------------------------------------
# Sections and field tables
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_SECTIONS)
def test_every_model_has_one_section(name: str) -> None:
    _section(name)


def test_no_section_documents_an_unknown_model() -> None:
    for section in _sections(_doc_text()):
        has_fields = any(t.header == FIELD_HEADER for t in _tables(section.lines))
        if has_fields:
            assert section.name in ALL_SECTIONS, (
                f"section '### {section.name}' (line {section.line}) has a field table but names no "
                f"protocol model; expected one of {ALL_SECTIONS}"
            )


def test_every_event_model_is_envelope_plus_type_and_body() -> None:
    expected = set(_envelope_fields())
    for name, model in EVENT_MODELS.items():
        assert set(model.model_fields) == expected, (
            f"event model {model.__name__} ({name!r}) has fields beyond the envelope, type and body: "
            f"{sorted(set(model.model_fields) ^ expected)}; the '### envelope' section cannot describe it"
        )


@pytest.mark.parametrize("name", ALL_SECTIONS)
def test_field_table_lists_exactly_the_model_fields(name: str) -> None:
    section = _section(name)
    table = _field_table(section)
    model_name, fields = _model_fields(name)
    documented = [_name(row[0]) for row in table.rows]
    duplicated = sorted({f for f in documented if documented.count(f) > 1})
    assert not duplicated, f"section '### {name}': fields listed twice: {duplicated}"
    extra = sorted(set(documented) - set(fields))
    missing = sorted(set(fields) - set(documented))
    assert not extra and not missing, (
        f"section '### {name}' disagrees with {model_name}: "
        f"documented but not in the model: {extra}; in the model but not documented: {missing}"
    )


@pytest.mark.parametrize("name", ALL_SECTIONS)
def test_required_column_matches_the_model(name: str) -> None:
    section = _section(name)
    table = _field_table(section)
    model_name, fields = _model_fields(name)
    for row in table.rows:
        field_name = _name(row[0])
        assert len(row) == len(FIELD_HEADER), f"section '### {name}', field {field_name!r}: row has {len(row)} cells"
        said = row[2].split()[0].lower() if row[2].split() else ""
        assert said in {"yes", "no"}, (
            f"section '### {name}', field {field_name!r}: required column must start with yes or no, got {row[2]!r}"
        )
        if field_name not in fields:
            continue  # reported by the field-set test
        required = fields[field_name].is_required() or (name == ENVELOPE and field_name in WIRE_ONLY_REQUIRED)
        assert (said == "yes") == required, (
            f"section '### {name}', field {field_name!r}: documented as required={said!r} but "
            f"{model_name} has it {'required' if required else 'optional'}"
        )


# --------------------------------------------------------------------------
# JSON examples
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_SECTIONS)
def test_json_examples_validate(name: str) -> None:
    section = _section(name)
    blocks = _json_blocks(section.lines)
    assert blocks, f"section '### {name}' has no ```json example"
    for index, block in enumerate(blocks, start=1):
        where = f"section '### {name}', JSON example {index}"
        try:
            json.loads(block)
        except json.JSONDecodeError as exc:
            pytest.fail(f"{where} is not valid JSON: {exc}")
        payload = block.encode("utf-8")
        try:
            if name == ENVELOPE or name in EVENT_MODELS:
                message = decode_event(payload)
            else:
                message = decode(payload, OTHER_MODELS[name])
        except ProtocolError as exc:
            pytest.fail(f"{where} is rejected by the protocol: {exc.reason}")
        if name in EVENT_MODELS:
            assert message.type == name, f"{where} is a {message.type!r} event, not {name!r}"


@pytest.mark.parametrize("name", [ENVELOPE, *EVENT_MODELS])
def test_event_examples_are_complete_and_accepted_by_the_demo_hall(name: str) -> None:
    """'Ready to send': every envelope field is spelled out, and the demo server would accept it."""
    registry = _demo_registry()
    for index, block in enumerate(_json_blocks(_section(name).lines), start=1):
        where = f"section '### {name}', JSON example {index}"
        raw = json.loads(block)
        missing = sorted(set(_envelope_fields()) - set(raw))
        assert not missing, f"{where} leaves out envelope fields {missing}; show the full envelope"
        topic = device_topic(raw["hall_id"], raw["device_id"], "evt", raw["type"])
        checked = check_message(topic, block.encode("utf-8"), registry)
        assert not isinstance(checked, Rejection), f"{where} on {topic} would be rejected: {checked.reason}"


# --------------------------------------------------------------------------
# Topics, size, kinds, drop classes, rating levels
# --------------------------------------------------------------------------


def _expected_topics() -> dict[str, tuple[str, bool]]:
    """Template → (what, retained) as the code builds it for placeholder ids."""
    hall, device = "hall-x", "device-x"  # valid ids, put back as placeholders below

    def template(topic: str) -> str:
        return topic.replace(hall, "{hall_id}").replace(device, "{device_id}")

    topics = {template(device_topic(hall, device, "evt", t)): (f"evt/{t}", False) for t in EVENT_MODELS}
    topics[template(device_topic(hall, device, "status"))] = ("device status", True)
    topics[template(device_topic(hall, device, "cfg"))] = ("cfg", True)
    topics[template(device_topic(hall, device, "cmd"))] = ("cmd", False)
    topics[template(server_status_topic(hall))] = ("server status", True)
    return topics


def _topic_table() -> Table:
    tables = [t for t in _tables(_doc_text().splitlines()) if t.header == TOPIC_HEADER]
    assert tables, f"docs/protocol.md has no topic table with the header | {' | '.join(TOPIC_HEADER)} |"
    assert len(tables) == 1, "docs/protocol.md has more than one topic table"
    return tables[0]


def test_topic_table_matches_the_code() -> None:
    table = _topic_table()
    documented = [row[0].strip("`") for row in table.rows]
    expected = _expected_topics()
    extra = sorted(set(documented) - set(expected))
    missing = sorted(set(expected) - set(documented))
    assert not extra and not missing, (
        f"topic table disagrees with device_topic()/server_status_topic(): "
        f"documented but not produced by the code: {extra}; produced but not documented: {missing}"
    )
    assert len(documented) == len(set(documented)), "topic table lists a topic twice"


def test_topic_table_qos_and_retained() -> None:
    expected = _expected_topics()
    for row in _topic_table().rows:
        topic = row[0].strip("`")
        if topic not in expected:
            continue  # reported by test_topic_table_matches_the_code
        what, retained = expected[topic]
        assert row[2] == "1", f"topic table, {topic}: QoS is {row[2]!r}, every message uses QoS 1"
        said = row[3].split()[0].lower() if row[3].split() else ""
        assert said == ("yes" if retained else "no"), (
            f"topic table, {topic} ({what}): retained is {row[3]!r}, should be {'yes' if retained else 'no'}"
        )


def test_documented_event_topics_parse_back() -> None:
    expected = _expected_topics()
    for row in _topic_table().rows:
        topic = row[0].strip("`")
        if "/dev/" not in topic or topic not in expected:
            continue  # unknown topics are reported by test_topic_table_matches_the_code
        info = parse_device_topic(topic)
        assert (info.hall_id, info.device_id) == ("{hall_id}", "{device_id}"), f"topic table, {topic}: placeholders"


def test_topic_root_and_version_are_documented() -> None:
    text = _doc_text()
    assert f"`{protocol.TOPIC_ROOT}`" in text, f"the topic root {protocol.TOPIC_ROOT} is not stated"
    assert f"version **{protocol.SCHEMA_VERSION}**" in text, "the protocol version is not stated"


def test_size_limit_is_documented() -> None:
    text = _doc_text()
    assert str(MAX_PAYLOAD_BYTES) in text, f"MAX_PAYLOAD_BYTES = {MAX_PAYLOAD_BYTES} does not appear in the doc"
    for other in set(re.findall(r"\*\*(\d+) bytes\*\*", text)):
        assert int(other) == MAX_PAYLOAD_BYTES, f"the doc states a size limit of {other} bytes, the code {MAX_PAYLOAD_BYTES}"


def test_kinds_table_matches_validation() -> None:
    table = _table_with_header("kind")
    documented: dict[str, set[str]] = {}
    for row in table.rows:
        kind = _name(row[0])
        assert kind not in documented, f"kinds table lists {kind!r} twice"
        documented[kind] = set(re.findall(r"`([a-z_]+)`", row[1]))
    assert set(documented) == set(get_args(DeviceKind)), (
        f"kinds table lists {sorted(documented)}, protocol.DeviceKind is {sorted(get_args(DeviceKind))}"
    )
    assert set(KIND_EVENTS) == set(get_args(DeviceKind)), "server.ingest.validation.KIND_EVENTS and DeviceKind differ"
    for kind, events in documented.items():
        allowed = set(KIND_EVENTS[kind] | COMMON_EVENTS)
        assert events == allowed, (
            f"kinds table, {kind}: documented {sorted(events)}, server.ingest.validation allows {sorted(allowed)}"
        )


def test_drop_class_table_matches_the_code() -> None:
    table = _table_with_header("drop class")
    documented: dict[str, int] = {}
    for row in table.rows:
        for event_type in re.findall(r"`([a-z_]+)`", row[1]):
            assert event_type not in documented, f"drop class table lists {event_type!r} twice"
            documented[event_type] = int(row[0])
    assert documented == DROP_CLASS, (
        f"drop class table disagrees with DROP_CLASS: "
        f"{ {t: (documented.get(t), DROP_CLASS.get(t)) for t in set(documented) | set(DROP_CLASS) if documented.get(t) != DROP_CLASS.get(t)} }"
        " (doc, code)"
    )


RATING_NAMES = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}


def test_rating_levels_are_documented() -> None:
    metadata = RatingBody.model_fields["level"].metadata
    low = next(m.ge for m in metadata if isinstance(m, annotated_types.Ge))
    high = next(m.le for m in metadata if isinstance(m, annotated_types.Le))
    assert set(RATING_NAMES) == set(range(low, high + 1)), f"RatingBody.level is {low}..{high}"
    table = _table_with_header("level")
    documented = {int(row[0]): row[1] for row in table.rows}
    assert documented == RATING_NAMES, f"rating levels table: {documented}, expected {RATING_NAMES}"


# --------------------------------------------------------------------------
# The worked mosquitto_pub example
# --------------------------------------------------------------------------

_PUB = re.compile(r"mosquitto_pub\b(?P<opts>[^']*?)-t\s+(?P<topic>\S+)\s+-m\s+'(?P<payload>[^']*)'", re.S)


def test_worked_mosquitto_pub_example_is_accepted() -> None:
    text = _doc_text()
    assert "mosquitto_pub -h 127.0.0.1 -p 1883 -q 1 -t hw/v1/demo/dev/cam-01/evt/seat -m '" in text, (
        "the worked example must start: mosquitto_pub -h 127.0.0.1 -p 1883 -q 1 -t hw/v1/demo/dev/cam-01/evt/seat -m '"
    )
    examples = list(_PUB.finditer(text))
    assert examples, "no mosquitto_pub example with an inline -m '<json>' payload"
    registry = _demo_registry()
    for match in examples:
        topic, payload = match["topic"], match["payload"].encode("utf-8")
        assert "-q 1" in match["opts"], f"mosquitto_pub example on {topic} must publish with -q 1"
        try:
            decode_event(payload)
        except ProtocolError as exc:
            pytest.fail(f"mosquitto_pub example on {topic}: payload rejected: {exc.reason}")
        checked = check_message(topic, payload, registry)
        assert not isinstance(checked, Rejection), f"mosquitto_pub example on {topic} would be rejected: {checked.reason}"


def test_production_example_logs_in() -> None:
    text = _doc_text()
    assert re.search(r"mosquitto_pub[^\n]*(\\\n[^\n]*)*-u \S+ -P ", text), "no production mosquitto_pub example with -u/-P"
