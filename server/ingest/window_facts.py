"""A window's latest facts (seat, occupant, pause) for display — pure.

The window's *state* (closed / staffed / paused / vacant / unknown) is not
decided here but by the supervision core (server/rules/supervision.py),
which also knows the schedule, leave and the camera's health.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from broker.protocol import Event



@dataclass(frozen=True)
class WindowFacts:
    """What the server last learnt about one window."""

    seat_state: str | None = None
    seat_time: datetime | None = None
    occupant: str | None = None
    paused: bool = False
    pause_reason: str | None = None
    pause_time: datetime | None = None


def apply_event(facts: WindowFacts, event: Event) -> WindowFacts:
    """Fold one event into the facts; an event older than what is known is ignored,
    so late and out-of-order arrivals cannot roll the state back."""
    body = event.body
    when = event.event_time
    if event.type in ("seat", "seat_heartbeat"):
        if facts.seat_time is not None and when < facts.seat_time:
            return facts
        occupant = getattr(body, "occupant", facts.occupant)
        if body.state == "vacant":
            occupant = None
        return replace(facts, seat_state=body.state, seat_time=when, occupant=occupant)
    if event.type == "pause":
        if facts.pause_time is not None and when < facts.pause_time:
            return facts
        return replace(facts, paused=body.paused, pause_reason=body.reason if body.paused else None, pause_time=when)
    return facts
