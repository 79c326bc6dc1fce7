"""Regenerate the dashboard's screenshots from real containers (as root):

    .venv/bin/python screenshots/make.py

A private RUSTAINER_ROOT and a busybox rootfs in a temporary folder, three detached shells, the app
headless at 120x32 with frozen stats; every container is removed at the end.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent
CLI = [sys.executable, "-m", "rustainer.app.cli"]


def busybox_rootfs(base: Path) -> Path:
    busybox = shutil.which("busybox")
    if busybox is None:
        sys.exit("busybox-static is needed (apt-get install busybox-static)")
    root = base / "busybox"
    for d in ("bin", "etc", "tmp", "root", "proc", "sys", "dev"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    for applet in subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split():
        if not (root / "bin" / applet).exists():
            (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    return root


def keys(text: str) -> list[str]:
    return [{" ": "space"}.get(c, c) for c in text]


async def shoot(root: str) -> None:
    from textual.widgets import Input, Select

    from rustainer.app.tui_app import create_app
    from rustainer.app.tui_stats import FrozenStats

    app = create_app(root, stats=FrozenStats(), poll=False)

    async def wait(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
        end = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > end:
                raise SystemExit("timed out")
            await pilot.pause(0.05)

    def text() -> str:
        session = app.session_of(app.selected or "")
        return "\n".join(line.rstrip() for line in session.terminal.display) if session else ""

    async with app.run_test(size=(120, 32)) as pilot:
        await wait(lambda: len(app.attached) == 3)
        await wait(lambda: "/ #" in text())  # attached: the pane shows the shell's screen
        await pilot.press(*keys("echo hello from web"), "enter")
        await wait(lambda: "hello from web\n" in text())
        await pilot.press("ctrl+pagedown")
        await wait(lambda: "/ #" in text())
        # a window title (OSC 2), shown in the pane's title bar next to the name
        await pilot.press(*keys("printf '\\033]2;%s\\007' 'listing /bin'"), "enter")
        await wait(lambda: app.terminal_view.title == "listing /bin")
        await pilot.press(*keys("ls /bin | head -5"), "enter")
        await wait(lambda: "[[" in text() or "acpid" in text())
        await pilot.pause(0.3)
        app.save_screenshot(str(OUT / "dashboard.svg"))
        # db rings the bell in a while; meanwhile web prints a log, searched with a regex (the bell
        # shows on db's card and as a notification), copy mode, then the ? screen
        await pilot.press(*keys("sleep 2; printf 'backup done\\a\\n'"), "enter")
        await pilot.press("ctrl+pageup")
        await wait(lambda: "hello from web" in text())
        await pilot.press(*keys("clear; i=0; while [ $i -lt 300 ]; do i=$((i+1)); if [ $((i % 7)) = 0 ]; "
                                "then echo \"GET /api/items/$i 500 error: timeout\"; "
                                "else echo \"GET /api/items/$i 200 $((i % 97)) ms\"; fi; done"), "enter")
        await wait(lambda: "items/300 " in text())
        await wait(lambda: "bell" in str(app.container_list().cards()[1].badges))  # type: ignore[union-attr]
        await pilot.press("ctrl+right_square_bracket", "slash", "alt+r", *keys("50{1,2} error"), "up")
        await pilot.pause(0.5)
        for box in app.screen.query(Input):
            box.cursor_blink = False
        app.save_screenshot(str(OUT / "search.svg"))
        await pilot.press("enter", "k", "0", "v", "j", "$")
        await pilot.pause(0.3)
        app.save_screenshot(str(OUT / "copy-mode.svg"))
        await pilot.press("y")
        app.clear_notifications()
        await pilot.press("ctrl+right_square_bracket", "question_mark")
        await pilot.pause(0.5)
        app.save_screenshot(str(OUT / "help.svg"))
        await pilot.press("escape", "escape")
        await pilot.pause(0.2)
        await pilot.press(*keys("top"), "enter")
        await wait(lambda: "Mem:" in text())
        await pilot.pause(0.5)
        app.save_screenshot(str(OUT / "top.svg"))
        await pilot.press("q")
        await pilot.press("ctrl+right_square_bracket", "l")
        await pilot.pause(0.5)
        app.save_screenshot(str(OUT / "logs.svg"))
        await pilot.press("escape", "n")
        await pilot.pause(0.3)
        app.screen.query_one("#field-name", Input).value = "cache"
        app.screen.query_one("#field-image", Select).value = "docker.io/library/busybox:latest"
        app.screen.query_one("#field-memory", Input).value = "64M"
        await pilot.pause(0.3)
        app.save_screenshot(str(OUT / "new-container.svg"))
        await pilot.press("escape")
        await pilot.pause(0.3)
        # the overview (o): every running container's screen as a live tile; top running in db
        await pilot.press("alt+2")
        await wait(lambda: "/ #" in text())
        await pilot.press(*keys("top"), "enter")
        await wait(lambda: "Mem:" in text())
        await pilot.press("ctrl+right_square_bracket", "o")
        await wait(lambda: app.screen.query("Overview"))
        await pilot.pause(1.0)
        app.save_screenshot(str(OUT / "overview.svg"))
        await pilot.press("escape")
        # the split (|): web and db side by side, each pane live and interactive
        await pilot.pause(0.3)
        await pilot.press("alt+1", "ctrl+right_square_bracket", "vertical_line")
        await wait(lambda: app.split_view is not None)
        await pilot.pause(1.0)
        app.save_screenshot(str(OUT / "split.svg"))
        # broadcast input (m, B): web and job marked, one command typed once runs in both
        await pilot.press("alt+3")  # job takes db's pane (the active one)
        await wait(lambda: app.split_view is not None and "job" in app.split_view.names())
        await pilot.press("ctrl+right_square_bracket", "m", "w")  # job marked, the focus into web's pane
        await pilot.press("ctrl+right_square_bracket", "m", "B", "escape")
        await pilot.press(*keys("echo $(hostname) got it"), "enter")
        job = app.session_of(app.listed_id("job") or "")
        await wait(lambda: "web got it\n" in text() and job is not None and "job got it" in "\n".join(
            job.terminal.display).replace("$(hostname)", ""))
        await pilot.pause(0.5)
        app.save_screenshot(str(OUT / "broadcast.svg"))
        await pilot.press("ctrl+right_square_bracket", "B", "u")  # broadcast off, back to the single view
        await wait(lambda: app.split_view is None)
        await pilot.press("ctrl+right_square_bracket", "m", "alt+3", "ctrl+right_square_bracket", "m")  # unmarked
        await wait(lambda: not app.marked)
        # a container that ends while it is shown: the note says how, above its last screen, and
        # the keys go to the list (its footer: every action on the selected container)
        await pilot.pause(0.3)
        await pilot.press("alt+3")
        await wait(lambda: "/ #" in text())
        await pilot.press(*keys("echo building; echo 'step 2 of 3 failed' >&2; exit 3"), "enter")
        await wait(lambda: app.screen.query_one("#panes").current == "note")
        await pilot.pause(0.5)
        app.save_screenshot(str(OUT / "ended.svg"))
        await app.action_quit()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="rustainer-shots-") as tmp:
        root = os.path.join(tmp, "root")
        os.environ["RUSTAINER_ROOT"] = root
        rootfs = busybox_rootfs(Path(tmp))
        try:
            for name, cpus, mem in (("web", "0", "128M"), ("db", "1", "256M"), ("job", "0-1", "64M")):
                subprocess.run([*CLI, "run", "--detach", "--name", name, "--rootfs", str(rootfs), "-c", cpus,
                                "-m", mem, "--", "sh"], check=True, capture_output=True)
            # a local image, offered by the new-container dialog: the same busybox as a rootfs tarball
            tarball = os.path.join(tmp, "busybox.tar")
            with tarfile.open(tarball, "w") as tar:
                tar.add(rootfs, arcname=".")
            subprocess.run([*CLI, "image", "import", tarball, "busybox"], check=True, capture_output=True)
            asyncio.run(shoot(root))
        finally:
            subprocess.run([*CLI, "rm", "-f", "web", "db", "job"], capture_output=True)
            from rustainer.backend.supervisor import zygote

            zygote.stop(root)  # the root goes with the temporary folder: so does its launcher
    print("wrote", ", ".join(sorted(p.name for p in OUT.glob("*.svg"))))


if __name__ == "__main__":
    main()
