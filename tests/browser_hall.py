"""What the browser tests share: the demo hall served on a Monday-morning clock, and headless Chromium.

Mosquitto and the server are real (the server in-process, so its hall clock
can be a Monday morning running at real speed); Chromium and chromedriver
come from the system packages, so Selenium Manager never downloads anything.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from conftest import require_executable
from mosquitto_proc import free_port, start_mosquitto
from procs import ROOT, AppServer
from users import add_user

from broker.connection import BrokerSettings
from broker.timeutil import HALL_TZ
from server.web.app import ServerSettings, create_app
from server.db import make_engine
from server.config.hall import load_hall

T0 = datetime(2026, 3, 2, 9, 10, tzinfo=HALL_TZ)  # a Monday, the hall open
SCREENSHOTS = ROOT / "docs" / "img"


class HallClock:
    """The hall's clock: ``start``, running at real speed."""

    def __init__(self, start: datetime) -> None:
        self.start, self.began = start, time.monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.began)

    def jump(self, moment: datetime) -> None:
        """Go on from ``moment`` (e.g. the evening, to see the hall close)."""
        self.start, self.began = moment, time.monotonic()


@contextmanager
def served_hall(tmp_path: Path, hall_extra: str = "") -> Iterator[tuple[str, HallClock, int]]:
    """Mosquitto and the server for the demo hall (plus ``hall_extra`` TOML) at T0, with the users office, patrol,
    lead (市场监管局: w01, w02) and viewer; yields (url, clock, broker port)."""
    require_executable("mosquitto")
    hall_file = tmp_path / "hall.toml"
    hall_file.write_text((ROOT / "config/halls/demo.toml").read_text(encoding="utf-8") + hall_extra, encoding="utf-8")
    db_url = f"sqlite:///{tmp_path / 'hw.db'}"
    clock = HallClock(T0)
    with start_mosquitto(tmp_path) as broker:
        settings = ServerSettings(hall_file=hall_file, database_url=db_url, broker=BrokerSettings(url=broker.url), data_dir=tmp_path / "server")
        server = AppServer(create_app(settings, load_hall(hall_file), clock), free_port()).start()
        engine = make_engine(db_url)
        for role in ("office", "patrol", "lead", "viewer"):
            add_user(engine, role)
        engine.dispose()
        try:
            yield server.url, clock, broker.port
        finally:
            server.stop()


@contextmanager
def headless_chromium(width: int = 1600) -> Iterator[Any]:
    """A Selenium driver for the system's Chromium, Chinese first."""
    chromium = require_executable("chromium")
    chromedriver = require_executable("chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},1100", "--lang=zh-CN", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()
