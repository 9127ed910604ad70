"""Running one agent source in a test: on its own thread, and what it recorded in the outbox."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from agent.runtime import AgentRuntime


def recorded(runtime: AgentRuntime) -> list[tuple[str, dict[str, Any]]]:
    """(event type, body) of every event in the runtime's outbox, in order."""
    return [(p.event.type, p.event.body.model_dump()) for p in runtime.outbox.pending(after_row=0, limit=10_000)]


@contextmanager
def running(source: Any, runtime: AgentRuntime) -> Iterator[None]:
    """The source on its own thread, as the runtime runs it; stopped (and checked stopped) on exit."""
    stop = threading.Event()
    thread = threading.Thread(target=source, args=(runtime, stop), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive(), "the source did not stop"
