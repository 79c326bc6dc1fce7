"""A small Chrome DevTools Protocol client for the browser test: headless Chromium started with a
private profile, one page driven over its websocket (aiohttp, which textual-serve brings)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """``async with Browser(tmp) as page``: headless Chromium, killed (its process group) at the end."""

    def __init__(self, profile: Path, size: tuple[int, int] = (1280, 800)) -> None:
        self.profile = profile
        self.size = size
        self.proc: subprocess.Popen[bytes] | None = None
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Page:
        assert CHROMIUM is not None, "chromium is not installed (the test set-up command installs it)"
        self.profile.mkdir(parents=True, exist_ok=True)
        (self.profile / "DevToolsActivePort").unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--metrics-recording-only",
             f"--user-data-dir={self.profile}", "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=0", f"--window-size={self.size[0]},{self.size[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            port = await self._devtools_port()
            self.session = aiohttp.ClientSession()
            async with self.session.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json(content_type=None)
            target = next(t for t in targets if t.get("type") == "page")
            ws = await self.session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=64 << 20)
        except BaseException:
            await self.__aexit__()
            raise
        return Page(ws)

    async def _devtools_port(self, timeout: float = 30.0) -> int:
        """Chromium writes the port it chose to DevToolsActivePort in its profile."""
        path = self.profile / "DevToolsActivePort"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.proc is not None and self.proc.poll() is None, "chromium exited at start"
            try:
                first = path.read_text().splitlines()[0]
                if first.isdigit():
                    return int(first)
            except (OSError, IndexError):
                pass
            await asyncio.sleep(0.05)
        raise AssertionError("chromium did not open its DevTools port")

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


class Page:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.frames = Frames()  # filled once Network is enabled

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        mid = next(self.ids)
        await self.ws.send_str(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), 60)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            data = json.loads(msg.data)
            self.frames.feed(data)
            if data.get("id") == mid:
                assert "error" not in data, (method, data["error"])
                result: dict[str, Any] = data.get("result", {})
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    async def navigate(self, url: str) -> None:
        await self.send("Page.enable")
        await self.send("Network.enable")
        await self.send("Page.navigate", url=url)

    async def pump(self, seconds: float) -> None:
        """Take in the events that come for ``seconds`` (the websocket frames among them)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                msg = await asyncio.wait_for(self.ws.receive(), left)
            except TimeoutError:
                return
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.frames.feed(json.loads(msg.data))

    async def click(self, x: int, y: int) -> None:
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    async def type_text(self, text: str) -> None:
        """Key by key, as a keyboard would (xterm.js reads keydown and keypress, not input events)."""
        for char in text:
            await self.send("Input.dispatchKeyEvent", type="keyDown", key=char, text=char, unmodifiedText=char)
            await self.send("Input.dispatchKeyEvent", type="keyUp", key=char)

    async def press_enter(self) -> None:
        for kind in ("keyDown", "keyUp"):
            await self.send("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter",
                            windowsVirtualKeyCode=13, nativeVirtualKeyCode=13,
                            **({"text": "\r"} if kind == "keyDown" else {}))

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))


def text_of(rows: str | None) -> str:
    return re.sub(r"[ \u00a0]+", " ", rows or "")


class Frames:
    """What the page's websockets received (``Network.webSocketFrameReceived``), as bytes."""

    def __init__(self) -> None:
        self.data = bytearray()

    def feed(self, event: dict[str, Any]) -> None:
        if event.get("method") != "Network.webSocketFrameReceived":
            return
        response = event["params"]["response"]
        payload = response.get("payloadData", "")
        self.data += base64.b64decode(payload) if response.get("opcode") == 2 else payload.encode()

    def text(self) -> str:
        """The received bytes with escape sequences taken out (what the terminal was told to print)."""
        plain = re.sub(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[@-Z\\-_]", b"", bytes(self.data))
        return plain.decode(errors="replace")
