"""The work page (/work.html) in headless Chromium: work orders, patrol records, evidence.

Mosquitto and the server are real; the hall clock is a Monday morning at real
speed.  A bad rating pressed on ev-01 over MQTT becomes a work order; office
logs in through the live page's form, opens /work.html, sees the order with
its deadlines and status, calls it back with the keyboard only (Tab, typing,
Enter) and sees the new status; a camera's evidence picture is shown.  A
viewer sees the order without any action button, and the evidence section
shows the API's refusal.  docs/img/work.png is taken on the way.

Findings go through their whole workflow on the page, each step by the role
that takes it: the patrol officer confirms a draft, the window lead of
市场监管局 disputes it (a reason is required; another department's finding
is offered no step), the office accepts the dispute; every step is typed and
pressed with the keyboard.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from browser_hall import SCREENSHOTS, HallClock, headless_chromium, served_hall
from procs import wait_for
from users import PASSWORD

from broker.protocol import DeviceStatus, RatingBody, device_topic, encode, make_event
from vision.evidence import jpeg

pytestmark = pytest.mark.mosquitto




class Devices:
    """ev-01 (w01's evaluator keypad) and cam-01 (a window camera) of the demo hall, speaking the protocol over paho."""

    def __init__(self, broker_port: int, clock: HallClock) -> None:
        import paho.mqtt.client as mqtt

        self.clock = clock
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="work-test")
        self.client.connect("127.0.0.1", broker_port)
        self.client.loop_start()
        for device, kind in (("ev-01", "evaluator"), ("cam-01", "window_camera")):
            status = DeviceStatus(hall_id="demo", device_id=device, kind=kind, boot=1, state="online", time=clock(), heartbeat_s=600, software="browser-test")  # type: ignore[arg-type]
            self.client.publish(device_topic("demo", device, "status"), encode(status), qos=1, retain=True).wait_for_publish(10)

    def rate(self, level: int, ticket: str) -> None:
        body = RatingBody(window_id="w01", level=level, clerk_id="c01", ticket=ticket)
        event = make_event(hall_id="demo", device_id="ev-01", boot=1, seq=1, event_time=self.clock(), body=body, msg_id=uuid.uuid4())
        self.client.publish(device_topic("demo", "ev-01", "evt", "rating"), encode(event), qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture(scope="module")
def hall(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, HallClock, int]]:
    """Mosquitto and the server (demo hall) with the users office, patrol, lead and viewer, shared by this module's tests."""
    with served_hall(tmp_path_factory.mktemp("work")) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with headless_chromium(1400) as driver:
        yield driver



def _log_in(driver, url: str, name: str) -> None:  # type: ignore[no-untyped-def]
    """Through the live page's form, as a person does."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    user = WebDriverWait(driver, 15).until(shown.visibility_of_element_located((By.ID, "login-user")))
    user.send_keys(name)
    driver.find_element(By.ID, "login-password").send_keys(PASSWORD + Keys.ENTER)
    WebDriverWait(driver, 15).until(lambda d: _text(d, "#user-name") == name)


def _text(driver, selector: str) -> str:  # type: ignore[no-untyped-def]
    return driver.execute_script("var e = document.querySelector(arguments[0]); return e ? e.textContent : '';", selector)


def _attribute(driver, selector: str, name: str) -> str | None:  # type: ignore[no-untyped-def]
    return driver.execute_script("var e = document.querySelector(arguments[0]); return e && e.getAttribute(arguments[1]);", selector, name)


def _tab_to(driver, selector: str, limit: int = 80) -> int:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    for presses in range(1, limit + 1):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        if driver.execute_script("return document.activeElement.matches(arguments[0])", selector):
            return presses
    pytest.fail(f"{selector} is not reachable with Tab ({limit} presses)")


def test_office_calls_back_a_work_order_by_keyboard_and_a_viewer_may_only_read(hall, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    url, clock, broker_port = hall
    driver = browser
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    # Not logged in: the page says where to log in.
    driver.get(f"{url}/work.html")
    WebDriverWait(driver, 10).until(lambda d: not d.execute_script("return document.getElementById('login-needed').hidden"))
    assert "请先在实时监控页面登录" in _text(driver, "#login-needed")

    devices = Devices(broker_port, clock)
    try:
        _log_in(driver, url, "office")
        api = httpx.Client(base_url=url, cookies={"hw_session": driver.get_cookie("hw_session")["value"]})
        devices.rate(1, "A0001")
        [order] = wait_for(lambda: api.get("/api/work-orders").json() or None, 15, "a work order for the bad rating")
        assert order["status"] == "assigned" and order["callback_due"], order
        taken = clock().isoformat()
        stored = api.post(
            "/api/evidence",
            params={"id": "evidence-work-0001", "device": "cam-01", "window_id": "w01", "taken_at": taken, "cause": "vacancy"},
            content=jpeg(np.random.default_rng(7).integers(0, 256, (120, 160, 3), np.uint8)),
            headers={"Content-Type": "image/jpeg"},
        )
        assert stored.status_code == 201, stored.text
        started = api.post("/api/patrols", json={"kind": "hall", "round": "上午巡查"})
        assert started.status_code == 201, started.text

        driver.get(f"{url}/work.html")
        card = f'[data-order-id="{order["id"]}"]'
        WebDriverWait(driver, 15).until(lambda d: d.find_elements(By.CSS_SELECTOR, card + " .order-action"))
        said = _text(driver, card)
        assert "待回访" in said and order["callback_due"] in said and order["rectify_due"] in said and "1号窗口" in said, said
        assert "c01" in said
        offered = [b.get_attribute("data-action") for b in driver.find_elements(By.CSS_SELECTOR, card + " .order-action")]
        assert offered == [a["name"] for a in order["actions"]], offered

        # Keyboard only: Tab to the note, write it, Tab to 回访核实, Enter.
        driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0);")
        _tab_to(driver, card + " textarea")
        ActionChains(driver).send_keys("已电话回访群众，核实情况属实").perform()
        _tab_to(driver, card + ' [data-action="call_back"]', 5)
        outline = driver.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
        assert outline not in ("", "none"), "the focused button shows its focus"
        ActionChains(driver).send_keys(Keys.ENTER).perform()
        WebDriverWait(driver, 10).until(lambda d: _attribute(d, card, "data-status") == "called_back")
        assert "已回访核实" in _text(driver, card + " .order-status")
        assert api.get(f"/api/work-orders/{order['id']}").json()["status"] == "called_back"

        # The evidence picture, opened with the keyboard too.
        WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, '[data-evidence-id="evidence-work-0001"]'))
        driver.find_element(By.CSS_SELECTOR, '[data-evidence-id="evidence-work-0001"]').send_keys(Keys.ENTER)
        WebDriverWait(driver, 10).until(lambda d: d.execute_script("var i = document.getElementById('evidence-img'); return i.complete && i.naturalWidth > 0;"))
        assert "w01" in driver.find_element(By.ID, "evidence-img").get_attribute("alt")
        WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, f'[data-round-id="{started.json()["id"]}"]'))
        assert "大厅巡查" in _text(driver, "#patrol-list") and "上午巡查 09:30 ✔" in _text(driver, "#patrol-list")
        assert _attribute(driver, "#bulletin-link", "href").endswith("/api/bulletins/2026-03-02.xlsx")
        driver.execute_script("window.scrollTo(0, 0);")
        driver.save_screenshot(str(SCREENSHOTS / "work.png"))

        # A viewer reads the order, is offered no step, and the evidence section shows the refusal.
        driver.delete_all_cookies()
        _log_in(driver, url, "viewer")
        driver.get(f"{url}/work.html")
        WebDriverWait(driver, 15).until(lambda d: _attribute(d, card, "data-status") == "called_back")
        assert driver.find_elements(By.CSS_SELECTOR, ".order-action") == [], "a viewer is offered no action button"
        WebDriverWait(driver, 10).until(lambda d: "evidence.view" in _text(d, "#evidence-status"))
        assert "403" in _text(driver, "#evidence-status")
        assert driver.find_elements(By.CSS_SELECTOR, "[data-evidence-id]") == []

        # English on request.
        driver.get(f"{url}/work.html?lang=en")
        WebDriverWait(driver, 15).until(lambda d: "called back" in _text(d, card + " .order-status"))
        assert _text(driver, "#orders-title") == "Work orders"
    finally:
        devices.close()


def _step(driver, card: str, action: str, text: str) -> None:  # type: ignore[no-untyped-def]
    """Keyboard only: Tab to the card's note, type ``text`` (if any), Tab to the step's button, Enter."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0);")
    _tab_to(driver, card + " textarea", 150)
    if text:
        ActionChains(driver).send_keys(text).perform()
    _tab_to(driver, f'{card} [data-action="{action}"]', 6)
    ActionChains(driver).send_keys(Keys.ENTER).perform()


def test_a_finding_is_confirmed_disputed_and_decided_on_the_page_by_the_right_people(hall, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _, _ = hall
    driver = browser
    driver.delete_all_cookies()
    _log_in(driver, url, "patrol")
    api = httpx.Client(base_url=url, cookies={"hw_session": driver.get_cookie("hw_session")["value"]})
    ours = api.post("/api/findings", json={"window": "w01", "category": "phone", "note": "低头划看手机"}).json()
    theirs = api.post("/api/findings", json={"window": "w03", "category": "chatting", "note": "串岗聊天"}).json()
    api.post(f"/api/findings/{theirs['id']}/confirm", json={})
    card, other = f'[data-finding-id="{ours["id"]}"]', f'[data-finding-id="{theirs["id"]}"]'

    def offered(selector: str) -> list[str]:
        return [b.get_attribute("data-action") for b in driver.find_elements(By.CSS_SELECTOR, selector + " .order-action")]

    def status_becomes(status: str) -> None:
        WebDriverWait(driver, 10).until(lambda d: _attribute(d, card, "data-status") == status)

    # The officer confirms the draft (a note is optional).
    driver.get(f"{url}/work.html")
    WebDriverWait(driver, 15).until(lambda d: d.find_elements(By.CSS_SELECTOR, card + " .order-action"))
    said = _text(driver, card)
    assert "待确认" in said and "1号窗口" in said and "市场监管局" in said and "低头划看手机" in said and "巡查员记录" in said, said
    assert offered(card) == ["confirm", "dismiss"]
    _step(driver, card, "confirm", "")
    status_becomes("confirmed")
    assert "已确认" in _text(driver, card + " .order-status") and "异议期限" in _text(driver, card)

    # The lead of 市场监管局: dispute needs a reason; 3号窗口 (人社局) is read only for them.
    driver.delete_all_cookies()
    _log_in(driver, url, "lead")
    driver.get(f"{url}/work.html")
    WebDriverWait(driver, 15).until(lambda d: d.find_elements(By.CSS_SELECTOR, card + " .order-action"))
    assert offered(card) == ["dispute", "rectify"]
    assert offered(other) == [] and "其他部门" in _text(driver, other)
    _step(driver, card, "dispute", "")
    WebDriverWait(driver, 5).until(lambda d: "请先填写理由" in _text(d, card + " .order-error"))
    assert _attribute(driver, card, "data-status") == "confirmed", "nothing sent without a reason"
    _step(driver, card, "dispute", "当时在查询业务资料")
    status_becomes("disputed")
    assert "异议核实中" in _text(driver, card + " .order-status") and "当时在查询业务资料" in _text(driver, card)
    lead = httpx.Client(base_url=url, cookies={"hw_session": driver.get_cookie("hw_session")["value"]})
    assert lead.post(f"/api/findings/{theirs['id']}/dispute", json={"reason": "x"}).status_code == 403, "the API refuses it too"

    # The office decides: the dispute is accepted and the finding withdrawn.
    driver.delete_all_cookies()
    _log_in(driver, url, "office")
    driver.get(f"{url}/work.html")
    WebDriverWait(driver, 15).until(lambda d: d.find_elements(By.CSS_SELECTOR, card + " .order-action"))
    assert offered(card) == ["uphold", "overturn"]
    driver.find_element(By.CSS_SELECTOR, other + " textarea").send_keys("整改说明写了一半")
    _step(driver, card, "overturn", "录像显示在查询资料")
    status_becomes("overturned")
    kept = driver.execute_script("return document.querySelector(arguments[0]).value", other + " textarea")
    assert kept == "整改说明写了一半", "a step redraws its own card only: a note being written on another stays"
    history = _text(driver, card + " .order-history")
    assert history.count("·") >= 6 and "patrol" in history and "lead" in history and "office" in history, history
    assert api.get(f"/api/findings/{ours['id']}").json()["status"] == "overturned"

    # In English: the category, the status and the filter's choices too.
    driver.get(f"{url}/work.html?lang=en")
    WebDriverWait(driver, 15).until(lambda d: "dispute accepted (withdrawn)" in _text(d, card + " .order-status"))
    assert "phone or games at the counter" in _text(driver, card + " h3")
    assert driver.execute_script("return document.querySelector('#finding-status option[value=disputed]').textContent") == "disputed (re-check)"
    assert driver.execute_script("return document.querySelector('#order-status option[value=closed]').textContent") == "closed"


def _choose(driver, select_id: str, value: str) -> None:  # type: ignore[no-untyped-def]
    """Pick an option as a person does: scroll the list into view, then choose (chromedriver clicks only visible options)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    element = driver.find_element(By.ID, select_id)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    Select(element).select_by_value(value)


def test_an_officer_starts_a_round_records_a_finding_and_finishes_on_the_page(hall, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    url, _, _ = hall
    driver = browser
    driver.delete_all_cookies()
    _log_in(driver, url, "patrol")
    driver.get(f"{url}/work.html")
    WebDriverWait(driver, 15).until(lambda d: not d.find_element(By.ID, "round-start").get_attribute("hidden"))
    WebDriverWait(driver, 15).until(lambda d: len(Select(d.find_element(By.ID, "new-category")).options) >= 10)
    ActionChains(driver).scroll_by_amount(0, 600).perform()
    WebDriverWait(driver, 5).until(lambda d: d.execute_script("return window.scrollY") > 0, "the page scrolls with the mouse wheel on a wide screen")
    driver.execute_script("window.scrollTo(0, 0)")

    _choose(driver, "round-kind", "cctv")
    driver.find_element(By.CSS_SELECTOR, "#round-start button[type=submit]").click()
    WebDriverWait(driver, 10).until(lambda d: "已开始：监控巡查" in _text(d, "#patrols-status"))
    api = httpx.Client(base_url=url, cookies={"hw_session": driver.get_cookie("hw_session")["value"]})
    [cctv] = [r for r in api.get("/api/patrols").json()["rounds"] if r["kind"] == "cctv" and not r["ended_at"]]
    assert cctv["officer"] == "patrol"
    WebDriverWait(driver, 10).until(lambda d: str(cctv["id"]) in [o.get_attribute("value") for o in Select(d.find_element(By.ID, "new-round")).options])

    # Recording needs a description; then it is a draft, in this round, at the top of the list.
    _choose(driver, "new-window", "w02")
    _choose(driver, "new-category", "phone")
    _choose(driver, "new-round", str(cctv["id"]))
    driver.find_element(By.CSS_SELECTOR, "#finding-new button[type=submit]").click()
    assert "请先填写理由" in _text(driver, "#new-error")
    driver.find_element(By.ID, "new-note").send_keys("监控画面中低头看手机约三分钟")
    driver.find_element(By.CSS_SELECTOR, "#finding-new button[type=submit]").click()
    WebDriverWait(driver, 10).until(lambda d: "已记录" in _text(d, "#findings-status"))
    first = driver.find_element(By.CSS_SELECTOR, "#finding-list [data-finding-id]")
    made = api.get(f"/api/findings/{first.get_attribute('data-finding-id')}").json()
    assert (made["window_id"], made["category"], made["status"], made["round_id"]) == ("w02", "phone", "draft", cctv["id"])
    assert "2号窗口" in first.text and "待确认" in first.text and "监控画面中低头看手机约三分钟" in first.text
    assert driver.find_element(By.ID, "new-note").get_attribute("value") == "", "the form is ready for the next one"

    # Finishing the CCTV round: it counts towards the week's CCTV patrol time.
    driver.find_element(By.CSS_SELECTOR, f'[data-round-id="{cctv["id"]}"] .round-finish').click()
    WebDriverWait(driver, 10).until(lambda d: "已结束" in _text(d, "#patrols-status"))
    assert api.get(f"/api/patrols/{cctv['id']}").json()["ended_at"], "finished"
