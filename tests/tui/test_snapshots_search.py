"""Snapshot tests of search, copy mode, badges and the ``?`` screen (pytest-textual-snapshot), against
the in-memory engine with sessions on local ptys: no root. Stats are frozen and the list is not
polled; what the "programs" print is fixed. Update the baselines with
``pytest tests/tui/test_snapshots_search.py --snapshot-update``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from conftest import type_text, until
from fake_engine import FakeEngine, fake_state
from pty_sessions import PtyShells
from test_dashboard_fake import by_name, dashboard
from test_search_copy import LOG, last_line
from textual.pilot import Pilot
from textual.widgets import Input

from rustainer.app.tui_app import RustainerApp
from rustainer.app.tui_help import HelpScreen
from rustainer.backend.container.state import EXITED

pytest.importorskip("pytest_textual_snapshot")

SIZE = (120, 30)


def shells_app(shells: PtyShells, then: Callable[[Pilot[None], RustainerApp], Awaitable[None]]
               ) -> tuple[RustainerApp, Callable[[Pilot[None]], Awaitable[None]]]:
    """web (shown, its log printed), db and batch with pty sessions; then ``then``."""
    app = dashboard(FakeEngine(fake_state("web", created_at=1.0), fake_state("db", memory=256 << 20, created_at=2.0),
                               fake_state("batch", created_at=3.0)))

    async def run_before(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: len(app.order) == 3, "listed")
        for name in ("web", "db", "batch"):
            await shells.add(app, by_name(app, name), name)
        await app.select(by_name(app, "web"))
        shells.write("web", LOG)
        await until(pilot, lambda: last_line(app) == "$", "the log shown")
        await then(pilot, app)
        await pilot.pause(0.2)

    return app, run_before


def still_input(app: RustainerApp) -> None:
    for box in app.screen.query(Input):
        box.cursor_blink = False


def test_searching_a_regex(snap_compare) -> None:  # type: ignore[no-untyped-def]
    shells = PtyShells()

    async def then(pilot: Pilot[None], app: RustainerApp) -> None:
        await pilot.press("ctrl+right_square_bracket", "slash")
        await until(pilot, lambda: app.search_bar() is not None, "the bar")
        still_input(app)
        await pilot.press("alt+r")
        await type_text(pilot, "50{1,2} error")
        await pilot.press("up")
        await until(pilot, lambda: "42/43" in str(app.screen.query_one(".search-status").render()), "the count")

    try:
        app, run_before = shells_app(shells, then)
        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    finally:
        shells.close()


def test_copy_mode_with_a_selection(snap_compare) -> None:  # type: ignore[no-untyped-def]
    shells = PtyShells()

    async def then(pilot: Pilot[None], app: RustainerApp) -> None:
        await pilot.press("ctrl+right_square_bracket", "left_square_bracket")
        await pilot.press("k", "k", "k", "0", "w", "v", "j", "e", "e")
        await until(pilot, lambda: app.terminal_view.copy_mode is not None
                    and app.terminal_view.copy_mode.cursor == (298, 21), "the selection")

    try:
        app, run_before = shells_app(shells, then)
        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    finally:
        shells.close()


def test_badges_on_the_cards(snap_compare) -> None:  # type: ignore[no-untyped-def]
    shells = PtyShells()

    async def then(pilot: Pilot[None], app: RustainerApp) -> None:
        await pilot.press("alt+3", "ctrl+right_square_bracket", "S", "alt+1")  # batch watched for silence
        await pilot.pause(0.6)  # (the first look at the sessions: their baselines)
        engine = app.engine
        assert isinstance(engine, FakeEngine)
        engine.add(fake_state("job", created_at=4.0))  # a fourth container, that ends in the background
        await app.refresh_containers()
        engine._set(engine.states[by_name(app, "job")], status=EXITED, exit_code=2, pid=None)
        await app.refresh_containers()
        app.clear_notifications()
        shells.write("db", b"migrating...\r\n\x07")
        await until(pilot, lambda: "bell" in str(app.container_list().cards()[1].badges), "db's badges")  # type: ignore[union-attr]

    try:
        app, run_before = shells_app(shells, then)
        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    finally:
        shells.close()


def test_the_help_screen(snap_compare) -> None:  # type: ignore[no-untyped-def]
    shells = PtyShells()

    async def then(pilot: Pilot[None], app: RustainerApp) -> None:
        await pilot.press("ctrl+right_square_bracket", "question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")

    try:
        app, run_before = shells_app(shells, then)
        assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)
    finally:
        shells.close()
