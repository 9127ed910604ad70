"""Reading back what the InfluxDB sink wrote to VictoriaMetrics, for the sink's and the server's tests.

    from timeseries import expected, key, wait_exported   # pytest puts tests/ on sys.path

    assert wait_exported(vm, 12, '{hall="h1"}') == expected(events)

A sample set maps each series (metric name, label set) to {timestamp ms:
value}; VictoriaMetrics names a line-protocol field ``measurement_field``.
Reading fails on a series holding one timestamp twice, so "every point once"
is checked wherever points are read.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from procs import wait_for
from victoria_proc import VictoriaProcess

from broker.protocol import Event

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
SeriesKey = tuple[str, frozenset[tuple[str, str]]]
Samples = dict[SeriesKey, dict[int, float]]


def ms(moment: datetime) -> int:
    """The timestamp VictoriaMetrics keeps (it trims nanoseconds to milliseconds)."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def key(metric: str, **labels: str) -> SeriesKey:
    return metric, frozenset(labels.items())


def exported(vm: VictoriaProcess, match: str) -> Samples:
    """Series → {timestamp ms: value}; fails if a series holds a timestamp twice (a doubled point)."""
    httpx.get(f"{vm.url}/internal/force_flush", timeout=10).raise_for_status()
    samples: Samples = {}
    for row in vm.export(match):
        labels = dict(row["metric"])
        series = (labels.pop("__name__"), frozenset(labels.items()))
        assert len(set(row["timestamps"])) == len(row["timestamps"]), f"doubled points in {series}"
        samples[series] = dict(zip(row["timestamps"], row["values"]))
    return samples


def points_in(samples: Samples) -> int:
    return sum(len(values) for values in samples.values())


def wait_exported(vm: VictoriaProcess, points: int, match: str, timeout: float = 30) -> Samples:
    """The export once it holds at least ``points`` samples (VictoriaMetrics makes rows searchable within a
    second or so); the failure shows what it held."""
    found: list[Samples] = [{}]

    def complete() -> bool:
        found[0] = exported(vm, match)
        return points_in(found[0]) >= points

    try:
        wait_for(complete, timeout, f"{points} samples of {match} in VictoriaMetrics", interval=0.3)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; it has {points_in(found[0])}: {found[0]}") from None
    return found[0]


def expected(events: list[Event]) -> Samples:
    """What seat, rating and heartbeat events must become (server/timeseries/influx_sink.py ``event_lines``), worked out from the events."""
    samples: Samples = defaultdict(dict)
    for e in events:
        b: Any = e.body
        t = ms(e.event_time)
        if e.type in ("seat", "seat_heartbeat"):
            tags = dict(hall=e.hall_id, window=b.window_id, seat=b.seat, device=e.device_id)
            samples[key("seat_occupied", **tags)][t] = int(b.state == "occupied")
            samples[key("seat_confidence", **tags)][t] = b.confidence
        elif e.type == "rating":
            samples[key("rating_level", hall=e.hall_id, window=b.window_id, device=e.device_id, **({"clerk": b.clerk_id} if b.clerk_id else {}))][t] = b.level
        elif e.type == "heartbeat":
            for field in ("uptime_s", "outbox_pending", "dropped_heartbeats", "dropped_states"):
                samples[key(f"heartbeat_{field}", hall=e.hall_id, device=e.device_id)][t] = getattr(b, field)
        else:
            raise AssertionError(f"expected() does not model {e.type}")
    return dict(samples)
