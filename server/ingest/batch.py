"""What one ingest batch carries: the messages in, and what storing them changed.

These are the interface between ingest and its followers (supervision,
ratings, the time-series sink, the live page): a follower learns of a batch
through :class:`Changes`, never by reading ingest's tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from broker.protocol import DeviceStatus, Event
from server.db import DeviceRow, RejectionRow, WindowRow
from server.ingest.validation import Rejection


@dataclass
class Inbound:
    """One received MQTT message after validation."""

    topic: str
    payload: bytes
    received: datetime
    checked: Event | DeviceStatus | Rejection


@dataclass
class Changes:
    """What one batch changed, for counters and WebSocket pushes."""

    events: list[Event] = field(default_factory=list)
    repeats: set[str] = field(default_factory=set)
    """msg_ids of the stored seat heartbeats that only repeat the known seat fact."""
    duplicates: int = 0
    rejections: list[RejectionRow] = field(default_factory=list)
    windows: dict[str, WindowRow] = field(default_factory=dict)
    devices: dict[str, DeviceRow] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    """Alerts raised, cleared or withdrawn after this batch by the supervisor and the ingest followers (ratings)."""

    def merge(self, other: Changes) -> None:
        self.events += other.events
        self.repeats |= other.repeats
        self.duplicates += other.duplicates
        self.rejections += other.rejections
        self.windows |= other.windows
        self.devices |= other.devices
        self.alerts += other.alerts
