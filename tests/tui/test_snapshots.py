"""Snapshot tests of the main screens (pytest-textual-snapshot), from real containers (the dialog's
needs none: it runs against the in-memory engine, without root).

What changes from run to run is held still: stats come from FrozenStats, the list is not polled
(the app reads the state store once at start), names are fixed, and the shells' output is waited
for before the picture is taken. Update the baselines with ``pytest tests/tui --snapshot-update``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import type_text
from fake_engine import FakeEngine
from textual.pilot import Pilot
from textual.widgets import Input

from rustainer.app.tui_app import RustainerApp, create_app
from rustainer.app.tui_dialogs import NewContainerDialog
from rustainer.app.tui_stats import FrozenStats

pytest.importorskip("pytest_textual_snapshot")


async def wait(pilot: Pilot[None], predicate: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            app = pilot.app
            detail = {"attached": getattr(app, "attached", None), "listed": list(getattr(app, "listed", {})),
                      "notifications": [n.message for n in app._notifications]}
            raise AssertionError(f"timed out waiting for {what}: {detail}")
        await pilot.pause(0.05)


def pane_text(app: RustainerApp, name: str) -> str:
    cid = next(c for c, item in app.listed.items() if item.state.name == name)
    session = app.session_of(cid)
    return "\n".join(session.terminal.display) if session is not None else ""


def still_app(rroot: Path) -> RustainerApp:
    return create_app(str(rroot), stats=FrozenStats(), poll=False)


@pytest.mark.root
def test_list_with_two_live_shells(snap_compare, containers, busybox_rootfs: Path,  # type: ignore[no-untyped-def]
                                   rroot: Path) -> None:
    containers("web", "--rootfs", str(busybox_rootfs), "-c", "0", "-m", "128M", "--", "sh")
    containers("db", "--rootfs", str(busybox_rootfs), "-c", "1", "-m", "256M", "--", "sh")
    app = still_app(rroot)

    async def run_before(pilot: Pilot[None]) -> None:
        await wait(pilot, lambda: len(app.attached) == 2, "both panes attached")
        await type_text(pilot, "echo served-$((40+2))")
        await pilot.press("enter")
        await wait(pilot, lambda: "served-42" in pane_text(app, "web").replace("$((40+2))", ""), "web's output")
        await pilot.press("ctrl+pagedown")
        await type_text(pilot, "echo stored-$((6*7))")
        await pilot.press("enter")
        await wait(pilot, lambda: "stored-42" in pane_text(app, "db").replace("$((6*7))", ""), "db's output")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(120, 30), run_before=run_before)


def test_new_container_dialog(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = create_app(engine=FakeEngine(images={"alpine:3.20": ("/bin/sh",)}), stats=FrozenStats(), poll=False)

    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.press("ctrl+right_square_bracket", "n")
        await wait(pilot, lambda: isinstance(app.screen, NewContainerDialog), "the dialog")
        for field, value in (("name", "web"), ("memory", "12X"), ("cpus", "0")):
            box = app.screen.query_one(f"#field-{field}", Input)
            box.cursor_blink = False
            box.value = value
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
