"""MQTT ingest: validate, de-duplicate and store every event once, keep each device's and window's current state."""
