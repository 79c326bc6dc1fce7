"""More of the dashboard's promises (issue #5), headless (App.run_test and Pilot) against real detached
containers: an OOM-killed container in the list, the command palette's container actions, the layout
at 80x24 and 200x60 (with a snapshot at 200x60), and colours that survive a 256-colour terminal.

What the screen shows is read from the app's compositor (the same strips Textual writes to a
terminal), so "visible" means drawn on screen, not merely present in the widget tree.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import type_text, until
from rich.cells import cell_len
from rich.color import Color, ColorSystem
from rich.style import Style
from textual._compositor import LayoutUpdate
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import ContentSwitcher, Footer, Header, Sparkline, Static

from rustainer.app.tui_app import RustainerApp, create_app
from rustainer.app.tui_dialogs import ConfirmDialog
from rustainer.app.tui_stats import FrozenStats
from rustainer.app.tui_views import ExecScreen, InspectScreen, LogsScreen
from rustainer.widgets.container_list import ContainerCard, ContainerList
from rustainer.widgets.terminal_pane import TerminalPane

pytestmark = pytest.mark.root


# ---- helpers ----------------------------------------------------------------------------------------


def run(app: RustainerApp, scenario: Callable[[Pilot[None]], object], size: tuple[int, int] = (120, 40)) -> None:
    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await scenario(pilot)  # type: ignore[misc]

    asyncio.run(main())


def by_name(app: RustainerApp, name: str) -> str:
    return next(cid for cid, item in app.listed.items() if item.state.name == name)


def names(app: RustainerApp) -> list[str]:
    return [app.listed[cid].state.name for cid in app.order]


def screen_text(app: RustainerApp, name: str) -> str:
    session = app.session_of(by_name(app, name))
    return "\n".join(session.terminal.display) if session is not None else ""


def card(app: RustainerApp, name: str) -> ContainerCard:
    cid = by_name(app, name)
    return app.get_screen_stack_base().query_one(f"#card-{cid[:12]}", ContainerCard)


def card_status(app: RustainerApp, name: str) -> str:
    return str(card(app, name).query_one(".card-status", Static).render())


Cell = tuple[str, Style | None]


def drawn(app: RustainerApp) -> list[list[Cell]]:
    """The current screen as drawn, one (character, style) per cell (a wide character's second cell
    is ``""``): the compositor's full update, i.e. what Textual would write to a terminal."""
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    assert isinstance(update, LayoutUpdate)
    rows: list[list[Cell]] = []
    for line in update.strips:
        row: list[Cell] = []
        for strip in line:
            for segment in strip:
                if segment.control:
                    continue
                for char in segment.text:
                    row.append((char, segment.style))
                    if cell_len(char) == 2:
                        row.append(("", segment.style))
        rows.append(row)
    return rows


def drawn_lines(app: RustainerApp) -> list[str]:
    return ["".join(char for char, _style in row) for row in drawn(app)]


def region_text(app: RustainerApp, widget: Widget) -> list[str]:
    """The characters drawn inside the widget's region, line by line."""
    r = widget.region
    rows = drawn(app)[r.y:r.y + r.height]
    return ["".join(char for char, _ in row[r.x:r.x + r.width]) for row in rows]


async def shell_ready(pilot: Pilot[None], app: RustainerApp, *names_: str) -> None:
    await until(pilot, lambda: all(n in names(app) and "/ #" in screen_text(app, n) for n in names_)
                and isinstance(app.focused, TerminalPane), f"the shells of {', '.join(names_)}", timeout=30)


async def shell_command(pilot: Pilot[None], app: RustainerApp, name: str, text: str, expect: str) -> None:
    await type_text(pilot, text)
    await pilot.press("enter")
    await until(pilot, lambda: expect in screen_text(app, name).replace(text, ""), f"{expect!r} in {name}",
                timeout=20)


# ---- 1. an OOM-killed container ---------------------------------------------------------------------


def test_an_oom_killed_container_shows_its_exit_code_and_oom(containers, busybox_rootfs: Path,  # type: ignore[no-untyped-def]
                                                              rroot: Path) -> None:
    """A shell under a 16 MB limit execs something that eats memory (busybox tail keeps the "last
    line" of /dev/zero, which never ends): the kernel's OOM killer ends it, and its card turns into
    ``exited (137) OOM``; a container that simply exited with 3 shows its code and no OOM."""
    containers("hog", "--rootfs", str(busybox_rootfs), "-m", "16M", "--", "sh")
    containers("quitter", "--rootfs", str(busybox_rootfs), "--", "sh", "-c", "exit 3")
    app = create_app(str(rroot), stop_timeout=1)

    async def scenario(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: names(app) == ["hog", "quitter"]
                    and app.listed[by_name(app, "quitter")].state.status == "exited", "both containers listed")
        await shell_ready(pilot, app, "hog")
        assert app.selected == by_name(app, "hog")
        assert card_status(app, "hog") == "● running"
        assert card_status(app, "quitter") == "■ exited (3)"  # no OOM for an ordinary exit

        await type_text(pilot, "exec tail /dev/zero")
        await pilot.press("enter")
        hog = by_name(app, "hog")
        await until(pilot, lambda: app.listed[hog].state.status == "exited", "the OOM killer to end it", timeout=20)
        state = app.listed[hog].state
        assert (state.exit_code, state.oom_killed) == (137, True)
        await until(pilot, lambda: card_status(app, "hog") == "■ exited (137) OOM", "the card to show it")
        # OOM is set off (reverse video), so it stands out from the exit code
        status = card(app, "hog").query_one(".card-status", Static).render()
        oom_styles = [span.style for span in getattr(status, "spans", []) if str(status)[span.start:span.end] == " OOM"]
        assert oom_styles and all(getattr(s, "reverse", False) for s in oom_styles), oom_styles
        assert card_status(app, "quitter") == "■ exited (3)"
        # drawn on screen, in the list (not only in the widget tree)
        listing = "\n".join(region_text(app, app.screen.query_one(ContainerList)))
        assert "exited (137) OOM" in listing and "exited (3)" in listing
        assert listing.count("OOM") == 1, listing
        await pilot.press("ctrl+q")

    run(app, scenario)


def test_the_pane_says_how_a_shown_container_ended(containers, busybox_rootfs: Path,  # type: ignore[no-untyped-def]
                                                   rroot: Path) -> None:
    """The note the app shows for an ended container (exit code, OOM killer) also appears when the
    container ends while it is on screen, not only after a restart of the dashboard."""
    containers("hog", "--rootfs", str(busybox_rootfs), "-m", "16M", "--", "sh")
    app = create_app(str(rroot), stop_timeout=1)

    async def scenario(pilot: Pilot[None]) -> None:
        await shell_ready(pilot, app, "hog")
        await type_text(pilot, "exec tail /dev/zero")
        await pilot.press("enter")
        hog = by_name(app, "hog")
        await until(pilot, lambda: app.listed[hog].state.status == "exited", "the OOM killer to end it", timeout=20)
        panes = app.screen.query_one("#panes", ContentSwitcher)
        try:
            await until(pilot, lambda: panes.current == "note", "the note instead of the dead terminal", timeout=5)
            note = str(app.screen.query_one("#note", Static).render())
            assert "exit code 137" in note and "OOM killer" in note, note
            assert not isinstance(app.focused, TerminalPane)  # keys no longer go to a dead shell
        finally:
            await pilot.press("ctrl+q")

    run(app, scenario)


def test_a_dashboard_let_go_behind_a_flood_attaches_again(containers, busybox_rootfs: Path,  # type: ignore[no-untyped-def]
                                                          rroot: Path) -> None:
    """A dashboard that stops reading (stalled, suspended) while its container floods its terminal
    is let go by the supervisor once 8 MB wait for it (the container never waits). When it reads
    again it finds its session ended without an exit code while the container runs: it attaches
    again, and shows the current screen and a shell that still answers."""
    containers("flood", "--rootfs", str(busybox_rootfs), "--", "sh")
    app = create_app(str(rroot), stop_timeout=1)

    async def scenario(pilot: Pilot[None]) -> None:
        await shell_ready(pilot, app, "flood")
        cid = by_name(app, "flood")
        first = app.session_of(cid)
        assert first is not None and first._link is not None
        transport = first._link.transport  # type: ignore[attr-defined]
        transport.pause_reading()  # this dashboard stalls
        first.send(b"yes 0123456789012345678901234567890123456789 | head -c 20000000; echo flood-$((6*7))\r")
        log = rroot / "containers" / cid / "container.log"
        # the flood is over (the supervisor logs what it reads); the stalled session has not seen it
        await until(pilot, lambda: log.exists() and b"flood-42" in log.read_bytes()[-4096:], "the flood's end",
                    timeout=60)
        assert not first.ended and "flood-42" not in screen_text(app, "flood")
        transport.resume_reading()
        await until(pilot, lambda: app.session_of(cid) not in (None, first), "a new session", timeout=30)
        assert first.ended and first.exit_code is None  # let go, not ended
        await until(pilot, lambda: "flood-42" in screen_text(app, "flood"), "the current screen", timeout=20)
        await shell_command(pilot, app, "flood", "echo again", "again")
        assert app.listed[cid].state.status == "running" and not app._notifications  # no warning
        await pilot.press("ctrl+q")

    run(app, scenario)


def test_a_killed_supervisor_ends_the_session_without_a_retry(containers, busybox_rootfs: Path,  # type: ignore[no-untyped-def]
                                                              rroot: Path) -> None:
    """kill -9 of a shown container's supervisor also ends its session without an exit code, but the
    supervisor is gone: the dashboard shows the container as ended (the container lost its
    terminal) and does not try to attach again."""
    import os
    import signal

    containers("victim", "--rootfs", str(busybox_rootfs), "--", "sh")
    app = create_app(str(rroot), stop_timeout=1)

    async def scenario(pilot: Pilot[None]) -> None:
        await shell_ready(pilot, app, "victim")
        cid = by_name(app, "victim")
        first = app.session_of(cid)
        supervisor = app.listed[cid].state.supervisor_pid
        assert first is not None and supervisor is not None
        os.kill(supervisor, signal.SIGKILL)
        await until(pilot, lambda: app.listed[cid].state.status == "exited", "the container to be seen ended",
                    timeout=20)
        await until(pilot, lambda: app.session_of(cid) is None, "the session to be let go", timeout=10)
        panes = app.screen.query_one("#panes", ContentSwitcher)
        await until(pilot, lambda: panes.current == "note", "the note on how it ended", timeout=10)
        assert first.ended and not app._notifications  # no "cannot attach" warning
        await pilot.press("ctrl+q")

    run(app, scenario)


# ---- 2. the command palette -------------------------------------------------------------------------


def palette_titles(app: RustainerApp) -> list[str]:
    if not isinstance(app.screen, CommandPalette):
        return []
    found = []
    for option in app.screen.query_one(CommandList).options:
        hit = getattr(option, "hit", None)
        text = getattr(hit, "text", None)
        found.append(text if text is not None else str(option.prompt))
    return found


async def open_palette(pilot: Pilot[None], app: RustainerApp) -> list[str]:
    """ctrl+] (leave the terminal) then ctrl+p; the commands it offers before anything is typed."""
    if isinstance(app.focused, TerminalPane):
        await pilot.press("ctrl+right_square_bracket")
    await pilot.press("ctrl+p")
    await until(pilot, lambda: isinstance(app.screen, CommandPalette) and len(palette_titles(app)) > 1,
                "the command palette with its commands", timeout=10)
    return palette_titles(app)


async def run_from_palette(pilot: Pilot[None], app: RustainerApp, title: str) -> None:
    """Open the palette, type the command's title, and run the best hit (which must be it)."""
    await open_palette(pilot, app)
    await type_text(pilot, title.lower())
    await until(pilot, lambda: palette_titles(app)[:1] == [title], f"{title!r} as the palette's best hit", timeout=10)
    await pilot.press("down")  # highlight the best hit
    palette = app.screen
    await pilot.press("enter")
    await until(pilot, lambda: app.screen is not palette, f"the palette to run {title!r}", timeout=10)


def test_palette_offers_the_container_actions_and_runs_views(containers, busybox_rootfs: Path,  # type: ignore[no-untyped-def]
                                                            rroot: Path) -> None:
    containers("web", "--rootfs", str(busybox_rootfs), "--", "sh", "-c", "echo booted-$((6*7)); exec sh")
    containers("db", "--rootfs", str(busybox_rootfs), "--", "sh")
    app = create_app(str(rroot), stop_timeout=1)

    async def scenario(pilot: Pilot[None]) -> None:
        await shell_ready(pilot, app, "web", "db")
        assert app.selected == by_name(app, "web")
        # inside the terminal ctrl+p is the shell's (previous history line), not the palette
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, CommandPalette) and isinstance(app.focused, TerminalPane)

        offered = await open_palette(pilot, app)
        for title in ("Stop web", "Kill web", "Restart web", "Remove web", "Logs of web", "Inspect web",
                      "Exec a shell in web", "New container", "Switch to db"):
            assert title in offered, (title, offered)
        assert not any(t.endswith(" db") and not t.startswith("Switch") for t in offered), offered  # only the selection's
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, CommandPalette), "the palette closed")

        await run_from_palette(pilot, app, "Logs of web")
        await until(pilot, lambda: isinstance(app.screen, LogsScreen), "the logs view")
        logs = app.screen
        assert isinstance(logs, LogsScreen) and logs.container_name == "web"
        assert any("booted-42" in line for line in logs.lines), logs.lines
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, LogsScreen), "back from the logs")

        await run_from_palette(pilot, app, "Inspect web")
        await until(pilot, lambda: isinstance(app.screen, InspectScreen), "the inspect view")
        inspect = app.screen
        assert isinstance(inspect, InspectScreen)
        assert inspect.record["name"] == "web" and inspect.record["state"]["running"] is True
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, InspectScreen), "back from inspect")

        await run_from_palette(pilot, app, "Exec a shell in web")
        await until(pilot, lambda: isinstance(app.screen, ExecScreen), "the exec screen")
        pane = app.screen.query_one(TerminalPane)
        await until(pilot, lambda: "#" in "\n".join(pane.terminal.display), "the exec'd shell's prompt", timeout=20)
        await type_text(pilot, "echo exec-$((3+4)) > /tmp/mark; exit")
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, ExecScreen), "the exec screen to close", timeout=20)

        await run_from_palette(pilot, app, "Switch to db")
        await until(pilot, lambda: app.selected == by_name(app, "db"), "db selected")
        await until(pilot, lambda: app.terminal_view.session is app.session_of(by_name(app, "db")), "db's screen shown")
        await pilot.press("ctrl+right_square_bracket", "alt+1")
        await until(pilot, lambda: app.selected == by_name(app, "web") and isinstance(app.focused, TerminalPane),
                    "back in web's shell")
        # the exec'd shell really ran in web: its file is there
        await shell_command(pilot, app, "web", "cat /tmp/mark", "exec-7")
        await pilot.press("ctrl+q")

    run(app, scenario)


def test_palette_stops_restarts_kills_and_removes(containers, busybox_rootfs: Path,  # type: ignore[no-untyped-def]
                                                  rroot: Path) -> None:
    containers("web", "--rootfs", str(busybox_rootfs), "-m", "48M", "--", "sh")
    app = create_app(str(rroot), stop_timeout=1)

    async def scenario(pilot: Pilot[None]) -> None:
        await shell_ready(pilot, app, "web")
        first = by_name(app, "web")

        await run_from_palette(pilot, app, "Stop web")
        await until(pilot, lambda: app.listed[first].state.status == "exited", "web stopped", timeout=20)
        await until(pilot, lambda: card_status(app, "web").startswith("■ exited"), "its card updated")
        # a stopped container is offered what still makes sense, and nothing that needs it running
        offered = await open_palette(pilot, app)
        for title in ("Restart web", "Remove web", "Logs of web", "Inspect web"):
            assert title in offered, (title, offered)
        for title in ("Stop web", "Kill web", "Exec a shell in web"):
            assert title not in offered, (title, offered)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, CommandPalette), "the palette closed")

        await run_from_palette(pilot, app, "Restart web")
        await until(pilot, lambda: names(app) == ["web"] and by_name(app, "web") != first
                    and app.listed[by_name(app, "web")].state.status == "running", "web restarted", timeout=20)
        second = by_name(app, "web")
        assert app.listed[second].state.spec.resources.memory == 48 << 20  # same spec
        await shell_ready(pilot, app, "web")
        await shell_command(pilot, app, "web", "echo again-$((2*21))", "again-42")

        await run_from_palette(pilot, app, "Kill web")
        await until(pilot, lambda: app.listed[second].state.status == "exited", "web killed", timeout=20)
        assert app.listed[second].state.exit_code == 137
        await until(pilot, lambda: card_status(app, "web") == "■ exited (137)", "its card updated")

        await run_from_palette(pilot, app, "Remove web")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: names(app) == [], "web removed", timeout=20)
        await pilot.press("ctrl+q")

    run(app, scenario)


# ---- 3. 80x24 and 200x60 ----------------------------------------------------------------------------

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((200, 60), id="200x60")]


@pytest.mark.parametrize("size", SIZES)
def test_usable_at_size(size: tuple[int, int], containers, busybox_rootfs: Path,  # type: ignore[no-untyped-def]
                        rroot: Path) -> None:
    """Header, list, terminal pane and footer all fit; both cards are drawn whole; each container's
    pty has exactly the pane's columns and lines (the hidden one too), and the shell's output is
    drawn in the pane."""
    width, height = size
    containers("web", "--rootfs", str(busybox_rootfs), "-m", "128M", "--", "sh")
    containers("db", "--rootfs", str(busybox_rootfs), "-m", "256M", "--", "sh")
    app = create_app(str(rroot), stop_timeout=1)

    async def scenario(pilot: Pilot[None]) -> None:
        await shell_ready(pilot, app, "web", "db")
        screen = app.screen
        header, footer = screen.query_one(Header), screen.query_one(Footer)
        sidebar, listing, view = screen.query_one("#sidebar"), screen.query_one(ContainerList), app.terminal_view
        assert (header.region.x, header.region.y, header.region.width, header.region.height) == (0, 0, width, 1)
        assert (footer.region.x, footer.region.y, footer.region.width, footer.region.height) == (0, height - 1, width, 1)
        body = (1, height - 2)  # between the header and the footer
        assert (sidebar.region.x, sidebar.region.y, sidebar.region.height) == (0, *body)
        assert (view.region.y, view.region.height) == body and view.region.right == width
        assert sidebar.region.right <= view.region.x  # side by side, no overlap
        assert sidebar.region.width >= 30 and view.region.width >= width // 2, (sidebar.region, view.region)

        # both cards drawn whole: name, state, rootfs and cpus, memory with its limit
        cards = listing.cards()
        assert len(cards) == 2 and all(c.region.bottom <= listing.region.bottom for c in cards)
        drawn_list = region_text(app, listing)
        for c, limit in zip(cards, ("128M", "256M"), strict=True):
            top = c.region.y - listing.region.y
            lines = drawn_list[top:top + c.region.height]
            assert c.row.name in lines[0] and "● running" in lines[0], lines
            assert "busybox-rootfs0 · cpus all" in lines[1], lines
            assert lines[2].lstrip().startswith("CPU") and f"/{limit}" in lines[3], lines
            for label in c.query(".card-status, .card-where, .card-mem"):
                assert label.region.right <= listing.region.right  # not cut at the list's edge

        # the pty of each container is the pane's size: stty asks the kernel
        # (the pane's top line is its title bar; the pty gets every line below it and every column)
        columns, rows = view.content_size.width, view.content_size.height
        assert (columns, rows) == (view.region.width, view.region.height - 1)
        for name in ("web", "db"):
            if name == "db":
                await pilot.press("ctrl+pagedown")
                await until(pilot, lambda: view.session is app.session_of(by_name(app, "db")), "db shown")
            await shell_command(pilot, app, name, "stty size", f"{rows} {columns}")
            shown = region_text(app, view)
            assert any(line.rstrip() == f"{rows} {columns}" for line in shown), shown  # drawn in the pane
            assert shown[0].strip() == name, shown[0]  # the title bar names it
            await until(pilot, lambda name=name: region_text(app, view)[1].rstrip()  # the screen right below it
                        == screen_text(app, name).splitlines()[0].rstrip(), "the screen's top line under the bar")
        # and the footer's keys (the terminal has the focus: only the priority ones)
        bottom = drawn_lines(app)[height - 1]
        for key in ("^q Quit", "^] Command key", "^p Palette"):
            assert key in bottom, bottom
        await pilot.press("ctrl+q")

    run(app, scenario, size=size)


ACTION_KEYS = ("n New", "s Stop", "k Kill", "r Restart", "x Remove", "l Logs", "i Info", "e Exec")


@pytest.mark.parametrize("size", SIZES)
def test_footer_shows_every_container_action(size: tuple[int, int], containers,  # type: ignore[no-untyped-def]
                                             busybox_rootfs: Path, rroot: Path) -> None:
    """Outside the terminal (after the command key) the footer lists the actions on the selected
    container, each drawn whole on the bottom line."""
    containers("web", "--rootfs", str(busybox_rootfs), "--", "sh")
    app = create_app(str(rroot), poll=False)

    async def scenario(pilot: Pilot[None]) -> None:
        await shell_ready(pilot, app, "web")
        await pilot.press("ctrl+right_square_bracket")
        await until(pilot, lambda: isinstance(app.focused, ContainerList), "the list focused")
        await until(pilot, lambda: "n New" in drawn_lines(app)[-1], "the footer with the dashboard's keys")
        bottom = drawn_lines(app)[-1]
        try:
            missing = [key for key in (*ACTION_KEYS, "^q Quit", "^p Palette") if key not in bottom]
            assert not missing, f"not on the bottom line: {missing}\n{bottom}"
            # the keys that only move between the list and the terminal are labelled where they matter,
            # and still work where they are not labelled
            assert "Next" not in bottom and "Prev" not in bottom and "Command key" not in bottom, bottom
            assert ("esc Terminal" in bottom) == (size[0] >= app.WIDE), bottom
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.focused, TerminalPane), "escape: back in the terminal")
            await until(pilot, lambda: "^PgDn Next" in drawn_lines(app)[-1], "the terminal's footer")
            bottom = drawn_lines(app)[-1]
            for key in ("^q Quit", "^] Command key", "^PgDn Next", "^PgUp Prev", "^p Palette"):
                assert key in bottom, bottom
            assert "n New" not in bottom, bottom  # n is the shell's now
            await pilot.press("ctrl+right_square_bracket")
            await until(pilot, lambda: isinstance(app.focused, ContainerList), "the list focused again")
            await pilot.press("ctrl+right_square_bracket")
            await until(pilot, lambda: isinstance(app.focused, TerminalPane), "ctrl+]: back in the terminal")
        finally:
            await pilot.press("ctrl+q")

    run(app, scenario, size=size)


def test_the_title_bar_shows_the_name_and_the_window_title(containers, busybox_rootfs: Path,  # type: ignore[no-untyped-def]
                                                          rroot: Path) -> None:
    """The pane's top line names the shown container and the window title its programs set (OSC 0 and
    2), as drawn on screen; switching shows the other container's; a title is text, never markup."""
    containers("web", "--rootfs", str(busybox_rootfs), "--", "sh")
    containers("db", "--rootfs", str(busybox_rootfs), "--", "sh")
    app = create_app(str(rroot), poll=False)

    def bar() -> str:
        """The title bar's text, as drawn on the pane's top line."""
        return region_text(app, app.terminal_view)[0].strip()

    async def scenario(pilot: Pilot[None]) -> None:
        await shell_ready(pilot, app, "web", "db")
        view = app.terminal_view
        await until(pilot, lambda: bar() == "web", "web's name in the title bar")
        await type_text(pilot, "printf '\\033]0;hello-%s\\007' $((6*7))")
        await pilot.press("enter")
        await until(pilot, lambda: bar() == "web — hello-42", "the window title in the title bar", timeout=10)
        assert view.border_title is not None and view.title == "hello-42"
        # the pty is the content below the bar
        size = view.content_size
        assert (size.width, size.height) == (view.region.width, view.region.height - 1)
        await shell_command(pilot, app, "web", "stty size", f"{size.height} {size.width}")

        await pilot.press("ctrl+pagedown")
        await until(pilot, lambda: bar() == "db", "db's name alone (it has no window title)")
        await type_text(pilot, "printf '\\033]2;[b]not markup[/b]\\007'")
        await pilot.press("enter")
        await until(pilot, lambda: bar() == "db — [b]not markup[/b]", "db's title as it is", timeout=10)
        await pilot.press("ctrl+pageup")
        await until(pilot, lambda: bar() == "web — hello-42", "web's title back")
        await pilot.press("ctrl+q")

    run(app, scenario, size=(80, 24))


def test_main_screen_at_200x60(snap_compare, containers, busybox_rootfs: Path,  # type: ignore[no-untyped-def]
                               rroot: Path) -> None:
    containers("web", "--rootfs", str(busybox_rootfs), "-c", "0", "-m", "128M", "--", "sh")
    containers("db", "--rootfs", str(busybox_rootfs), "-c", "1", "-m", "256M", "--", "sh")
    app = create_app(str(rroot), stats=FrozenStats(), poll=False)

    async def run_before(pilot: Pilot[None]) -> None:
        await shell_ready(pilot, app, "web", "db")
        await shell_command(pilot, app, "web", "echo served-$((40+2))", "served-42")
        await pilot.press("ctrl+pagedown")
        await until(pilot, lambda: app.terminal_view.session is app.session_of(by_name(app, "db")), "db shown")
        size = app.terminal_view.content_size
        await shell_command(pilot, app, "db", "stty size", f"{size.height} {size.width}")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(200, 60), run_before=run_before)


# ---- 4. 256 colours ---------------------------------------------------------------------------------


def _xterm_256() -> dict[tuple[int, int, int], int]:
    """The fixed part of the xterm palette (16-255: the 6x6x6 cube and the grey ramp) by RGB; 0-15
    are left out, each terminal has its own."""
    levels = (0, 95, 135, 175, 215, 255)
    table: dict[tuple[int, int, int], int] = {}
    for index in range(16, 232):
        n = index - 16
        table.setdefault((levels[n // 36], levels[n // 6 % 6], levels[n % 6]), index)
    for index in range(232, 256):
        grey = 8 + 10 * (index - 232)
        table.setdefault((grey, grey, grey), index)
    return table


XTERM_256 = _xterm_256()
RGB_OF_INDEX = {index: rgb for rgb, index in XTERM_256.items()}


def rgb(color: Color) -> tuple[int, int, int]:
    triplet = color.get_truecolor()
    return (triplet.red, triplet.green, triplet.blue)


def as_256(color: Color) -> tuple[int, tuple[int, int, int]]:
    """What a 256-colour terminal is sent for this colour: the index Textual's console downgrades it
    to (the same call its strips make when they render), and that index's RGB."""
    down = color.downgrade(ColorSystem.EIGHT_BIT)
    assert down.number is not None and down.number >= 16, (color, down)
    return down.number, RGB_OF_INDEX[down.number]


def luminance(c: tuple[int, int, int]) -> float:
    def channel(v: int) -> float:
        s = v / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(c[0]) + 0.7152 * channel(c[1]) + 0.0722 * channel(c[2])


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG contrast ratio, 1 (same) to 21 (black on white)."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def colours(style: Style | None) -> tuple[Color, Color] | None:
    """(foreground, background) as drawn, reverse video applied; None for the terminal's defaults."""
    if style is None or style.color is None or style.bgcolor is None:
        return None
    fg, bg = style.color, style.bgcolor
    return (bg, fg) if style.reverse else (fg, bg)


def kind_of(widget: Widget) -> str | None:
    """Which part of the dashboard a drawn cell belongs to, for the colour checks."""
    chain = [widget, *widget.ancestors]
    if any(isinstance(w, Header) for w in chain):
        return "header"
    if any(isinstance(w, Footer) for w in chain):
        return "footer"
    if widget.id == "sidebar":
        return "border"  # its right border, between the list and the terminal
    if not any(isinstance(w, ContainerList) for w in chain):
        return None
    if isinstance(widget, Sparkline):
        return "spark"
    if widget.has_class("card-status"):
        return "status"
    if widget.has_class("card-where"):
        return "muted"  # rootfs, cpus, network: secondary text
    return "text"


@dataclass(frozen=True)
class Drawn:
    kind: str
    selected: bool  # on the highlighted card
    char: str
    x: int
    y: int
    fg: Color
    bg: Color

    def where(self) -> str:
        return f"{self.char!r} at {self.x},{self.y} ({self.kind}{', selected card' if self.selected else ''})"


def survey(app: RustainerApp) -> list[Drawn]:
    """Every non-blank cell of the list, the header, the footer and the border, with its colours."""
    highlighted = app.screen.query_one(ContainerList).highlighted_child
    found = []
    for y, row in enumerate(drawn(app)):
        for x, (char, style) in enumerate(row):
            pair = colours(style)
            if not char.strip() or pair is None:
                continue
            widget, _ = app.screen.get_widget_at(x, y)
            kind = kind_of(widget)
            if kind is not None:
                selected = highlighted is not None and highlighted in (widget, *widget.ancestors)
                found.append(Drawn(kind, selected, char, x, y, *pair))
    return found


# Least contrast (WCAG ratio) each kind of text must keep in 256 colours: body text AA (4.5), secondary
# text and the state AA-large (3); lines and sparklines only have to stay visible (another index).
MIN_CONTRAST = {"text": 4.5, "header": 4.5, "footer": 4.5, "muted": 3.0, "status": 3.0}


def legibility_problems(cells: list[Drawn]) -> list[str]:
    """One line per kind of text and pair of colours that falls short, with the text it draws."""
    short: dict[tuple[str, bool, int, int, str], list[str]] = {}
    for cell in cells:
        (fg_index, fg), (bg_index, bg) = as_256(cell.fg), as_256(cell.bg)
        need = None if "\u2500" <= cell.char <= "\u259f" else MIN_CONTRAST.get(cell.kind)  # a line, a bar
        if need is None:
            if fg_index == bg_index:
                short.setdefault((cell.kind, cell.selected, fg_index, bg_index, "invisible"), []).append(cell.char)
        elif (ratio := contrast(fg, bg)) < need:
            why = (f"{ratio:.2f}:1 < {need} ({contrast(rgb(cell.fg), rgb(cell.bg)):.2f}:1 in 24-bit colour, "
                   f"{cell.fg.get_truecolor().hex} on {cell.bg.get_truecolor().hex})")
            short.setdefault((cell.kind, cell.selected, fg_index, bg_index, why), []).append(cell.char)
    return [f"{kind}{' on the selected card' if selected else ''}: colour {fg} on {bg} is {why}: {''.join(chars)[:40]!r}"
            for (kind, selected, fg, bg, why), chars in short.items()]


async def in_three_states(pilot: Pilot[None], app: RustainerApp) -> list[list[Drawn]]:
    """The screen (a) with the terminal focused, (b) after the command key (the list focused), (c)
    with the list's highlight moved to the exited container."""
    states = [survey(app)]
    await pilot.press("ctrl+right_square_bracket")
    await until(pilot, lambda: isinstance(app.focused, ContainerList), "the list focused")
    await pilot.pause(0.1)
    states.append(survey(app))
    await pilot.press("down")
    await until(pilot, lambda: app.screen.query_one(ContainerList).index == 1, "the highlight on the second card")
    await pilot.pause(0.1)
    states.append(survey(app))
    return states


def app_in_a_256_colour_terminal(rroot: Path, monkeypatch: pytest.MonkeyPatch) -> RustainerApp:
    """The dashboard as started from an xterm-256color terminal that does not announce 24-bit colour
    (no COLORTERM): Textual's console then draws with the 256-colour palette."""
    import textual.constants

    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", "auto")  # what TEXTUAL_COLOR_SYSTEM unset means
    app = create_app(str(rroot), stats=FrozenStats(), poll=False)
    assert app.console.color_system == "256"
    return app


def three_containers(containers, rootfs: Path) -> None:  # type: ignore[no-untyped-def]
    containers("web", "--rootfs", str(rootfs), "--", "sh")
    containers("ended", "--rootfs", str(rootfs), "--", "sh", "-c", "exit 3")
    containers("db", "--rootfs", str(rootfs), "--", "sh")


THEME_COLOURS = ("primary", "secondary", "accent", "foreground", "background", "surface", "panel", "success",
                 "warning", "error")


def test_theme_is_made_of_256_colours_and_reads_well(containers, busybox_rootfs: Path, rroot: Path,  # type: ignore[no-untyped-def]
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Every colour of the active theme is an xterm-256 palette colour; wherever one is drawn as it is
    (backgrounds, the border, the footer's keys) a 256-colour terminal gets exactly that colour; text
    on the header, the footer and the cards that are not selected stays legible, lines stay visible,
    and the selected card stands out from the others."""
    three_containers(containers, busybox_rootfs)
    app = app_in_a_256_colour_terminal(rroot, monkeypatch)

    async def scenario(pilot: Pilot[None]) -> None:
        await shell_ready(pilot, app, "web", "db")
        theme = app.current_theme
        assert theme.name == "rustainer"
        declared = {name: Color.parse(str(getattr(theme, name))) for name in THEME_COLOURS}
        off_palette = {name: c.get_truecolor().hex for name, c in declared.items() if rgb(c) not in XTERM_256}
        assert not off_palette, f"theme colours outside the xterm 256-colour palette: {off_palette}"

        states = await in_three_states(pilot, app)
        cells = [cell for state in states for cell in state]
        assert {c.kind for c in cells} >= {"header", "footer", "border", "text", "muted", "status", "spark"}
        # colours drawn straight from the theme come out unchanged. The foreground is left out: Rich
        # maps light greys with round(lightness * 25), one step of the grey ramp too dark (#dadada,
        # index 253, is sent as 252); the text checks below cover it.
        exact = {rgb(c): name for name, c in declared.items() if name != "foreground"}
        seen = set()
        for cell in cells:
            for colour in (cell.fg, cell.bg):
                if rgb(colour) in exact:
                    seen.add(exact[rgb(colour)])
                    index, sent = as_256(colour)
                    assert sent == rgb(colour), f"{cell.where()}: {rgb(colour)} is sent as {index} = {sent}"
        assert seen >= {"background", "surface", "panel", "accent"}, seen  # the check is not vacuous
        assert {rgb(c.bg) for c in cells if c.kind in ("header", "footer")} == {rgb(declared["panel"])}

        for state in states:
            problems = legibility_problems([c for c in state if not c.selected])
            assert not problems, "\n".join(problems)
            selected = {as_256(c.bg)[0] for c in state if c.selected and c.kind == "text"}
            others = {as_256(c.bg)[0] for c in state if not c.selected and c.kind == "text"}
            assert selected and others and not selected & others, (selected, others)  # the highlight shows
        await pilot.press("ctrl+q")

    run(app, scenario, size=(120, 30))


def test_the_selected_card_reads_well_in_256_colours(containers, busybox_rootfs: Path, rroot: Path,  # type: ignore[no-untyped-def]
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    three_containers(containers, busybox_rootfs)
    app = app_in_a_256_colour_terminal(rroot, monkeypatch)

    async def scenario(pilot: Pilot[None]) -> None:
        await shell_ready(pilot, app, "web", "db")
        try:
            states = await in_three_states(pilot, app)
            problems = legibility_problems([c for state in states for c in state if c.selected])
            assert not problems, "\n".join(problems)
        finally:
            await pilot.press("ctrl+q")

    run(app, scenario, size=(120, 30))
