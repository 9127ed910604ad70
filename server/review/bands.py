"""Looking back over a day: a window's state bands, and occupancy per hour — pure.

The supervision office reviews what happened from the same timeline the
rules produced (:func:`server.rules.supervision.evaluate_window`), so the
review can never disagree with the alerts.  Occupancy of an hour is the
share of its *open* time (not closed) in which the window was staffed; a
paused window is counted apart (a pause is allowed, but nobody serves), and
unknown time (a camera offline) is counted apart too, never as empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from broker.timeutil import HALL_TZ
from server.rules.supervision import Segment


@dataclass(frozen=True)
class HourShare:
    """One hour of one window: seconds open, and how they were spent."""

    hour: int
    open_s: float
    staffed_s: float
    paused_s: float
    vacant_s: float
    unknown_s: float

    @property
    def occupancy(self) -> float | None:
        """Staffed share of the open, known time (None: the window was closed, or all of it unknown)."""
        known = self.open_s - self.unknown_s
        return round(self.staffed_s / known, 3) if known > 0 else None


def hourly(segments: Sequence[Segment], day: date) -> list[HourShare]:
    """Each hour of ``day`` (hall time) in which the window was open at all."""
    out = []
    for hour in range(24):
        start = datetime.combine(day, time(hour), HALL_TZ)
        end = start + timedelta(hours=1)
        spent = {"staffed": 0.0, "paused": 0.0, "vacant": 0.0, "unknown": 0.0}
        for segment in segments:
            overlap = (min(end, segment.end) - max(start, segment.start)).total_seconds()
            if overlap > 0 and segment.state in spent:
                spent[segment.state] += overlap
        open_s = sum(spent.values())
        if open_s > 0:
            out.append(HourShare(hour, open_s, spent["staffed"], spent["paused"], spent["vacant"], spent["unknown"]))
    return out
