"""``hallwatch demo`` (everything on embedded defaults, one process) and ``hallwatch simulate``
(the demo hall's devices against any broker)."""

from __future__ import annotations

import signal
import threading
from datetime import datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Annotated, Optional

import typer

from broker.config_file import ConfigError
from broker.connection import BrokerSettings
from broker.timeutil import HALL_TZ
from server.cli_common import DEFAULT_HALL, HallFile, console, fail, load_hall_or_exit, setup_logging

commands = typer.Typer()


@commands.command()
def simulate(
    hall: HallFile = DEFAULT_HALL,
    broker: str = "mqtt://127.0.0.1:1883",
    state_dir: Annotated[Path, typer.Option(help="Where the simulated devices keep their outboxes.")] = Path("var/sim"),
    credentials_dir: Annotated[Optional[Path], typer.Option(help="Folder of <device>.secret files.")] = None,
    speed: Annotated[float, typer.Option(min=1, max=3600, help="Hall time runs this many times faster.")] = 30.0,
    start: Annotated[str, typer.Option(help="Hall time to start at (HH:MM today).")] = "07:58",
    seed: int = 1,
    heartbeat: Annotated[float, typer.Option(help="Device heartbeat, seconds of real time.")] = 10.0,
    verbose: bool = False,
) -> None:
    """Run the demo hall's simulated clerks through real agent runtimes."""
    setup_logging(verbose)
    hall_config = load_hall_or_exit(hall)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    runtimes, simulator = _start_simulation(hall_config, broker, state_dir, credentials_dir, speed, start, seed, heartbeat)
    try:
        simulator.run(stop)
    except KeyboardInterrupt:
        pass
    finally:
        _drain_and_stop(runtimes.values())


def _drain_and_stop(runtimes, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """A graceful stop delivers what the outboxes hold before disconnecting."""
    for runtime in runtimes:
        if not runtime.wait_drained(timeout):
            console.print(f"[yellow]{runtime.device.device_id}: {runtime.outbox.counts().pending} events stay in the outbox for the next start[/]")
        runtime.stop()


def _start_simulation(hall, broker_url, state_dir, credentials_dir, speed, start, seed, heartbeat):  # type: ignore[no-untyped-def]
    from sensors.simulator import SimClock, SimulatedHall, simulated_runtimes

    from server.config.calendar import load_calendar
    from server.config.policy import load_policy
    from server.rules.calendar import CalendarGapError

    calendar = load_calendar(hall.calendars)
    try:
        hh, mm = (int(part) for part in start.split(":"))
        day = datetime.now(HALL_TZ).date()
        while not calendar.is_working_day(day):  # the demo always shows a working day
            day += timedelta(days=1)
        begin = datetime.combine(day, dtime(hh, mm), HALL_TZ)
    except ValueError:
        fail(f"--start {start!r}: expected HH:MM")
    except CalendarGapError as exc:
        fail(str(exc))
    state_dir.mkdir(parents=True, exist_ok=True)
    clock = SimClock(begin, speed, state_file=state_dir / "clock.json")
    runtimes = simulated_runtimes(hall, broker_url, state_dir, clock, credentials_dir=credentials_dir, heartbeat_s=heartbeat)
    for runtime in runtimes.values():
        runtime.start()
    try:
        policy = load_policy(hall.policy.preset, hall.policy.overrides)
    except ConfigError as exc:
        fail(str(exc))
    hours = tuple((s.start, s.end) for s in sorted(policy.schedule.sessions, key=lambda s: s.start))
    simulator = SimulatedHall(hall, runtimes, clock, seed=seed, seat_heartbeat_s=heartbeat, is_working_day=calendar.is_working_day, hours=hours)
    return runtimes, simulator


@commands.command()
def demo(
    port: Annotated[int, typer.Option(help="HTTP port of the live page.")] = 8000,
    broker_port: Annotated[int, typer.Option(help="Port of the embedded broker.")] = 1883,
    data_dir: Annotated[Path, typer.Option(help="Database and device outboxes.")] = Path("var/demo"),
    speed: Annotated[float, typer.Option(min=1, max=3600)] = 30.0,
    seed: int = 1,
    verbose: bool = False,
) -> None:
    """The demo hall on embedded defaults: amqtt broker, SQLite, simulator, live page."""
    from broker.embedded import EmbeddedBroker
    from server.db import make_engine
    from server.users.accounts import UserStore
    from server.users.cli import demo_users
    from server.web.app import ServerSettings, create_app
    from server.web.cli import freeze_startup_objects, serve

    setup_logging(verbose)
    hall_config = load_hall_or_exit(DEFAULT_HALL)
    embedded = EmbeddedBroker(port=broker_port)
    try:
        embedded.start()
    except OSError as exc:
        fail(str(exc))
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = ServerSettings(
        hall_file=DEFAULT_HALL,
        database_url=f"sqlite:///{(data_dir / 'hallwatch.db').resolve()}",
        broker=BrokerSettings(url=embedded.url),
    )
    stop = threading.Event()
    runtimes, simulator = _start_simulation(hall_config, embedded.url, data_dir / "devices", None, speed, "07:58", seed, 5.0)
    application = create_app(settings, hall_config, clock=simulator.clock)
    demo_users(UserStore(make_engine(settings.database_url)), data_dir, hall_config.windows[0].department)
    freeze_startup_objects()
    sim_thread = threading.Thread(target=simulator.run, args=(stop,), name="simulator", daemon=True)
    sim_thread.start()
    console.print(f"[bold green]示范大厅已启动 demo hall running:[/] http://127.0.0.1:{port}  (Ctrl+C to stop)")
    try:
        serve(application, "127.0.0.1", port)
    finally:
        stop.set()
        sim_thread.join(5)
        for runtime in runtimes.values():
            runtime.stop()  # what is not delivered stays in the outbox for the next demo
        embedded.stop()
