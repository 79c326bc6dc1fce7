"""Search, copy mode, the mouse selection, paste and the ``?`` screen, against the in-memory engine
with sessions on local ptys (tests/tui/pty_sessions.py): no root, no container. What is "drawn" is
read from the app's compositor (what Textual would write to a terminal), and what the dashboard
sends a program is read at the far end of its pty."""

from __future__ import annotations

import base64
import inspect
import io
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from conftest import type_text, until
from fake_engine import FakeEngine, fake_state
from pty_sessions import PtyShells
from rich.console import Console
from test_dashboard_fake import by_name, dashboard, drawn_lines, run
from textual import events
from textual.binding import Binding
from textual.pilot import Pilot
from textual.widgets import Footer, Static

from rustainer.app.tui_app import RustainerApp
from rustainer.app.tui_help import HelpScreen, app_bindings
from rustainer.app.tui_stats import FrozenStats
from rustainer.widgets.copy_mode import CURRENT_STYLE, MATCH_STYLE, SELECTION_STYLE
from rustainer.widgets.terminal_pane import TerminalPane

# 300 lines of a web server's log: every 7th one an error; the prompt below.
LOG = b"".join(b"GET /api/items/%d 500 error: timeout\r\n" % i if i % 7 == 0 else b"GET /api/items/%d 200 %d ms\r\n" % (i, i % 97)
               for i in range(300)) + b"$ "


def with_shells(scenario: Callable[[Pilot[None], RustainerApp, PtyShells], Awaitable[None]],
                size: tuple[int, int] = (120, 30), app: RustainerApp | None = None) -> None:
    """``scenario`` with two fake containers, web (shown, its log printed) and db, each with a pty
    session."""
    app = app or dashboard(FakeEngine(fake_state("web", created_at=1.0), fake_state("db", created_at=2.0)))
    shells = PtyShells()

    async def main(pilot: Pilot[None]) -> None:
        try:
            await until(pilot, lambda: len(app.order) == 2, "both containers listed")
            for name in ("web", "db"):
                await shells.add(app, by_name(app, name), name)
            await app.select(by_name(app, "web"))
            shells.write("web", LOG)
            await until(pilot, lambda: last_line(app) == "$" and "items/299" in "".join(pane_lines(app)),
                        "the log shown")
            await scenario(pilot, app, shells)
            await pilot.press("ctrl+q")
        finally:
            shells.close()

    run(app, main, size=size)


def pane(app: RustainerApp) -> TerminalPane:
    return app.terminal_view


def pane_lines(app: RustainerApp) -> list[str]:
    """The pane's lines as drawn (below its title bar)."""
    r = pane(app).content_region
    return [line[r.x:r.x + r.width].rstrip() for line in drawn_lines(app)[r.y:r.y + r.height]]


def last_line(app: RustainerApp) -> str:
    lines = [line for line in pane_lines(app) if line]
    return lines[-1] if lines else ""


def title_bar(app: RustainerApp) -> str:
    r = pane(app).region
    return drawn_lines(app)[r.y][r.x:r.x + r.width]


def styled_cells(app: RustainerApp, y: int) -> list[tuple[str, object]]:
    """(text, style) of the pane's line ``y`` as it renders it."""
    return [(segment.text, segment.style) for segment in pane(app).render_line(y)]


def styled(app: RustainerApp, text: str, style: object) -> list[int]:
    """The pane lines on which ``text`` is drawn with ``style`` laid over it."""
    found = []
    for y in range(pane(app).content_size.height):
        for chunk, segment_style in styled_cells(app, y):
            if text in chunk and segment_style is not None and style_over(segment_style, style):
                found.append(y)
    return found


def style_over(segment_style: object, style: object) -> bool:
    return getattr(segment_style, "bgcolor", None) == getattr(style, "bgcolor", "?")


def bar_status(app: RustainerApp) -> str:
    bar = app.search_bar()
    assert bar is not None
    return str(bar.query_one(".search-status").render())


async def open_search(pilot: Pilot[None], app: RustainerApp) -> None:
    await pilot.press("ctrl+right_square_bracket", "slash")
    await until(pilot, lambda: app.search_bar() is not None and app.focused is not None
                and app.focused.id == "search-input", "the search bar")


# ---- search -----------------------------------------------------------------------------------------


def test_search_highlights_the_matches_scrolls_to_each_and_steps_both_ways() -> None:
    async def scenario(pilot: Pilot[None], app: RustainerApp, shells: PtyShells) -> None:
        await open_search(pilot, app)
        assert not app.screen.query_one(Footer).display  # the bar has the footer's line: nothing moves
        assert pane(app).copy_mode is not None
        await type_text(pilot, "error")
        # The match nearest the bottom of the view is current, the others on screen highlighted.
        await until(pilot, lambda: bar_status(app) == "43/43", "the count")
        assert "match 43/43" in title_bar(app)
        current = styled(app, "rror", CURRENT_STYLE)
        assert len(current) == 1 and "items/294 " in pane_lines(app)[current[0]]
        assert [pane_lines(app)[y].split()[1] for y in styled(app, "error", MATCH_STYLE)] == \
            ["/api/items/280", "/api/items/287"]
        await pilot.press("up")  # one match up (older)
        await until(pilot, lambda: bar_status(app) == "42/43", "the match above")
        assert "items/287 " in pane_lines(app)[styled(app, "rror", CURRENT_STYLE)[0]]
        await pilot.press("down", "down")  # down twice: past the last one, round to the first
        await until(pilot, lambda: bar_status(app) == "1/43", "round to the first match")
        lines = pane_lines(app)
        assert "GET /api/items/0 500 error: timeout" in lines  # the view scrolled to the top
        assert "items/0 " in lines[styled(app, "rror", CURRENT_STYLE)[0]]
        # enter: copy mode at the match, the bar gone; n goes up (wraps round), N down.
        await pilot.press("enter")
        await until(pilot, lambda: app.search_bar() is None and isinstance(app.focused, TerminalPane), "copy mode")
        assert app.screen.query_one(Footer).display
        mode = pane(app).copy_mode
        assert mode is not None and mode.cursor == (0, len("GET /api/items/0 500 "))
        await pilot.press("N")
        await until(pilot, lambda: "match 2/43" in title_bar(app), "the next match down")
        await pilot.press("n", "n")
        await until(pilot, lambda: "match 43/43" in title_bar(app), "n: up, round to the last")
        assert "GET /api/items/294 500 error: timeout" in pane_lines(app)
        await pilot.press("q")
        await until(pilot, lambda: pane(app).copy_mode is None and "COPY" not in title_bar(app), "live again")
        assert last_line(app) == "$"

    with_shells(scenario)


def test_regular_expressions_case_and_a_bad_pattern() -> None:
    async def scenario(pilot: Pilot[None], app: RustainerApp, shells: PtyShells) -> None:
        await open_search(pilot, app)
        await type_text(pilot, "ERROR")
        await until(pilot, lambda: bar_status(app) == "43/43", "case ignored by default")
        await pilot.press("alt+c")
        await until(pilot, lambda: bar_status(app) == "no match", "case matched")
        await pilot.press("alt+c", *["backspace"] * 5, "alt+r")
        await type_text(pilot, r"items/1\d7 ")
        await until(pilot, lambda: bar_status(app) == "10/10", "a regular expression")
        await type_text(pilot, "(")
        await until(pilot, lambda: "not a regular expression" in bar_status(app), "the error")
        assert pane(app).copy_mode is not None and not styled(app, "items", CURRENT_STYLE)
        await pilot.press("backspace", "alt+r")
        await until(pilot, lambda: bar_status(app) == "no match", "plain text: the backslash is one")

    with_shells(scenario)


def test_escape_goes_back_to_the_live_terminal_and_a_switch_closes_the_bar() -> None:
    async def scenario(pilot: Pilot[None], app: RustainerApp, shells: PtyShells) -> None:
        await open_search(pilot, app)
        await type_text(pilot, "items/3 ")
        await until(pilot, lambda: bar_status(app) == "1/1", "the match")
        assert "GET /api/items/3 200 3 ms" in pane_lines(app)
        await pilot.press("escape")
        await until(pilot, lambda: app.search_bar() is None and pane(app).copy_mode is None
                    and isinstance(app.focused, TerminalPane), "back to the live terminal")
        assert last_line(app) == "$" and app.screen.query_one(Footer).display
        # The search is remembered; switching container while searching closes the bar.
        await open_search(pilot, app)
        await until(pilot, lambda: bar_status(app) == "1/1", "the last search again")
        await pilot.press("ctrl+pagedown")
        await until(pilot, lambda: app.selected == by_name(app, "db") and app.search_bar() is None, "db shown")
        assert pane(app).copy_mode is None and app.screen.query_one(Footer).display

    with_shells(scenario)


# ---- copy mode, the mouse, paste ------------------------------------------------------------------


def osc52(written: list[str]) -> list[str]:
    """The texts the app sent the outer terminal's clipboard (OSC 52)."""
    out = []
    for chunk in written:
        if "\x1b]52;c;" in chunk:
            data = chunk.split("\x1b]52;c;", 1)[1].split("\a", 1)[0]
            out.append(base64.b64decode(data).decode())
    return out


def capture_driver(app: RustainerApp) -> list[str]:
    written: list[str] = []
    driver = app._driver
    assert driver is not None
    original = driver.write

    def write(data: str) -> None:
        written.append(data)
        original(data)

    driver.write = write  # type: ignore[method-assign]
    return written


def test_copy_mode_selects_by_keyboard_and_copies_with_osc52() -> None:
    async def scenario(pilot: Pilot[None], app: RustainerApp, shells: PtyShells) -> None:
        written = capture_driver(app)
        await pilot.press("ctrl+right_square_bracket", "left_square_bracket")
        await until(pilot, lambda: pane(app).copy_mode is not None and isinstance(app.focused, TerminalPane),
                    "copy mode")
        assert "COPY" in title_bar(app) and "v Select" in drawn_lines(app)[-1]  # its keys in the footer
        mode = pane(app).copy_mode
        assert mode is not None and mode.cursor == (300, 2)  # where the shell's cursor was
        await pilot.press("k", "k", "0", "w", "v", "e", "l", "e")
        await until(pilot, lambda: styled(app, "/api/items/298", SELECTION_STYLE), "the selection drawn")
        await pilot.press("y")
        await until(pilot, lambda: pane(app).copy_mode is None, "copy mode left")
        assert app.clipboard == "/api/items/298 200"
        assert osc52(written) == ["/api/items/298 200"]
        # Whole lines, across lines.
        await pilot.press("ctrl+right_square_bracket", "left_square_bracket", "k", "V", "k", "enter")
        await until(pilot, lambda: pane(app).copy_mode is None, "copy mode left")
        assert app.clipboard == "GET /api/items/298 200 7 ms\nGET /api/items/299 200 8 ms"
        assert osc52(written)[-1] == app.clipboard
        # ] pastes it into the shell (its pty gets it; no bracketed paste asked for: as typed).
        shells.read("web", timeout=0.1)
        await pilot.press("ctrl+right_square_bracket", "right_square_bracket")
        await pilot.pause()
        assert shells.read("web") == b"GET /api/items/298 200 7 ms\rGET /api/items/299 200 8 ms"
        assert isinstance(app.focused, TerminalPane)

    with_shells(scenario)


def test_a_mouse_drag_selects_and_the_release_copies() -> None:
    async def scenario(pilot: Pilot[None], app: RustainerApp, shells: PtyShells) -> None:
        written = capture_driver(app)
        view = pane(app)
        lines = pane_lines(app)
        y = lines.index("GET /api/items/290 200 96 ms")
        top = view.content_region.y - view.region.y  # (below the title bar)
        await pilot.mouse_down(view, offset=(4, y + top))
        await pilot.hover(view, offset=(10, y + 1 + top))
        await until(pilot, lambda: view.copy_mode is not None and styled(app, "/api/items/290 200 96 ms", SELECTION_STYLE),
                    "the selection while dragging")
        await pilot.mouse_up(view, offset=(10, y + 1 + top))
        await until(pilot, lambda: view.copy_mode is None, "back to live after the release")
        assert app.clipboard == "/api/items/290 200 96 ms\nGET /api/it"
        assert osc52(written) == [app.clipboard]
        assert any(f"Copied {len(app.clipboard)} characters on 2 lines" in n.message for n in app._notifications)

    with_shells(scenario)


def test_paste_is_bracketed_when_the_program_asked_for_it() -> None:
    async def scenario(pilot: Pilot[None], app: RustainerApp, shells: PtyShells) -> None:
        shells.read("web", timeout=0.1)
        pane(app).post_message(events.Paste("echo one\necho two"))
        await pilot.pause()
        assert shells.read("web") == b"echo one\recho two"
        shells.write("web", b"\x1b[?2004h")  # the shell asks for bracketed paste (DECSET 2004)
        await until(pilot, lambda: pane(app).terminal.modes.bracketed_paste, "mode 2004 on")
        pane(app).post_message(events.Paste("echo one\necho two\x1b[201~"))
        await pilot.pause()
        assert shells.read("web") == b"\x1b[200~echo one\recho two\x1b[201~"

    with_shells(scenario)


# ---- the ? screen and the footer --------------------------------------------------------------------


def plain(renderable: object) -> str:
    console = Console(width=60, file=io.StringIO(), color_system=None)
    console.print(renderable)
    out = console.file.getvalue()
    assert isinstance(out, str)
    return out


def test_the_help_screen_lists_every_key_of_the_app_grouped() -> None:
    class WithMore(RustainerApp):
        CSS_PATH = str(Path(inspect.getfile(RustainerApp)).with_name("tui.tcss"))
        BINDINGS = [Binding("z", "zoom", "Zoom")]  # a key another part of the app adds

        def action_zoom(self) -> None:
            pass

    app = WithMore(FakeEngine(fake_state("web", created_at=1.0), fake_state("db", created_at=2.0)),
                   stats=FrozenStats(), poll=False)

    async def scenario(pilot: Pilot[None], app: RustainerApp, shells: PtyShells) -> None:
        await pilot.press("ctrl+right_square_bracket", "question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        left, right = (plain(app.screen.query_one(f"#help-{side}", Static).content) for side in ("left", "right"))
        text = left + right
        for binding in app_bindings(app):
            key = binding.key_display or app.get_key_display(binding)
            if not binding.action.startswith("select_nth"):
                assert key in left, (key, binding)
        for title in ("Move around", "The selected container", "Views", "Search, copy and paste", "Badges", "More",
                      "The dashboard", "Copy mode", "The search bar", "In the terminal"):
            assert title in text, title
        assert "Zoom" in left.split("More", 1)[1]  # a key no group knows: under More
        assert "layout quietly" not in left and "quietly" not in left  # no unlabelled twins
        assert "alt+1…9" in left and "OSC 52" in text and "quiet" in text
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen), "closed")

    with_shells(scenario, app=app)


@pytest.mark.parametrize("size", [(80, 24), (120, 30)])
def test_the_footer_labels_help_when_there_is_room_and_the_key_works_anyway(size: tuple[int, int]) -> None:
    async def scenario(pilot: Pilot[None], app: RustainerApp, shells: PtyShells) -> None:
        await pilot.press("ctrl+right_square_bracket")
        await until(pilot, lambda: "^p" in drawn_lines(app)[-1] and "Stop" in drawn_lines(app)[-1], "the list's footer")
        assert ("? Help" in drawn_lines(app)[-1]) == (size[0] >= app.HELP_WIDE)
        assert "Exec" in drawn_lines(app)[-1]
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        await pilot.press("q")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen), "closed")

    with_shells(scenario, size=size)


def test_search_keys_do_nothing_for_a_container_without_a_shell() -> None:
    app = dashboard(FakeEngine(fake_state("web", created_at=1.0), fake_state("done", status="exited", exit_code=0,
                                                                              created_at=2.0)))

    async def scenario(pilot: Pilot[None], app: RustainerApp, shells: PtyShells) -> None:
        await pilot.press("alt+2")
        await until(pilot, lambda: app.selected == by_name(app, "done"), "the ended one")
        await pilot.press("slash", "left_square_bracket")
        await pilot.pause()
        assert app.search_bar() is None and pane(app).copy_mode is None

    async def main(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: len(app.order) == 2, "listed")
        await scenario(pilot, app, PtyShells())
        await pilot.press("ctrl+q")

    run(app, main)


def test_in_a_split_the_search_is_in_the_selected_containers_pane() -> None:
    async def scenario(pilot: Pilot[None], app: RustainerApp, shells: PtyShells) -> None:
        shells.write("db", b"db-only-line\r\n")
        await pilot.press("ctrl+right_square_bracket", "vertical_line")  # web | db, db active
        await until(pilot, lambda: app.split_view is not None and app.selected == by_name(app, "db"), "the split")
        await pilot.press("ctrl+right_square_bracket", "slash")
        await until(pilot, lambda: app.search_bar() is not None, "the bar")
        await type_text(pilot, "db-only")
        await until(pilot, lambda: bar_status(app) == "1/1", "db's line found")
        searched = [p for p in app.screen.query(TerminalPane) if p.copy_mode is not None]
        assert [p.session for p in searched] == [app.session_of(by_name(app, "db"))]
        await pilot.press("escape")
        await until(pilot, lambda: not any(p.copy_mode for p in app.screen.query(TerminalPane)), "live again")

    with_shells(scenario)
