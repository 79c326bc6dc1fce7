"""Snapshot tests of the overview, the split view and broadcast input (pytest-textual-snapshot),
against the in-memory engine with stand-in supervisors serving fixed screens: no root, the same
picture every time. Update the baselines with ``pytest tests/tui/test_layout_snapshots.py --snapshot-update``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fake_engine import FakeEngine, fake_state
from fake_supervisor import SupervisorThread, fake_top
from textual.pilot import Pilot

from rustainer.app.tui_app import RustainerApp, create_app
from rustainer.app.tui_overview import OverviewScreen
from rustainer.app.tui_stats import FrozenStats
from rustainer.backend.container.state import EXITED
from rustainer.backend.util.record import replace

pytest.importorskip("pytest_textual_snapshot")

NAMES = ["web", "db", "cache", "worker"]


async def wait(pilot: Pilot[None], predicate: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[RustainerApp, SupervisorThread]]:
    states = [replace(fake_state(name, created_at=1000.0 + i, cpus=(i % 2,)), detached=True)
              for i, name in enumerate(NAMES)]
    states.append(fake_state("backup", status=EXITED, exit_code=0, created_at=2000.0))
    engine = FakeEngine(*states, root=str(tmp_path))
    sups = SupervisorThread(engine, NAMES)
    for load, name in enumerate(NAMES, start=1):
        if name != "web":
            sups.write(name, fake_top(name, load))
    sups.write("web", b"\r\nserving on :80\r\nGET / 200\r\nGET /health 200\r\nweb$ ")
    app = create_app(engine=engine, stats=FrozenStats(), poll=False)
    try:
        yield app, sups
    finally:
        sups.close()


async def attached(app: RustainerApp, pilot: Pilot[None]) -> None:
    await wait(pilot, lambda: len(app.attached) == len(NAMES) and all(
        "Mem:" in "".join(s.terminal.display) or "health" in "".join(s.terminal.display)
        for s in app.sessions.values()), "every screen")


def test_overview_of_four_containers(snap_compare, fake) -> None:  # type: ignore[no-untyped-def]
    app, _sups = fake

    async def run_before(pilot: Pilot[None]) -> None:
        await attached(app, pilot)
        await pilot.press("ctrl+right_square_bracket", "o", "right")
        await wait(pilot, lambda: isinstance(app.screen, OverviewScreen), "the overview")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(120, 32), run_before=run_before)


def test_split_side_by_side_with_broadcast_on(snap_compare, fake) -> None:  # type: ignore[no-untyped-def]
    app, _sups = fake

    async def run_before(pilot: Pilot[None]) -> None:
        await attached(app, pilot)
        await pilot.press("ctrl+right_square_bracket", "vertical_line")  # web | db
        await wait(pilot, lambda: app.split_view is not None and len(app.split_view.panes) >= 2, "the split")
        await pilot.press("ctrl+right_square_bracket", "m", "w")
        await pilot.press("ctrl+right_square_bracket", "m", "B", "escape")
        await wait(pilot, lambda: app.broadcasting, "the broadcast")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(120, 32), run_before=run_before)


def test_split_stacked(snap_compare, fake) -> None:  # type: ignore[no-untyped-def]
    app, _sups = fake

    async def run_before(pilot: Pilot[None]) -> None:
        await attached(app, pilot)
        await pilot.press("ctrl+pagedown", "ctrl+right_square_bracket", "minus")  # db over cache
        await wait(pilot, lambda: app.split_view is not None and len(app.split_view.panes) >= 2, "the split")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(100, 36), run_before=run_before)
