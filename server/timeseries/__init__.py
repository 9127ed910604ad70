"""Time-series export: committed events, window states and alerts as InfluxDB points."""
