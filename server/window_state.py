"""A window's first state from its latest facts — pure, no I/O, no clock.

The supervision issue replaces this with the full rules core (schedule,
leave, thresholds, alerts); the principle stays: a camera that is offline,
stale or never seen makes the window *unknown*, never *vacant*, because
device silence is not staff absence.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from broker.protocol import Event

WindowState = Literal["staffed", "paused", "vacant", "unknown"]
DeviceHealth = Literal["online", "offline", "stale", "never_seen"]


@dataclass(frozen=True)
class WindowFacts:
    """What the server last learnt about one window."""

    seat_state: str | None = None
    seat_time: datetime | None = None
    occupant: str | None = None
    paused: bool = False
    pause_reason: str | None = None
    pause_time: datetime | None = None


def derive_state(facts: WindowFacts, camera: DeviceHealth | None) -> WindowState:
    """Unknown without a healthy camera; then pause wins; then the seat."""
    if camera != "online" or facts.seat_state is None:
        return "unknown"
    if facts.paused:
        return "paused"
    return "staffed" if facts.seat_state == "occupied" else "vacant"


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
