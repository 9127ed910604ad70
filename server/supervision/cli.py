"""``hallwatch replay DAY``: re-run a stored day under the hall's policy or a changed one."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer

from broker.config_file import ConfigError
from server.cli_common import DEFAULT_DB, DEFAULT_HALL, Db, HallFile, fail, load_hall_or_exit, open_database

commands = typer.Typer()


@commands.command()
def replay(
    day: Annotated[str, typer.Argument(help="The day to re-run, YYYY-MM-DD (hall time).")],
    hall: HallFile = DEFAULT_HALL,
    db: Db = DEFAULT_DB,
    preset: Annotated[Optional[str], typer.Option(help="Another policy preset to try.")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Override a policy value, e.g. thresholds.vacant_grace_s=600.")] = [],
    output: Annotated[Optional[Path], typer.Option(help="Write the JSON report here (default: print).")] = None,
) -> None:
    """Re-run a stored day under the hall's policy or a changed one; report alerts and differences."""
    from server.config.calendar import load_calendar
    from server.config.policy import load_policy
    from server.rules.calendar import CalendarGapError
    from server.supervision.replay import replay_day, to_json

    hall_config = load_hall_or_exit(hall)
    try:
        when = date.fromisoformat(day)
    except ValueError:
        fail(f"day {day!r}: expected YYYY-MM-DD")
    overrides = _with_settings(dict(hall_config.policy.overrides), set_)
    try:
        policy = load_policy(preset or hall_config.policy.preset, overrides, source=hall)
        calendar = load_calendar(hall_config.calendars)
        report = to_json(replay_day(open_database(db), hall_config, policy, calendar, when))
    except (ConfigError, CalendarGapError) as exc:
        fail(str(exc))
    if output:
        output.write_text(report + "\n", encoding="utf-8")
    else:
        typer.echo(report)


def _with_settings(overrides: dict[str, object], settings: list[str]) -> dict[str, object]:
    """The hall's overrides with each ``--set key.path=value`` laid over them."""
    for item in settings:
        key, sep, raw = item.partition("=")
        if not sep:
            fail(f"--set {item!r}: expected key=value")
        node = overrides
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        node[leaf] = _parse_value(raw)
    return overrides


def _parse_value(raw: str) -> object:
    """A --set value as TOML would read it (number, boolean, time or string)."""
    import tomllib

    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw
