"""The live page in headless Chromium (Debian's chromium + chromedriver, driven by Selenium).

Mosquitto and the server are real; the server's hall clock is a Monday
morning running at real speed.  One walk through the page: log in through
the form; a seat event published over MQTT changes its window's tile within
2 s; an alert is acknowledged with the keyboard only; a viewer sees no
acknowledge button and the API refuses the viewer's POST too.  A rating
pressed on ev-01 shows in the live page's "today" panel (今日考勤与评价) and
in the review page's rating trend table (评价趋势); the review page draws
c01's attendance calendar (考勤日历) for the month.  The screenshots in
docs/img/ are taken on the way.  When the hall's clock passes closing time,
every tile and the summary say 关闭 — closed, not "unknown (device offline)".
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from browser_hall import SCREENSHOTS, T0, HallClock, headless_chromium, served_hall
from procs import wait_for
from users import PASSWORD

from broker.protocol import DeviceStatus, RatingBody, SeatBody, device_topic, encode, make_event

pytestmark = pytest.mark.mosquitto

GRACE_S = 3
"""The hall's vacant grace, shortened so the test's vacancy becomes an alert in seconds."""
LATENCY_BUDGET_S = 2.0



class Camera:
    """cam-01 of the demo hall (windows w01–w03), speaking the protocol over paho."""

    def __init__(self, broker_port: int, clock: HallClock) -> None:
        import paho.mqtt.client as mqtt

        self.clock = clock
        self.seq = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="cam-01-test")
        self.client.connect("127.0.0.1", broker_port)
        self.client.loop_start()
        status = DeviceStatus(
            hall_id="demo", device_id="cam-01", kind="window_camera", boot=1, state="online", time=clock(), heartbeat_s=600, software="browser-test"
        )
        self.client.publish(device_topic("demo", "cam-01", "status"), encode(status), qos=1, retain=True).wait_for_publish(10)

    def seat(self, window_id: str, state: str) -> None:
        self.seq += 1
        body = SeatBody(window_id=window_id, state=state, confidence=0.95)  # type: ignore[arg-type]
        event = make_event(hall_id="demo", device_id="cam-01", boot=1, seq=self.seq, event_time=self.clock(), body=body, msg_id=uuid.uuid4())
        self.client.publish(device_topic("demo", "cam-01", "evt", "seat"), encode(event), qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Evaluator:
    """ev-01, the evaluator keypad (评价器) of w01, speaking the protocol over paho."""

    def __init__(self, broker_port: int, clock: HallClock) -> None:
        import paho.mqtt.client as mqtt

        self.clock = clock
        self.seq = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ev-01-test")
        self.client.connect("127.0.0.1", broker_port)
        self.client.loop_start()
        status = DeviceStatus(hall_id="demo", device_id="ev-01", kind="evaluator", boot=1, state="online", time=clock(), heartbeat_s=600, software="browser-test")
        self.client.publish(device_topic("demo", "ev-01", "status"), encode(status), qos=1, retain=True).wait_for_publish(10)

    def rate(self, window_id: str, level: int, clerk_id: str) -> None:
        self.seq += 1
        body = RatingBody(window_id=window_id, level=level, clerk_id=clerk_id, ticket=f"A{self.seq:03d}")
        event = make_event(hall_id="demo", device_id="ev-01", boot=1, seq=self.seq, event_time=self.clock(), body=body, msg_id=uuid.uuid4())
        self.client.publish(device_topic("demo", "ev-01", "evt", "rating"), encode(event), qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def hall(tmp_path: Path) -> Iterator[tuple[str, HallClock, int]]:
    """Mosquitto and the server (demo hall, vacant grace of GRACE_S) with the users office and viewer."""
    with served_hall(tmp_path, f"\n[policy.overrides.thresholds]\nvacant_grace_s = {GRACE_S}\n") as served:
        yield served


@pytest.fixture
def browser() -> Iterator[object]:
    with headless_chromium(1600) as driver:
        yield driver



def _log_in(driver, url: str, name: str) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    user = WebDriverWait(driver, 15).until(shown.visibility_of_element_located((By.ID, "login-user")))
    assert driver.switch_to.active_element == user, "the form takes the keyboard at once"
    user.send_keys(name)
    driver.find_element(By.ID, "login-password").send_keys(PASSWORD + Keys.ENTER)
    WebDriverWait(driver, 15).until(lambda d: _shown(d, "live") and _text(d, "#user-name") == name)
    WebDriverWait(driver, 15).until(lambda d: "conn-online" in (_attribute(d, "#conn", "class") or ""))
    WebDriverWait(driver, 15).until(lambda d: d.execute_script("return document.querySelectorAll('#window-grid [data-window-id]').length") == 12)


def _attribute(driver, selector: str, name: str) -> str | None:  # type: ignore[no-untyped-def]
    """Read in one script call: the page re-renders a tile or an alert row as a new element on every change."""
    return driver.execute_script("var e = document.querySelector(arguments[0]); return e && e.getAttribute(arguments[1]);", selector, name)


def _shown(driver, element_id: str) -> bool:  # type: ignore[no-untyped-def]
    return bool(driver.execute_script("var e = document.getElementById(arguments[0]); return !!e && !e.hidden;", element_id))


def _tile_state(driver, window_id: str) -> str | None:  # type: ignore[no-untyped-def]
    return _attribute(driver, f'#window-grid [data-window-id="{window_id}"]', "data-state")


def _text(driver, selector: str) -> str:  # type: ignore[no-untyped-def]
    return driver.execute_script("var e = document.querySelector(arguments[0]); return e ? e.textContent : '';", selector)


def test_log_in_see_a_seat_event_within_2_s_acknowledge_by_keyboard_and_a_viewer_cannot(hall, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    url, clock, broker_port = hall
    driver = browser
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    driver.get(url)
    WebDriverWait(driver, 15).until(lambda d: _shown(d, "login"))
    assert not _shown(driver, "live"), "nothing of the hall before logging in"
    driver.save_screenshot(str(SCREENSHOTS / "login.png"))
    _log_in(driver, url, "office")
    assert driver.find_element(By.ID, "user-role").text == "督查科"
    labels = [t.get_attribute("textContent") for t in driver.find_elements(By.CSS_SELECTOR, "#window-grid .state-label")]
    assert len(labels) == 12 and all(labels), f"every tile names its state in words: {labels}"

    assert _text(driver, "#today-rated") == "0" and _attribute(driver, "#today", "data-day") == T0.date().isoformat(), "today's panel: no ratings yet"
    assert "/" in _text(driver, "#today-punched") and _text(driver, "#today-late").isdigit()
    camera = Camera(broker_port, clock)
    evaluator = Evaluator(broker_port, clock)
    try:
        api = httpx.Client(base_url=url, cookies={"hw_session": driver.get_cookie("hw_session")["value"]})
        wait_for(lambda: {"cam-01", "ev-01"} <= {d["id"] for d in api.get("/api/devices").json() if d["status"] == "online"}, 15, "cam-01 and ev-01 online")

        published = time.monotonic()
        camera.seat("w01", "occupied")
        WebDriverWait(driver, 5, poll_frequency=0.02).until(lambda d: _tile_state(d, "w01") == "staffed")
        latency = time.monotonic() - published
        print(f"\nMQTT publish → w01 tile staffed in the browser: {latency * 1000:.0f} ms")
        assert latency < LATENCY_BUDGET_S, f"{latency:.2f} s from publish to the tile"

        evaluator.rate("w01", 5, "c01")  # a citizen rates c01 at w01 while the seat is staffed
        day = T0.date().isoformat()
        stats_today = {"by": "window", "period": "day", "from": day, "to": day}
        wait_for(lambda: api.get("/api/ratings/stats", params=stats_today).json()["totals"]["rated"] == 1, 15, "the rating counted")

        for window_id in ("w01", "w02"):  # both seats empty: two vacancies, two alerts after the grace
            camera.seat(window_id, "vacant")
        alerts = wait_for(
            lambda: (found := {a["window_id"]: a["id"] for a in api.get("/api/alerts", params={"active": "true"}).json() if a["type"] == "vacant"}) and len(found) == 2 and found,
            GRACE_S + 30,
            "vacant alerts on w01 and w02",
        )
        button = f'.alert[data-alert-id="{alerts["w01"]}"] .ack-button'
        WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, button))

        # Keyboard only: Tab from the top of the page to w01's acknowledge button, then Enter.
        driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0);")
        for presses in range(1, 121):
            ActionChains(driver).send_keys(Keys.TAB).perform()
            if driver.execute_script("return document.activeElement.matches(arguments[0])", button):
                break
        else:
            pytest.fail(f"w01's acknowledge button is not reachable with Tab ({presses} presses)")
        outline = driver.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
        assert outline not in ("", "none"), "the focused button shows its focus"
        ActionChains(driver).send_keys(Keys.ENTER).perform()
        row = f'.alert[data-alert-id="{alerts["w01"]}"]'
        WebDriverWait(driver, 5).until(lambda d: _attribute(d, row, "data-alert-state") == "acknowledged")
        assert "office" in _text(driver, row)
        assert _tile_state(driver, "w01") == "vacant" and "空岗" in _text(driver, '[data-window-id="w01"] .state-label')
        print(f"acknowledged with the keyboard after {presses} Tab presses")

        # The "today" panel refreshes on load (and every 60 s): reloaded, it counts the rating.
        driver.refresh()
        WebDriverWait(driver, 15).until(lambda d: _text(d, "#today-rated") == "1")
        assert _text(driver, "#today-satisfaction") == "100%" and _text(driver, "#today-bad") == "0"
        WebDriverWait(driver, 15).until(lambda d: _attribute(d, row, "data-alert-state") == "acknowledged")
        driver.execute_script("window.scrollTo(0, 0);")
        driver.save_screenshot(str(SCREENSHOTS / "live.png"))

        # Log out, and in as a viewer: w02's alert is shown without a button, and the API refuses the viewer.
        driver.find_element(By.ID, "logout").send_keys(Keys.ENTER)
        WebDriverWait(driver, 15).until(lambda d: _shown(d, "login"))
        _log_in(driver, url, "viewer")
        viewer_row = f'.alert[data-alert-id="{alerts["w02"]}"]'
        WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, viewer_row))
        assert _attribute(driver, viewer_row, "data-alert-state") == "active"
        assert driver.find_elements(By.CSS_SELECTOR, ".ack-button") == [], "a viewer is offered no acknowledge button"
        viewer = driver.get_cookie("hw_session")["value"]
        refused = httpx.post(f"{url}/api/alerts/{alerts['w02']}/ack", cookies={"hw_session": viewer})
        assert refused.status_code == 403 and "alerts.ack" in refused.json()["detail"]
        assert api.get("/api/alerts").status_code == 401, "office logged out: its cookie opens nothing any more"
        still = {a["id"]: a["state"] for a in httpx.get(f"{url}/api/alerts", cookies={"hw_session": viewer}).json()}
        assert still[alerts["w02"]] == "active", "the refused acknowledgement changed nothing"

        # The review of the day (a viewer may read it): w01's bands in the order the rules saw them.
        driver.get(f"{url}/review.html?day={T0.date().isoformat()}")
        WebDriverWait(driver, 15).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".trow .tbar"))
        [w01] = [bar for bar in driver.find_elements(By.CSS_SELECTOR, ".trow .tbar") if bar.get_attribute("aria-label").startswith("1号窗口")]
        said = w01.get_attribute("aria-label")
        assert "在岗" in said and "空岗" in said and said.index("在岗") < said.index("空岗"), said
        states = [band.get_attribute("class").split("band-")[1] for band in w01.find_elements(By.CSS_SELECTOR, ".band")]
        assert states[0] == "closed" and states[-1] == "vacant", states  # the staffed moment is too short to draw; the label says it
        WebDriverWait(driver, 15).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#heat td"))
        assert "%" in _text(driver, "#heat tbody"), "occupancy shown as numbers, not colour alone"

        # Rating trends: the day's row counts the one rating, and the chart draws it.
        trend_row = f'#trend-table tr[data-day="{day}"]'
        WebDriverWait(driver, 15).until(lambda d: d.find_elements(By.CSS_SELECTOR, trend_row))
        cells = driver.execute_script("return Array.from(document.querySelector(arguments[0]).children).map(c => c.textContent)", trend_row)
        assert cells == [day, "1", "1", "100%", "0", "0%"], cells
        assert driver.find_elements(By.CSS_SELECTOR, "#trend-chart svg[role=img] circle"), "the satisfaction point is drawn"
        assert driver.find_element(By.CSS_SELECTOR, "#trend-chart svg").get_attribute("aria-label").count(day) == 1

        # Attendance calendar: c01's March, one cell per day, each day's status in words.
        driver.get(f"{url}/review.html?day={day}&clerk=c01")
        WebDriverWait(driver, 15).until(lambda d: d.find_elements(By.CSS_SELECTOR, '#calendar table[data-person="c01"] td[data-day]'))
        days = driver.execute_script("return Array.from(document.querySelectorAll('#calendar td[data-day]')).map(c => [c.getAttribute('data-day'), c.getAttribute('data-status'), c.textContent])")
        assert [d[0] for d in days] == [f"2026-03-{n:02d}" for n in range(1, 32)], [d[0] for d in days]
        first = driver.execute_script("return document.querySelectorAll('#calendar tbody tr')[0].querySelectorAll('td.cal-blank').length")
        assert first == 6, "1 March 2026 is a Sunday: six blank cells before it"
        sunday = days[0]
        assert sunday[1] == "non_working" and "休息日" in sunday[2], sunday
        assert days[1][1] == "pending pending" and days[1][2].count("未结束") == 2, f"Monday 2 March at 09:10: neither half-day judged yet: {days[1]}"
        assert all(d[2].strip() != str(int(d[0][8:])) for d in days), "every day cell says its status in words"
        driver.execute_script("document.getElementById('trend-title').scrollIntoView()")
        driver.save_screenshot(str(SCREENSHOTS / "review.png"))
    finally:
        camera.close()
        evaluator.close()


def test_after_service_hours_every_tile_says_closed_not_device_offline(hall, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.support.ui import WebDriverWait

    url, clock, _ = hall
    driver = browser
    _log_in(driver, url, "viewer")
    assert _tile_state(driver, "w01") != "closed", "open at 09:10"
    clock.jump(T0.replace(hour=18, minute=30))  # Monday evening: the hall has closed
    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script("return Array.from(document.querySelectorAll('#window-grid [data-window-id]')).every(e => e.getAttribute('data-state') === 'closed')")
    )
    labels = {t.strip() for t in driver.execute_script("return Array.from(document.querySelectorAll('#window-grid .state-label')).map(e => e.textContent)")}
    assert labels == {"关闭（非服务时间）"}, labels
    assert "12" in _text(driver, '#summary [data-state="closed"]') and "0" in _text(driver, '#summary [data-state="unknown"]')
