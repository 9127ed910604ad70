"""Supervision benchmark: the pure core's throughput, and a simulated city's working day replayed from the database.

    .venv/bin/python bench/supervision.py [--windows N] [--events N] [--sample N] [--quick] [--json FILE]

Everything runs in this one process, single-threaded, so every figure is the
cost on ONE core (``--pin CPU`` also pins it to one CPU; by default it is not
pinned, so on a shared machine the scheduler can move it off a busy CPU) —
except the replay from the database, which runs alone in a second, freshly
spawned process so that its peak memory is its own.  Wall and CPU time are
both reported: CPU time well below wall time means other processes took the
CPU.

1. **Core throughput** — realistic window days (see *The simulated day*
   below), generated until they hold ``--events`` observations (default
   200,000), without the heartbeats the store flags as repeats.  Each day
   is evaluated with :func:`server.rules.supervision.evaluate_window`
   (``until`` = next midnight, as ``hallwatch replay`` does; each result is
   used and dropped, as a supervisor sweep does); events/s =
   observations given to the core / wall time, best of ``--repeat`` passes
   after one warm-up pass (the median and the CPU-time rate are shown too).
   The **baseline**, measured in the same run on the same lists, is a bare
   fold: sort the observations by (time, order) and walk them updating four
   variables — what any fold over the day costs in Python.  Measured for
   three time representations, because the cost depends on them (aware
   datetimes with different ``tzinfo`` objects compare and hash through
   ``utcoffset()``):

   * *live*: the observations as the adapter builds them — each event's body
     and its pydantic-parsed time (own ``TzInfo(+08:00)``) through
     ``server.supervision.service.observation_from``, camera transitions through
     ``camera_observation`` from a health row (UTC), the facts from before
     the day as rows (UTC).  This is the figure held against the target.
   * *unnormalised*: the same, but the parsed times passed through as they
     are (what the core gets if an adapter does not normalise them).
   * *hall*: every time in ``Asia/Shanghai`` (``HALL_TZ``), as the tests build them.

   If the live figure misses the target (200,000 events/s), or with
   ``--profile``, the core is run once more under cProfile and the top
   functions are reported.
2. **Heartbeat flagging (ingest)** — the store flags a seat heartbeat that
   repeats its window's last (occupied, live) seat fact (``server.ingest.store.SeatFacts``,
   at ingest, in arrival order); supervision never reads the flagged rows.  For
   ``--sample`` windows of the city (default 20) plus the first ``--unreduced``
   (3) with an outage, every event of the day — each 1 Hz heartbeat included —
   is built as a pydantic Event (``model_construct``: validation is ingest's
   cost either way) and fed in arrival order, in the ingest writer's batches,
   to ``SeatFacts.flags`` + ``take``, with the rest of the 10,000 windows known
   to it (timed).  What it leaves unflagged must equal the compact reduction
   used for the city (checked).  The cost is stated per heartbeat, as the share
   of one core at 10,000 heartbeats/s, and against ``check_message`` on the
   same heartbeat (what ingest spends on it anyway).  The windows with an outage
   are also evaluated on every heartbeat; the result must equal the unflagged
   day's (checked).
3. **City** — ``--windows`` windows (default 10,000) for one working day
   under the ``qujiang-2023`` preset, generated compactly: per window the
   state-change observations, heartbeats as counts (1 Hz while the camera is
   up, 08:20–17:00), and what the flagging leaves of them.

   *In memory*: every window's day is evaluated by the core (timed, no
   tracing) — the baseline, and the work of one supervisor sweep over all
   windows at the end of the day.  Peak memory: the city's observations are
   built as the adapter holds them (each with its own datetime, tzinfo and
   strings) under tracemalloc (untimed), and the ``--trace-windows`` largest
   days are evaluated under it too (nothing is kept from one window to the
   next, so the largest days set the evaluation's peak).

   *From the database*: the day is written (untimed) to a SQLite file in a
   temporary directory made by ``make_engine`` + ``migrate``, with SQLAlchemy
   Core executemany, as ingest would have left it: every event once, in arrival
   order across windows, with its repeat flag — every heartbeat of the sample
   windows (flagged by ``SeatFacts`` above), for the other windows only the
   unflagged rows (all 312 million would not fit a run) — plus camera outages
   as ``device_health`` rows, the leave register, and the day's alerts.  Then
   ``load_day`` is timed for the sample windows against as many windows without
   stored repeats, SQLite's query plans are shown, and ``server.supervision.replay.replay_day``
   runs over a ``HallConfig`` of all windows in a spawned process (timed: load,
   core, report), then ``to_json``.  Its alerts and timelines must equal the
   core's in memory (checked), and against the stored alerts nothing is new or
   gone.  Real time is the working day, 08:20–17:00 = 31,200 s.

The simulated day (per window, seeded): 25 % single-clerk windows, 30 % on
lunch duty (午间延时服务), 3 % with a clerk on leave (a substitute, the B post,
or nobody); arrival around 08:20 (some late), work periods with a per-window
mean of 4–15 min, then an absence: a short unpaused one (most under the
180 s grace, some over), a paused one (some over 30 min), the occupant shown
as ``unknown`` for a moment, a colleague sitting in, an A/B swap with the
evaluator login following late or not, an evaluator re-login; lunch out and
back (some late); leaving around 17:00 (some early).  4 % of windows have a
camera outage (2–15 min), 2 % a network outage (2–20 min: the window's events
arrive later as historical, and the camera shows offline), 1 % a camera that
comes up late; 0.5 % of changes are delivered twice.  Seat heartbeats carry
the seat state only (``SeatHeartbeatBody`` has no occupant), so a heartbeat's
observation has ``who`` None, as ``observation_from`` builds it.

Prints a table and writes it as Markdown to ``bench/results/supervision-<date>.md``
(``--quick``: ``supervision-<date>-quick.md``; ``--no-save``: nowhere).  ``--json FILE``
also writes every figure as JSON (``bench.machine.write_json``; the keys are listed in
docs/benchmarks-supervision.md).  ``--quick`` is the CI smoke run: every phase on small
inputs (``QUICK`` below), some 20 s; it checks the results as a full run does and
nothing against absolute times.
"""

from __future__ import annotations

import argparse
import cProfile
import contextlib
import gc
import hashlib
import json
import math
import multiprocessing
import os
import pickle
import platform
import pstats
import random
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pydantic_core import TzInfo  # noqa: E402
from sqlalchemy import event as sa_event  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bench.machine import write_json  # noqa: E402
from broker.protocol import EVENT_MODELS, SeatHeartbeatBody, device_topic, encode, make_event  # noqa: E402
from broker.timeutil import HALL_TZ, hall_iso  # noqa: E402
from server.config.calendar import national_calendar  # noqa: E402
from server.db import AlertRow, DeviceHealthRow, EventRow, LeaveRow, make_engine, migrate  # noqa: E402
from server.config.hall import HallConfig  # noqa: E402
from server.ingest.ingestor import Ingestor  # noqa: E402
from server.config.policy import load_policy  # noqa: E402
from server.supervision.replay import _alert as replay_alert  # noqa: E402
from server.supervision.replay import replay_day, to_json  # noqa: E402
from server.rules.supervision import UNKNOWN_PERSON, Alert, Interval, Observation, WindowDay, WindowPlan, evaluate_window  # noqa: E402
from server.ingest.store import SeatFacts  # noqa: E402
from server.supervision.service import Supervisor, camera_observation, observation_from  # noqa: E402
from server.ingest.validation import KnownDevice, Rejection, check_message  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PRESET = "qujiang-2023"
DAY = date(2026, 3, 2)  # a Monday, a working day in the 2026 national calendar
TARGET_EVENTS_S = 200_000
TARGET_SPEEDUP = 1000
QUICK = {"windows": 300, "events": 20_000, "repeat": 2, "city_repeat": 1, "sample": 3, "unreduced": 1,
         "check_messages": 500, "load_repeat": 2, "trace_windows": 20}  # fmt: skip
"""``--quick``: every phase, each on small inputs (some 20 s in all on 2 cores)."""

S = 1_000_000  # microseconds
M = 60 * S
H = 60 * M
HALL_OFFSET_S = 8 * 3600  # Asia/Shanghai: UTC+8, no DST
MIDNIGHT = datetime.combine(DAY, datetime.min.time())  # naive local midnight
MIDNIGHT_UTC = MIDNIGHT - timedelta(seconds=HALL_OFFSET_S)
HEARTBEAT_SEQ0 = 10_000_000
PAUSE_REASONS = ("取材料", "复印", "请示领导", "咨询后台", "如厕", "接待来访")


# ---------------------------------------------------------------------------
# time representations
# ---------------------------------------------------------------------------


def t_live(us: int) -> datetime:
    """An event time as pydantic parses it from a live event: its own TzInfo(+08:00) object."""
    return (MIDNIGHT + timedelta(microseconds=us)).replace(tzinfo=TzInfo(HALL_OFFSET_S))


def t_utc(us: int) -> datetime:
    """A time as loaded from the database (UTCDateTime): aware UTC."""
    return (MIDNIGHT_UTC + timedelta(microseconds=us)).replace(tzinfo=timezone.utc)


_ZERO = timedelta(0)


def _own(text: str | None) -> str | None:
    return None if text is None else (text + "\0")[:-1]


def _parsed_time(o: Observation) -> datetime:
    """A fresh copy of the draft's time: a live event's own TzInfo(+08:00), or a database row's UTC."""
    return o.time.replace(tzinfo=TzInfo(HALL_OFFSET_S)) if isinstance(o.time.tzinfo, TzInfo) else o.time + _ZERO


def as_parsed(o: Observation) -> Observation:
    """The observation with its own datetime, tzinfo, strings and order tuple, as parsed from its
    event or row, but *not* normalised: what the core would get if the adapter passed times through."""
    return Observation(_parsed_time(o), o.kind, o.on, _own(o.who), o.historical, (_own(o.order[0]), o.order[1], o.order[2]), _own(o.evidence))  # type: ignore[arg-type]


def as_held(o: Observation) -> Observation:
    """The observation as the live adapter builds and holds it: through ``observation_from`` (events)
    or ``camera_observation`` (device health rows), from its own parsed time, strings and body."""
    order = (_own(o.order[0]), o.order[1], o.order[2])
    if o.kind == "camera":
        row = SimpleNamespace(time=o.time + _ZERO, status=_own(o.who), device_id=order[0], id=o.order[2])
        return camera_observation(row)  # type: ignore[arg-type]
    if o.kind == "seat":
        body = {"state": "occupied" if o.on else "vacant", "occupant": _own(o.who), "snapshot_id": _own(o.evidence)}
        return observation_from("seat", body, _parsed_time(o), o.historical, order)  # type: ignore[arg-type]
    if o.kind == "pause":
        return observation_from("pause", {"paused": o.on, "reason": _own(o.who)}, _parsed_time(o), o.historical, order)  # type: ignore[arg-type]
    return observation_from("clerk_login", {"clerk_id": _own(o.who)}, _parsed_time(o), o.historical, order)  # type: ignore[arg-type]


def plan_held(p: WindowPlan) -> WindowPlan:
    def interval(i: Interval) -> Interval:
        return Interval(_own(i.person), i.start + _ZERO, i.end + _ZERO)  # type: ignore[arg-type]

    return WindowPlan(_own(p.window), frozenset(_own(c) for c in p.roster), tuple(map(interval, p.substitutes)),  # type: ignore[arg-type]
                      tuple(map(interval, p.leaves)), p.on_lunch_duty, p.staffed)  # fmt: skip


def retime(observations: list[Observation], tz: Any) -> list[Observation]:
    return [
        Observation(o.time.astimezone(tz), o.kind, o.on, o.who, o.historical, o.order, o.evidence) for o in observations
    ]


# ---------------------------------------------------------------------------
# the simulated window day
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Day:
    """The hall's day, in microseconds since local midnight."""

    open1: int
    close1: int
    open2: int
    close2: int
    lunch: tuple[int, int] | None  # extended service (lunch duty)
    until: datetime

    @property
    def hb_start(self) -> int:
        return self.open1

    @property
    def hb_count(self) -> int:
        return (self.close2 - self.open1) // S

    @property
    def seconds(self) -> int:
        return (self.close2 - self.open1) // S


def hall_day(policy: Any) -> Day:
    def us(t: Any) -> int:
        return ((t.hour * 60 + t.minute) * 60 + t.second) * S

    s1, s2 = policy.schedule.sessions[0], policy.schedule.sessions[-1]
    ext = policy.schedule.extended_service
    return Day(
        us(s1.start), us(s1.end), us(s2.start), us(s2.end),
        (us(ext.start), us(ext.end)) if ext else None,
        datetime.combine(DAY + timedelta(days=1), datetime.min.time(), HALL_TZ),
    )  # fmt: skip


@dataclass(slots=True)
class SimWindow:
    plan: WindowPlan
    camera: str
    changes: list[Observation]  # as they arrive, in time order (facts from before the day first)
    changes_us: list[int]
    seat_truth: list[tuple[int, bool, str | None]]  # the real seat fact over time (drives heartbeats)
    camera_down: list[tuple[int, int]]  # no seat events or heartbeats
    net_down: list[tuple[int, int]]  # events arrive later, historical
    phase: int  # the camera's heartbeat phase within the second, µs


def _inside(spans: list[tuple[int, int]], us: int) -> bool:
    for a, b in spans:
        if a <= us < b:
            return True
    return False


def simulate(index: int, seed: int, day: Day, n_windows: int) -> SimWindow:
    rng = random.Random(seed * 1_000_003 + index)
    u = rng.uniform
    wid = f"w{index:05d}"
    cam, ev = f"cam-{wid}", f"ev-{wid}"
    single = rng.random() < 0.25
    a, b = f"{wid}-a", (None if single else f"{wid}-b")
    roster = frozenset(x for x in (a, b) if x)
    lunch_duty = day.lunch is not None and rng.random() < 0.30
    clerk: str | None = a
    leaves: tuple[Interval, ...] = ()
    subs: tuple[Interval, ...] = ()
    if rng.random() < 0.03:
        span = (t_utc(7 * H), t_utc(19 * H))
        leaves = (Interval(a, *span),)
        if b is not None:
            clerk = b
        elif rng.random() < 0.7:
            clerk = f"{wid}-s"
            subs = (Interval(clerk, *span),)
        else:
            clerk = None  # nobody comes: 请假无人顶岗
    plan = WindowPlan(wid, roster, subs, leaves, lunch_duty)

    raw: list[tuple[int, str, bool, str | None]] = []  # (µs, kind, on, who)

    def seat(t: int, on: bool, who: str | None = None) -> None:
        raw.append((t, "seat", on, who if on else None))

    def pause(t: int, on: bool, reason: str | None = None) -> None:
        raw.append((t, "pause", on, reason if on else None))

    def login(t: int, who: str | None) -> None:
        raw.append((t, "login", who is not None, who))

    def sec(lo: float, hi: float) -> int:
        return int(u(lo, hi) * S)

    work_mean = u(4, 15) * M

    def work_until(t: int, end: int, cur: str) -> tuple[int, str]:
        while True:
            t += int(rng.expovariate(1 / work_mean))
            if t >= end - 10 * M:
                return t, cur
            kind = rng.random()
            if kind < 0.50:  # away without pausing: a call, a question at the next window
                seat(t, False)
                t += sec(190, 900) if rng.random() < 0.10 else sec(15, 170)
                seat(t, True, cur)
            elif kind < 0.72:  # paused properly
                pause(t, True, rng.choice(PAUSE_REASONS))
                seat(t + sec(3, 20), False)
                t += sec(31 * 60, 50 * 60) if rng.random() < 0.06 else sec(2 * 60, 25 * 60)
                seat(t, True, cur)
                t += sec(5, 60)
                pause(t, False)
            elif kind < 0.82:  # the camera cannot identify the clerk for a moment
                seat(t, True, UNKNOWN_PERSON)
                t += sec(3, 40)
                seat(t, True, cur)
            elif kind < 0.88:  # a colleague sits in
                seat(t, False)
                t += sec(5, 30)
                seat(t, True, f"w{rng.randrange(n_windows):05d}-a")
                t += sec(310, 600) if rng.random() < 0.10 else sec(30, 280)
                seat(t, False)
                t += sec(5, 60)
                seat(t, True, cur)
            elif kind < 0.95 and b is not None and cur in roster:  # A/B swap, the login follows
                other = b if cur == a else a
                seat(t, False)
                t += sec(10, 90)
                seat(t, True, other)
                login(t + (sec(310, 900) if rng.random() < 0.08 else sec(20, 200)), other)
                cur = other
            else:  # evaluator re-login
                login(t, None)
                t += sec(2, 30)
                login(t, cur)

    if clerk is not None:
        t = day.open1 + int(rng.gauss(-6, 5) * M)
        seat(t, True, clerk)
        login(t + sec(20, 120), clerk)
        cur = clerk
        if lunch_duty:
            t, cur = work_until(t, day.close2, cur)
        else:
            t, cur = work_until(t, day.close1, cur)
            t = max(t, day.close1 + int(rng.gauss(1, 3) * M))
            seat(t, False)
            logged_out = rng.random() < 0.3
            if logged_out:
                login(t + sec(5, 60), None)
            t = max(t + M, day.open2 + int(rng.gauss(-4, 4) * M))
            seat(t, True, cur)
            if logged_out:
                login(t + sec(20, 120), cur)
            t, cur = work_until(t, day.close2, cur)
        end = day.close2 - sec(10 * 60, 30 * 60) if rng.random() < 0.03 else day.close2 + int(rng.gauss(3, 4) * M)
        t = max(t + 10 * S, end)
        seat(t, False)
        login(t + sec(10, 90), None)
    raw.sort(key=lambda r: r[0])

    # Devices: camera outages, network outages (events arrive later as historical), late cameras.
    camera_down: list[tuple[int, int]] = []
    net_down: list[tuple[int, int]] = []
    health: list[tuple[int, bool]] = []
    camera_up_before_day = True
    if rng.random() < 0.01:
        camera_up_before_day = False
        up = day.open1 - 20 * M + sec(0, 3600)
        camera_down.append((0, up))
        health.append((up, True))
    if rng.random() < 0.04:
        start = int(u(day.open1, day.close2 - 20 * M))
        span = (start, start + sec(120, 900))
        camera_down.append(span)
        health += [(span[0] + 90 * S, False), (span[1], True)]
    if rng.random() < 0.02:
        start = int(u(day.open1, day.close2 - 25 * M))
        span = (start, start + sec(120, 1200))
        net_down.append(span)
        health += [(span[0] + 90 * S, False), (span[1], True)]

    changes: list[tuple[int, Observation]] = []
    # The facts from before the day, as load_day reads them from the database (UTC).
    changes.append((-14 * H, Observation(t_utc(-14 * H), "camera", camera_up_before_day, "online" if camera_up_before_day else "offline", False, (cam, 0, 1))))
    changes.append((-7 * H, Observation(t_utc(-7 * H), "seat", False, None, False, (cam, 1, 1), f"snap-{wid}-0")))
    changes.append((-7 * H + 40 * S, Observation(t_utc(-7 * H + 40 * S), "login", False, None, False, (ev, 1, 1))))
    for n, (t, online) in enumerate(sorted(health), start=2):
        changes.append((t, Observation(t_utc(t), "camera", online, "online" if online else "offline", False, (cam, 0, n))))
    seat_truth: list[tuple[int, bool, str | None]] = [(-7 * H, False, None)]
    cam_seq, ev_seq = 1, 1
    for t, kind, on, who in raw:
        if kind == "seat":
            seat_truth.append((t, on, who))
            if _inside(camera_down, t):
                continue  # the camera is down: the change is only seen through the next heartbeat
            cam_seq += 1
            order = (cam, 1, cam_seq)
            evidence = None if on else f"snap-{wid}-{cam_seq}"
        else:
            ev_seq += 1
            order, evidence = (ev, 1, ev_seq), None
        obs = Observation(t_live(t), kind, on, who, _inside(net_down, t), order, evidence)  # type: ignore[arg-type]
        changes.append((t, obs))
        if rng.random() < 0.005:  # double delivery
            changes.append((t, Observation(t_live(t), obs.kind, obs.on, obs.who, obs.historical, obs.order, obs.evidence)))
    changes.sort(key=lambda c: c[0])  # stable: a duplicate stays after its original
    return SimWindow(
        plan, cam, [c[1] for c in changes], [c[0] for c in changes], seat_truth, camera_down, net_down, rng.randrange(S)
    )


# ---------------------------------------------------------------------------
# heartbeats and what the store's flagging leaves
# ---------------------------------------------------------------------------


def heartbeat_runs(sim: SimWindow, day: Day) -> Iterator[tuple[int, int, bool, bool]]:
    """Maximal runs of identical 1 Hz seat heartbeats: (index of the first, count, occupied, historical).

    Heartbeat k is sent at open1 + k s + phase while the camera is up, and
    carries the seat state (occupied or vacant) of the last real change at or
    before it.  A ``seat_heartbeat`` body has no occupant (SeatHeartbeatBody),
    so its observation's ``who`` is None.
    """
    first_t = day.hb_start + sim.phase
    cuts = {day.hb_start, day.close2}
    cuts.update(t for t, _, _ in sim.seat_truth if day.hb_start < t < day.close2)
    for spans in (sim.camera_down, sim.net_down):
        for x, y in spans:
            cuts.update(c for c in (x, y) if day.hb_start < c < day.close2)
    bounds = sorted(cuts)
    truth = sim.seat_truth
    ti = 0
    for x, y in zip(bounds, bounds[1:]):
        k0 = max(0, -(-(x - first_t) // S))
        k1 = min(day.hb_count, -(-(y - first_t) // S))
        if k1 <= k0:
            continue
        tk = first_t + k0 * S
        if _inside(sim.camera_down, tk):
            continue
        while ti + 1 < len(truth) and truth[ti + 1][0] <= tk:
            ti += 1
        yield k0, k1 - k0, truth[ti][1], _inside(sim.net_down, tk)


def heartbeat(sim: SimWindow, day: Day, k: int, on: bool, historical: bool) -> Observation:
    t = day.hb_start + sim.phase + k * S
    return Observation(t_live(t), "seat", on, None, historical, (sim.camera, 1, HEARTBEAT_SEQ0 + k))


def reduce_compact(sim: SimWindow, day: Day) -> tuple[list[Observation], int]:
    """What the store leaves unflagged (``server.ingest.store.SeatFacts``), computed on changes + heartbeat runs
    instead of every heartbeat: every change is kept, a heartbeat only when its (occupied, live) differs
    from the window's last seat fact.  Returns (kept, heartbeats)."""
    items: list[tuple[int, int, Any]] = [(t, 0, o) for t, o in zip(sim.changes_us, sim.changes)]
    total = 0
    first_t = day.hb_start + sim.phase
    for k0, count, on, hist in heartbeat_runs(sim, day):
        items.append((first_t + k0 * S, 1, (k0, on, hist)))
        total += count
    items.sort(key=lambda i: (i[0], i[1]))  # a change at the same µs as a heartbeat arrives first
    kept: list[Observation] = []
    last: tuple[bool, bool] | None = None
    for _, is_hb, item in items:
        if is_hb:
            k0, on, hist = item
            if (on, not hist) != last:  # only the first heartbeat of a run can differ from the last seat fact
                kept.append(heartbeat(sim, day, k0, on, hist))
            last = (on, not hist)
            continue
        if item.kind == "seat":
            last = (item.on, not item.historical)
        kept.append(item)
    return kept, total


def materialise(sim: SimWindow, day: Day) -> list[Observation]:
    """Every observation the window sends in the day, heartbeats included, in arrival order.

    Heartbeat times are UTC (one shared tzinfo: cheap to build), as the
    database gives them back; the flagging never looks at the time.
    """
    first_t = day.hb_start + sim.phase
    base, one = t_utc(first_t), timedelta(seconds=1)
    changes_us, changes = sim.changes_us, sim.changes
    out: list[Observation] = []
    ci, nc, cam = 0, len(changes), sim.camera
    for k0, count, on, hist in heartbeat_runs(sim, day):
        for k in range(k0, k0 + count):
            t = first_t + k * S
            while ci < nc and changes_us[ci] <= t:  # a change at the same µs arrives first
                out.append(changes[ci])
                ci += 1
            out.append(Observation(base + k * one, "seat", on, None, hist, (cam, 1, HEARTBEAT_SEQ0 + k)))
    out.extend(changes[ci:])
    return out


def same(a: list[Observation], b: list[Observation]) -> bool:
    def key(o: Observation) -> tuple[Any, ...]:
        return (o.time, o.kind, o.on, o.who, o.historical, o.order, o.evidence)

    return len(a) == len(b) and all(key(x) == key(y) for x, y in zip(a, b))


# ---------------------------------------------------------------------------
# ingest and the database
# ---------------------------------------------------------------------------

HALL_ID = "city"
INGEST_BATCH: int = Ingestor.__init__.__kwdefaults__["batch_max"]  # type: ignore[index]
"""The ingest writer's batch: ``SeatFacts.flags`` is called once per batch."""
EVENT_CHUNK = 20_000  # rows per executemany when writing the database
BODY_MODELS: dict[str, Any] = {kind: model.model_fields["body"].annotation for kind, model in EVENT_MODELS.items()}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US = timedelta(microseconds=1)


def is_heartbeat(o: Observation) -> bool:
    return o.kind == "seat" and o.order[2] >= HEARTBEAT_SEQ0


def event_parts(window_id: str, o: Observation) -> tuple[str, dict[str, Any]]:
    """The event type and body a device sent for this observation, the body as the store writes it
    (``body.model_dump(mode="json")``; see ``check_event_parts``)."""
    state = "occupied" if o.on else "vacant"
    if o.kind == "seat":
        if is_heartbeat(o):
            return "seat_heartbeat", {"window_id": window_id, "seat": "main", "state": state, "confidence": 0.9}
        return "seat", {"window_id": window_id, "seat": "main", "state": state, "confidence": 0.9, "occupant": o.who, "snapshot_id": o.evidence}
    if o.kind == "pause":
        return "pause", {"window_id": window_id, "paused": o.on, "source": "evaluator", "reason": o.who}
    return "clerk_login", {"window_id": window_id, "clerk_id": o.who}


def check_event_parts() -> None:
    """The stored bodies are what ingest stores (each validates and dumps back unchanged), and the
    adapter reads each back as the observation it came from."""
    samples = [
        Observation(t_utc(9 * H), "seat", True, "w00000-a", False, ("cam-w00000", 1, 2)),
        Observation(t_utc(9 * H), "seat", False, None, True, ("cam-w00000", 1, 3), "snap-w00000-3"),
        Observation(t_utc(9 * H), "seat", True, None, False, ("cam-w00000", 1, HEARTBEAT_SEQ0)),
        Observation(t_utc(9 * H), "pause", True, PAUSE_REASONS[0], False, ("ev-w00000", 1, 2)),
        Observation(t_utc(9 * H), "pause", False, None, False, ("ev-w00000", 1, 3)),
        Observation(t_utc(9 * H), "login", True, "w00000-a", False, ("ev-w00000", 1, 4)),
        Observation(t_utc(9 * H), "login", False, None, False, ("ev-w00000", 1, 5)),
    ]
    for o in samples:
        kind, body = event_parts("w00000", o)
        if BODY_MODELS[kind].model_validate(body).model_dump(mode="json") != body:
            raise RuntimeError(f"{kind}: the bench's body is not what ingest stores")
        if not same([observation_from(kind, body, o.time, o.historical, o.order)], [o]):
            raise RuntimeError(f"{kind}: the adapter reads the stored event back as another observation")


def msg_id(n: int) -> str:
    """A UUID-shaped id from a number.  Ingest's are random (uuid4); nothing here reads them, and ids
    in arrival order keep the bulk insert into their unique index cheap."""
    return f"00000000-0000-4000-8000-{n:012x}"


def ingest_event(n: int, window_id: str, o: Observation) -> Any:
    """The event as the ingest writer hands it to ``SeatFacts.flags``: a pydantic Event (and body),
    built with ``model_construct`` — validating it (~19 µs an event) is ingest's cost whether or not
    it flags, and would make the sample take minutes."""
    kind, body = event_parts(window_id, o)
    return EVENT_MODELS[kind].model_construct(
        schema_version=1, msg_id=uuid.UUID(msg_id(n)), hall_id=HALL_ID, device_id=o.order[0], boot=o.order[1],
        seq=o.order[2], event_time=o.time, sent_time=None, historical=o.historical, type=kind, body=BODY_MODELS[kind].model_construct(**body),
    )  # fmt: skip


def flag_day(facts: SeatFacts, window_no: int, window_id: str, stream: list[Observation]) -> tuple[list[bool], float]:
    """The store's repeat flags for a window's day of events (camera health is not an event), fed in
    arrival order in ingest batches; returns (flags, seconds spent in ``flags`` + ``take``)."""
    events = [ingest_event(window_no << 32 | i, window_id, o) for i, o in enumerate(stream) if o.kind != "camera"]
    flags: list[bool] = []
    spent = 0.0
    gc.collect()
    for at in range(0, len(events), INGEST_BATCH):
        batch = events[at : at + INGEST_BATCH]
        t0 = time.perf_counter()
        got, last = facts.flags(batch)
        facts.take(last)
        spent += time.perf_counter() - t0
        flags += got
    return flags, spent


def unflagged(stream: list[Observation], flags: list[bool]) -> list[Observation]:
    """The stream without the flagged events (camera health kept): what a reload reads back."""
    it = iter(flags)
    return [o for o in stream if o.kind == "camera" or not next(it)]


def event_row(n: int, window_id: str, o: Observation, repeat: bool) -> dict[str, Any]:
    """The ``n``-th ``events`` row as the store writes it (sent_time left NULL and received_time = event time:
    supervision reads neither)."""
    kind, body = event_parts(window_id, o)
    return {"msg_id": msg_id(n), "hall_id": HALL_ID, "device_id": o.order[0], "boot": o.order[1], "seq": o.order[2],
            "type": kind, "window_id": window_id, "event_time": o.time, "received_time": o.time,
            "historical": o.historical, "body": body, "repeat": repeat}  # fmt: skip


def alert_row(a: Alert) -> dict[str, Any]:
    """An ``alerts`` row as the live supervisor would have left it at the end of the day."""
    return {"window_id": a.window, "type": a.type, "severity": a.severity, "condition_since": a.condition_since, "raised_at": a.raised_at,
            "cleared_at": a.cleared_at, "acknowledged_at": None, "acknowledged_by": None, "live": a.live, "rule": a.rule,
            "threshold_s": a.threshold_s, "source": a.source, "facts": dict(a.facts), "evidence": a.evidence}  # fmt: skip


def city_hall(plans: list[WindowPlan], cameras: list[str]) -> HallConfig:
    """The city as a hall file would describe it (validated): each window with its roster, lunch duty,
    camera and evaluator."""
    windows = [{"id": p.window, "name": p.window, "department": f"dept-{i % 40:02d}", "clerks": sorted(p.roster), "lunch_duty": p.on_lunch_duty}
               for i, p in enumerate(plans)]  # fmt: skip
    devices = [d for p, cam in zip(plans, cameras) for d in ({"id": cam, "kind": "window_camera", "windows": [p.window]},
                                                             {"id": f"ev-{p.window}", "kind": "evaluator", "windows": [p.window]})]  # fmt: skip
    return HallConfig.model_validate({"hall": {"id": HALL_ID, "name": "simulated city"}, "windows": windows, "devices": devices})


@dataclass
class CityDb:
    events: int
    repeats: int
    health: int
    leaves: int
    alerts: int
    per_window: dict[str, tuple[int, int]]  # window → (rows kept, rows flagged)
    seconds: float
    size: int


def write_city(path: Path, city: list[tuple[WindowPlan, list[Observation]]], streams: dict[int, tuple[list[Observation], list[bool]]],
               alerts: list[Alert]) -> CityDb:  # fmt: skip
    """Store the city's day as ingest would have left it: every event once (a double delivery is
    stored once), in arrival order across windows (so a window's rows are spread over the table as in
    a real hall), with the repeat flags — for the ``streams`` windows every heartbeat, flagged by
    ``SeatFacts``; for the others only what it leaves unflagged (all 312 M would not fit the run) —
    camera outages as ``device_health`` rows, the leave register, and the day's alerts."""
    t0 = time.perf_counter()
    pending: list[tuple[int, int, int, Observation, bool]] = []
    health: list[dict[str, Any]] = []
    per_window: dict[str, tuple[int, int]] = {}
    for no, (plan, kept) in enumerate(city):
        stream, flags = streams.get(no, (kept, [False] * len(kept)))
        it = iter(flags)
        seen: set[tuple[str, int, int]] = set()
        counts = [0, 0]
        for o in stream:
            if o.kind == "camera":
                health.append({"device_id": o.order[0], "time": o.time, "status": o.who})
                continue
            repeat = next(it)
            if o.order in seen:
                continue
            seen.add(o.order)
            counts[repeat] += 1
            pending.append(((o.time - _EPOCH) // _ONE_US, no, len(pending), o, repeat))
        per_window[plan.window] = (counts[0], counts[1])
    pending.sort()
    leaves = [{"kind": kind, "person_id": i.person, "window_id": plan.window, "start": i.start, "end": i.end, "note": ""}
              for plan, _ in city for kind, spans in (("leave", plan.leaves), ("substitute", plan.substitutes)) for i in spans]  # fmt: skip
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA cache_size = -1000000")  # this connection only: the indexes stay in memory while they grow
        for at in range(0, len(pending), EVENT_CHUNK):
            conn.execute(insert(EventRow), [event_row(at + i, city[no][0].window, o, repeat) for i, (_, no, _, o, repeat) in enumerate(pending[at : at + EVENT_CHUNK])])
        conn.execute(insert(DeviceHealthRow), sorted(health, key=lambda h: h["time"]))
        if leaves:
            conn.execute(insert(LeaveRow), leaves)
        if alerts:
            conn.execute(insert(AlertRow), [alert_row(a) for a in alerts])
    engine.dispose()
    repeats = sum(r for _, r in per_window.values())
    size = sum(f.stat().st_size for f in path.parent.glob(path.name + "*"))
    return CityDb(len(pending) - repeats, repeats, len(health), len(leaves), len(alerts), per_window, time.perf_counter() - t0, size)


def timeline_digest(windows: Iterable[tuple[str, list[dict[str, Any]]]]) -> str:
    """One hash over the windows' timelines (as replay reports them), in window order."""
    digest = hashlib.sha256()
    for window_id, segments in sorted(windows):
        digest.update(window_id.encode())
        digest.update(json.dumps(segments, sort_keys=True).encode())
    return digest.hexdigest()


def replay_process(url: str, hall_file: str, conn: Connection) -> None:
    """``hallwatch replay``'s work on the city database in a fresh process (spawned), so its peak
    RSS is its own: ``replay_day`` timed (load + core + report), then ``to_json``."""
    hall = pickle.loads(Path(hall_file).read_bytes())
    policy, calendar = load_policy(PRESET), national_calendar([2026])
    engine = make_engine(url)
    wall, cpu, report = timed(lambda: replay_day(engine, hall, policy, calendar, DAY))
    json_wall, _, text = timed(lambda: to_json(report))
    conn.send({
        "wall": wall, "cpu": cpu, "json_wall": json_wall, "json_bytes": len(text.encode()),
        "alerts": report["alerts"], "timelines": timeline_digest(report["timelines"].items()),
        "segments": sum(len(t) for t in report["timelines"].values()),
        "compared": {k: (v if isinstance(v, int) else len(v)) for k, v in report["compared_with_raised"].items()},
        "peak_rss": peak_rss(),
    })  # fmt: skip


def replay_city(url: str, hall: HallConfig, workdir: Path) -> dict[str, Any]:
    hall_file = workdir / "hall.pickle"
    hall_file.write_bytes(pickle.dumps(hall))
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=replay_process, args=(url, str(hall_file), send))
    child.start()
    send.close()
    out: dict[str, Any] = receive.recv()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"the replay process failed (exit code {child.exitcode})")
    return out


class Statements:
    """The SQL a block of code sends, to ask SQLite for each statement's query plan."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seen: dict[str, Any] = {}

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
            self.seen.setdefault(statement, parameters)

        sa_event.listen(self.engine, "before_cursor_execute", before)
        try:
            yield
        finally:
            sa_event.remove(self.engine, "before_cursor_execute", before)

    def plans(self) -> list[str]:
        """SQLite's plan for each statement seen, as one line."""
        out = []
        with self.engine.connect() as conn:
            for statement, parameters in self.seen.items():
                plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
                out.append("; ".join(row[-1] for row in plan if row[-1].startswith(("SEARCH", "SCAN", "USE"))))
        return out


# ---------------------------------------------------------------------------
# the folds being timed
# ---------------------------------------------------------------------------


def _time_order(o: Observation) -> tuple[datetime, tuple[str, int, int]]:
    return (o.time, o.order)


def bare_fold(observations: list[Observation]) -> int:
    """Baseline: sort by time and walk the day, keeping the four facts. Nothing else."""
    occupied = paused = camera = None
    login = None
    changes = 0
    for o in sorted(observations, key=_time_order):
        kind = o.kind
        if kind == "seat":
            if o.on != occupied:
                changes += 1
            occupied = o.on
        elif kind == "pause":
            paused = o.on
        elif kind == "login":
            login = o.who
        else:
            camera = o.on
    return changes + (paused is True) + (login is not None) + (camera is True)


@dataclass
class Ctx:
    policy: Any
    calendar: Any
    day: Day


def run_core(ctx: Ctx, windows: list[tuple[WindowPlan, list[Observation]]]) -> list[WindowDay]:
    """Evaluate every window's day and keep the results (for the checks; not timed)."""
    policy, calendar, until = ctx.policy, ctx.calendar, ctx.day.until
    return [evaluate_window(plan, obs, policy, calendar, DAY, until, HALL_TZ) for plan, obs in windows]


def sweep_core(ctx: Ctx, windows: list[tuple[WindowPlan, list[Observation]]]) -> int:
    """Evaluate every window's day, as a supervisor sweep does: each result is used, then dropped (timed)."""
    policy, calendar, until = ctx.policy, ctx.calendar, ctx.day.until
    alerts = 0
    for plan, obs in windows:
        alerts += len(evaluate_window(plan, obs, policy, calendar, DAY, until, HALL_TZ).alerts)
    return alerts


def run_baseline(ctx: Ctx, windows: list[tuple[WindowPlan, list[Observation]]]) -> list[int]:
    return [bare_fold(obs) for _, obs in windows]


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    t1, c1 = time.perf_counter(), time.process_time()
    return t1 - t0, c1 - c0, out


# ---------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------


@dataclass
class Results:
    sections: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    profile: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    profile_title: str = ""
    phases: dict[str, float] = field(default_factory=dict)
    maxrss: dict[str, int] = field(default_factory=dict)  # ru_maxrss (KiB) at the end of a phase
    inputs: dict[str, Any] = field(default_factory=dict)  # the run's parameters and input sizes (--json)
    numbers: dict[str, Any] = field(default_factory=dict)  # every figure of the table, as numbers (--json)

    def put(self, section: str, key: str, value: str) -> None:
        self.sections.setdefault(section, {})[key] = value

    def rows(self) -> Iterator[tuple[str, str, str]]:
        for section, items in self.sections.items():
            for i, (key, value) in enumerate(items.items()):
                yield (section if i == 0 else "", key, value)

    def markdown(self, command: str) -> str:
        lines = [f"# Supervision benchmark, {date.today().isoformat()}", "", f"Command: `{command}`", "",
                 "| | Item | Value |", "|---|---|---|"]  # fmt: skip
        lines += [f"| {s} | {k} | {v.replace('|', '/')} |" for s, k, v in self.rows()]
        if self.profile:
            lines += ["", f"{self.profile_title}", "", "| Function | Calls | Own time | Own % | Cumulative |", "|---|---:|---:|---:|---:|"]
            lines += [f"| `{f}` | {c} | {t} | {p} | {cu} |" for f, c, t, p, cu in self.profile]
        if self.notes:
            lines += ["", *[f"- {n}" for n in self.notes]]
        return "\n".join(lines) + "\n"


def render(results: Results) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    table = Table(title=f"HallWatch supervision benchmark ({date.today().isoformat()})")
    table.add_column("")
    table.add_column("Item", style="bold")
    table.add_column("Value")
    first = True
    for section, key, value in results.rows():
        if section and not first:
            table.add_section()
        table.add_row(section, key, value)
        first = False
    console.print(table)
    if results.profile:
        prof = Table(title=results.profile_title)
        for col, justify in (("Function", "left"), ("Calls", "right"), ("Own time", "right"), ("Own %", "right"), ("Cumulative", "right")):
            prof.add_column(col, justify=justify)  # type: ignore[arg-type]
        for row in results.profile:
            prof.add_row(*row)
        console.print(prof)
    for note in results.notes:
        console.print(f"• {note}")


def fmt_rate(n: float) -> str:
    return f"{n:,.0f}"


def machine_info() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
        mem = f"{kib / 1024 / 1024:.1f} GiB"
    try:
        sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        watched = ["server/rules", "server/supervision/service.py", "server/supervision/replay.py", "server/ingest/store.py", "server/db.py"]
        status = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", *watched],
                                capture_output=True, text=True, timeout=5, check=True).stdout.splitlines()  # fmt: skip
        dirty = [line[3:] for line in status]
        code = f"git {sha}" + (f" with uncommitted changes in {', '.join(dirty)}" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        code = "not a git checkout"
    import sqlite3

    import pydantic
    import sqlalchemy

    return {
        "CPU": cpu,
        "Cores": f"{os.cpu_count()} online; this run uses ONE (single-threaded process)",
        "Memory": mem,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "Libraries": f"pydantic {pydantic.VERSION}, SQLAlchemy {sqlalchemy.__version__}, SQLite {sqlite3.sqlite_version}",
        "Code": code,
    }


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------


def peak_rss() -> int:
    """This process's peak resident set so far (VmHWM), bytes.  Unlike ``ru_maxrss`` it starts afresh
    at exec: on Linux a spawned child's ``ru_maxrss`` carries its parent's RSS at the fork."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def rss_now() -> int:
    """Resident set size now, bytes."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return 0


def pin_one_cpu(cpu: int | None) -> str:
    if cpu is None:
        return "single-threaded: one core at a time; not pinned (--pin N pins it), so the scheduler may move it off a busy CPU"
    try:
        os.sched_setaffinity(0, {cpu})
        return f"single-threaded, pinned to CPU {cpu} (sched_setaffinity)"
    except (AttributeError, OSError) as exc:
        return f"single-threaded; pinning to CPU {cpu} failed ({exc})"


def generate(ctx: Ctx, seed: int, start: int, stop: int, n_windows: int) -> Iterator[tuple[SimWindow, list[Observation], int]]:
    for i in range(start, stop):
        sim = simulate(i, seed, ctx.day, n_windows)
        kept, beats = reduce_compact(sim, ctx.day)
        yield sim, kept, beats


def run(args: argparse.Namespace, r: Results) -> None:
    policy = load_policy(PRESET)
    calendar = national_calendar([2026])
    day = hall_day(policy)
    ctx = Ctx(policy, calendar, day)
    pinned = pin_one_cpu(args.pin)
    r.sections["Machine"] = machine_info()
    r.put("Machine", "Process", f"{pinned}; load average at start {os.getloadavg()[0]:.2f}")

    def hm(us: int) -> str:
        return f"{us // H:02d}:{us % H // M:02d}"

    r.put("Input", "Policy, day", f"{PRESET} preset; {DAY} (Monday, working day); sessions {hm(day.open1)}–{hm(day.close1)}, "
          f"{hm(day.open2)}–{hm(day.close2)}; lunch duty {hm(day.lunch[0])}–{hm(day.lunch[1])}" if day.lunch else "")  # fmt: skip
    r.put("Input", "Working day (real time)", f"{day.seconds:,} s ({hm(day.open1)}–{hm(day.close2)}), the span heartbeats are counted over")
    r.inputs.update({"quick": args.quick, "preset": PRESET, "day": DAY.isoformat(), "working_day_s": day.seconds, "seed": args.seed,
                     "windows": args.windows, "events": args.events, "repeat": args.repeat, "city_repeat": args.city_repeat,
                     "sample": args.sample, "unreduced": args.unreduced, "check_messages": args.check_messages,
                     "load_repeat": args.load_repeat, "trace": not args.no_trace, "trace_windows": args.trace_windows,
                     "pinned_cpu": args.pin, "load_average_start": os.getloadavg()[0]})  # fmt: skip

    # -- 1. core throughput -------------------------------------------------
    phase_start = time.perf_counter()
    print(f"[1/3] core throughput: generating window days until {args.events:,} observations ...", flush=True)
    tp: list[tuple[WindowPlan, list[Observation]]] = []
    drafts_tp: list[tuple[WindowPlan, list[Observation]]] = []
    n_obs = 0
    i = 0
    while n_obs < args.events:
        sim, kept, _ = next(generate(ctx, args.seed + 1, i, i + 1, 10_000))
        tp.append((plan_held(sim.plan), [as_held(o) for o in kept]))
        drafts_tp.append((tp[-1][0], kept))
        n_obs += len(kept)
        i += 1
    per_window = sorted(len(o) for _, o in tp)
    kinds = Counter(o.kind for _, obs in tp for o in obs)
    r.put("Input", "Throughput set", f"{len(tp):,} simulated window days, {n_obs:,} observations as the core receives them "
          f"(flagged heartbeats left out); per window min {per_window[0]}, median {per_window[len(per_window) // 2]}, max {per_window[-1]}; "
          + ", ".join(f"{k} {v:,}" for k, v in kinds.most_common()))  # fmt: skip
    r.inputs.update({"throughput_window_days": len(tp), "throughput_observations": n_obs, "throughput_per_window_min": per_window[0],
                     "throughput_per_window_median": per_window[len(per_window) // 2], "throughput_per_window_max": per_window[-1],
                     "throughput_by_kind": dict(kinds.most_common())})  # fmt: skip

    variants = {
        "live": tp,
        "unnormalised": [(p, [as_parsed(o) for o in obs]) for p, obs in drafts_tp],
        "hall": [(p, retime(o, HALL_TZ)) for p, o in tp],
    }
    labels = {
        "live": "as the adapter builds them (observation_from / camera_observation)",
        "unnormalised": "times as parsed, not normalised (own pydantic TzInfo per event)",
        "hall": "hall times (HALL_TZ, as the tests build them)",
    }
    reference = run_core(ctx, tp)  # the results every variant must reproduce
    core_live = 0.0
    for name, windows in variants.items():
        core_t, base_t, core_c = [], [], []
        if run_core(ctx, windows) != reference:  # also the warm-up pass
            raise RuntimeError(f"{name}: the core's result differs with the time representation")
        run_baseline(ctx, windows)
        for _ in range(args.repeat):
            wall, cpu, _ = timed(lambda: sweep_core(ctx, windows))
            core_t.append(wall)
            core_c.append(cpu)
            wall, _, _ = timed(lambda: run_baseline(ctx, windows))
            base_t.append(wall)
        core, base = min(core_t), min(base_t)
        best_cpu = core_c[core_t.index(core)]
        if name == "live":
            core_live = n_obs / core
        r.numbers.update({
            f"core_{name}_events_per_s": n_obs / core, f"core_{name}_us_per_event": core * 1e6 / n_obs,
            f"core_{name}_ms_per_window_day": core * 1e3 / len(tp), f"core_{name}_wall_s": core, f"core_{name}_cpu_s": best_cpu,
            f"core_{name}_median_events_per_s": n_obs / statistics.median(core_t), f"core_{name}_cpu_events_per_s": n_obs / min(core_c),
            f"baseline_{name}_events_per_s": n_obs / base, f"baseline_{name}_us_per_event": base * 1e6 / n_obs,
            f"core_{name}_over_baseline": core / base, f"core_{name}_overhead_us_per_event": (core - base) * 1e6 / n_obs,
        })  # fmt: skip
        r.put("Core throughput", f"Core, {labels[name]}",
              f"**{fmt_rate(n_obs / core)} events/s** — {core * 1e6 / n_obs:.2f} µs/event, {core * 1e3 / len(tp):.2f} ms/window day "
              f"(best of {args.repeat}: {core:.2f} s wall, CPU {best_cpu:.2f} s; median {fmt_rate(n_obs / statistics.median(core_t))} events/s; "
              f"by least CPU time {fmt_rate(n_obs / min(core_c))} events/s)")  # fmt: skip
        r.put("Core throughput", f"Baseline, {name}: sort + bare fold",
              f"{fmt_rate(n_obs / base)} events/s — {base * 1e6 / n_obs:.2f} µs/event (best of {args.repeat}); core/baseline {core / base:.1f}× "
              f"(core overhead {(core - base) * 1e6 / n_obs:.2f} µs/event)")  # fmt: skip
    verdict = "met" if core_live >= TARGET_EVENTS_S else "MISSED"
    r.put("Core throughput", "Target ≥ 200,000 events/s (as the adapter builds them)", f"{verdict}: {fmt_rate(core_live)} events/s ({core_live / TARGET_EVENTS_S:.2f}× the target)")
    alerts = Counter(a.type for d in reference for a in d.alerts)
    r.put("Core throughput", "Alerts raised (sanity)", ", ".join(f"{k} {v:,}" for k, v in alerts.most_common()) or "none")
    r.numbers.update({"target_events_per_s": TARGET_EVENTS_S, "target_met": core_live >= TARGET_EVENTS_S, "core_live_over_target": core_live / TARGET_EVENTS_S,
                      "throughput_alerts": dict(alerts.most_common())})  # fmt: skip
    del variants, drafts_tp

    if core_live < TARGET_EVENTS_S or args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        sweep_core(ctx, tp)
        profiler.disable()
        stats = pstats.Stats(profiler)
        total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
        top = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[: args.profile_top]  # type: ignore[attr-defined]
        for (file, line, func), (cc, nc, tt, ct, _callers) in top:
            path = Path(file)
            shown = path.relative_to(ROOT) if path.is_absolute() and path.is_relative_to(ROOT) else path.name
            where = f"{shown}:{line} {func}" if file != "~" else func
            r.profile.append((where, f"{nc:,}", f"{tt:.2f} s", f"{100 * tt / total:.1f} %", f"{ct:.2f} s"))
        r.profile_title = (f"cProfile of the core over the throughput set (as the adapter builds them, {n_obs:,} observations; "
                           f"total own time {total:.2f} s under the profiler, which inflates small calls)")  # fmt: skip
    del tp
    gc.collect()

    r.phases["throughput"] = time.perf_counter() - phase_start
    r.maxrss["after throughput"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    streams = flagging(ctx, args, r)
    r.maxrss["after the flagging sample"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    replay_city_day(ctx, args, r, streams)


def sample_windows(ctx: Ctx, args: argparse.Namespace) -> list[int]:
    """The first ``--sample`` windows of the city, and the first ``--unreduced`` with an outage."""
    chosen = set(range(min(args.sample, args.windows)))
    outages = 0
    for no in range(args.windows):
        if outages == args.unreduced:
            break
        sim = simulate(no, args.seed, ctx.day, args.windows)
        if sim.camera_down or sim.net_down:
            chosen.add(no)
            outages += 1
    return sorted(chosen)


def check_cost(ctx: Ctx, args: argparse.Namespace, n: int) -> float:
    """µs to check one heartbeat message as ingest does before storing it (``check_message``: topic,
    JSON, pydantic validation) — what flagging adds to."""
    sim = simulate(0, args.seed, ctx.day, args.windows)
    registry = {sim.camera: KnownDevice(HALL_ID, "window_camera", frozenset({sim.plan.window}))}
    topic = device_topic(HALL_ID, sim.camera, "evt", "seat_heartbeat")
    body = SeatHeartbeatBody(window_id=sim.plan.window, state="occupied", confidence=0.9)
    start = t_live(ctx.day.hb_start)
    payloads = [encode(make_event(hall_id=HALL_ID, device_id=sim.camera, boot=1, seq=HEARTBEAT_SEQ0 + k, event_time=start + timedelta(seconds=k), body=body))
                for k in range(n)]  # fmt: skip
    wall, _, checked = timed(lambda: [check_message(topic, p, registry) for p in payloads])
    if any(isinstance(c, Rejection) for c in checked):
        raise RuntimeError("a heartbeat was rejected")
    return wall * 1e6 / n


def flagging(ctx: Ctx, args: argparse.Namespace, r: Results) -> dict[int, tuple[list[Observation], list[bool]]]:
    """Section 2: the store's ingest-time flagging on every heartbeat of the sample windows.  Returns
    their days (every event, in arrival order) with the flags, for the database."""
    phase_start = time.perf_counter()
    day, policy, calendar = ctx.day, ctx.policy, ctx.calendar
    check_event_parts()
    chosen = sample_windows(ctx, args)
    print(f"[2/3] heartbeat flagging: {len(chosen)} windows with every 1 Hz heartbeat as an event ...", flush=True)
    facts = SeatFacts()
    others = set(range(args.windows)) - set(chosen)
    facts.take({f"w{no:05d}": (False, True) for no in others})  # the rest of the hall, as a running store knows it
    streams: dict[int, tuple[list[Observation], list[bool]]] = {}
    spent = 0.0
    n_events = n_beats = n_kept = mismatched = 0
    unreduced_t = 0.0
    unreduced_obs = unreduced_n = unreduced_reduced_obs = 0
    unreduced_same = True
    for no in chosen:
        sim = simulate(no, args.seed, day, args.windows)
        kept, beats = reduce_compact(sim, day)
        stream = materialise(sim, day)
        flags, seconds = flag_day(facts, no, sim.plan.window, stream)
        spent += seconds
        n_events += len(flags)
        n_beats += beats
        reread = unflagged(stream, flags)
        n_kept += len(reread)
        if not same(reread, kept) or len(stream) != len(sim.changes) + beats:
            mismatched += 1
        if unreduced_n < args.unreduced and (sim.camera_down or sim.net_down):
            wall, _, full = timed(lambda: evaluate_window(sim.plan, stream, policy, calendar, DAY, day.until, HALL_TZ))
            unreduced_t += wall
            unreduced_obs += len(stream)
            unreduced_reduced_obs += len(kept)
            unreduced_n += 1
            unreduced_same &= full == evaluate_window(sim.plan, reread, policy, calendar, DAY, day.until, HALL_TZ)
        streams[no] = (stream, flags)
    if mismatched:
        raise RuntimeError(f"{mismatched} sample windows: SeatFacts left something else unflagged than the compact reduction")
    per_event = spent * 1e6 / n_events
    check_us = check_cost(ctx, args, args.check_messages)
    share = args.windows * per_event / 1e6  # core-seconds per second at 1 Hz
    r.put("Heartbeat flagging (ingest)", "Sample (measured)",
          f"{len(chosen)} windows (the first {args.sample} and the first {args.unreduced} with an outage), {n_events:,} events in arrival order "
          f"({n_beats:,} heartbeats + changes) as pydantic Events, in ingest batches of {INGEST_BATCH}, through SeatFacts.flags + take, "
          f"{args.windows:,} windows known: {spent:.2f} s, **{per_event:.3f} µs/event**; left unflagged {n_kept:,} "
          f"({100 * n_kept / len([1 for s, _ in streams.values() for _ in s]):.2f} % of the day's observations) — identical to the compact "
          f"reduction in all {len(chosen)} windows")  # fmt: skip
    r.put("Heartbeat flagging (ingest)", "Cost at ingest",
          f"{args.windows:,} windows × 1 Hz = {args.windows:,} heartbeats/s × {per_event:.3f} µs = {share * 1e3:.1f} ms per second: "
          f"**{100 * share:.2f} % of one core**, paid once, live; checking the same heartbeat message (check_message: topic, JSON, pydantic) "
          f"costs {check_us:.1f} µs ({args.check_messages:,} measured), so flagging adds {100 * per_event / check_us:.0f} % to what ingest "
          "already spends on it before storing it")  # fmt: skip
    r.numbers.update({
        "flag_windows": len(chosen), "flag_events": n_events, "flag_heartbeats": n_beats, "flag_batch": INGEST_BATCH, "flag_s": spent,
        "flag_us_per_event": per_event, "flag_unflagged": n_kept, "flag_unflagged_pct": 100 * n_kept / len([1 for s, _ in streams.values() for _ in s]),
        "flag_ms_per_s_at_city": share * 1e3, "flag_core_pct_at_city": 100 * share, "check_message_us": check_us,
        "flag_over_check_message_pct": 100 * per_event / check_us,
        "unreduced_windows": unreduced_n, "unreduced_observations": unreduced_obs,
        "unreduced_ms_per_window_day": unreduced_t / unreduced_n * 1e3 if unreduced_n else None,
        "unreduced_events_per_s": unreduced_obs / unreduced_t if unreduced_n else None,
        "unreduced_unflagged_per_window": unreduced_reduced_obs // unreduced_n if unreduced_n else None,
        "unreduced_same_result": unreduced_same if unreduced_n else None,
    })  # fmt: skip
    if unreduced_n:
        r.put("Heartbeat flagging (ingest)", "Unflagged vs every heartbeat",
              f"{unreduced_n} windows with a camera or network outage: the core on all {unreduced_obs:,} observations (every heartbeat, UTC) "
              f"{unreduced_t / unreduced_n * 1e3:.0f} ms per window day ({fmt_rate(unreduced_obs / unreduced_t)} events/s) vs "
              f"{unreduced_reduced_obs // unreduced_n} observations unflagged; same result: {'yes' if unreduced_same else 'NO'}")  # fmt: skip
        if not unreduced_same:
            raise RuntimeError("the day without the flagged heartbeats gave another result than with every heartbeat")
    r.phases["flagging sample"] = time.perf_counter() - phase_start
    return streams


def load_times(supervisor: Supervisor, engine: Engine, groups: tuple[list[str], list[str]], passes: int) -> list[tuple[list[float], int]]:
    """Each window's ``load_day`` time (best of ``passes``, s) and the observations read, per group.  The
    groups' windows are loaded in turns, pass after pass, so a burst of load on a shared machine hits both."""
    best: dict[str, float] = {}
    read: dict[str, int] = {}
    with Session(engine) as session:
        for _ in range(passes):
            for pair in zip(*groups):
                for window_id in pair:
                    t0 = time.perf_counter()
                    observations = supervisor.load_day(session, window_id, DAY)
                    best[window_id] = min(best.get(window_id, math.inf), time.perf_counter() - t0)
                    read[window_id] = len(observations)
    return [([best[w] for w in group], sum(read[w] for w in group)) for group in groups]


def replay_city_day(ctx: Ctx, args: argparse.Namespace, r: Results, streams: dict[int, tuple[list[Observation], list[bool]]]) -> None:
    """Section 3: the city in memory (core timed, memory traced), then stored and replayed from the database."""
    phase_start = time.perf_counter()
    day, policy, calendar = ctx.day, ctx.policy, ctx.calendar
    trace = not args.no_trace
    print(f"[3/3] city: generating {args.windows:,} window days ...", flush=True)
    gc.collect()
    rss_before_city = rss_now()
    t0 = time.perf_counter()
    drafts: list[tuple[WindowPlan, list[Observation]]] = []
    cameras: list[str] = []
    n_changes = n_beats = 0
    n_camera_windows = n_net_windows = 0
    for sim, kept, beats in generate(ctx, args.seed, 0, args.windows, args.windows):
        drafts.append((sim.plan, kept))
        cameras.append(sim.camera)
        n_changes += len(sim.changes)
        n_beats += beats
        n_camera_windows += bool(sim.camera_down)
        n_net_windows += bool(sim.net_down)
    gen_s = time.perf_counter() - t0
    # The simulation's own objects share strings and tuples; the city is rebuilt as the adapter would
    # hold it (every observation with its own datetime, tzinfo, strings), under tracemalloc if asked,
    # so that the traced memory is exactly the held data and not the generator's garbage.
    print(f"      building the held observations{' under tracemalloc' if trace else ''} ...", flush=True)
    gc.collect()
    if trace:
        tracemalloc.start()
    city = [(plan_held(p), [as_held(o) for o in obs]) for p, obs in drafts]
    del drafts
    gc.collect()
    n_reduced = sum(len(o) for _, o in city)
    biggest = sorted(city, key=lambda w: len(w[1]), reverse=True)[: args.trace_windows]
    if trace:
        data_now, data_peak = tracemalloc.get_traced_memory()
        print(f"      evaluating the {len(biggest)} largest window days under tracemalloc ...", flush=True)
        run_core(ctx, biggest)  # nothing is kept across windows: the largest days set the evaluation's peak
        eval_peak = tracemalloc.get_traced_memory()[1]
        trace_overhead = tracemalloc.get_tracemalloc_memory()
        tracemalloc.stop()
    del biggest
    rss_city = rss_now() - rss_before_city

    print("      evaluating every window's day in memory, timed ...", flush=True)
    walls, cpus = [], []
    for _ in range(args.city_repeat):
        wall, cpu, _ = timed(partial(sweep_core, ctx, city))  # bound now: `city` is deleted below, before the database phase
        walls.append(wall)
        cpus.append(cpu)
    core_wall, core_cpu = min(walls), cpus[walls.index(min(walls))]

    print("      the same days' results, kept for the comparison ...", flush=True)
    alerts: list[Alert] = []
    timelines: list[tuple[str, list[dict[str, Any]]]] = []
    for plan, obs in city:
        result = evaluate_window(plan, obs, policy, calendar, DAY, day.until, HALL_TZ)
        alerts += result.alerts
        timelines.append((plan.window, [{"from": hall_iso(s.start), "to": hall_iso(s.end), "state": s.state} for s in result.timeline]))
    expected_alerts = sorted((replay_alert(a) for a in alerts), key=lambda a: (a["window"], a["type"], a["raised_at"]))
    expected_timelines = timeline_digest(timelines)
    segments = sum(len(t) for _, t in timelines)
    del timelines

    with tempfile.TemporaryDirectory(prefix="hallwatch-bench-") as tmp:
        workdir = Path(tmp)
        path = workdir / "city.db"
        url = f"sqlite:///{path}"
        print(f"      writing the city's day to SQLite ({workdir}) ...", flush=True)
        db = write_city(path, city, streams, alerts)
        hall = city_hall([p for p, _ in city], cameras)
        per_window = sorted(len(o) for _, o in city)
        del city
        streams.clear()
        gc.collect()

        print("      loading sample windows' days one by one ...", flush=True)
        engine = make_engine(url)
        supervisor = Supervisor(engine, hall, policy, calendar, clock=lambda: datetime.now(HALL_TZ))
        with_repeats = [w for w, (_, flagged) in db.per_window.items() if flagged]
        without = [w for w, (_, flagged) in db.per_window.items() if not flagged][: len(with_repeats)]
        statements = Statements(engine)
        with statements.recording():
            load_times(supervisor, engine, (without[:1], without[:1]), 1)
        (times_with, read_with), (times_without, read_without) = load_times(supervisor, engine, (with_repeats, without), args.load_repeat)
        query_plans = statements.plans()
        engine.dispose()

        print("      replaying the day from the database (replay_day, in a fresh process) ...", flush=True)
        replay = replay_city(url, hall, workdir)

    same_alerts = replay["alerts"] == expected_alerts
    same_timelines = replay["timelines"] == expected_timelines
    r.phases["city"] = time.perf_counter() - phase_start
    n_in = n_changes + n_beats
    n_windows = args.windows
    r.put("Input", "City", f"{n_windows:,} windows × 1 working day; {n_camera_windows} with a camera outage or a late camera, "
          f"{n_net_windows} with a network outage (historical replay); generated in {gen_s:.1f} s, not timed")  # fmt: skip
    r.put("City replay", "Observations sent", f"{n_in:,} = {n_beats:,} seat heartbeats (1 Hz while the camera is up) + {n_changes:,} changes "
          f"({n_changes / n_windows:.0f} per window)")  # fmt: skip
    r.put("City replay", "Observations to the core", f"{n_reduced:,} left unflagged: every change, a heartbeat only when it changes (occupied, live) "
          f"({100 * n_reduced / n_in:.2f} % of those sent; per window min {per_window[0]}, median {per_window[len(per_window) // 2]}, "
          f"p95 {per_window[int(len(per_window) * 0.95)]}, max {per_window[-1]})")  # fmt: skip
    r.put("City replay", "Core in memory (baseline), all windows' days",
          f"**{core_wall:.2f} s wall** (CPU {core_cpu:.2f} s; best of {args.city_repeat}: " + ", ".join(f"{w:.2f}" for w in walls) + " s) — "
          f"{fmt_rate(n_reduced / core_wall)} events/s, {core_wall * 1e3 / n_windows:.2f} ms/window day: the days as the live adapter holds them, "
          "no database")  # fmt: skip
    r.put("City replay", "Database (SQLite file, temp dir)",
          f"{db.events:,} event rows read by supervision + {db.repeats:,} flagged repeats (every heartbeat of the {len(with_repeats)} sample "
          f"windows, ~{db.repeats // max(1, len(with_repeats)):,} each), {db.health:,} device_health, {db.leaves} leaves, {db.alerts:,} alerts; "
          f"{db.size / 2**20:,.0f} MiB; written in arrival order across windows (Core executemany) in {db.seconds:.0f} s, not timed")  # fmt: skip
    med_with, med_without = statistics.median(times_with), statistics.median(times_without)
    r.put("City replay", "One window's day (load_day), repeats stored or not",
          f"**{sum(times_with) * 1e6 / read_with:.1f} µs per observation read** for the {len(with_repeats)} windows with every heartbeat "
          f"stored (median {med_with * 1e3:.2f} ms a window, {read_with / len(with_repeats):.0f} observations) vs "
          f"**{sum(times_without) * 1e6 / read_without:.1f} µs** for {len(without)} windows without (median {med_without * 1e3:.2f} ms, "
          f"{read_without / len(without):.0f} observations); best of {args.load_repeat} passes per window, the two groups in turns")  # fmt: skip
    r.put("City replay", "Query plans (SQLite: what load_day sends)", " · ".join(f"({i}) {plan}" for i, plan in enumerate(query_plans, start=1)) +
          " — (1) the day's rows, (2) the facts before it, (3) and (4) the camera's health in and before the day")  # fmt: skip
    replay_wall, json_wall = replay["wall"], replay["json_wall"]
    r.put("City replay", "Replay from the database (replay_day)",
          f"**{replay_wall:.2f} s wall** (CPU {replay['cpu']:.2f} s) for {n_windows:,} windows — load + core + report, in a fresh process; "
          f"{fmt_rate(n_reduced / replay_wall)} events/s; the database and the report add {replay_wall - core_wall:.2f} s to the core's "
          f"{core_wall:.2f} s")  # fmt: skip
    r.put("City replay", "JSON report (to_json)", f"{json_wall:.2f} s, {replay['json_bytes'] / 2**20:,.0f} MiB ({replay['segments']:,} timeline segments, "
          f"{len(replay['alerts']):,} alerts)")  # fmt: skip
    compared = replay["compared"]
    r.put("City replay", "Same as in memory",
          f"alerts identical: {'yes' if same_alerts else 'NO'} ({len(expected_alerts):,}); timelines identical: {'yes' if same_timelines else 'NO'} "
          f"({segments:,} segments); against the stored alerts: would raise again {compared['would_raise_again']:,}, new {compared['new']}, "
          f"no longer {compared['no_longer']}")  # fmt: skip
    speed = day.seconds / replay_wall
    speed_json = day.seconds / (replay_wall + json_wall)
    verdict = "met" if speed > TARGET_SPEEDUP else "MISSED"
    r.put("City replay", "Speed-up vs real time",
          f"**{speed:,.0f}×** replay_day from the database ({day.seconds:,} s of working day / {replay_wall:.2f} s); {speed_json:,.0f}× with the "
          f"JSON written; core alone in memory {day.seconds / core_wall:,.0f}× — target > {TARGET_SPEEDUP}× from the database: {verdict}")  # fmt: skip
    counts = Counter(a.type for a in alerts)
    r.put("City replay", "Alerts raised", f"{len(alerts):,} (" + ", ".join(f"{k} {v:,}" for k, v in counts.most_common()) + f"); {segments:,} timeline segments")
    r.inputs.update({"city_windows": n_windows, "city_camera_outage_windows": n_camera_windows, "city_network_outage_windows": n_net_windows})
    r.numbers.update({
        "city_generate_s": gen_s, "city_observations_sent": n_in, "city_heartbeats": n_beats, "city_changes": n_changes,
        "city_changes_per_window": n_changes / n_windows, "city_observations_to_core": n_reduced, "city_to_core_pct": 100 * n_reduced / n_in,
        "city_per_window_min": per_window[0], "city_per_window_median": per_window[len(per_window) // 2],
        "city_per_window_p95": per_window[int(len(per_window) * 0.95)], "city_per_window_max": per_window[-1],
        "city_core_wall_s": core_wall, "city_core_cpu_s": core_cpu, "city_core_walls_s": walls,
        "city_core_events_per_s": n_reduced / core_wall, "city_core_ms_per_window_day": core_wall * 1e3 / n_windows,
        "db_event_rows": db.events, "db_repeat_rows": db.repeats, "db_sample_windows": len(with_repeats),
        "db_repeats_per_sample_window": db.repeats // max(1, len(with_repeats)), "db_device_health_rows": db.health,
        "db_leave_rows": db.leaves, "db_alert_rows": db.alerts, "db_mib": db.size / 2**20, "db_write_s": db.seconds,
        "load_with_repeats_us_per_observation": sum(times_with) * 1e6 / read_with, "load_with_repeats_median_ms": med_with * 1e3,
        "load_with_repeats_observations_per_window": read_with / len(with_repeats), "load_with_repeats_windows": len(with_repeats),
        "load_without_repeats_us_per_observation": sum(times_without) * 1e6 / read_without, "load_without_repeats_median_ms": med_without * 1e3,
        "load_without_repeats_observations_per_window": read_without / len(without), "load_without_repeats_windows": len(without),
        "replay_wall_s": replay_wall, "replay_cpu_s": replay["cpu"], "replay_events_per_s": n_reduced / replay_wall,
        "replay_added_s": replay_wall - core_wall, "json_s": json_wall, "json_mib": replay["json_bytes"] / 2**20,
        "replay_segments": replay["segments"], "replay_alerts": len(replay["alerts"]),
        "same_alerts": same_alerts, "same_timelines": same_timelines, "expected_alerts": len(expected_alerts), "expected_segments": segments,
        "compared_would_raise_again": compared["would_raise_again"], "compared_new": compared["new"], "compared_no_longer": compared["no_longer"],
        "replay_speedup": speed, "replay_speedup_with_json": speed_json, "core_speedup": day.seconds / core_wall,
        "target_speedup": TARGET_SPEEDUP, "speedup_target_met": speed > TARGET_SPEEDUP,
        "city_alerts": len(alerts), "city_alerts_by_type": dict(counts.most_common()), "city_segments": segments,
    })  # fmt: skip
    r.numbers.update({
        "tracemalloc_peak_mib": eval_peak / 2**20 if trace else None, "tracemalloc_data_mib": data_now / 2**20 if trace else None,
        "tracemalloc_bytes_per_observation": data_now / n_reduced if trace else None,
        "tracemalloc_build_peak_mib": data_peak / 2**20 if trace else None, "tracemalloc_overhead_mib": trace_overhead / 2**20 if trace else None,
    })  # fmt: skip
    if trace:
        r.put("Memory", "tracemalloc peak",
              f"**{eval_peak / 2**20:,.0f} MiB** — the city's observations (unflagged) and plans as the live adapter holds them: "
              f"{data_now / 2**20:,.0f} MiB ({data_now / n_reduced:.0f} B per observation; peak while building {data_peak / 2**20:,.0f} MiB), "
              f"then evaluating the {args.trace_windows} largest window days (tracemalloc's own bookkeeping {trace_overhead / 2**20:,.0f} MiB, "
              "not included)")  # fmt: skip
    r.put("Memory", "Replay process", f"**{replay['peak_rss'] / 2**20:,.0f} MiB** peak RSS (VmHWM) of the process that ran replay_day and "
          "to_json: interpreter and imports, one chunk of windows' observations at a time, the report (all alerts and timeline segments "
          "as dicts) and its JSON text")  # fmt: skip
    r.put("Memory", "RSS", f"building the held city grew the process by {rss_city / 2**20:,.0f} MiB (/proc/self/statm; includes the "
          "simulation's drafts, freed but kept by the allocator, and tracemalloc's bookkeeping)")  # fmt: skip
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r.numbers.update({"replay_peak_rss_mib": replay["peak_rss"] / 2**20, "city_rss_growth_mib": rss_city / 2**20, "ru_maxrss_mib": maxrss / 1024,
                      **{f"ru_maxrss_{k.replace(' ', '_')}_mib": v / 1024 for k, v in r.maxrss.items()}})  # fmt: skip
    r.put("Memory", "ru_maxrss", f"**{maxrss / 1024:,.0f} MiB** — the bench process, whole run (" +
          ", ".join(f"{k} {v / 1024:,.0f} MiB" for k, v in r.maxrss.items()) + "; then the city in memory and the database rows)")  # fmt: skip

    r.notes.append("Single-threaded, one process (the replay in a second one, run alone): every rate is per core. Rates use wall time "
                   "(time.perf_counter); CPU time (time.process_time) is shown beside it — when it is well below wall, other processes "
                   "took the CPU. gc enabled, collected before each timed pass.")  # fmt: skip
    r.notes.append("events/s counts the observations handed to evaluate_window (after the store's heartbeat flagging), duplicates and "
                   "the facts from before the day included; until = next midnight (a full day).")  # fmt: skip
    r.notes.append("The replay figure is `server.supervision.replay.replay_day` on the city's SQLite database, warm in the OS page cache (it was "
                   "just written): reading, the core and building the report for every window — `hallwatch replay` without printing. "
                   "The in-memory figure is the core alone: the work of one supervisor sweep at the end of the day.")  # fmt: skip
    if not (same_alerts and same_timelines):
        raise RuntimeError("the replay from the database differs from the core's result in memory")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=10_000, help="windows in the simulated city (10000)")
    parser.add_argument("--events", type=int, default=200_000, help="observations in the core throughput set (200000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes per throughput variant, best reported (5)")
    parser.add_argument("--city-repeat", type=int, default=2, help="timed passes over the city, best reported (2)")
    parser.add_argument("--sample", type=int, default=20, help="windows whose every 1 Hz heartbeat is flagged and stored (20)")
    parser.add_argument("--unreduced", type=int, default=3, help="windows with an outage added to the sample and also evaluated on every heartbeat (3)")
    parser.add_argument("--check-messages", type=int, default=5000, help="heartbeat messages checked to compare flagging with (5000)")
    parser.add_argument("--load-repeat", type=int, default=5, help="load_day passes per window in the with/without-repeats comparison (5)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--pin", type=int, metavar="CPU", help="pin the process to this CPU (default: not pinned)")
    parser.add_argument("--no-trace", action="store_true", help="skip tracemalloc in the city phase (faster)")
    parser.add_argument("--trace-windows", type=int, default=200, help="largest city days evaluated under tracemalloc (200)")
    parser.add_argument("--profile", action="store_true", help="profile the core even if it meets the target")
    parser.add_argument("--profile-top", type=int, default=15)
    parser.add_argument("--timeout", type=float, default=600.0, help="hard limit for the whole run, seconds (600)")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/supervision-<date>.md")
    parser.add_argument("--output", type=Path, help="Markdown file to write instead of bench/results/supervision-<date>.md")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON (docs/benchmarks-supervision.md lists the keys)")
    parser.add_argument("--quick", action="store_true", help="CI smoke run, some 20 s: every phase on small inputs (" + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items()) + ")")
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    if min(args.windows, args.events, args.repeat, args.city_repeat, args.sample, args.check_messages, args.load_repeat) < 1 or args.unreduced < 0:
        parser.error("--windows, --events, --repeat, --city-repeat, --sample, --check-messages and --load-repeat must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def on_alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"the run exceeded --timeout {args.timeout:.0f} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(math.ceil(args.timeout)))
    results = Results()
    command = ".venv/bin/python bench/supervision.py " + " ".join(argv if argv is not None else sys.argv[1:])
    started = time.perf_counter()
    try:
        run(args, results)
    except (TimeoutError, KeyboardInterrupt) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
    phases = ", ".join(f"{k} {v:.0f} s" for k, v in results.phases.items())
    wall = time.perf_counter() - started
    results.put("Memory", "Run", f"whole benchmark {wall:.0f} s wall ({phases}); load average at the end {os.getloadavg()[0]:.2f}")
    results.numbers.update({"wall_s": wall, **{f"phase_{k.replace(' ', '_')}_s": v for k, v in results.phases.items()}, "load_average_end": os.getloadavg()[0]})
    render(results)
    if args.json:
        n = results.numbers
        write_json(args.json, "supervision", results.inputs, n, events_per_s=n["core_live_events_per_s"],
                   baseline_events_per_s=n["baseline_live_events_per_s"],
                   ratio_to_baseline=n["core_live_events_per_s"] / n["baseline_live_events_per_s"], replay_speedup=n["replay_speedup"])  # fmt: skip
        print(f"figures written to {args.json}")
    if not args.no_save:
        out = args.output or RESULTS / f"supervision-{date.today().isoformat()}{'-quick' if args.quick else ''}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(results.markdown(command.strip()))
        print(f"written to {out.relative_to(ROOT) if out.resolve().is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
