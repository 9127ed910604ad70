"""A district's supervision on the one ingest writer: each batch's news goes to the hall it belongs to.

The ingest writer calls one supervisor (``observe`` after each committed
batch, ``tick`` after it and at each sweep).  A district has a
:class:`~server.supervision.service.Supervisor` per hall — its windows,
plans, policy and calendar; :class:`HallSupervisors` splits the batch by the
hall its events were published under and gathers what every hall changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from broker.protocol import Event
from server.db import WindowRow
from server.supervision.service import Supervisor


class HallSupervisors:
    """The supervisors of a district's halls, behind the one interface the ingest writer calls."""

    def __init__(self, supervisors: Mapping[str, Supervisor]) -> None:
        self.supervisors = dict(supervisors)

    def observe(self, events: list[Event], devices_changed: list[str], repeats: set[str]) -> None:
        by_hall: dict[str, list[Event]] = {hall: [] for hall in self.supervisors}
        for event in events:
            if event.hall_id in by_hall:
                by_hall[event.hall_id].append(event)
        for hall, supervisor in self.supervisors.items():
            if by_hall[hall] or devices_changed:  # nothing for this hall: its tick still turns its day
                supervisor.observe(by_hall[hall], devices_changed, repeats)  # a supervisor ignores other halls' cameras

    def tick(self, every_window: bool) -> tuple[list[dict[str, Any]], dict[str, WindowRow]]:
        alerts: list[dict[str, Any]] = []
        windows: dict[str, WindowRow] = {}
        for supervisor in self.supervisors.values():
            raised, changed = supervisor.tick(every_window=every_window)
            alerts += raised
            windows |= changed
        return alerts, windows
