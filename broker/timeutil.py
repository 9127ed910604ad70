"""Time for every side: halls run on Asia/Shanghai, clocks are injected.

Rules never call ``datetime.now()``; they receive a clock, so a day can be
replayed and a simulator can run faster than real time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

HALL_TZ = ZoneInfo("Asia/Shanghai")

Clock = Callable[[], datetime]
"""Returns the current time as an aware datetime."""


def shanghai_now() -> datetime:
    """The real wall clock, in hall time."""
    return datetime.now(HALL_TZ)


def hall_iso(moment: datetime | None) -> str | None:
    """A stored (UTC) time as people read it: ISO 8601 in hall time, or None."""
    return moment.astimezone(HALL_TZ).isoformat() if moment is not None else None
