"""Pluggable event sources: how sensors/ and vision/ plug into an agent.

A source is a callable ``source(runtime, stop)`` that runs on its own
thread, calls ``runtime.emit(body)`` for each observation and returns when
``stop`` is set.  Packages register factories under the ``hallwatch.sources``
entry-point group; an agent's configuration names them by ``kind`` and passes
the remaining keys to the factory, with ``config_dir`` (the agent file's
folder, for relative paths: :data:`agent.config.ConfigPath`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

from broker.config_file import ConfigError

if TYPE_CHECKING:
    from agent.config import AgentSettings
    from agent.runtime import AgentRuntime

Source = Callable[["AgentRuntime", threading.Event], None]
SourceFactory = Callable[..., Source]
GROUP = "hallwatch.sources"


def available() -> dict[str, EntryPoint]:
    """Every installed source by name, not loaded: an agent imports only the sources it runs
    (a keypad agent needs neither OpenCV nor dlib)."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load_sources(settings: AgentSettings) -> list[Source]:
    """Build the sources an agent file lists; an unknown kind or bad option is a ConfigError."""
    installed = available()
    sources = []
    for index, spec in enumerate(settings.sources):
        entry = installed.get(spec.kind)
        if entry is None:
            known = ", ".join(sorted(installed)) or "none installed"
            raise ConfigError(f"sources[{index}].kind: unknown source {spec.kind!r} (available: {known})")
        factory: SourceFactory = entry.load()
        options: dict[str, Any] = settings.source_options(index)
        try:
            sources.append(factory(config_dir=settings.config_dir, **options))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"sources[{index}] ({spec.kind}): {exc}") from None
    return sources
