"""The live page's WebSocket (/ws) and a server that must stop.

A hall is quiet at night: no change, so no message goes to an open page.  A
page closed then, or a server stopped (an update, a reboot) while the
supervision office's screen is still open, must not leave the server waiting
for a message that never comes: the socket handler listens for the close.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import AppServer
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from broker.connection import BrokerSettings
from server.web.app import ServerSettings, create_app
from server.db import make_engine
from server.config.hall import load_hall
from users import session_headers

HALL_FILE = Path(__file__).resolve().parents[1] / "config/halls/demo.toml"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[AppServer, dict[str, str]]]:
    """The demo hall's server on a real uvicorn (no broker: the hall is quiet) and a viewer's session."""
    db_url = f"sqlite:///{tmp_path}/hw.db"
    settings = ServerSettings(hall_file=HALL_FILE, database_url=db_url, broker=BrokerSettings(url="mqtt://127.0.0.1:9"), data_dir=tmp_path / "data")
    server = AppServer(create_app(settings, load_hall(HALL_FILE))).start()
    engine = make_engine(db_url)
    try:
        yield server, session_headers(engine, "viewer")
    finally:
        engine.dispose()
        server.stop()


def _quiet_page(server: AppServer, cookie: dict[str, str]) -> ClientConnection:
    """A logged-in page that has had the server's first sweep (every window, then the counters); the hall is quiet after it."""
    page = connect(f"ws://127.0.0.1:{server.port}/ws", additional_headers=cookie, open_timeout=10)
    while json.loads(page.recv(timeout=30))[-1]["kind"] != "stats":  # a batch's frame ends with the counters
        pass
    return page


def test_the_server_stops_while_a_page_is_open_and_the_page_is_told(served: tuple[AppServer, dict[str, str]]) -> None:
    server, cookie = served
    with _quiet_page(server, cookie) as page:
        server.stop()
        assert not server.thread.is_alive(), "the server waited for a message to the open page"
        with pytest.raises(ConnectionClosed):
            page.recv(timeout=5)


@pytest.mark.parametrize("how", ["closed", "dropped"])
def test_pages_gone_in_a_quiet_hall_do_not_hold_the_server(served: tuple[AppServer, dict[str, str]], how: str) -> None:
    """``closed``: the page is closed (a close frame); ``dropped``: the browser was killed (no goodbye)."""
    server, cookie = served
    page = _quiet_page(server, cookie)
    if how == "closed":
        page.close()
    else:
        page.socket.shutdown(socket.SHUT_RDWR)
        page.socket.close()
    server.stop()
    assert not server.thread.is_alive(), f"the server waited for the {how} page's handler"
