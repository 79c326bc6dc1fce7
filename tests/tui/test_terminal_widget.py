"""The terminal pane against real detached containers, headless (Textual's run_test and Pilot)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot

from rustainer.backend.state import StateStore
from rustainer.widgets.terminal import TerminalPane

pytestmark = pytest.mark.root


class PaneApp(App[None]):
    CSS = "TerminalPane { width: 60; height: 16; }"

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Any] = []

    def compose(self) -> ComposeResult:
        yield TerminalPane(id="pane")

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


def test_typed_command_runs_and_its_output_shows(container) -> None:  # type: ignore[no-untyped-def]
    sock = container("a")

    async def scenario(app: PaneApp, pilot: Pilot[None], pane: TerminalPane) -> None:
        await pane.attach_socket(sock)
        await type_text(pilot, "echo hi-$((6*7))")
        await pilot.press("enter")
        await until(pilot, lambda: "hi-42" in screen_text(pane).replace("hi-$((6*7))", ""), "hi-42")
        await pane.detach()

    run(scenario)
