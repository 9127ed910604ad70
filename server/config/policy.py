"""Policy presets on disk and a hall's overrides of them.

A preset (``config/policies/<name>.toml``) is a complete :class:`Policy` whose
``[sources]`` table cites, for every value, the regulation text it rests on
(or says honestly that HallWatch chose it because the regulation is silent).
A hall names a preset in its own file and may override any value::

    [policy]
    preset = "qujiang-2023"

    [policy.overrides.thresholds]
    vacant_grace_s = 120

An overridden value's citation becomes ``"hall override in <hall file>"``, so
a report never cites a regulation for a value the hall changed.  Every error
is a :class:`ConfigError` naming the file to fix (the preset, or the hall file
the override came from), the dotted key and the reason.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from broker.config_file import ConfigError
from server.rules.policy import Policy, leaf_keys, merge

POLICIES_DIR = Path(__file__).resolve().parents[2] / "config" / "policies"

OVERRIDE_SOURCE = "hall override in {source}"
"""The citation given to a value a hall overrides."""

_NOT_OVERRIDABLE = ("sources",)


def available_presets() -> list[str]:
    """Names of the presets in :data:`POLICIES_DIR`, sorted (file names without ``.toml``)."""
    if not POLICIES_DIR.is_dir():
        return []
    return sorted(path.stem for path in POLICIES_DIR.glob("*.toml") if path.is_file())


def preset_path(preset: str, *, source: Path | None = None, key: str = "policy.preset") -> Path:
    """The file of a preset; ConfigError listing the available presets if there is none."""
    available = available_presets()
    if preset not in available:
        where = source if source is not None else POLICIES_DIR
        listed = ", ".join(available) if available else f"none (no *.toml in {POLICIES_DIR})"
        raise ConfigError(f"{where}: key {key}: unknown policy preset {preset!r}; available presets: {listed}")
    return POLICIES_DIR / f"{preset}.toml"


def load_policy(
    preset: str,
    overrides: dict[str, Any] | None = None,
    *,
    source: Path | None = None,
    overrides_key: str = "policy.overrides",
) -> Policy:
    """Read a preset, deep-merge a hall's ``overrides`` into it and validate the result.

    ``source`` is the hall file the overrides came from; errors in an override
    name it and the key as written there (``overrides_key`` + the dotted path).
    Errors in the preset itself name the preset file.
    """
    if not isinstance(preset, str):
        raise ConfigError(f"{source or POLICIES_DIR}: key policy.preset: must be a string, not {type(preset).__name__}")
    path = preset_path(preset, source=source)
    override_label = str(source) if source is not None else "overrides"
    overrides = {} if overrides is None else overrides
    if not isinstance(overrides, dict):
        raise ConfigError(f"{override_label}: key {overrides_key}: must be a table, not {type(overrides).__name__}")
    for key in _NOT_OVERRIDABLE:
        if key in overrides:
            raise ConfigError(
                f"{override_label}: key {overrides_key}.{key}: cannot be overridden; "
                "citations are kept by HallWatch (an overridden value is cited as the hall override)"
            )

    base = _read_preset(path)
    preset_policy = _validate(base, path)  # the preset alone must be valid: its errors are the preset's
    _require_citations(preset_policy, path)
    if not overrides:
        return preset_policy

    override_keys = leaf_keys(overrides)
    cited_keys = [key for key in override_keys if key != "name"]  # the policy's name is not a rule value
    sources = dict(base.get("sources") or {})
    for key in cited_keys:
        for cited in list(sources):
            if cited == key or cited.startswith(key + ".") or key.startswith(cited + "."):
                del sources[cited]
        sources[key] = OVERRIDE_SOURCE.format(source=override_label)
    merged = merge({k: v for k, v in base.items() if k != "sources"}, overrides)
    merged["sources"] = sources

    try:
        policy = Policy.model_validate(merged)
    except ValidationError as exc:
        raise _blame(exc, override_label, override_keys, overrides_key) from None
    _require_citations(policy, path)
    return policy


def load_hall_policy(hall_file: Path) -> Policy | None:
    """The policy a hall file names in its ``[policy]`` table (``preset``, optional ``overrides``).

    Returns None when the hall file has no ``[policy]`` table.
    """
    try:
        data = tomllib.loads(hall_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{hall_file}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{hall_file}: not valid TOML: {exc}") from None
    table = data.get("policy")
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError(f"{hall_file}: key policy: must be a table with preset = \"<name>\"")
    unknown = sorted(set(table) - {"preset", "overrides"})
    if unknown:
        raise ConfigError(f"{hall_file}: key policy.{unknown[0]}: unknown key (allowed: preset, overrides)")
    if "preset" not in table:
        raise ConfigError(
            f"{hall_file}: key policy.preset: missing; available presets: {', '.join(available_presets())}"
        )
    return load_policy(table["preset"], table.get("overrides"), source=hall_file)


# ---------------------------------------------------------------------------


def _read_preset(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _validate(data: dict[str, Any], path: Path) -> Policy:
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc.errors())}") from None


def _require_citations(policy: Policy, path: Path) -> None:
    """Every value of a policy must be cited (by the regulation, a default, or the hall override)."""
    values = leaf_keys(policy.model_dump(exclude={"sources", "name"}))
    missing = [key for key in values if key not in policy.sources]
    if missing:
        raise ConfigError(f"{path}: key sources: no citation for {', '.join(missing)}")
    empty = [key for key in values if not policy.sources[key].strip()]
    if empty:
        raise ConfigError(f"{path}: key sources.\"{empty[0]}\": the citation is empty")


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _reason(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key (not part of a policy; check the spelling)"
    return str(err["msg"])


def _describe(errors: list[Any]) -> str:
    return "; ".join(f"key {_dotted(err['loc']) or '(top level)'}: {_reason(err)}" for err in errors)


def _blame(exc: ValidationError, override_label: str, override_keys: list[str], overrides_key: str) -> ConfigError:
    """Errors of a merged policy whose preset alone is valid: the hall's overrides caused them."""
    problems: list[str] = []
    for err in exc.errors():
        loc = _dotted(err["loc"])
        below = [k for k in override_keys if k.startswith(loc + ".")] if loc else override_keys
        if loc and not below:
            problems.append(f"key {overrides_key}.{loc}: {_reason(err)}")
        else:
            # A check over a whole table (e.g. sessions that overlap): name the overridden keys in it.
            keys = ", ".join(f"{overrides_key}.{k}" for k in below)
            problems.append(f"key {keys} (checked with the rest of {loc or 'the policy'}): {_reason(err)}")
    return ConfigError(f"{override_label}: " + "; ".join(problems))
