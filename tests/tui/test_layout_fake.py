"""The overview, the split view and broadcast input against the in-memory engine, with stand-in
supervisors (tests/tui/fake_supervisor.py) serving each running container's screen: live sessions
without containers, so these run without root."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from conftest import type_text, until
from fake_engine import FakeEngine, fake_state
from fake_supervisor import FakeSupervisor, start_supervisors
from test_dashboard_fake import drawn_lines, region_text
from textual.pilot import Pilot

from rustainer.app.tui_app import RustainerApp, create_app
from rustainer.app.tui_broadcast import BroadcastBanner
from rustainer.app.tui_overview import OverviewScreen
from rustainer.app.tui_stats import FrozenStats
from rustainer.backend.container.state import EXITED
from rustainer.backend.util.record import replace
from rustainer.widgets.container_list import ContainerCard
from rustainer.widgets.overview import Overview, grid_shape, tile_regions
from rustainer.widgets.split_view import SplitPane, SplitView
from rustainer.widgets.terminal_pane import TerminalPane

Scenario = Callable[[RustainerApp, Pilot[None], dict[str, FakeSupervisor]], Awaitable[None]]


def engine_with(root: Path, running: list[str], exited: list[str] = ()) -> FakeEngine:  # type: ignore[assignment]
    states = [replace(fake_state(name, created_at=1000.0 + i), detached=True) for i, name in enumerate(running)]
    states += [fake_state(name, status=EXITED, exit_code=1, created_at=2000.0 + i) for i, name in enumerate(exited)]
    return FakeEngine(*states, root=str(root))


def run(engine: FakeEngine, names: list[str], scenario: Scenario, size: tuple[int, int] = (120, 40)) -> None:
    async def main() -> None:
        sups = await start_supervisors(engine, names)
        app = create_app(engine=engine, stats=FrozenStats(), poll=False, stop_timeout=1)
        try:
            async with app.run_test(size=size) as pilot:
                await until(pilot, lambda: len(app.attached) == len(names) and all(
                    s.terminal.display[0].strip() for s in app.sessions.values()), "every session attached")
                await scenario(app, pilot, sups)
        finally:
            for sup in sups.values():
                await sup.close()

    asyncio.run(main())


def cid_of(app: RustainerApp, name: str) -> str:
    cid = app.listed_id(name)
    assert cid is not None
    return cid


def test_the_grid_fills_the_area_with_tiles_shaped_like_terminals() -> None:
    assert grid_shape(1, 120, 38) == (1, 1)
    assert grid_shape(4, 120, 38) == (2, 2)
    assert grid_shape(9, 120, 38) == (3, 3)
    assert grid_shape(3, 200, 30) == (3, 1)
    regions = tile_regions(9, 120, 38)
    assert [r.width for r in regions[:3]] == [39, 39, 40]  # two separators; the last column the rest
    assert sum(r.height for r in regions[::3]) == 38
    assert len({(r.x, r.y) for r in regions}) == 9


def test_overview_shows_every_running_screen_live_and_enter_zooms(tmp_path: Path) -> None:
    engine = engine_with(tmp_path, ["web", "db", "job"], exited=["old"])

    async def scenario(app: RustainerApp, pilot: Pilot[None], sups: dict[str, FakeSupervisor]) -> None:
        sups["db"].write(b"\r\nready to serve\r\n")
        await pilot.press("ctrl+right_square_bracket", "o")
        await until(pilot, lambda: isinstance(app.screen, OverviewScreen), "the overview")
        overview = app.screen.query_one(Overview)
        assert [t.name for t in overview.tiles] == ["web", "db", "job"]  # the running ones, in order
        await until(pilot, lambda: "ready to serve" in "\n".join(region_text(app, overview)), "db's screen")
        text = "\n".join(region_text(app, overview))
        assert all(f"{name}$" in text for name in ("web", "db", "job")) and "old" not in text
        # live: new output reaches its tile, and only that tile is drawn again
        drawn = overview.tiles_drawn
        sups["job"].write(b"build 42 finished")
        await until(pilot, lambda: "build 42 finished" in "\n".join(region_text(app, overview)), "job's output")
        await pilot.pause(0.2)
        assert overview.tiles_drawn - drawn == 1
        # the picked tile is the selected container's; arrows pick, Enter zooms
        assert overview.picked_id == cid_of(app, "web")
        await pilot.press("right")
        assert overview.picked_id == cid_of(app, "db")
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, OverviewScreen), "back to the main view")
        assert app.selected == cid_of(app, "db")
        assert isinstance(app.focused, TerminalPane) and app.focused.session is app.sessions[cid_of(app, "db")]
        await type_text(pilot, "hi")
        await until(pilot, lambda: sups["db"].typed == b"hi", "the keys in db")
        # the mouse: a double click on a tile zooms into it; escape goes back unchanged
        await pilot.press("ctrl+right_square_bracket", "o")
        await until(pilot, lambda: isinstance(app.screen, OverviewScreen), "the overview again")
        overview = app.screen.query_one(Overview)
        await pilot.pause(0.1)
        job = overview._regions[2]
        await pilot.click(Overview, offset=(job.x + 3, job.y + 2), times=2)
        await until(pilot, lambda: app.selected == cid_of(app, "job"), "job zoomed by a double click")
        await pilot.press("ctrl+right_square_bracket", "o")
        await until(pilot, lambda: isinstance(app.screen, OverviewScreen), "the overview a third time")
        await pilot.press("left", "escape")
        await until(pilot, lambda: not isinstance(app.screen, OverviewScreen), "back")
        assert app.selected == cid_of(app, "job")

    run(engine, ["web", "db", "job"], scenario)
