"""The ``hallwatch`` command: demo, server, agent, simulate, device, broker, faces, attendance, camera, user."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Annotated, Optional

import typer
import uvicorn
from rich.console import Console
from rich.markup import escape
from rich.logging import RichHandler

from broker.config_file import ConfigError
from broker.connection import BrokerSettings
from broker.timeutil import HALL_TZ
from server.devices.camera_cli import camera_app
from server.faces.cli import faces_app
from server.users.cli import demo_users, user_app

app = typer.Typer(help="HallWatch 政务服务大厅窗口监管 — supervision of service hall windows.", no_args_is_help=True)
device_app = typer.Typer(help="Register devices and their broker credentials.", no_args_is_help=True)
broker_app = typer.Typer(help="Production broker (Mosquitto) files.", no_args_is_help=True)
app.add_typer(device_app, name="device")
app.add_typer(broker_app, name="broker")
leave_app = typer.Typer(help="The leave, outing and substitution register.", no_args_is_help=True)
app.add_typer(leave_app, name="leave")
faces_keys_app = typer.Typer(help="Key files for face templates and gallery sync.", no_args_is_help=True)
faces_app.add_typer(faces_keys_app, name="keys")
app.add_typer(faces_app, name="faces")
attendance_app = typer.Typer(help="考勤 Attendance: the monthly sheet.", no_args_is_help=True)
app.add_typer(attendance_app, name="attendance")
app.add_typer(camera_app, name="camera")
app.add_typer(user_app, name="user")
console = Console(stderr=True)

HallFile = Annotated[Path, typer.Option("--hall", help="Hall file (windows and devices).")]
DEFAULT_HALL = Path("config/halls/demo.toml")
DEFAULT_DB = "sqlite:///var/hallwatch.db"


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)  # never broken inside a file name; [x] kept as text
    raise typer.Exit(2)


def _load_hall(path: Path):  # type: ignore[no-untyped-def]
    from server.config.hall import load_hall

    try:
        return load_hall(path)
    except ConfigError as exc:
        _fail(str(exc))


@app.command()
def server(
    hall: HallFile = DEFAULT_HALL,
    db: Annotated[str, typer.Option(envvar="HALLWATCH_DATABASE_URL", help="sqlite:///path or postgresql://user@host/db")] = DEFAULT_DB,
    broker: Annotated[str, typer.Option(help="Broker URL (mqtt:// or mqtts://).")] = "mqtt://127.0.0.1:1883",
    username: Annotated[Optional[str], typer.Option(help="Broker user of the server.")] = None,
    password_file: Annotated[Optional[Path], typer.Option(help="File holding the broker password.")] = None,
    ca_file: Annotated[Optional[Path], typer.Option(help="CA certificate for mqtts://.")] = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    data_dir: Annotated[Path, typer.Option(help="Server files outside the database (the sealed gallery, evidence pictures).")] = Path("var"),
    passwd_file: Annotated[Optional[Path], typer.Option(help="The broker's passwd file: devices log in with it over HTTP (gallery download, evidence upload); required with --username, open without (the demo's embedded broker).")] = None,
    face_key_file: Annotated[Optional[Path], typer.Option(envvar="HALLWATCH_FACE_KEY_FILE", help="Face template key (hallwatch faces keys init).")] = None,
    gallery_key_file: Annotated[Optional[Path], typer.Option(envvar="HALLWATCH_GALLERY_KEY_FILE", help="Gallery encryption key.")] = None,
    signing_key_file: Annotated[Optional[Path], typer.Option(envvar="HALLWATCH_GALLERY_SIGNING_KEY_FILE", help="Gallery signing key.")] = None,
    admin_token_file: Annotated[Optional[Path], typer.Option(envvar="HALLWATCH_ADMIN_TOKEN_FILE", help="Token with which scripts call the API as an administrator.")] = None,
    session_idle_minutes: Annotated[int, typer.Option(min=1, max=1440, help="A login unused this long ends.")] = 30,
    session_hours: Annotated[int, typer.Option(min=1, max=168, help="A login ends this long after it began.")] = 12,
    evidence_days: Annotated[int, typer.Option(min=1, max=3650, help="Days an evidence picture is kept.")] = 30,
    influx_url: Annotated[Optional[str], typer.Option(help="Export events, window states and alerts to this InfluxDB / VictoriaMetrics URL (docs/timeseries.md).")] = None,
    influx_bucket: Annotated[str, typer.Option(help="InfluxDB bucket.")] = "hallwatch",
    influx_org: Annotated[str, typer.Option(help="InfluxDB organisation.")] = "hallwatch",
    influx_token_file: Annotated[Optional[Path], typer.Option(help="File holding the InfluxDB token (0600).")] = None,
    influx_spool_dir: Annotated[Optional[Path], typer.Option(help="Where points wait while the database is down (default: DATA_DIR/influx-spool).")] = None,
    verbose: bool = False,
) -> None:
    """Run the server: ingest from the broker, API, WebSocket and live page."""
    from server.web.app import ServerSettings, create_app
    from server.users.accounts import SessionPolicy

    _logging(verbose)
    if username is not None and passwd_file is None:
        _fail(
            "the broker has accounts (--username), so devices must log in over HTTP with them too "
            "(evidence upload, gallery download): give --passwd-file, the broker's passwd file "
            "(e.g. /etc/hallwatch/broker/passwd, from hallwatch broker add-server --auth-dir)"
        )
    settings = ServerSettings(
        hall_file=hall,
        database_url=db,
        broker=BrokerSettings(url=broker, username=username, password_file=password_file, ca_file=ca_file),
        data_dir=data_dir,
        passwd_file=passwd_file,
        face_key_file=face_key_file,
        gallery_key_file=gallery_key_file,
        signing_key_file=signing_key_file,
        admin_token_file=admin_token_file,
        evidence_retention_days=evidence_days,
        influx_url=influx_url,
        influx_bucket=influx_bucket,
        influx_org=influx_org,
        influx_token_file=influx_token_file,
        influx_spool_dir=influx_spool_dir,
        session_policy=SessionPolicy(timedelta(minutes=session_idle_minutes), timedelta(hours=session_hours)),
    )
    try:
        application = create_app(settings, _load_hall(hall))
    except ConfigError as exc:
        _fail(str(exc))
    _freeze_startup_objects()
    uvicorn.run(application, host=host, port=port, log_level="warning")


def _freeze_startup_objects() -> None:
    """Move start-up objects out of the garbage collector's reach: a full
    collection over them paused ingest for 100+ ms (docs/benchmarks.md)."""
    import gc

    gc.collect()
    gc.freeze()


@app.command()
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
    _logging(verbose)
    hall_config = _load_hall(hall)
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
        _fail(f"--start {start!r}: expected HH:MM")
    except CalendarGapError as exc:
        _fail(str(exc))
    state_dir.mkdir(parents=True, exist_ok=True)
    clock = SimClock(begin, speed, state_file=state_dir / "clock.json")
    runtimes = simulated_runtimes(hall, broker_url, state_dir, clock, credentials_dir=credentials_dir, heartbeat_s=heartbeat)
    for runtime in runtimes.values():
        runtime.start()
    try:
        policy = load_policy(hall.policy.preset, hall.policy.overrides)
    except ConfigError as exc:
        _fail(str(exc))
    hours = tuple((s.start, s.end) for s in sorted(policy.schedule.sessions, key=lambda s: s.start))
    simulator = SimulatedHall(hall, runtimes, clock, seed=seed, seat_heartbeat_s=heartbeat, is_working_day=calendar.is_working_day, hours=hours)
    return runtimes, simulator


@app.command()
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
    from server.web.app import ServerSettings, create_app
    from server.db import make_engine
    from server.users.accounts import UserStore

    _logging(verbose)
    hall_config = _load_hall(DEFAULT_HALL)
    embedded = EmbeddedBroker(port=broker_port)
    try:
        embedded.start()
    except OSError as exc:
        _fail(str(exc))
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
    _freeze_startup_objects()
    sim_thread = threading.Thread(target=simulator.run, args=(stop,), name="simulator", daemon=True)
    sim_thread.start()
    console.print(f"[bold green]示范大厅已启动 demo hall running:[/] http://127.0.0.1:{port}  (Ctrl+C to stop)")
    try:
        uvicorn.run(application, host="127.0.0.1", port=port, log_level="warning")
    finally:
        stop.set()
        sim_thread.join(5)
        for runtime in runtimes.values():
            runtime.stop()  # what is not delivered stays in the outbox for the next demo
        embedded.stop()


@app.command()
def replay(
    day: Annotated[str, typer.Argument(help="The day to re-run, YYYY-MM-DD (hall time).")],
    hall: HallFile = DEFAULT_HALL,
    db: Annotated[str, typer.Option(envvar="HALLWATCH_DATABASE_URL")] = DEFAULT_DB,
    preset: Annotated[Optional[str], typer.Option(help="Another policy preset to try.")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Override a policy value, e.g. thresholds.vacant_grace_s=600.")] = [],
    output: Annotated[Optional[Path], typer.Option(help="Write the JSON report here (default: print).")] = None,
) -> None:
    """Re-run a stored day under the hall's policy or a changed one; report alerts and differences."""
    from datetime import date as _date

    from server.config.calendar import load_calendar
    from server.db import make_engine, migrate
    from server.config.policy import load_policy
    from server.supervision.replay import replay_day, to_json
    from server.rules.calendar import CalendarGapError

    hall_config = _load_hall(hall)
    try:
        when = _date.fromisoformat(day)
    except ValueError:
        _fail(f"day {day!r}: expected YYYY-MM-DD")
    overrides = dict(hall_config.policy.overrides)
    for item in set_:
        key, sep, raw = item.partition("=")
        if not sep:
            _fail(f"--set {item!r}: expected key=value")
        node = overrides
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _parse_value(raw)
    try:
        policy = load_policy(preset or hall_config.policy.preset, overrides, source=hall)
        calendar = load_calendar(hall_config.calendars)
        engine = make_engine(db)
        migrate(engine)
        report = to_json(replay_day(engine, hall_config, policy, calendar, when))
    except (ConfigError, CalendarGapError) as exc:
        _fail(str(exc))
    if output:
        output.write_text(report + "\n", encoding="utf-8")
    else:
        typer.echo(report)


def _parse_value(raw: str) -> object:
    """A --set value as TOML would read it (number, boolean, time or string)."""
    import tomllib

    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


@app.command()
def agent(config: Annotated[Path, typer.Argument(help="Agent configuration file (TOML).")], verbose: bool = False) -> None:
    """Run one edge agent from its configuration file."""
    from agent.config import load_agent_settings
    from agent.runtime import AgentRuntime
    from agent.sources import load_sources

    _logging(verbose)
    try:
        settings = load_agent_settings(config)
        sources = load_sources(settings)
    except ConfigError as exc:
        _fail(str(exc))
    runtime = AgentRuntime(settings, sources=sources)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    runtime.start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        runtime.stop()


@device_app.command("add")
def device_add(
    device_id: Annotated[str, typer.Argument(help="Device id, e.g. cam-05.")],
    kind: Annotated[str, typer.Option(help="face_terminal, window_camera, evaluator, pause_button or queue_gateway.")],
    window: Annotated[list[str], typer.Option(help="Window served (repeat for several).")] = [],
    hall: HallFile = DEFAULT_HALL,
    db: Annotated[str, typer.Option(envvar="HALLWATCH_DATABASE_URL")] = DEFAULT_DB,
    auth_dir: Annotated[Path, typer.Option(help="Mosquitto passwd/acl folder.")] = Path("/etc/hallwatch/broker"),
    secret_dir: Annotated[Path, typer.Option(help="Where to write <device>.secret (mode 0600) for the device.")] = Path("var/secrets"),
) -> None:
    """Register a device and create its broker password and least-privilege ACL."""
    from broker.mosquitto import BrokerAuthFiles
    from broker.protocol import DeviceKind
    from server.db import make_engine, migrate
    from server.ingest.store import Store
    from typing import get_args

    hall_config = _load_hall(hall)
    if kind not in get_args(DeviceKind):
        _fail(f"--kind {kind!r}: must be one of {', '.join(get_args(DeviceKind))}")
    unknown = set(window) - {w.id for w in hall_config.windows}
    if unknown:
        _fail(f"--window {sorted(unknown)}: not windows of {hall} ")
    try:
        password = BrokerAuthFiles(auth_dir).add_device(hall_config.hall.id, device_id, kind=kind)
    except ValueError as exc:
        _fail(str(exc))
    engine = make_engine(db)
    migrate(engine)
    Store(engine).add_device(hall_config.hall.id, device_id, kind, window)
    secret_dir.mkdir(parents=True, exist_ok=True)
    secret = secret_dir / f"{device_id}.secret"
    secret.touch(mode=0o600)
    secret.write_text(password + "\n", encoding="utf-8")
    console.print(f"device {device_id} registered; password in {secret} (copy it to the device, then delete it here)")
    console.print("reload the broker to apply: [bold]pkill -HUP mosquitto[/]")


@attendance_app.command("sheet")
def attendance_sheet(
    month: Annotated[str, typer.Argument(help="The month, YYYY-MM.")],
    output: Annotated[Path, typer.Option("--out", help="Where to write the .xlsx.")],
    hall: HallFile = DEFAULT_HALL,
    db: Annotated[str, typer.Option(envvar="HALLWATCH_DATABASE_URL")] = DEFAULT_DB,
) -> None:
    """Write the monthly attendance sheet (月度考勤表) from the stored punches, leave and make-up punches."""
    from server.attendance.service import AttendanceService
    from server.config.calendar import load_calendar
    from server.db import make_engine, migrate
    from server.config.policy import load_policy
    from server.rules.calendar import CalendarGapError

    try:
        year, number = (int(part) for part in month.split("-"))
        if not 1 <= number <= 12:
            raise ValueError
    except ValueError:
        _fail(f"month: {month!r} is not YYYY-MM")
    hall_config = _load_hall(hall)
    try:
        policy = load_policy(hall_config.policy.preset, hall_config.policy.overrides, source=hall)
        calendar = load_calendar(hall_config.calendars)
    except ConfigError as exc:
        _fail(str(exc))
    engine = make_engine(db)
    migrate(engine)
    try:
        data = AttendanceService(engine, hall_config, policy, calendar, lambda: datetime.now(HALL_TZ)).sheet(year, number)
    except CalendarGapError as exc:
        _fail(str(exc))
    output.write_bytes(data)
    console.print(f"wrote {output} ({len(data):,} bytes)")


@leave_app.command("import")
def leave_import(
    csv_file: Annotated[Path, typer.Argument(help="Register CSV: kind,person_id,window_id,start,end,note (UTF-8).")],
    hall: HallFile = DEFAULT_HALL,
    db: Annotated[str, typer.Option(envvar="HALLWATCH_DATABASE_URL")] = DEFAULT_DB,
) -> None:
    """Import approved leave, outings and substitutions; all or nothing, each bad row reported."""
    from server.db import make_engine, migrate
    from server.attendance.leave import LeaveRegister, RegisterError, parse_csv

    hall_config = _load_hall(hall)
    try:
        entries = parse_csv(csv_file.read_text(encoding="utf-8"), hall_config)
    except FileNotFoundError:
        _fail(f"{csv_file}: file not found")
    except UnicodeDecodeError:
        _fail(f"{csv_file}: not UTF-8 text (save the CSV as UTF-8)")
    except RegisterError as exc:
        _fail(f"{csv_file}: nothing imported:\n  " + "\n  ".join(exc.problems))
    engine = make_engine(db)
    migrate(engine)
    ids = LeaveRegister(engine, hall_config).add(entries)
    console.print(f"imported {len(ids)} entries from {csv_file}")


FACE_TEMPLATE_KEY_ENV = "HALLWATCH_FACE_KEY_FILE"  # server.faces.registry.KEY_FILE_ENV (not imported: it loads dlib)
FACE_TEMPLATE_KEY_FILE = "face-templates.key"


@faces_keys_app.command("init")
def faces_keys_init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new key files (created 0700; existing keys are never overwritten).")],
) -> None:
    """Create the face template key and the gallery keys (each file 0600) and say where each goes."""
    from cryptography.fernet import Fernet

    from vision import gallery_seal as seal

    files = seal.new_key_files() | {FACE_TEMPLATE_KEY_FILE: Fernet.generate_key() + b"\n"}
    try:
        seal.write_private_files(directory, files)
    except FileExistsError as exc:
        _fail(f"{exc}; move them away first if you really mean to replace the keys")
    placement = [
        (FACE_TEMPLATE_KEY_FILE, FACE_TEMPLATE_KEY_ENV, "server only: encrypts stored face templates"),
        (seal.SIGNING_KEY_FILE, seal.SIGNING_KEY_ENV, "server only: signs galleries"),
        (seal.GALLERY_KEY_FILE, seal.GALLERY_KEY_ENV, "server and every face terminal: encrypts galleries"),
        (seal.VERIFY_KEY_FILE, seal.VERIFY_KEY_ENV, "every face terminal: checks the server's signature"),
    ]
    console.print(f"key files written to {directory} (mode 0600); set these variables where each file goes:")
    for name, env, where in placement:
        typer.echo(f"{env}={directory / name}    # {where}")
    console.print("copy each file to its hosts with mode 0600, keep an offline backup, delete what is not needed here")


@broker_app.command("add-server")
def broker_add_server(
    hall_id: Annotated[str, typer.Argument(help="Hall id the server serves.")],
    auth_dir: Annotated[Path, typer.Option()] = Path("/etc/hallwatch/broker"),
    secret_dir: Annotated[Path, typer.Option()] = Path("var/secrets"),
) -> None:
    """Create the server's broker user (reads all devices, writes config and commands)."""
    from broker.mosquitto import BrokerAuthFiles

    password = BrokerAuthFiles(auth_dir).add_server(hall_id)
    secret_dir.mkdir(parents=True, exist_ok=True)
    secret = secret_dir / "hallwatch-server.secret"
    secret.touch(mode=0o600)
    secret.write_text(password + "\n", encoding="utf-8")
    console.print(f"server user created; password in {secret}")


@broker_app.command("config")
def broker_config(
    auth_dir: Annotated[Path, typer.Option()] = Path("/etc/hallwatch/broker"),
    port: int = 1883,
    bind: str = "127.0.0.1",
    persistence_dir: Annotated[Optional[Path], typer.Option()] = Path("/var/lib/mosquitto"),
) -> None:
    """Print a production mosquitto.conf using the generated passwd and acl files."""
    from broker.mosquitto import render_mosquitto_conf

    typer.echo(render_mosquitto_conf(auth_dir, port=port, bind=bind, persistence_dir=persistence_dir))


if __name__ == "__main__":
    app()
