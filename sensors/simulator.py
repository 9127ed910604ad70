"""The demo hall simulator: clerks who arrive, punch, sit, step away, lunch and get rated.

Every event goes through a real :class:`agent.runtime.AgentRuntime` per
simulated device (its own outbox, boot counter and MQTT connection), so the
demo and the soak tests exercise exactly the code a hall device runs.

Each citizen served has a queue ticket: the hall's queue gateway (叫号系统)
calls it to the window and finishes it, with the case numbers handled (some
citizens file a batch of cases at once, 批量业务), and the citizen rates it on
the evaluator — most of them; a few leave without rating, so the server's
default rating has something to do.  Some ratings are bad, so work orders
open.  At one window (the hall's last) the clerk sometimes presses
非常满意 on the keypad while away from the seat, with no ticket: the server's
fraud signals have something to find.

Simulated time runs ``speed`` times faster than the wall clock and wraps to
the next morning after closing, so a demo always has something to show.
Behaviour is drawn from a seeded random generator: the same seed gives the
same day.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

from agent.config import AgentSettings
from agent.runtime import AgentRuntime
from broker.protocol import ClerkLoginBody, PauseBody, PunchBody, RatingBody, SeatBody, SeatHeartbeatBody, TicketBody
from broker.timeutil import HALL_TZ
from server.config.hall import HallConfig

log = logging.getLogger(__name__)

DEFAULT_HOURS = ((dtime(8, 0), dtime(12, 0)), (dtime(14, 30), dtime(18, 0)))
"""Morning and afternoon sessions when the hall's policy is not given."""


class SimClock:
    """Hall time running ``speed`` times faster than real time.

    With a ``state_file`` the clock survives a restart of the simulator the
    way a device's real-time clock survives a reboot: it resumes where it
    was plus the time spent down, so event times never run backwards.
    """

    def __init__(self, start: datetime, speed: float, state_file: Path | None = None) -> None:
        self._lock = threading.Lock()
        self.speed = speed
        self._state_file = state_file
        self._saving = threading.Lock()
        self._origin, self._t0 = start, time.monotonic()
        if state_file is not None and state_file.exists():
            saved = json.loads(state_file.read_text())
            down_s = max(0.0, time.time() - saved["wall"])
            resumed = datetime.fromisoformat(saved["hall"]) + timedelta(seconds=down_s * speed)
            self._origin = max(start, resumed)

    def __call__(self) -> datetime:
        with self._lock:
            return self._origin + timedelta(seconds=(time.monotonic() - self._t0) * self.speed)

    def jump_to(self, moment: datetime) -> None:
        """Skip the night: time only ever moves forward."""
        with self._lock:
            now = self._origin + timedelta(seconds=(time.monotonic() - self._t0) * self.speed)
            if moment > now:
                self._origin, self._t0 = moment, time.monotonic()

    def save(self) -> None:
        """Remember the current hall time (atomically) for the next start."""
        if self._state_file is None:
            return
        with self._saving:  # the halls of a district share one clock, each simulator saving it
            tmp = self._state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"hall": self().isoformat(), "wall": time.time()}))
            tmp.replace(self._state_file)


@dataclass
class _Clerk:
    id: str
    window: str
    camera: AgentRuntime | None
    evaluator: AgentRuntime | None
    gateway: AgentRuntime | None
    prefix: str
    """The letter of the window's queue tickets (A, B, …)."""
    lunch_duty: bool = False
    seated: bool = False


class SimulatedHall:
    """Drives the hall's simulated devices from one scheduler thread."""

    def __init__(
        self,
        hall: HallConfig,
        runtimes: dict[str, AgentRuntime],
        clock: SimClock,
        *,
        seed: int = 1,
        seat_heartbeat_s: float = 10.0,
        is_working_day: Callable[[date], bool] = lambda d: d.weekday() < 5,
        hours: tuple[tuple[dtime, dtime], ...] = DEFAULT_HOURS,
    ) -> None:
        self.hall = hall
        self.runtimes = runtimes
        self.clock = clock
        self.rng = random.Random(seed)
        self.seat_heartbeat_s = seat_heartbeat_s
        self.is_working_day = is_working_day
        self.hours = hours
        """The hall's sessions: clerks arrive for the first and leave after the last."""
        self._queue: list[tuple[datetime, int, Iterator[float]]] = []
        self._order = itertools.count()
        terminals = [d.id for d in hall.devices if d.kind == "face_terminal" and d.id in runtimes]
        self.terminal = runtimes[terminals[0]] if terminals else None
        self.clerks = [
            _Clerk(
                id=(w.clerks or [f"clerk-{w.id}"])[0],
                window=w.id,
                camera=self._device_for(w.id, "window_camera"),
                evaluator=self._device_for(w.id, "evaluator"),
                gateway=self._device_for(w.id, "queue_gateway"),
                prefix=chr(ord("A") + index % 26),
                lunch_duty=w.lunch_duty,
            )
            for index, w in enumerate(hall.windows)
        ]
        self.ratings_rng = random.Random(f"{seed}-ratings")
        """Draws for tickets and ratings, apart from ``rng`` so the clerks' day stays what the seed made it."""
        self.rigged = hall.windows[-1].id

    def _device_for(self, window_id: str, kind: str) -> AgentRuntime | None:
        for spec in self.hall.devices:
            if spec.kind == kind and window_id in spec.windows and spec.id in self.runtimes:
                return self.runtimes[spec.id]
        return None

    # ------------------------------------------------------------ scheduler

    def _schedule(self, after_s: float, process: Iterator[float]) -> None:
        heapq.heappush(self._queue, (self.clock() + timedelta(seconds=after_s), next(self._order), process))

    def run(self, stop: threading.Event) -> None:
        """Run days until ``stop`` is set."""
        while not stop.is_set():
            self._start_day()
            saved = 0.0
            while self._queue and not stop.is_set():
                if time.monotonic() - saved >= 1:
                    self.clock.save()
                    saved = time.monotonic()
                due, _, process = self._queue[0]
                wait = (due - self.clock()).total_seconds() / self.clock.speed
                if wait > 0:
                    stop.wait(min(wait, 0.2))
                    continue
                heapq.heappop(self._queue)
                try:
                    self._schedule(next(process), process)
                except StopIteration:
                    pass
            if not stop.is_set():
                self._next_morning()

    def _start_day(self) -> None:
        self._queue.clear()
        for clerk in self.clerks:
            self._schedule(0, self._clerk_day(clerk))
        for spec in self.hall.devices:
            if spec.kind == "window_camera" and spec.id in self.runtimes:
                self._schedule(0, self._seat_heartbeats(spec.id))

    def _next_morning(self) -> None:
        """Skip nights, weekends and holidays: clerks only come on working days."""
        day = self.clock().date() + timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        self.clock.jump_to(datetime.combine(day, dtime(7, 50), HALL_TZ))

    def _at(self, moment: dtime) -> float:
        """Seconds of hall time until ``moment`` today (0 if past)."""
        now = self.clock()
        target = datetime.combine(now.date(), moment, HALL_TZ)
        return max(0.0, (target - now).total_seconds())

    # ------------------------------------------------------------ behaviour

    def _seat_heartbeats(self, camera_id: str) -> Iterator[float]:
        runtime = self.runtimes[camera_id]
        windows = [c for c in self.clerks if c.camera is runtime]
        while self._at(self.hours[-1][1]) > 0 or any(c.seated for c in windows):
            for clerk in windows:
                state = "occupied" if clerk.seated else "vacant"
                runtime.emit(SeatHeartbeatBody(window_id=clerk.window, state=state, confidence=0.97))
            yield self.seat_heartbeat_s * self.clock.speed

    def _seat(self, clerk: _Clerk, seated: bool) -> None:
        clerk.seated = seated
        if clerk.camera:
            clerk.camera.emit(
                SeatBody(
                    window_id=clerk.window,
                    state="occupied" if seated else "vacant",
                    confidence=round(self.rng.uniform(0.85, 0.99), 2),
                    occupant=clerk.id if seated else None,
                )
            )

    def _pause(self, clerk: _Clerk, paused: bool, reason: str | None = None) -> None:
        if clerk.evaluator:
            clerk.evaluator.emit(PauseBody(window_id=clerk.window, paused=paused, source="evaluator", reason=reason))

    def _ticket(self, clerk: _Clerk, ticket: str, state: str, cases: list[str] | None = None) -> None:
        if clerk.gateway:
            clerk.gateway.emit(TicketBody(window_id=clerk.window, ticket=ticket, state=state, clerk_id=clerk.id, cases=cases or []))  # type: ignore[arg-type]

    def _serve(self, clerk: _Clerk) -> tuple[str, list[str]]:
        """Call the next citizen's ticket; returns it and the case numbers the citizen files."""
        now = self.clock()
        seconds = (now - datetime.combine(now.date(), dtime.min, HALL_TZ)).total_seconds()
        ticket = f"{clerk.prefix}{int(seconds):05d}"  # unique per window and day, also after a restart
        batch = 1 if self.ratings_rng.random() < 0.8 else self.ratings_rng.randint(2, 3)
        cases = [f"{now:%Y%m%d}-{ticket}-{k}" for k in range(1, batch + 1)]
        self._ticket(clerk, ticket, "called")
        return ticket, cases

    def _punch(self, clerk: _Clerk) -> None:
        if self.terminal:
            self.terminal.emit(
                PunchBody(
                    person_id=clerk.id,
                    method="face",
                    distance=round(self.rng.uniform(0.25, 0.4), 3),
                    margin=round(self.rng.uniform(0.1, 0.25), 3),
                    liveness=0.98,
                    quality=0.9,
                )
            )

    def _clerk_day(self, clerk: _Clerk) -> Iterator[float]:
        rng = self.rng
        yield self._at(self.hours[0][0]) + rng.uniform(-600, 900)  # some arrive late
        self._punch(clerk)
        yield rng.uniform(60, 180)
        self._seat(clerk, True)
        if clerk.evaluator:
            clerk.evaluator.emit(ClerkLoginBody(window_id=clerk.window, clerk_id=clerk.id))
        breaks = [(end, nxt[0]) for (_, end), nxt in zip(self.hours, self.hours[1:])] + [(self.hours[-1][1], None)]
        for session_end, after_break in breaks:
            while self._at(session_end) > 0:
                roll = rng.random()
                if roll < 0.65:  # serve a citizen, who then rates (most do; a batch of cases is rated once)
                    ticket, cases = self._serve(clerk)
                    yield rng.uniform(120, 600)
                    self._ticket(clerk, ticket, "finished", cases)
                    if clerk.seated and clerk.evaluator:
                        level = rng.choices([5, 4, 3, 2, 1], weights=[70, 18, 6, 4, 2])[0]
                        if self.ratings_rng.random() < 0.9:
                            clerk.evaluator.emit(RatingBody(window_id=clerk.window, level=level, clerk_id=clerk.id, ticket=ticket, cases=cases))
                elif roll < 0.85:  # pause properly, step away, come back
                    self._pause(clerk, True, rng.choice(["临时离开", "接听电话", "取材料"]))
                    yield 20
                    self._seat(clerk, False)
                    yield rng.uniform(120, 900)
                    self._seat(clerk, True)
                    yield 15
                    self._pause(clerk, False)
                else:  # leave the seat without pausing
                    self._seat(clerk, False)
                    away = rng.uniform(60, 1500)
                    if clerk.window == self.rigged and clerk.evaluator and away > 240 and self.ratings_rng.random() < 0.5:
                        yield away / 2  # …and a "非常满意" is pressed on the keypad meanwhile, for no citizen
                        clerk.evaluator.emit(RatingBody(window_id=clerk.window, level=5, clerk_id=clerk.id))
                        yield away / 2
                    else:
                        yield away
                    self._seat(clerk, True)
            if after_break is not None and not clerk.lunch_duty:
                self._pause(clerk, True, "午休")
                yield 30
                self._seat(clerk, False)
                yield self._at(after_break) + rng.uniform(-300, 600)
                self._seat(clerk, True)
                yield 10
                self._pause(clerk, False)
        self._seat(clerk, False)
        yield rng.uniform(60, 300)
        self._punch(clerk)


def simulated_runtimes(
    hall: HallConfig,
    broker_url: str,
    state_dir: Path,
    clock: SimClock,
    *,
    credentials_dir: Path | None = None,
    heartbeat_s: float = 10.0,
) -> dict[str, AgentRuntime]:
    """One real agent runtime per device of the hall file, each with its own outbox.

    With ``credentials_dir`` each device logs in as itself with the password
    in ``<dir>/<device>.secret`` (as written by ``hallwatch device add``).
    """
    runtimes = {}
    for spec in hall.devices:
        broker: dict[str, object] = {"url": broker_url}
        if credentials_dir is not None:
            broker |= {"username": spec.id, "password_file": str(credentials_dir / f"{spec.id}.secret")}
        settings = AgentSettings.model_validate(
            {
                "device": {"hall_id": hall.hall.id, "device_id": spec.id, "kind": spec.kind, "windows": spec.windows},
                "broker": broker,
                "outbox": {"path": str(state_dir / f"{spec.id}.outbox.db")},
                "heartbeat_s": heartbeat_s,
            }
        )
        runtimes[spec.id] = AgentRuntime(settings, clock=clock)
    return runtimes
