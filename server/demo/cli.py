"""``hallwatch demo`` (the demo district of three halls on embedded defaults, one process) and
``hallwatch simulate`` (one hall's devices against any broker)."""

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
from server.cli_common import DEFAULT_DISTRICT, DEFAULT_HALL, HallFile, console, fail, load_hall_or_exit, setup_logging

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
    runtimes, (simulator,), _ = _start_simulation([hall_config], broker, state_dir, credentials_dir, speed, start, seed, heartbeat)
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


def _start_simulation(halls, broker_url, state_dir, credentials_dir, speed, start, seed, heartbeat):  # type: ignore[no-untyped-def]
    """Every hall's simulated clerks and devices on one simulated clock (the first hall's working day)."""
    from sensors.simulator import SimClock, SimulatedHall, simulated_runtimes

    from server.config.calendar import load_calendar
    from server.config.policy import load_policy
    from server.rules.calendar import CalendarGapError

    calendar = load_calendar(halls[0].calendars)
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
    runtimes = {}
    simulators = []
    for index, hall in enumerate(halls):
        started = simulated_runtimes(hall, broker_url, state_dir, clock, credentials_dir=credentials_dir, heartbeat_s=heartbeat)
        for runtime in started.values():
            runtime.start()
        runtimes |= started
        try:
            policy = load_policy(hall.policy.preset, hall.policy.overrides)
        except ConfigError as exc:
            fail(str(exc))
        hours = tuple((s.start, s.end) for s in sorted(policy.schedule.sessions, key=lambda s: s.start))
        days = load_calendar(hall.calendars).is_working_day
        simulators.append(SimulatedHall(hall, started, clock, seed=seed + index, seat_heartbeat_s=heartbeat, is_working_day=days, hours=hours))
    return runtimes, simulators, clock


@commands.command()
def demo(
    port: Annotated[int, typer.Option(help="HTTP port of the live page.")] = 8000,
    broker_port: Annotated[int, typer.Option(help="Port of the embedded broker.")] = 1883,
    data_dir: Annotated[Path, typer.Option(help="Database and device outboxes.")] = Path("var/demo"),
    speed: Annotated[float, typer.Option(min=1, max=3600)] = 30.0,
    seed: int = 1,
    verbose: bool = False,
) -> None:
    """The demo district on embedded defaults: three halls (config/districts/demo.toml), amqtt broker, SQLite, simulators, pages."""
    from broker.embedded import EmbeddedBroker
    from server.config.district import load_district
    from server.db import make_engine
    from server.users.accounts import UserStore
    from server.users.cli import demo_users
    from server.web.app import ServerSettings, create_app
    from server.web.cli import freeze_startup_objects, serve

    setup_logging(verbose)
    try:
        district = load_district(DEFAULT_DISTRICT)
    except ConfigError as exc:
        fail(str(exc))
    embedded = EmbeddedBroker(port=broker_port)
    try:
        embedded.start()
    except OSError as exc:
        fail(str(exc))
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = ServerSettings(
        hall_file=district.files[0],
        database_url=f"sqlite:///{(data_dir / 'hallwatch.db').resolve()}",
        broker=BrokerSettings(url=embedded.url),
    )
    stop = threading.Event()
    runtimes, simulators, clock = _start_simulation(list(district.halls), embedded.url, data_dir / "devices", None, speed, "07:58", seed, 5.0)
    application = create_app(settings, district, clock=clock)
    demo_users(UserStore(make_engine(settings.database_url)), data_dir, district.halls[0].windows[0].department)
    freeze_startup_objects()
    threads = [threading.Thread(target=s.run, args=(stop,), name=f"simulator-{s.hall.hall.id}", daemon=True) for s in simulators]
    for thread in threads:
        thread.start()
    names = "、".join(h.hall.name for h in district.halls)
    console.print(f"[bold green]{district.info.name} 示范区已启动 demo district running[/] ({names}):")
    console.print(f"  区级总览 district overview: http://127.0.0.1:{port}/district.html")
    for hall in district.halls:
        console.print(f"  {hall.hall.name}: http://127.0.0.1:{port}/halls/{hall.hall.id}/")
    console.print("  (Ctrl+C to stop)")
    try:
        serve(application, "127.0.0.1", port)
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        for runtime in runtimes.values():
            runtime.stop()  # what is not delivered stays in the outbox for the next demo
        embedded.stop()
