"""``hallwatch server``: ingest from the broker, the API, the WebSocket and the pages, in one process."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
import uvicorn

from broker.config_file import ConfigError
from broker.connection import BrokerSettings
from server.cli_common import DEFAULT_DB, DEFAULT_HALL, HallFile, fail, setup_logging

commands = typer.Typer()


@commands.command()
def server(
    hall: HallFile = DEFAULT_HALL,
    district: Annotated[Optional[Path], typer.Option(help="District file (config/districts/): serve all its halls from this process; instead of --hall.")] = None,
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
    """Run the server for a hall (--hall) or a district of halls (--district): ingest from the broker, API, WebSocket and pages."""
    from server.config.district import district_of_hall, load_district
    from server.users.accounts import SessionPolicy
    from server.web.app import ServerSettings, create_app

    setup_logging(verbose)
    if username is not None and passwd_file is None:
        fail(
            "the broker has accounts (--username), so devices must log in over HTTP with them too "
            "(evidence upload, gallery download): give --passwd-file, the broker's passwd file "
            "(e.g. /etc/hallwatch/broker/passwd, from hallwatch broker add-server --auth-dir)"
        )
    try:
        served = load_district(district) if district is not None else district_of_hall(hall)
    except ConfigError as exc:
        fail(str(exc))
    settings = ServerSettings(
        hall_file=served.files[0],
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
        application = create_app(settings, served)
    except ConfigError as exc:
        fail(str(exc))
    freeze_startup_objects()
    serve(application, host, port)


def serve(application: Any, host: str, port: int) -> None:
    """Serve the API and pages until interrupted.

    The live page's WebSocket goes uncompressed: its frames are many (one
    per ingest batch), and deflating each cost the server about a tenth
    of its CPU under load, more than the bytes are worth on a hall's intranet.
    """
    uvicorn.run(application, host=host, port=port, log_level="warning", ws_per_message_deflate=False)


def freeze_startup_objects() -> None:
    """Move start-up objects out of the garbage collector's reach: a full
    collection over them paused ingest for 100+ ms (docs/benchmarks.md)."""
    import gc

    gc.collect()
    gc.freeze()
