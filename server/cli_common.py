"""What every ``hallwatch`` command shares: the default files, the error line, logging.

Each capability keeps its own commands (``server/<capability>/cli.py``);
this module is only what they would otherwise each copy: where the hall
file and the database are by default, how a bad input ends a command (one
red line naming the file, the key and the reason, exit status 2), and the
log format of the long-running processes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from broker.config_file import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from server.config.hall import HallConfig

console = Console(stderr=True)
DEFAULT_HALL = Path("config/halls/demo.toml")
DEFAULT_DISTRICT = Path("config/districts/demo.toml")
DEFAULT_DB = "sqlite:///var/hallwatch.db"
HallFile = Annotated[Path, typer.Option("--hall", help="Hall file (windows and devices).")]
Db = Annotated[str, typer.Option(envvar="HALLWATCH_DATABASE_URL", help="sqlite:///path or postgresql://user@host/db")]


def setup_logging(verbose: bool) -> None:
    """Log lines for the long-running processes (server, demo, agent, simulator)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)


def fail(message: str) -> NoReturn:
    """End the command with one error line and exit status 2."""
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)  # never broken inside a file name; [x] kept as text
    raise typer.Exit(2)


def load_hall_or_exit(path: Path) -> HallConfig:
    """The hall file, or the command ends naming the file, the key and the reason."""
    from server.config.hall import load_hall

    try:
        return load_hall(path)
    except ConfigError as exc:
        fail(str(exc))


def open_database(url: str) -> Engine:
    """The database at ``url``, migrated to the current schema."""
    from server.db import make_engine, migrate

    engine = make_engine(url)
    migrate(engine)
    return engine
