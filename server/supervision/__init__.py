"""监管 Supervision: events in, window alerts out (raise, escalate, acknowledge, clear), and the replay of a stored day."""
