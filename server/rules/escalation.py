"""How an unacknowledged alert grows more urgent — pure."""

from __future__ import annotations

from datetime import datetime

from server.rules.policy import Escalation

LEVELS = ("low", "medium", "high", "critical")


def escalated_severity(
    severity: str, raised_at: datetime, acknowledged_at: datetime | None, cleared_at: datetime | None, now: datetime, escalation: Escalation
) -> str:
    """One level up per ``escalate_after_s`` an active alert waits for acknowledgement.

    Acknowledged or cleared alerts keep the level they reached by then, so
    the record shows how urgent it became.
    """
    stop = min(t for t in (acknowledged_at, cleared_at, now) if t is not None)
    waited = max(0.0, (stop - raised_at).total_seconds())
    steps = int(waited // escalation.escalate_after_s)
    return LEVELS[min(LEVELS.index(severity) + steps, len(LEVELS) - 1)]

