"""This round's screenshots, from real containers (as root):

    .venv/bin/python screenshots/make_recording.py

empty.svg (the first screen, 100x30, no container), recording.svg (a shell being recorded: REC on
its card) and exec-bash.svg (the exec key's second shell: bash, found in a host-view container).
The browser's is made by its test: ``RUSTAINER_BROWSER_SCREENSHOT=screenshots/browser.png pytest
tests/tui/test_browser.py``. A private RUSTAINER_ROOT; every container is removed at the end.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make import CLI, OUT, busybox_rootfs, keys  # noqa: E402


async def shoot(root: str) -> None:
    from rustainer.app.tui_app import create_app
    from rustainer.app.tui_stats import FrozenStats
    from rustainer.app.tui_views import ExecScreen
    from rustainer.widgets.terminal_pane import TerminalPane

    async def wait(pilot, predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
        end = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > end:
                raise SystemExit("timed out")
            await pilot.pause(0.05)

    app = create_app(root, stats=FrozenStats(), poll=False)
    async with app.run_test(size=(120, 32)) as pilot:
        def text() -> str:
            session = app.session_of(app.selected or "")
            return "\n".join(line.rstrip() for line in session.terminal.display) if session else ""

        await wait(pilot, lambda: len(app.attached) == 2 and "/ #" in text())
        await pilot.press("ctrl+right_square_bracket", "R")
        await wait(pilot, lambda: app.listed[app.selected or ""].state.recording)
        await pilot.press("escape")
        await pilot.press(*keys("echo this session is recorded; ls /bin | head -3"), "enter")
        await wait(pilot, lambda: "acpid" in text() or "[[" in text())
        await pilot.pause(0.5)
        app.save_screenshot(str(OUT / "recording.svg"))
        await pilot.press("ctrl+right_square_bracket", "R")
        await wait(pilot, lambda: not app.listed[app.selected or ""].state.recording)
        app.clear_notifications()
        await pilot.press("alt+2", "ctrl+right_square_bracket", "e")
        await wait(pilot, lambda: isinstance(app.screen, ExecScreen))
        pane = app.screen.query_one(TerminalPane)
        await wait(pilot, lambda: "#" in "\n".join(pane.terminal.display))
        await pilot.press(*keys("echo $BASH_VERSION; cat /etc/debian_version"), "enter")
        await wait(pilot, lambda: "\n".join(pane.terminal.display).count(".") >= 3)
        await pilot.pause(0.3)
        app.save_screenshot(str(OUT / "exec-bash.svg"))
        await pilot.press(*keys("exit"), "enter")
        await wait(pilot, lambda: not isinstance(app.screen, ExecScreen))
        await app.action_quit()


async def shoot_empty(root: str) -> None:
    from rustainer.app.tui_app import create_app
    from rustainer.app.tui_stats import FrozenStats

    app = create_app(root, stats=FrozenStats(), poll=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.5)
        app.save_screenshot(str(OUT / "empty.svg"))
        await app.action_quit()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="rustainer-shots-") as tmp:
        root = os.path.join(tmp, "root")
        os.environ["RUSTAINER_ROOT"] = root
        rootfs = busybox_rootfs(Path(tmp))
        try:
            asyncio.run(shoot_empty(root))
            subprocess.run([*CLI, "run", "--detach", "--name", "web", "--rootfs", str(rootfs), "-c", "0",
                            "-m", "128M", "--", "sh"], check=True, capture_output=True)
            subprocess.run([*CLI, "run", "--detach", "--name", "host", "-m", "256M", "--", "sh"],
                           check=True, capture_output=True)
            asyncio.run(shoot(root))
        finally:
            subprocess.run([*CLI, "rm", "-f", "web", "host"], capture_output=True)
            from rustainer.backend.supervisor import zygote

            zygote.stop(root)
    print("wrote empty.svg, recording.svg, exec-bash.svg")


if __name__ == "__main__":
    main()
