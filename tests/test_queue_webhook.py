"""The queue-system webhook on a real uvicorn: what each request records, and what it refuses."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mosquitto_proc import free_port
from agent_sources import recorded, running
from procs import wait_for

from agent.config import AgentSettings, load_agent_settings
from agent.runtime import AgentRuntime
from agent.sources import load_sources
from broker.config_file import ConfigError
from sensors.queue_webhook import queue_webhook_source

TOKEN = "b7f3c0d9e2a14c6f8a5e1d2c3b4a5f60"


def make_runtime(tmp_path: Path, kind: str = "queue_gateway") -> AgentRuntime:
    """A real runtime whose outbox is in tmp_path; never connected (emit still commits to the outbox)."""
    settings = AgentSettings.model_validate(
        {
            "device": {"hall_id": "demo", "device_id": "qg-01", "kind": kind, "windows": ["w01", "w02"]},
            "outbox": {"path": str(tmp_path / "qg-01.db")},
        }
    )
    return AgentRuntime(settings)


def token_file(tmp_path: Path, text: str = TOKEN + "\n", mode: int = 0o600) -> Path:
    path = tmp_path / "webhook.token"
    path.write_text(text)
    path.chmod(mode)
    return path




class Gateway:
    def __init__(self, runtime: AgentRuntime, url: str) -> None:
        self.runtime = runtime
        self.url = url
        self.client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)

    def post(self, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
        return self.client.post(path, json=body, headers=headers)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v1/health", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    runtime = make_runtime(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(queue_webhook_source(token_file=str(token_file(tmp_path)), port=port), runtime):
        wait_for(lambda: _answers(url), 30, "the webhook to listen")
        assert runtime.fault is None
        gateway = Gateway(runtime, url)
        yield gateway
        gateway.client.close()
    with pytest.raises(httpx.ConnectError):  # stopped means the port is closed
        httpx.get(f"{url}/v1/health", timeout=2)
    runtime.outbox.close()


def test_each_endpoint_records_its_event_and_answers_with_it(gateway: Gateway) -> None:
    requests = [
        ("/v1/logins", {"window_id": "w01", "clerk_id": "c01"}),
        ("/v1/tickets", {"window_id": "w01", "ticket": "A023", "state": "called"}),
        ("/v1/ratings", {"window_id": "w01", "level": 5, "ticket": "A023", "cases": ["330802-2025-000481", "330802-2025-000482"]}),
        ("/v1/tickets", {"window_id": "w01", "ticket": "A023", "state": "finished", "clerk_id": "c02"}),
        ("/v1/pauses", {"window_id": "w01", "paused": True, "reason": "业务咨询"}),
        ("/v1/pauses", {"window_id": "w01", "paused": False}),
        ("/v1/logins", {"window_id": "w01", "clerk_id": None}),
        ("/v1/ratings", {"window_id": "w01", "level": 1}),
        ("/v1/ratings", {"window_id": "w02", "level": 2, "ticket": "B001"}),
    ]
    answers = []
    for path, body in requests:
        response = gateway.post(path, body)
        assert response.status_code == 202, response.text
        answers.append(response.json())
    expected = [
        ("clerk_login", {"window_id": "w01", "clerk_id": "c01"}),
        ("ticket", {"window_id": "w01", "ticket": "A023", "state": "called", "clerk_id": "c01", "cases": []}),  # the clerk logged in
        ("rating", {"window_id": "w01", "level": 5, "clerk_id": "c01", "ticket": "A023", "cases": ["330802-2025-000481", "330802-2025-000482"]}),
        ("ticket", {"window_id": "w01", "ticket": "A023", "state": "finished", "clerk_id": "c02", "cases": []}),  # the clerk the system named
        ("pause", {"window_id": "w01", "paused": True, "source": "queue", "reason": "业务咨询"}),
        ("pause", {"window_id": "w01", "paused": False, "source": "queue", "reason": None}),
        ("clerk_login", {"window_id": "w01", "clerk_id": None}),
        ("rating", {"window_id": "w01", "level": 1, "clerk_id": None, "ticket": None, "cases": []}),  # after the logout: nobody
        ("rating", {"window_id": "w02", "level": 2, "clerk_id": None, "ticket": "B001", "cases": []}),
    ]
    assert recorded(gateway.runtime) == expected
    assert [(a["recorded"], a["body"]) for a in answers] == expected
    pending = gateway.runtime.outbox.pending(after_row=0, limit=100)
    assert [a["msg_id"] for a in answers] == [str(p.event.msg_id) for p in pending]
    assert [a["seq"] for a in answers] == [p.event.seq for p in pending]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-wrong-token!!"}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Bearer {TOKEN}x"}],
)
def test_without_the_token_nothing_is_recorded_and_nothing_is_said(gateway: Gateway, headers: dict[str, str]) -> None:
    for method, path, body in [
        ("POST", "/v1/ratings", {"window_id": "w01", "level": 5}),
        ("POST", "/v1/ratings", {"level": 6}),  # invalid too: still 401, not a 422 describing the schema
        ("GET", "/v1/health", None),
        ("GET", "/docs", None),
    ]:
        response = httpx.request(method, gateway.url + path, json=body, headers=headers, timeout=10)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
    assert recorded(gateway.runtime) == []


def test_a_window_this_device_does_not_serve_is_forbidden(gateway: Gateway) -> None:
    response = gateway.post("/v1/ratings", {"window_id": "w09", "level": 5})
    assert response.status_code == 403
    assert response.json()["detail"] == "window 'w09' is not served by device 'qg-01'"
    assert gateway.post("/v1/logins", {"window_id": "w03", "clerk_id": "c01"}).status_code == 403
    assert recorded(gateway.runtime) == []


@pytest.mark.parametrize(
    ("path", "body", "field", "why"),
    [
        ("/v1/ratings", {"window_id": "w01", "level": 6}, "level", "less than or equal to 5"),
        ("/v1/ratings", {"window_id": "w01", "level": 0}, "level", "greater than or equal to 1"),
        ("/v1/ratings", {"window_id": "w01", "level": "five"}, "level", "valid integer"),
        ("/v1/ratings", {"window_id": "w01", "level": 5, "cases": ["x"] * 51}, "cases", "at most 50"),
        ("/v1/ratings", {"window_id": "w01", "level": 5, "stars": 5}, "stars", "Extra inputs are not permitted"),
        ("/v1/tickets", {"window_id": "w01", "state": "called"}, "ticket", "Field required"),
        ("/v1/tickets", {"window_id": "w01", "ticket": "A023", "state": "served"}, "state", "'called' or 'finished'"),
        ("/v1/tickets", {"window_id": "W01", "ticket": "A023", "state": "called"}, "window_id", "should match pattern"),
        ("/v1/pauses", {"window_id": "w01"}, "paused", "Field required"),
        ("/v1/pauses", {"window_id": "w01", "paused": True, "source": "button"}, "source", "'queue'"),
        ("/v1/pauses", {"window_id": "w01", "paused": True, "reason": "x" * 201}, "reason", "at most 200 characters"),
        ("/v1/logins", {"window_id": "w01"}, "clerk_id", "Field required"),
        ("/v1/logins", {"window_id": "w01", "clerk_id": "张三"}, "clerk_id", "should match pattern"),
    ],
)
def test_an_invalid_field_is_named_with_the_reason(gateway: Gateway, path: str, body: dict[str, Any], field: str, why: str) -> None:
    response = gateway.post(path, body)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field]
    assert why in errors[0]["error"]
    assert response.json()["detail"].startswith(f"{field}: ")
    assert recorded(gateway.runtime) == []


def test_a_body_that_is_not_json_is_named_as_the_body(gateway: Gateway) -> None:
    response = gateway.client.post("/v1/ratings", content=b'{"window_id": "w01", ', headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "body", "error": "JSON decode error at character 21"}]
    assert recorded(gateway.runtime) == []


def test_a_resent_request_with_the_same_idempotency_key_is_recorded_once(gateway: Gateway) -> None:
    body = {"window_id": "w01", "level": 4, "ticket": "A030"}
    first = gateway.post("/v1/ratings", body, **{"Idempotency-Key": "qs-778812"})
    again = gateway.post("/v1/ratings", body, **{"Idempotency-Key": "qs-778812"})
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == first.json()
    other = gateway.post("/v1/ratings", {**body, "level": 5}, **{"Idempotency-Key": "qs-778812"})
    assert other.status_code == 409
    assert gateway.post("/v1/ratings", body).status_code == 202  # without a key every request counts
    assert [b["level"] for _, b in recorded(gateway.runtime)] == [4, 4]


def test_a_taken_port_is_a_fault_until_it_is_free(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path)
    blocker = socket.create_server(("127.0.0.1", 0))
    port = blocker.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    try:
        with running(queue_webhook_source(token_file=str(token_file(tmp_path)), port=port, retry_s=0.1), runtime):
            wait_for(lambda: (runtime.fault or "").startswith(f"叫号接口无法监听 webhook cannot listen on 127.0.0.1:{port}"), 10, "the fault")
            blocker.close()
            wait_for(lambda: _answers(url), 30, "the webhook to listen")
            assert runtime.fault is None
    finally:
        blocker.close()
        runtime.outbox.close()


def test_a_device_that_is_not_a_queue_gateway_is_a_configuration_fault(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path, kind="evaluator")
    try:
        queue_webhook_source(token_file=str(token_file(tmp_path)), port=free_port())(runtime, threading.Event())  # returns at once
        assert runtime.fault == "配置错误 configuration: the queue webhook needs kind queue_gateway, not evaluator"
    finally:
        runtime.outbox.close()


def test_an_unsafe_or_weak_token_file_fails_at_start_naming_it(tmp_path: Path) -> None:
    def settings(**source: Any) -> AgentSettings:
        return AgentSettings.model_validate(
            {
                "device": {"hall_id": "demo", "device_id": "qg-01", "kind": "queue_gateway", "windows": ["w01"]},
                "outbox": {"path": str(tmp_path / "qg.db")},
                "sources": [{"kind": "queue_webhook", **source}],
            }
        )

    path = token_file(tmp_path)
    assert len(load_sources(settings(token_file=str(path), host="0.0.0.0", port=8790))) == 1
    cases = [
        (lambda: token_file(tmp_path, mode=0o644), "readable or writable by others"),
        (lambda: token_file(tmp_path, text="short\n"), "at least 16 printable ASCII characters"),
        (lambda: token_file(tmp_path, text="two words that are long enough\n"), "without spaces"),
        (lambda: tmp_path / "absent.token", "cannot read the key file"),
    ]
    for make, words in cases:
        bad = make()
        with pytest.raises(ConfigError, match=rf"(?s)sources\[0\] \(queue_webhook\): {bad}: .*{words}"):
            load_sources(settings(token_file=str(bad)))
    with pytest.raises(ConfigError, match=r"(?s)sources\[0\] \(queue_webhook\):.*host"):
        load_sources(settings(token_file=str(path), host="hall-gateway.local"))


def test_a_relative_token_file_is_taken_from_the_agent_files_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """systemd starts the agent in /; `token_file = "webhook.token"` still means the one beside the agent file."""
    folder = tmp_path / "etc-hallwatch"
    folder.mkdir()
    token_file(folder)
    agent_file = folder / "qg-01.toml"
    agent_file.write_text(
        '[device]\nhall_id = "demo"\ndevice_id = "qg-01"\nkind = "queue_gateway"\nwindows = ["w01"]\n'
        '[outbox]\npath = "qg-01.db"\n'
        '[[sources]]\nkind = "queue_webhook"\ntoken_file = "webhook.token"\n',
        encoding="utf-8",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_agent_settings(agent_file)
    assert settings.config_dir == folder.resolve()
    assert len(load_sources(settings)) == 1, "found beside the agent file, not in the working directory"
    (folder / "webhook.token").unlink()
    with pytest.raises(ConfigError, match=rf"sources\[0\] \(queue_webhook\): {folder.resolve() / 'webhook.token'}"):
        load_sources(settings)
