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
from rustainer.widgets.split_view import SplitView
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
        web = overview._regions[0]
        await pilot.click(Overview, offset=(web.x + 3, web.y + 2))  # one click picks
        assert overview.picked_id == cid_of(app, "web") and isinstance(app.screen, OverviewScreen)
        job = overview._regions[2]
        await pilot.click(Overview, offset=(job.x + 3, job.y + 2), times=2)
        await until(pilot, lambda: app.selected == cid_of(app, "job"), "job zoomed by a double click")
        await pilot.press("ctrl+right_square_bracket", "o")
        await until(pilot, lambda: isinstance(app.screen, OverviewScreen), "the overview a third time")
        await pilot.press("left", "escape")
        await until(pilot, lambda: not isinstance(app.screen, OverviewScreen), "back")
        assert app.selected == cid_of(app, "job")

    run(engine, ["web", "db", "job"], scenario)


def split_view(app: RustainerApp) -> SplitView:
    split = app.split_view
    assert split is not None
    return split


def test_split_side_by_side_and_stacked_each_pane_interactive_focus_moves(tmp_path: Path) -> None:
    engine = engine_with(tmp_path, ["web", "db", "job"])

    async def scenario(app: RustainerApp, pilot: Pilot[None], sups: dict[str, FakeSupervisor]) -> None:
        full = sups["web"].size
        await pilot.press("ctrl+right_square_bracket", "|")
        await until(pilot, lambda: app.split_view is not None and len(split_view(app).panes) == 2, "two panes")
        split = split_view(app)
        left, right = split.panes
        assert (left.container, right.container) == ("web", "db")
        assert left.region.y == right.region.y and left.region.right <= right.region.x  # side by side
        # the new pane has the focus and the selection; each container's pty is its pane's size
        assert app.focused is right and app.selected == cid_of(app, "db")
        await until(pilot, lambda: sups["db"].size == (right.content_size.width, right.content_size.height),
                    "db resized to its pane")
        await until(pilot, lambda: sups["web"].size == (left.content_size.width, left.content_size.height),
                    "web resized to its pane")
        assert sups["web"].size[0] < full[0] // 2 + 1
        # keys go to the focused pane only; ctrl+] w moves the focus to the next pane
        await type_text(pilot, "one")
        await until(pilot, lambda: sups["db"].typed == b"one", "keys in db")
        await pilot.press("ctrl+right_square_bracket", "w")
        assert app.focused is left and app.selected == cid_of(app, "web")
        await type_text(pilot, "two")
        await until(pilot, lambda: sups["web"].typed == b"two" and "two" in left.terminal.display[0], "keys in web")
        assert sups["db"].typed == b"one"
        # both panes stay live: output of the one without the focus is drawn in its pane
        sups["db"].write(b" db-output")
        await until(pilot, lambda: any("db-output" in line for line in region_text(app, right)), "db's output drawn")
        # a stacked pane below the active one (the whole split turns stacked), with the third container
        await pilot.press("ctrl+right_square_bracket", "-")
        await until(pilot, lambda: len(split_view(app).panes) == 3, "three panes")
        top, middle, bottom = split_view(app).panes
        assert [p.container for p in (top, middle, bottom)] == ["web", "job", "db"]
        assert top.region.x == middle.region.x and top.region.bottom <= middle.region.y
        assert app.selected == cid_of(app, "job") and app.focused is middle
        # the layout is kept in the state folder at every change
        saved = json.loads((tmp_path / "tui-layout.json").read_text())
        assert saved == {"orientation": "vertical", "panes": ["web", "job", "db"], "active": 1}
        # choosing a container in the split focuses its pane (next, alt+N, the list)
        await pilot.press("alt+2")
        assert app.focused is bottom and app.selected == cid_of(app, "db")
        # u closes the active pane; with one left the single view is back, the container selected
        await pilot.press("ctrl+right_square_bracket", "u")
        await until(pilot, lambda: len(split_view(app).panes) == 2, "two panes left")
        await pilot.press("ctrl+right_square_bracket", "u")
        await until(pilot, lambda: app.split_view is None, "the single view")
        view = app.terminal_view
        assert view.display and app.selected in app.sessions and view.session is app.sessions[app.selected]
        await pilot.press("escape")
        assert app.focused is view
        assert json.loads((tmp_path / "tui-layout.json").read_text())["panes"] == []

    run(engine, ["web", "db", "job"], scenario)


def test_the_split_comes_back_after_a_restart_of_the_dashboard(tmp_path: Path) -> None:
    (tmp_path / "tui-layout.json").write_text(json.dumps(
        {"orientation": "vertical", "panes": ["job", "gone", "web"], "active": 2}))
    engine = engine_with(tmp_path, ["web", "db", "job"])

    async def scenario(app: RustainerApp, pilot: Pilot[None], sups: dict[str, FakeSupervisor]) -> None:
        # The split view is mounted first and its panes after it: wait for the whole restore.
        await until(pilot, lambda: app.split_view is not None and len(app.split_view.panes) == 2
                    and app.selected == cid_of(app, "web"), "the split restored")
        split = split_view(app)
        assert split.names() == ["job", "web"] and split.orientation == "vertical"
        assert app.selected == cid_of(app, "web") and app.focused is split.panes[1]
        assert split.panes[0].session is app.sessions[cid_of(app, "job")]
        await type_text(pilot, "back")
        await until(pilot, lambda: sups["web"].typed == b"back", "keys in web")

    run(engine, ["web", "db", "job"], scenario)
    # a layout whose containers do not run any more (one left) is the single view
    (tmp_path / "tui-layout.json").write_text(json.dumps({"orientation": "horizontal", "panes": ["job", "gone"]}))

    async def single(app: RustainerApp, pilot: Pilot[None], sups: dict[str, FakeSupervisor]) -> None:
        await pilot.pause(0.2)
        assert app.split_view is None and app.focused is app.terminal_view

    run(engine, ["web", "db", "job"], single)
    # a file that is not a layout is no layout
    (tmp_path / "tui-layout.json").write_text("[1, 2")
    run(engine, ["web", "db", "job"], single)


def test_a_split_pane_keeps_an_ended_containers_last_screen_and_closes_when_it_is_removed(tmp_path: Path) -> None:
    engine = engine_with(tmp_path, ["web", "db"])

    async def scenario(app: RustainerApp, pilot: Pilot[None], sups: dict[str, FakeSupervisor]) -> None:
        await pilot.press("ctrl+right_square_bracket", "|")
        await until(pilot, lambda: app.split_view is not None and len(app.split_view.panes) >= 2, "the split")
        left, right = split_view(app).panes
        sups["web"].write(b"last words")
        await until(pilot, lambda: "last words" in left.terminal.display[0], "web's output")
        engine._set(engine._find("web"), status=EXITED, exit_code=3, pid=None)
        await sups["web"].close()
        await app.refresh_containers()
        await until(pilot, lambda: cid_of(app, "web") not in app.sessions, "web's session gone")
        await app.refresh_containers()
        assert left.has_class("-ended") and "last words" in left.terminal.display[0]
        assert split_view(app).names() == ["web", "db"]
        engine.remove("web", force=True)
        await app.refresh_containers()
        await until(pilot, lambda: app.split_view is None, "the split gone with web")
        assert app.selected == cid_of(app, "db") and app.terminal_view.session is app.sessions[cid_of(app, "db")]

    run(engine, ["web", "db"], scenario)


def test_broadcast_sends_the_keys_to_every_marked_container(tmp_path: Path) -> None:
    engine = engine_with(tmp_path, ["web", "db", "job"])

    async def scenario(app: RustainerApp, pilot: Pilot[None], sups: dict[str, FakeSupervisor]) -> None:
        screen = app.get_screen_stack_base()
        await pilot.press("ctrl+right_square_bracket", "B")  # nothing marked: a warning, still off
        assert not app.broadcasting and any("mark containers" in n.message for n in app._notifications)
        await pilot.press("m", "ctrl+pagedown", "ctrl+right_square_bracket", "m")
        assert app.marked == {cid_of(app, "web"), cid_of(app, "db")}
        cards = {c.row.name: c for c in screen.query(ContainerCard)}
        assert cards["web"].has_class("-marked") and cards["db"].has_class("-marked")
        assert not cards["job"].has_class("-marked")
        await pilot.press("B")
        assert app.broadcasting
        banner = screen.query_one("#broadcast", BroadcastBanner)
        await pilot.pause()
        assert "BROADCAST" in str(banner.render()) and "web, db" in str(banner.render())
        assert app.terminal_view.has_class("-broadcast")
        # typed into db's pane: db, web (marked) get it, job does not
        await pilot.press("escape")
        await type_text(pilot, "uptime")
        await pilot.press("enter")
        await until(pilot, lambda: sups["web"].typed == b"uptime\r" and sups["db"].typed == b"uptime\r", "both")
        assert sups["job"].typed == b""
        # each target gets the key as its own terminal wants it (application cursor keys in web)
        sups["web"].write(b"\x1b[?1h")
        await until(pilot, lambda: app.sessions[cid_of(app, "web")].terminal.modes.application_cursor, "web's mode")
        await pilot.press("up")
        await until(pilot, lambda: sups["web"].typed.endswith(b"\x1bOA"), "web's up key")
        await until(pilot, lambda: sups["db"].typed.endswith(b"\x1b[A"), "db's up key")
        # typed into job (not marked) while on: the marked ones get it too
        await pilot.press("ctrl+pagedown")
        assert app.selected == cid_of(app, "job")
        await type_text(pilot, "x")
        await until(pilot, lambda: sups["job"].typed == b"x" and sups["web"].typed.endswith(b"x")
                    and sups["db"].typed.endswith(b"x"), "x everywhere")
        # off: the banner goes, keys go to the focused container alone
        await pilot.press("ctrl+right_square_bracket", "B")
        await pilot.pause()
        assert not app.broadcasting and not screen.query("#broadcast")
        await pilot.press("escape")
        await type_text(pilot, "y")
        await until(pilot, lambda: sups["job"].typed == b"xy", "y in job")
        await pilot.pause(0.1)
        assert not sups["web"].typed.endswith(b"y") and not sups["db"].typed.endswith(b"y")

    run(engine, ["web", "db", "job"], scenario)


def test_broadcast_in_a_split_marks_the_panes_title_bars(tmp_path: Path) -> None:
    engine = engine_with(tmp_path, ["web", "db"])

    async def scenario(app: RustainerApp, pilot: Pilot[None], sups: dict[str, FakeSupervisor]) -> None:
        await pilot.press("ctrl+right_square_bracket", "|")
        await until(pilot, lambda: app.split_view is not None and len(app.split_view.panes) >= 2, "the split")
        left, right = split_view(app).panes
        await pilot.press("ctrl+right_square_bracket", "m", "w")  # (w: the focus into the next pane)
        await pilot.press("ctrl+right_square_bracket", "m", "B")
        assert left.has_class("-broadcast") and right.has_class("-broadcast")
        await pilot.press("escape")
        assert app.focused is left
        await pilot.press("e", "c", "h", "o")
        await until(pilot, lambda: sups["web"].typed == b"echo" == sups["db"].typed, "echo in both")
        # a click on the other pane gives it the focus and selects its container
        await pilot.click(f"#{right.id}", offset=(5, 5))
        await until(pilot, lambda: app.focused is right and app.selected == cid_of(app, "db"), "db by a click")
        assert right.has_class("-active") and not left.has_class("-active")
        # recording the active pane's container: REC in its title bar as in the single view's
        await pilot.press("ctrl+right_square_bracket", "R")
        await until(pilot, lambda: "REC" in str(right.border_title), "REC in db's title bar")
        assert "REC" not in str(left.border_title)

    run(engine, ["web", "db"], scenario)


def test_the_palette_and_the_footer_offer_the_layout_keys(tmp_path: Path) -> None:
    from textual.command import CommandPalette

    engine = engine_with(tmp_path, ["web", "db"])

    async def scenario(app: RustainerApp, pilot: Pilot[None], sups: dict[str, FakeSupervisor]) -> None:
        titles = [c.title for c in app.get_system_commands(app.get_screen_stack_base())]
        for title in ("Overview", "Split side by side", "Split stacked", "Mark web for broadcast"):
            assert title in titles, titles
        assert "Broadcast on" not in titles and "Close pane" not in titles
        await pilot.press("ctrl+right_square_bracket", "ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        await type_text(pilot, "split side")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: app.split_view is not None and len(app.split_view.panes) >= 2,
                    "the split from the palette")
        titles = [c.title for c in app.get_system_commands(app.get_screen_stack_base())]
        assert "Close pane" in titles and "Next pane" in titles
        # wide enough, the footer labels them (while the list has the focus)
        await pilot.press("ctrl+right_square_bracket")
        await pilot.pause(0.2)
        footer = drawn_lines(app)[-1]
        for label in ("o Overview", "w Pane", "u Unsplit", "m Mark", "| Split", "- Stack"):
            assert label in footer, footer

    run(engine, ["web", "db"], scenario, size=(200, 40))
