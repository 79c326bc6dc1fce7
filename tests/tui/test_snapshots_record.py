"""Snapshots of this round's screens, against the in-memory engine (no root): the first screen a new
user sees at 80x24 and 100x30 (nothing cut off), and a card marked REC while its session is recorded.
Update with ``pytest tests/tui/test_snapshots_record.py --snapshot-update``."""

from __future__ import annotations

import pytest
from fake_engine import FakeEngine, fake_state
from test_snapshots import wait
from textual.pilot import Pilot

from rustainer.app.tui_app import create_app
from rustainer.app.tui_stats import FrozenStats

pytest.importorskip("pytest_textual_snapshot")


@pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=["80x24", "100x30"])
def test_empty_state(snap_compare, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app = create_app(engine=FakeEngine(), stats=FrozenStats(), poll=False)

    async def run_before(pilot: Pilot[None]) -> None:
        await wait(pilot, lambda: app.screen.query_one("#empty-hint").display, "the hint")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_a_recorded_container_is_marked_rec(snap_compare) -> None:  # type: ignore[no-untyped-def]
    engine = FakeEngine(fake_state("web", created_at=1.0), fake_state("db", cpus=(1,), created_at=2.0))
    app = create_app(engine=engine, stats=FrozenStats(), poll=False)

    async def run_before(pilot: Pilot[None]) -> None:
        await wait(pilot, lambda: len(app.order) == 2 and app.selected is not None, "both cards")
        await pilot.press("R")
        await wait(pilot, lambda: app.listed[app.order[0]].state.recording, "web recorded")
        await pilot.pause(0.2)
        app.clear_notifications()
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(120, 30), run_before=run_before)
