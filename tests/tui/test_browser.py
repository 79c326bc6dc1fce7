"""``rustainer-tui --serve`` in a real browser (root): headless Chromium (Debian's ``chromium``) opens
the page with its token, the list and a live shell of a real container render, typed keys reach the
shell; the page, the assets and the websocket are refused without the token; the server listens on
127.0.0.1 only. The page's screenshot is kept (``RUSTAINER_BROWSER_SCREENSHOT=PATH`` keeps it there:
that is how screenshots/browser.png is made)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import psutil
import pytest
from cdp import CHROMIUM, Browser

pytestmark = pytest.mark.root


@pytest.fixture
def server(rroot: Path) -> Iterator[tuple[str, int, str]]:
    """``rustainer-tui --serve --port 0``: (its URL with the token, its port, the token); the server
    and the dashboards it started are ended with it (one process group)."""
    proc = subprocess.Popen([sys.executable, "-m", "rustainer.app.tui", "--serve", "--port", "0", "--root", str(rroot)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/([A-Za-z0-9_-]{32})/", line)
        assert found, line
        yield found.group(0), int(found.group(1)), found.group(2)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in _group_members(proc.pid):  # the dashboards it ran, if any outlived it
            os.kill(pid, signal.SIGKILL)


def _group_members(pgid: int) -> list[int]:
    members = []
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(p.pid) == pgid:
                members.append(p.pid)
        except ProcessLookupError:
            pass
    return members


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url), timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


def test_without_the_token_everything_is_refused(server: tuple[str, int, str]) -> None:
    url, port, token = server
    base = f"http://127.0.0.1:{port}"
    assert status(url) == 200
    assert status(f"{url}static/js/textual.js") == 200
    other = "y" if token.endswith("x") else "x"  # the last character changed (a token may end in x: a CI run's did)
    for path in ("/", "/ws", "/static/js/textual.js", f"/{token[:-1]}/", f"/{token[:-1]}{other}/", f"/{token}x/",
                 f"/x/{token}/", f"/?token={token}"):
        assert status(base + path) == 403, path
    assert status(f"{base}/{token}") == 200  # redirected to /TOKEN/
    # the websocket too
    async def handshake(path: str) -> int:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(f"ws://127.0.0.1:{port}{path}?width=80&height=24"):
                    return 101
            except aiohttp.WSServerHandshakeError as err:
                return err.status
    assert asyncio.run(handshake("/ws")) == 403
    assert asyncio.run(handshake(f"/{token[::-1]}/ws")) == 403
    # bound to the loopback address only
    listening = [c.laddr for c in psutil.net_connections("tcp") if c.status == "LISTEN" and c.laddr.port == port]
    assert [a.ip for a in listening] == ["127.0.0.1"], listening
    # the page asks nothing of another host (its script, stylesheet and fonts come from here)
    with urllib.request.urlopen(url, timeout=10) as resp:
        page = resp.read().decode()
    assert not re.search(r"(src|href)=\"(https?:)?//", page), page
    assert "fonts.googleapis" not in page


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (the test set-up command installs it)")
def test_the_dashboard_in_chromium(server: tuple[str, int, str], containers,  # type: ignore[no-untyped-def]
                                   busybox_rootfs: Path, cli, tmp_path: Path) -> None:
    url, _, _ = server
    containers("web", "--rootfs", str(busybox_rootfs), "-m", "64M", "--", "sh")
    shot = tmp_path / "browser.png"

    async def scenario() -> None:
        async with Browser(tmp_path / "profile") as page:
            await page.navigate(url)
            await until(page, lambda text: "web" in text and "● running" in text and "#" in text,
                        "the list and the shell's prompt drawn in the page")
            await page.send("Page.bringToFront")
            await page.click(900, 300)  # into the terminal pane
            await page.evaluate("document.querySelector('.xterm-helper-textarea').focus()")
            await page.type_text("echo from-the-browser-$((6*7))")
            await page.press_enter()
            await until(page, lambda text: "from-the-browser-42" in text, "the shell's answer drawn in the page")
            await page.screenshot(shot)

    asyncio.run(scenario())
    assert "from-the-browser-42" in cli("logs", "web").stdout  # the keys reached the container's shell
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    keep = os.environ.get("RUSTAINER_BROWSER_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)


async def until(page, predicate, what: str, timeout: float = 45.0) -> None:  # type: ignore[no-untyped-def]
    """Take in the page's websocket frames until what they drew satisfies ``predicate``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate(page.frames.text()):
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}: {page.frames.text()[-1500:]!r}")
        await page.pump(0.2)


def test_an_address_that_cannot_be_had_is_one_line(server: tuple[str, int, str]) -> None:
    _, port, _ = server
    tui = [sys.executable, "-m", "rustainer.app.tui"]
    taken = subprocess.run([*tui, "--serve", "--port", str(port)], capture_output=True, text=True, timeout=30)
    assert taken.returncode == 1 and taken.stdout == ""
    assert taken.stderr == f"rustainer-tui: cannot serve on 127.0.0.1:{port}: Address already in use\n"
    stray = subprocess.run([*tui, "--port", "9"], capture_output=True, text=True, timeout=30)
    assert stray.returncode == 2 and "--host and --port go with --serve" in stray.stderr
