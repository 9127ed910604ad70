"""Hall devices from the command line: run one (``hallwatch agent``), register one
(``hallwatch device add``) with its broker account, and the broker's own files
(``hallwatch broker add-server`` / ``broker config``)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Optional, get_args

import typer

from broker.config_file import ConfigError
from server.cli_common import DEFAULT_DB, DEFAULT_HALL, Db, HallFile, console, fail, load_hall_or_exit, open_database, setup_logging

commands = typer.Typer()
device_app = typer.Typer(help="Register devices and their broker credentials.", no_args_is_help=True)
broker_app = typer.Typer(help="Production broker (Mosquitto) files.", no_args_is_help=True)


@commands.command()
def agent(config: Annotated[Path, typer.Argument(help="Agent configuration file (TOML).")], verbose: bool = False) -> None:
    """Run one edge agent from its configuration file."""
    from agent.config import load_agent_settings
    from agent.runtime import AgentRuntime
    from agent.sources import load_sources

    setup_logging(verbose)
    try:
        settings = load_agent_settings(config)
        sources = load_sources(settings)
    except ConfigError as exc:
        fail(str(exc))
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
    db: Db = DEFAULT_DB,
    auth_dir: Annotated[Path, typer.Option(help="Mosquitto passwd/acl folder.")] = Path("/etc/hallwatch/broker"),
    secret_dir: Annotated[Path, typer.Option(help="Where to write <device>.secret (mode 0600) for the device.")] = Path("var/secrets"),
) -> None:
    """Register a device and create its broker password and least-privilege ACL."""
    from broker.mosquitto import BrokerAuthFiles
    from broker.protocol import DeviceKind
    from server.devices.register import add_device

    hall_config = load_hall_or_exit(hall)
    if kind not in get_args(DeviceKind):
        fail(f"--kind {kind!r}: must be one of {', '.join(get_args(DeviceKind))}")
    unknown = set(window) - {w.id for w in hall_config.windows}
    if unknown:
        fail(f"--window {sorted(unknown)}: not windows of {hall} ")
    try:
        password = BrokerAuthFiles(auth_dir).add_device(hall_config.hall.id, device_id, kind=kind)
    except ValueError as exc:
        fail(str(exc))
    add_device(open_database(db), hall_config.hall.id, device_id, kind, window)
    secret = _write_secret(secret_dir, f"{device_id}.secret", password)
    console.print(f"device {device_id} registered; password in {secret} (copy it to the device, then delete it here)")
    console.print("reload the broker to apply: [bold]pkill -HUP mosquitto[/]")


def _write_secret(folder: Path, name: str, password: str) -> Path:
    """The password in a file only its owner can read (0600 before anything is written)."""
    folder.mkdir(parents=True, exist_ok=True)
    secret = folder / name
    secret.touch(mode=0o600)
    secret.write_text(password + "\n", encoding="utf-8")
    return secret


@broker_app.command("add-server")
def broker_add_server(
    hall_id: Annotated[str, typer.Argument(help="Hall id the server serves.")],
    auth_dir: Annotated[Path, typer.Option()] = Path("/etc/hallwatch/broker"),
    secret_dir: Annotated[Path, typer.Option()] = Path("var/secrets"),
) -> None:
    """Create the server's broker user (reads all devices, writes config and commands)."""
    from broker.mosquitto import BrokerAuthFiles

    password = BrokerAuthFiles(auth_dir).add_server(hall_id)
    secret = _write_secret(secret_dir, "hallwatch-server.secret", password)
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
