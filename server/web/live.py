"""The live page's feed: what each ingest batch changed, pushed over the WebSocket ``/ws``.

The ingest thread hands each batch's changes to :meth:`Hub.publish`; every
open page has a bounded queue, and a page too slow to keep up is
disconnected (it reconnects and refetches) rather than slowing ingest down.
A batch goes out as **one frame**: a JSON array of its messages, in order.
One frame per message cost the server more than storing the events did
once a busy hall's batches reached hundreds of events (encoding, framing
and a send per message on the event loop, all under the ingest thread's
GIL).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from server.ingest.batch import Changes
from server.ingest.serialize import device_json, event_json, window_json
from server.users.authority import Authority


Frame = list[dict[str, Any]]
"""One batch's messages, sent together."""


class Hub:
    """Fans change messages out to WebSocket clients."""

    QUEUE_MAX = 200
    """Frames (batches) a page may fall behind by before it is disconnected."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.clients: set[asyncio.Queue[Frame | None]] = set()

    def publish(self, messages: Frame) -> None:
        if self.loop is not None and messages:
            self.loop.call_soon_threadsafe(self._fan_out, messages)

    def _fan_out(self, messages: Frame) -> None:
        for client in list(self.clients):
            try:
                client.put_nowait(messages)
            except asyncio.QueueFull:
                self.clients.discard(client)
                while not client.empty():
                    client.get_nowait()
                client.put_nowait(None)  # ends that client's socket


def change_messages(
    changes: Changes, device_statuses: Callable[[], dict[str, str]], counters: Callable[[], dict[str, Any]]
) -> list[dict[str, Any]]:
    """One batch's changes as the page's messages: devices, windows (with their camera's health),
    events, alerts, then the ingest counters."""
    cameras = device_statuses() if changes.windows else {}
    messages: list[dict[str, Any]] = [{"kind": "device", "device": device_json(d)} for d in changes.devices.values()]
    messages += [
        {"kind": "window", "window": window_json(w, cameras.get(w.camera_device or ""))} for w in changes.windows.values()
    ]
    messages += [{"kind": "event", "event": event_json(e)} for e in changes.events]
    messages += [{"kind": "alert", "alert": alert} for alert in changes.alerts]
    messages.append({"kind": "stats", "stats": counters()})
    return messages


def live_router(hub: Hub, authority: Authority) -> APIRouter:
    """``/ws``: a logged-in page receives every batch's change messages (one array per frame) until it closes.
    A user of another hall never gets this far: every route of a hall carries its hall scope (server/web/app.py)."""
    router = APIRouter()

    @router.websocket("/ws")
    async def websocket(socket: WebSocket) -> None:
        if await asyncio.to_thread(authority.identify, socket) is None:
            await socket.close(code=1008, reason="log in first")
            return
        await socket.accept()
        queue: asyncio.Queue[Frame | None] = asyncio.Queue(Hub.QUEUE_MAX)
        hub.clients.add(queue)

        async def forward() -> None:
            while (frame := await queue.get()) is not None:
                await socket.send_json(frame)

        async def until_closed() -> None:
            # The page sends nothing; listening is how a closed page (or the server shutting down)
            # is noticed at once rather than at the next message, which a quiet hall may not send.
            while (await socket.receive())["type"] != "websocket.disconnect":
                pass

        tasks = {asyncio.create_task(forward()), asyncio.create_task(until_closed())}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hub.clients.discard(queue)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                    await task  # the page went away

    return router
