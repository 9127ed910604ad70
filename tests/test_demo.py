"""README command 1: the demo district (three halls) answers, opens on its overview, and its windows change state."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import httpx
import websockets
from mosquitto_proc import free_port
from procs import Proc, wait_for, wait_http


def test_demo_page_answers_and_windows_change_state(tmp_path: Path) -> None:
    port = free_port()
    demo = Proc(
        "demo",
        ["demo", "--port", str(port), "--broker-port", str(free_port()), "--data-dir", str(tmp_path / "demo"), "--speed", "120"],
        tmp_path,
    ).start()
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        wait_http(f"{base}/", demo, timeout=180)
        assert time.monotonic() - started < 180

        page = httpx.get(f"{base}/").text
        assert "<html" in page and 'lang="zh-CN"' in page
        for asset in re.findall(r'(?:src|href)="([^"]+)"', page):
            assert not asset.startswith(("http:", "https:", "//")), f"the page loads {asset} from outside the hall"
            assert httpx.get(f"{base}/{asset.lstrip('/')}").status_code == 200, asset

        listing = tmp_path / "demo" / "users.txt"
        assert listing.stat().st_mode & 0o077 == 0, "the demo's passwords are for its owner only"
        accounts = dict(line.split("\t")[:2] for line in listing.read_text().splitlines() if not line.startswith("#"))
        assert set(accounts) == {"admin", "office", "patrol", "lead", "viewer"}
        assert accounts["office"] in demo.log_path.read_text(), "printed once at the first start"
        assert httpx.get(f"{base}/api/windows").status_code == 401
        office, viewer = httpx.Client(base_url=base), httpx.Client(base_url=base)
        for client, name in ((office, "office"), (viewer, "viewer")):
            assert client.post("/api/session", json={"username": name, "password": accounts[name]}).status_code == 200
        halls = office.get("/api/halls").json()["halls"]
        assert len(halls) >= 3 and len({h["windows"] for h in halls}) == len(halls), "a district of halls of different sizes"
        assert f"{base}/district.html" in demo.log_path.read_text(), "the demo opens on the district overview"
        assert "区级总览" in httpx.get(f"{base}/district.html").text
        wait_for(lambda: all(r["devices"]["online"] for r in office.get("/api/district/overview").json()["halls"]), 60, "every hall's devices online")
        windows = office.get("/api/windows").json()
        assert len(windows) >= 12

        async def window_pushes() -> list[dict]:
            seen: list[dict] = []
            cookie = {"Cookie": f"hw_session={office.cookies['hw_session']}"}
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws", additional_headers=cookie) as socket:
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline and not {"staffed", "vacant"} <= {w["state"] for w in seen}:
                    frame = json.loads(await asyncio.wait_for(socket.recv(), 30))
                    seen += [message["window"] for message in frame if message["kind"] == "window"]
            return seen

        pushed = asyncio.run(window_pushes())
        states = {(w["id"], w["state"]) for w in pushed}
        assert len(states) >= 6, f"windows pushed over the WebSocket: {states}"
        assert {"staffed", "vacant"} <= {state for _, state in states}, "the hall opens, clerks sit and leave"
        alert = wait_for(lambda: office.get("/api/alerts", params={"active": "true"}).json(), 60, "a live alert")[0]
        assert alert["live"] and alert["source"], "an alert says which rule raised it and where the rule comes from"
        assert viewer.post(f"/api/alerts/{alert['id']}/ack").status_code == 403, "a viewer reads, never acknowledges"
        acked = office.post(f"/api/alerts/{alert['id']}/ack").json()
        assert (acked["state"], acked["acknowledged_by"]) == ("acknowledged", "office")
        devices = office.get("/api/devices").json()
        assert sum(d["status"] == "online" for d in devices) == 18
        wait_for(lambda: office.get("/api/stats").json()["accepted"] > 50, 30, "events stored")
        rated = wait_for(lambda: office.get("/api/ratings").json(), 60, "ratings of served tickets")
        assert rated[0]["ticket"] and rated[0]["origin"] == "device", "the queue gateway's tickets are rated"
        stats = office.get("/api/ratings/stats").json()
        assert stats["totals"]["rated"] >= 1 and stats["rows"], "satisfaction statistics per window"
        assert office.get("/api/work-orders").status_code == 200
    finally:
        demo.terminate()
    # uvicorn shuts down gracefully, then re-raises SIGTERM as its exit status.
    assert demo.popen is not None and demo.popen.returncode in (0, -15), demo.log()
