"""A webhook for queue-calling (叫号) and rating systems that push HTTP instead of speaking MQTT.

The source runs a small HTTP server on the gateway box.  The queue system
reports tickets called and finished, ratings, pauses and clerk logins; each
request is checked (bearer token, the window served by this device, every
field against the protocol model) and recorded in the agent's outbox, from
where it reaches the server like any device event.  The answer, ``202``,
says what was recorded; an error names the field and why, so the vendor's
integrator can fix their side without reading our code.

Why the protocol models are the request models: one definition of a rating
(``broker/protocol.py``), so the webhook can never accept what the server
would reject.  Why requests are handled one at a time: the logged-in clerk
per window and the idempotency keys are state, and a queue system sends a
few requests a second at most.

Retries: a queue system that timed out may resend.  With an
``Idempotency-Key`` header the resend gets the first answer again and
nothing is recorded twice (the last 1,024 keys, kept in memory).
"""

from __future__ import annotations

import hmac
import logging
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from agent.config import CONFIG_DIR, ConfigPath
from broker.key_files import read_key_file
from broker.protocol import ClerkLoginBody, Event, PauseBody, RatingBody, TicketBody

if TYPE_CHECKING:
    from agent.runtime import AgentRuntime

log = logging.getLogger(__name__)

MIN_TOKEN_LENGTH = 16
IDEMPOTENCY_KEYS = 1024
MAX_KEY_LENGTH = 200
GatewayBody = TicketBody | RatingBody | PauseBody | ClerkLoginBody


class PauseRequest(PauseBody):
    """A pause as the queue system reports it: the source is always the queue system."""

    source: Literal["queue"] = "queue"


class QueueWebhookOptions(BaseModel):
    """The ``queue_webhook`` source's keys in an agent file."""

    model_config = ConfigDict(extra="forbid")

    token_file: ConfigPath = Field(description="the bearer token, in a file only its owner can read (chmod 600)")
    host: IPv4Address | IPv6Address = IPv4Address("127.0.0.1")
    """Where to listen; the default takes requests from this box only.  Use the intranet address if the queue system runs elsewhere."""
    port: int = Field(default=8790, ge=1, le=65535)
    retry_s: float = Field(default=5.0, gt=0, le=300)
    """How often to try again when the port cannot be opened (still taken by an old process)."""


def read_token(path: Path) -> bytes:
    """The token in a 0600 file; ValueError (naming the file) for an unsafe, empty or short one."""
    token = read_key_file(path).strip()
    if len(token) < MIN_TOKEN_LENGTH or not all(0x21 <= b <= 0x7E for b in token):
        raise ValueError(f"{path}: the token must be at least {MIN_TOKEN_LENGTH} printable ASCII characters without spaces")
    return token


class QueueGateway:
    """The webhook's logic: who is logged in per window, what was recorded per idempotency key."""

    def __init__(self, windows: list[str], emit: Callable[[GatewayBody], Event | None], token: bytes, device_id: str) -> None:
        self.windows = frozenset(windows)
        self._emit = emit
        self._token = token
        self._device_id = device_id
        self._lock = threading.Lock()
        self._clerks: dict[str, str | None] = {}
        self._answers: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()

    def authorised(self, header: str | None) -> bool:
        scheme, _, presented = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), self._token)

    def record(self, body: GatewayBody, key: str | None, fingerprint: str) -> tuple[int, dict[str, Any]]:
        """Emit ``body`` once per idempotency key; the status and answer to send."""
        if body.window_id not in self.windows:
            raise HTTPException(403, f"window {body.window_id!r} is not served by device {self._device_id!r}")
        if key is not None and len(key) > MAX_KEY_LENGTH:
            raise HTTPException(400, f"Idempotency-Key longer than {MAX_KEY_LENGTH} characters")
        with self._lock:
            if key is not None and key in self._answers:
                seen, answer = self._answers[key]
                if seen != fingerprint:
                    raise HTTPException(409, "this Idempotency-Key was used for a different request")
                return 200, answer
            event = self._emit(self._with_clerk(body))
            if event is None:
                raise HTTPException(503, "the agent's outbox is full: not recorded, try again later")
            answer = {
                "recorded": event.type,
                "msg_id": str(event.msg_id),
                "seq": event.seq,
                "event_time": event.event_time.isoformat(),
                "body": event.body.model_dump(mode="json"),
            }
            if key is not None:
                self._answers[key] = (fingerprint, answer)
                while len(self._answers) > IDEMPOTENCY_KEYS:
                    self._answers.popitem(last=False)
            return 202, answer

    def _with_clerk(self, body: GatewayBody) -> GatewayBody:
        """Logins update the window's clerk; a rating or ticket without a clerk gets the one logged in."""
        if isinstance(body, ClerkLoginBody):
            self._clerks[body.window_id] = body.clerk_id
        elif isinstance(body, (RatingBody, TicketBody)) and body.clerk_id is None:
            return body.model_copy(update={"clerk_id": self._clerks.get(body.window_id)})
        return body

    def app(self) -> FastAPI:
        app = FastAPI(title="HallWatch queue webhook", docs_url=None, redoc_url=None, openapi_url=None)

        @app.middleware("http")
        async def require_token(request: Request, call_next: Callable[[Request], Any]) -> Any:
            # A middleware, not a dependency: it runs before the body is parsed,
            # so nobody without the token learns anything, not even a 422.
            if not self.authorised(request.headers.get("authorization")):
                return JSONResponse({"detail": "a valid bearer token is required"}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
            return await call_next(request)

        @app.exception_handler(RequestValidationError)
        async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
            errors = [_field_error(e) for e in exc.errors()]
            detail = "; ".join(f"{e['field']}: {e['error']}" for e in errors)
            return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

        def answer(body: GatewayBody, request: Request) -> JSONResponse:
            fingerprint = f"{request.url.path} {body.model_dump_json()}"
            status, content = self.record(body, request.headers.get("idempotency-key"), fingerprint)
            return JSONResponse(content, status_code=status)

        @app.get("/v1/health")
        def health() -> dict[str, Any]:
            return {"status": "ok", "device_id": self._device_id, "windows": sorted(self.windows)}

        @app.post("/v1/tickets", status_code=202)
        def ticket(body: TicketBody, request: Request) -> JSONResponse:
            return answer(body, request)

        @app.post("/v1/ratings", status_code=202)
        def rating(body: RatingBody, request: Request) -> JSONResponse:
            return answer(body, request)

        @app.post("/v1/pauses", status_code=202)
        def pause(body: PauseRequest, request: Request) -> JSONResponse:
            return answer(PauseBody(**body.model_dump()), request)

        @app.post("/v1/logins", status_code=202)
        def login(body: ClerkLoginBody, request: Request) -> JSONResponse:
            return answer(body, request)

        return app


def _field_error(error: dict[str, Any]) -> dict[str, str]:
    """``{"field": "cases.3", "error": "..."}`` from one pydantic error (a broken JSON text is the body's)."""
    if error["type"] == "json_invalid":
        return {"field": "body", "error": f"{error['msg']} at character {error['loc'][-1]}"}
    return {"field": ".".join(str(part) for part in error["loc"][1:]) or "body", "error": error["msg"]}


def _serve_until(server: uvicorn.Server, sock: socket.socket, stop: threading.Event) -> None:
    """Run uvicorn on ``sock`` in this thread until ``stop`` is set (or it ends on its own)."""
    done = threading.Event()

    def watch() -> None:
        while not (stop.wait(0.2) or done.is_set()):
            pass
        server.should_exit = True

    watcher = threading.Thread(target=watch, name="queue-webhook-stop", daemon=True)
    watcher.start()
    try:
        server.run(sockets=[sock])
    finally:
        done.set()
        watcher.join()
        sock.close()


def queue_webhook_source(config_dir: Path | None = None, **options: object) -> Callable[[AgentRuntime, threading.Event], None]:
    """Entry point ``hallwatch.sources: queue_webhook``: HTTP pushes → tickets, ratings, pauses, logins.

    The token file is read at agent start: a missing, unsafe (not 0600) or
    short token fails there, naming the file.
    """
    settings = QueueWebhookOptions.model_validate(options, context={CONFIG_DIR: config_dir})
    token = read_token(settings.token_file)
    where = f"{settings.host}:{settings.port}"

    def source(runtime: AgentRuntime, stop: threading.Event) -> None:
        device = runtime.device
        if device.kind != "queue_gateway":
            runtime.set_fault(f"配置错误 configuration: the queue webhook needs kind queue_gateway, not {device.kind}", part="webhook")
            log.error("queue webhook: device %s is a %s; only a queue_gateway may send tickets", device.device_id, device.kind)
            return
        app = QueueGateway(device.windows, runtime.emit, token, device.device_id).app()
        family = socket.AF_INET6 if settings.host.version == 6 else socket.AF_INET
        while not stop.is_set():
            try:
                sock = socket.create_server((str(settings.host), settings.port), family=family)
            except OSError as exc:
                runtime.set_fault(f"叫号接口无法监听 webhook cannot listen on {where}: {exc}"[:200], part="webhook")
                log.warning("queue webhook cannot listen on %s: %s; retrying in %.0f s", where, exc, settings.retry_s)
                stop.wait(settings.retry_s)
                continue
            runtime.set_fault(None, part="webhook")
            log.info("queue webhook listening on http://%s", where)
            config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2, server_header=False)
            _serve_until(uvicorn.Server(config), sock, stop)
            if not stop.is_set():
                runtime.set_fault(f"叫号接口已停止 webhook stopped on {where}; restarting", part="webhook")
                log.error("queue webhook on %s stopped by itself; restarting in %.0f s", where, settings.retry_s)
                stop.wait(settings.retry_s)

    return source
