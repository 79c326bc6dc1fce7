"""The terminal pane against real detached containers, headless (Textual's run_test and Pilot)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.color import Color
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Input

from rustainer.backend.container.state import StateStore
from rustainer.widgets.terminal_pane import TerminalPane

pytestmark = pytest.mark.root


class PaneApp(App[None]):
    CSS = "TerminalPane { width: 60; height: 17; }"  # a title bar and 16 lines of terminal

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Any] = []

    def compose(self) -> ComposeResult:
        yield TerminalPane(id="pane")
        yield Input(id="other")  # something Tab could move the focus to

    def on_terminal_pane_exited(self, event: TerminalPane.Exited) -> None:
        self.events.append(("exited", event.code))

    def on_terminal_pane_title_changed(self, event: TerminalPane.TitleChanged) -> None:
        self.events.append(("title", event.title))


async def until(pilot: Pilot[None], predicate: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def screen_text(pane: TerminalPane) -> str:
    return "\n".join(pane.terminal.display)


async def type_text(pilot: Pilot[None], text: str) -> None:
    await pilot.press(*[{" ": "space"}.get(c, c) for c in text])


@pytest.fixture
def container(cli, busybox_rootfs: Path, rroot: Path) -> Iterator[Callable[[str], str]]:  # type: ignore[no-untyped-def]
    """Start detached busybox shells; returns a starter giving the attach socket path."""
    names: list[str] = []

    def start(name: str) -> str:
        cli("run", "--detach", "--name", name, "--rootfs", str(busybox_rootfs), "--", "sh", check_rc=0)
        names.append(name)
        states = {s["name"]: s for s in json.loads(cli("ps", "-a", "--format", "json", check_rc=0).stdout)}
        return StateStore(str(rroot)).socket_path(states[name]["id"])

    try:
        yield start
    finally:
        for name in names:
            cli("rm", "-f", name)


def run(scenario: Callable[[PaneApp, Pilot[None], TerminalPane], Awaitable[None]]) -> PaneApp:
    app = PaneApp()

    async def main() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(TerminalPane)
            pane.focus()
            await pilot.pause()
            await scenario(app, pilot, pane)

    asyncio.run(main())
    return app


async def command(pilot: Pilot[None], pane: TerminalPane, text: str, expect: str) -> None:
    """Type a command line and wait for ``expect`` in its output (not in the echoed command)."""
    await type_text(pilot, text)
    await pilot.press("enter")
    await until(pilot, lambda: expect in screen_text(pane).replace(text, ""), repr(expect))


async def shell(pilot: Pilot[None], pane: TerminalPane, text: str, expect: str) -> None:
    """Like :func:`command`, faster: the line goes in as one paste-like write, not key by key."""
    pane.send(text.encode() + b"\r")
    await until(pilot, lambda: expect in screen_text(pane).replace(text, ""), repr(expect))


async def prompt(pilot: Pilot[None], pane: TerminalPane) -> None:
    """The shell is back at its prompt (output of the last command all arrived)."""
    term = pane.terminal
    await until(pilot, lambda: term.display[term.cursor[1]].startswith("/ # "), "prompt")


def strip_text(pane: TerminalPane, y: int) -> str:
    return "".join(segment.text for segment in pane.render_line(y))


def test_typed_command_runs_and_its_output_shows(container) -> None:  # type: ignore[no-untyped-def]
    sock = container("a")

    async def scenario(app: PaneApp, pilot: Pilot[None], pane: TerminalPane) -> None:
        await pane.attach_socket(sock)
        await type_text(pilot, "echo hi-$((6*7))")
        await pilot.press("enter")
        await until(pilot, lambda: "hi-42" in screen_text(pane).replace("hi-$((6*7))", ""), "hi-42")
        # What is drawn is what the core holds (the frame clock caught up).
        await until(pilot, lambda: any("hi-42" in strip_text(pane, y) and "echo" not in strip_text(pane, y)
                                       for y in range(pane.terminal.lines)), "hi-42 drawn")
        await pane.detach()

    run(scenario)


def test_colours_and_attributes_reach_the_rendered_strips(container) -> None:  # type: ignore[no-untyped-def]
    sock = container("a")

    async def scenario(app: PaneApp, pilot: Pilot[None], pane: TerminalPane) -> None:
        await pane.attach_socket(sock)
        await shell(pilot, pane, r"printf '\033[31mred\033[0m \033[1;38;5;208mhot\033[0m \033[48;2;1;2;3mrgb\033[0m\n'",
                    "red hot rgb")
        await until(pilot, lambda: any("red hot rgb" in strip_text(pane, y) for y in range(16)), "drawn")
        segments = [s for y in range(pane.terminal.lines) for s in pane.render_line(y)]
        styles = {s.text: s.style for s in segments if s.text in ("red", "hot", "rgb")}
        assert styles["red"] is not None and styles["red"].color == Color.from_ansi(1)
        assert styles["hot"] is not None and styles["hot"].bold
        assert styles["hot"].color is not None and styles["hot"].color.get_truecolor() == (0xFF, 0x87, 0x00)
        assert styles["rgb"] is not None and styles["rgb"].bgcolor == Color.from_rgb(1, 2, 3)
        await pane.detach()

    run(scenario)


def test_resizing_the_pane_resizes_the_containers_terminal(container) -> None:  # type: ignore[no-untyped-def]
    sock = container("a")

    async def scenario(app: PaneApp, pilot: Pilot[None], pane: TerminalPane) -> None:
        await pane.attach_socket(sock)
        assert (pane.terminal.columns, pane.terminal.lines) == (60, 16)
        assert (pane.region.width, pane.region.height) == (60, 17)  # the title bar is not the pty's
        await shell(pilot, pane, "stty size", "16 60")
        pane.styles.width = 50
        pane.styles.height = 13
        await until(pilot, lambda: pane.terminal.columns == 50 and pane.terminal.lines == 12, "resize")
        await shell(pilot, pane, "clear; stty size", "12 50")
        await pane.detach()

    run(scenario)


def test_application_cursor_mode_changes_the_arrow_bytes(container) -> None:  # type: ignore[no-untyped-def]
    sock = container("a")

    async def scenario(app: PaneApp, pilot: Pilot[None], pane: TerminalPane) -> None:
        await pane.attach_socket(sock)
        await shell(pilot, pane, r"printf '\033[?1h'; cat -v", "")
        await until(pilot, lambda: pane.terminal.modes.application_cursor, "DECCKM on")
        await pilot.press("up", "enter")
        await until(pilot, lambda: "^[OA" in screen_text(pane), "^[OA")
        await pilot.press("ctrl+c")
        await shell(pilot, pane, "clear; printf '\\033[?1l'; cat -v", "")
        await until(pilot, lambda: not pane.terminal.modes.application_cursor, "DECCKM off")
        await pilot.press("up", "enter")
        await until(pilot, lambda: "^[[A" in screen_text(pane), "^[[A")
        await pilot.press("ctrl+c")
        await pane.detach()

    run(scenario)


def test_tab_goes_to_the_shell_and_keeps_the_focus(container) -> None:  # type: ignore[no-untyped-def]
    sock = container("a")

    async def scenario(app: PaneApp, pilot: Pilot[None], pane: TerminalPane) -> None:
        await pane.attach_socket(sock)
        await shell(pilot, pane, "od -c", "")
        await pilot.press("tab", "enter", "ctrl+d")
        await until(pilot, lambda: "\\t  \\n" in screen_text(pane), "od's dump of a tab")
        assert app.focused is pane
        await pane.detach()

    run(scenario)


def test_detach_leaves_the_container_running_and_a_new_pane_sees_its_screen(cli, container) -> None:  # type: ignore[no-untyped-def]
    sock = container("a")

    async def first(app: PaneApp, pilot: Pilot[None], pane: TerminalPane) -> None:
        await pane.attach_socket(sock)
        await shell(pilot, pane, "echo before-$((1+1))", "before-2")
        await pane.detach()
        assert not pane.attached

    app = run(first)
    assert ("exited", None) not in app.events and not any(e[0] == "exited" for e in app.events)
    states = {s["name"]: s for s in json.loads(cli("ps", "-a", "--format", "json", check_rc=0).stdout)}
    assert states["a"]["status"] == "running"

    async def second(app: PaneApp, pilot: Pilot[None], pane: TerminalPane) -> None:
        await pane.attach_socket(sock)
        assert "before-2" in screen_text(pane)  # restored from the supervisor's snapshot
        await shell(pilot, pane, "echo after-$((2+1))", "after-3")
        await pane.detach()

    run(second)


def test_exited_is_posted_with_the_exit_code(container) -> None:  # type: ignore[no-untyped-def]
    sock = container("a")

    async def scenario(app: PaneApp, pilot: Pilot[None], pane: TerminalPane) -> None:
        await pane.attach_socket(sock)
        await type_text(pilot, "exit 3")
        await pilot.press("enter")
        await until(pilot, lambda: any(e[0] == "exited" for e in app.events), "Exited")
        assert ("exited", 3) in app.events
        assert not pane.attached

    run(scenario)


def test_title_changes_are_posted_and_shown_on_the_border(container) -> None:  # type: ignore[no-untyped-def]
    sock = container("a")

    async def scenario(app: PaneApp, pilot: Pilot[None], pane: TerminalPane) -> None:
        await pane.attach_socket(sock)
        await shell(pilot, pane, r"printf '\033]0;my-title\007'", "")
        await until(pilot, lambda: ("title", "my-title") in app.events, "TitleChanged")
        assert pane.title == "my-title" and (pane.border_title or "").strip() == "my-title"
        await pane.detach()

    run(scenario)


def test_scrollback_with_shift_pageup_and_back_to_live_on_input(container) -> None:  # type: ignore[no-untyped-def]
    sock = container("a")

    async def scenario(app: PaneApp, pilot: Pilot[None], pane: TerminalPane) -> None:
        await pane.attach_socket(sock)
        await shell(pilot, pane, "seq 1001 1100", "1100")
        await prompt(pilot, pane)
        await until(pilot, lambda: any("1100" in strip_text(pane, y) for y in range(16)), "1100 drawn")
        live_top = strip_text(pane, 0).strip()
        await pilot.press("shift+pageup")
        assert pane.scrollback == 15
        await pilot.pause()
        top = strip_text(pane, 0).strip()
        assert top.isdigit() and int(top) == int(live_top) - 15, (top, live_top)
        await pilot.press("shift+pageup", "shift+pageup")
        assert int(strip_text(pane, 0)) == int(live_top) - 45
        await pilot.press("shift+pagedown")
        assert int(strip_text(pane, 0)) == int(live_top) - 30
        await pilot.press("a")  # typing goes back to the live screen
        assert pane.scrollback == 0
        await pilot.press("backspace")
        await pane.detach()

    run(scenario)


def test_a_flood_is_shown_to_its_end_and_repainted_in_frames(container) -> None:  # type: ignore[no-untyped-def]
    sock = container("a")

    async def scenario(app: PaneApp, pilot: Pilot[None], pane: TerminalPane) -> None:
        await pane.attach_socket(sock)
        frames = pane.frames
        await shell(pilot, pane, "seq 1 200000; echo flood-$((1+1))", "flood-2")
        assert "200000" in screen_text(pane)
        assert pane.frames - frames >= 2
        await pane.detach()

    run(scenario)


def test_a_local_pty_session_and_its_exit_code() -> None:
    import os
    import subprocess

    master, slave = os.openpty()
    proc = subprocess.Popen(["sh"], stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                            env={"PATH": "/usr/bin:/bin", "PS1": "$ "})
    os.close(slave)

    async def scenario(app: PaneApp, pilot: Pilot[None], pane: TerminalPane) -> None:
        await pane.attach_pty(master, pid=proc.pid)
        await command(pilot, pane, "stty size", "16 60")
        await type_text(pilot, "exit 5")
        await pilot.press("enter")
        await until(pilot, lambda: any(e[0] == "exited" for e in app.events), "Exited")
        assert ("exited", 5) in app.events

    try:
        run(scenario)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("snapshot", [b"not json", b"[1, 2]", b'{"version": 1}'], ids=["no-json", "no-object", "no-screen"])
def test_a_supervisor_sending_a_broken_snapshot_is_a_protocol_error(tmp_path: Path, snapshot: bytes) -> None:
    """The dashboard's side of the protocol: a SNAPSHOT that is none (or any broken frame) fails the
    attach with ProtocolError, which the dashboard shows as a line; no traceback reaches the loop."""
    import socket

    from rustainer.backend.errors import ProtocolError
    from rustainer.backend.supervisor import protocol as P
    from rustainer.widgets.terminal_session import TerminalSession

    path = str(tmp_path / "attach.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    server.setblocking(False)
    problems: list[dict[str, Any]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: problems.append(context))
        session = TerminalSession()
        attaching = asyncio.ensure_future(session.attach_socket(path, 80, 24))
        conn, _ = await loop.sock_accept(server)
        with conn:
            await loop.sock_recv(conn, 64)  # its HELLO
            await loop.sock_sendall(conn, P.frame(P.SNAPSHOT, snapshot))
            with pytest.raises(ProtocolError):
                await asyncio.wait_for(attaching, 10)
        await session.close(detach=False)

    try:
        asyncio.run(main())
    finally:
        server.close()
    assert problems == []


def test_a_broken_exit_frame_ends_the_session_without_a_traceback(tmp_path: Path) -> None:
    import socket

    from rustainer.backend.supervisor import protocol as P
    from rustainer.backend.terminal import Terminal
    from rustainer.widgets.terminal_session import TerminalSession

    path = str(tmp_path / "attach.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    server.setblocking(False)
    problems: list[dict[str, Any]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: problems.append(context))
        session = TerminalSession()
        attaching = asyncio.ensure_future(session.attach_socket(path, 80, 24))
        conn, _ = await loop.sock_accept(server)
        with conn:
            await loop.sock_recv(conn, 64)
            snap = json.dumps(Terminal(80, 24).snapshot()).encode()
            await loop.sock_sendall(conn, P.frame(P.SNAPSHOT, snap) + P.frame(P.OUTPUT, b"hello"))
            await asyncio.wait_for(attaching, 10)
            await loop.sock_sendall(conn, P.frame(P.EXIT, b"x1"))
            end = time.monotonic() + 10
            while not session.ended:
                assert time.monotonic() < end, "the session did not end"
                await asyncio.sleep(0.01)
        assert session.exit_code is None and "hello" in session.terminal.display[0]

    try:
        asyncio.run(main())
    finally:
        server.close()
    assert problems == []
