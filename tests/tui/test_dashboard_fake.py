"""The dashboard against an in-memory engine (tests/tui/fake_engine.py): everything that needs no real
container, so these run without root. Headless (App.run_test and Pilot); what is "drawn" is read from
the app's compositor, the strips Textual would write to a terminal."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import pytest
from conftest import type_text, until
from fake_engine import FakeEngine, fake_state
from rich.cells import cell_len
from textual._compositor import LayoutUpdate
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Button, ContentSwitcher, Footer, Header, Input, Select, Static

from rustainer.app.tui_app import RustainerApp, create_app
from rustainer.app.tui_dialogs import ConfirmDialog, NewContainerDialog
from rustainer.app.tui_stats import FrozenStats
from rustainer.app.tui_views import InspectScreen, LogsScreen
from rustainer.backend.errors import ContainerStateError, NameInUseError
from rustainer.widgets.container_list import ContainerCard, ContainerList

# ---- helpers ----------------------------------------------------------------------------------------


def dashboard(engine: FakeEngine, **kwargs: object) -> RustainerApp:
    app = create_app(engine=engine, stats=FrozenStats(), poll=False, stop_timeout=1, **kwargs)  # type: ignore[arg-type]
    told: list[tuple[str, str]] = []
    shown = app.notify

    def notify(message: str, **options: object) -> None:  # what messages() reads, kept after expiry
        told.append((message, str(options.get("severity", "information"))))
        shown(message, **options)  # type: ignore[arg-type]

    app.notify = notify  # type: ignore[method-assign]
    app._told = told  # type: ignore[attr-defined]
    return app


def run(app: RustainerApp, scenario: Callable[[Pilot[None]], object], size: tuple[int, int] = (120, 40)) -> None:
    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await scenario(pilot)  # type: ignore[misc]

    asyncio.run(main())


def by_name(app: RustainerApp, name: str) -> str:
    return next(cid for cid, item in app.listed.items() if item.state.name == name)


def names(app: RustainerApp) -> list[str]:
    return [app.listed[cid].state.name for cid in app.order]


def card(app: RustainerApp, name: str) -> ContainerCard:
    return app.get_screen_stack_base().query_one(f"#card-{by_name(app, name)[:12]}", ContainerCard)


def card_status(app: RustainerApp, name: str) -> str:
    return str(card(app, name).query_one(".card-status", Static).render())


def drawn_lines(app: RustainerApp) -> list[str]:
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    assert isinstance(update, LayoutUpdate)
    lines = []
    for line in update.strips:
        chars = []
        for strip in line:
            for segment in strip:
                if segment.control:
                    continue
                for char in segment.text:
                    chars.append(char)
                    if cell_len(char) == 2:
                        chars.append("")
        lines.append("".join(chars))
    return lines


def region_text(app: RustainerApp, widget: Widget) -> list[str]:
    r = widget.region
    return [line[r.x:r.x + r.width] for line in drawn_lines(app)[r.y:r.y + r.height]]


def messages(app: RustainerApp) -> list[tuple[str, str]]:
    """Every notification the app has shown so far, expired ones too (a loaded machine may take
    longer between a notification and the look at it than its 5 s on screen: a CI run did)."""
    told: list[tuple[str, str]] = getattr(app, "_told", [])
    live = [(n.message, n.severity) for n in app._notifications]
    return told + [m for m in live if m not in told]


async def leave_terminal(pilot: Pilot[None], app: RustainerApp) -> None:
    """The first container selected and the list focused (a fake container has no shell to focus)."""
    await until(pilot, lambda: app.order and app.selected == app.order[0] and isinstance(app.focused, ContainerList),
                "the first container selected, the list focused")


THREE = (fake_state("web", created_at=1.0),
         fake_state("hog", status="exited", exit_code=137, oom_killed=True, memory=16 << 20, created_at=2.0),
         fake_state("quitter", status="exited", exit_code=3, created_at=3.0))


# ---- the list ---------------------------------------------------------------------------------------


def test_empty_state_shows_the_hint_and_the_placeholder() -> None:
    app = dashboard(FakeEngine())

    async def scenario(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: app.screen.query_one("#empty-hint").display, "the hint")
        assert names(app) == [] and app.selected is None
        assert app.screen.query_one("#panes", ContentSwitcher).current == "placeholder"
        text = "\n".join(drawn_lines(app))
        assert "No containers yet" in text and "Press n to create one" in text, text
        hint = str(app.screen.query_one("#empty-hint", Static).render())
        assert hint == "No containers yet: press n to create one."
        await until(pilot, lambda: "^q Quit" in drawn_lines(app)[-1], "the footer")
        assert "n New" in drawn_lines(app)[-1]
        await pilot.press("ctrl+q")

    run(app, scenario, size=(80, 24))


def test_list_renders_running_exited_and_oom_killed_containers() -> None:
    app = dashboard(FakeEngine(*THREE))

    async def scenario(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: names(app) == ["web", "hog", "quitter"] and app.selected is not None
                    and len(app.screen.query_one(ContainerList).cards()) == 3, "three containers' cards")
        assert not app.screen.query_one("#empty-hint").display
        assert card_status(app, "web") == "● running"
        assert card_status(app, "hog") == "■ exited (137) OOM"
        assert card_status(app, "quitter") == "■ exited (3)"
        listing = "\n".join(region_text(app, app.screen.query_one(ContainerList)))
        assert "exited (137) OOM" in listing and "exited (3)" in listing and listing.count("OOM") == 1, listing
        assert "busybox · cpus 0" in listing and "MEM 3.0M/64M" in listing, listing
        # the OOM-killed one, selected: the note says how it ended
        await leave_terminal(pilot, app)
        await pilot.press("alt+2")
        await until(pilot, lambda: app.selected == by_name(app, "hog"), "hog selected")
        panes = app.screen.query_one("#panes", ContentSwitcher)
        await until(pilot, lambda: panes.current == "note", "the note")
        note = str(app.screen.query_one("#note", Static).render())
        assert "hog has exited with exit code 137 (killed by the OOM killer)" in note, note
        assert "r restarts it" in note
        await pilot.press("ctrl+q")

    run(app, scenario)


# ---- the new-container dialog -----------------------------------------------------------------------


def test_new_container_dialog_validates_each_field() -> None:
    engine = FakeEngine(fake_state("taken"), cpus=(0, 1))
    app = dashboard(engine)

    async def scenario(pilot: Pilot[None]) -> None:
        await leave_terminal(pilot, app)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NewContainerDialog), "the dialog")
        dialog = app.screen
        assert dialog.query_one("#field-name", Input).value == "brave_otter_7"  # the engine's suggestion

        def error(field: str) -> str:
            return str(dialog.query_one(f"#error-{field}", Static).render())

        cases = {"name": ("-bad", "invalid container name"), "cpus": ("999", "not available"),
                 "memory": ("12X", "invalid memory size"), "cpu_quota": ("0", "greater than zero"),
                 "pids_limit": ("0", "at least 1"), "rootfs": ("/no/such/folder", "not a folder"),
                 "network": ("no-such-net", "unknown network")}
        for field, (text, message) in cases.items():
            dialog.query_one(f"#field-{field}", Input).value = text
            await until(pilot, lambda f=field, m=message: m in error(f), f"the error under {field}")  # type: ignore[misc]
        dialog.query_one("#field-memory", Input).value = "1M"
        await until(pilot, lambda: "too small: give at least 6M" in error("memory"), "the too-small memory error")
        await pilot.click("#create")
        assert isinstance(app.screen, NewContainerDialog)  # nothing is created while a field is wrong
        dialog.query_one("#field-name", Input).value = "taken"
        await until(pilot, lambda: "already in use" in error("name"), "the name-in-use error")
        for field in cases:
            dialog.query_one(f"#field-{field}", Input).value = ""
        dialog.query_one("#field-name", Input).value = "fine"
        await until(pilot, lambda: all(not error(f) for f in cases), "every error cleared")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, NewContainerDialog), "the dialog cancelled")
        assert names(app) == ["taken"] and not engine.called("start_detached")
        await pilot.press("ctrl+q")

    run(app, scenario, size=(80, 24))


def test_the_dialog_starts_the_container_through_the_engine_without_forking(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    engine = FakeEngine()
    app = dashboard(engine)

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("ctrl+right_square_bracket", "n")
        await until(pilot, lambda: isinstance(app.screen, NewContainerDialog), "the dialog")
        dialog = app.screen
        for field, value in (("name", "fresh"), ("rootfs", str(rootfs)), ("cpus", "1"), ("memory", "64M"),
                             ("cpu_quota", "0.5"), ("pids_limit", "50"), ("network", "bridge")):
            dialog.query_one(f"#field-{field}", Input).value = value
        await pilot.pause()
        await pilot.click("#create")
        await until(pilot, lambda: names(app) == ["fresh"] and app.selected == by_name(app, "fresh"),
                    "the new container, selected")
        ((spec,), options), = engine.called("start_detached")
        assert options == {"fork_fallback": False}  # the launcher forks the supervisor, never the dashboard
        assert (spec.name, spec.rootfs, spec.network, spec.tty, spec.remove, spec.init) == (
            "fresh", str(rootfs), "bridge", True, False, True)
        r = spec.resources
        assert (r.cpus, r.memory, r.cpu_quota, r.pids_limit) == ((1,), 64 << 20, 0.5, 50)
        assert ("starting fresh…", "information") in messages(app)
        await pilot.press("ctrl+q")

    run(app, scenario)


def test_the_dialog_offers_the_local_images_and_starts_one_as_run_image_does(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The image field lists the engine's local images; an image with a rootfs folder is refused as
    the CLI refuses --image with --rootfs; the spec sent is the engine's image_spec of the dialog's."""
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    engine = FakeEngine(images={"web:1": ("httpd", "-f"), "alpine:3.20": ("/bin/sh",)})
    app = dashboard(engine)

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("ctrl+right_square_bracket", "n")
        await until(pilot, lambda: isinstance(app.screen, NewContainerDialog), "the dialog")
        dialog = app.screen
        select = dialog.query_one("#field-image", Select)
        assert select.is_blank()  # blank: no image
        fields = dialog.query_one(".dialog-fields")
        for field in ("name", "image", "rootfs", "network"):  # every field fits at 80x24, unscrolled
            box = dialog.query_one(f"#field-{field}")
            assert fields.region.y <= box.region.y < fields.region.bottom, (field, box.region, fields.region)
        dialog.query_one("#field-name", Input).value = "imaged"
        await pilot.click("#field-image")
        await until(pilot, lambda: select.expanded, "the image list open")
        await until(pilot, lambda: any("alpine:3.20" in line for line in drawn_lines(app))
                    and any("web:1" in line for line in drawn_lines(app)), "the images listed")
        await pilot.press("w", "enter")  # type to search, then choose
        await until(pilot, lambda: select.value == "web:1" and not select.expanded, "web:1 chosen")

        def error() -> str:
            return str(dialog.query_one("#error-image", Static).render())

        dialog.query_one("#field-rootfs", Input).value = str(rootfs)
        await until(pilot, lambda: "both name the root" in error(), "image and folder refused")
        await pilot.click("#create")
        await pilot.pause()
        assert isinstance(app.screen, NewContainerDialog) and not engine.called("start_detached")
        dialog.query_one("#field-rootfs", Input).value = ""
        await until(pilot, lambda: not error(), "the error cleared")
        # Pressed, not clicked: the error line's going moves the button, and a click aimed before the
        # next layout may land beside it.
        dialog.query_one("#create", Button).press()
        await until(pilot, lambda: names(app) == ["imaged"], "the new container")
        ((_plain, image), _options), = engine.called("image_spec")
        ((spec,), options), = engine.called("start_detached")
        assert image == "web:1" and options == {"fork_fallback": False}
        assert (spec.name, spec.image_name, spec.rootfs, spec.command, spec.tty) == (
            "imaged", "web:1", None, ("httpd", "-f"), True)
        await until(pilot, lambda: "web:1" in str(card(app, "imaged").query_one(".card-where").render()),
                    "the image's name on its card")
        await pilot.press("ctrl+q")

    run(app, scenario, size=(80, 24))


def test_a_card_names_the_image_the_folder_or_the_host_view() -> None:
    engine = FakeEngine(fake_state("imaged", image="alpine:3.20", created_at=1.0),
                        fake_state("folder", rootfs="/srv/roots/busybox/", created_at=2.0),
                        fake_state("hosted", rootfs=None, created_at=3.0))
    app = dashboard(engine)

    async def scenario(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: len(app.screen.query_one(ContainerList).cards()) == 3, "three cards")
        where = {name: str(card(app, name).query_one(".card-where").render()) for name in ("imaged", "folder", "hosted")}
        assert where["imaged"].startswith("alpine:3.20 ·"), where
        assert where["folder"].startswith("busybox ·"), where
        assert where["hosted"].startswith("host view ·"), where
        await pilot.press("ctrl+q")

    run(app, scenario)


# ---- actions ----------------------------------------------------------------------------------------


@pytest.fixture
def no_subprocesses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every way of starting a process fails the test (and is recorded)."""
    import subprocess

    attempts: list[str] = []

    def refuse(what: str) -> Callable[..., object]:
        def refused(*args: object, **kwargs: object) -> object:
            attempts.append(f"{what}{args!r}")
            raise AssertionError(f"the dashboard started a process: {what}{args!r}")

        return refused

    monkeypatch.setattr(subprocess, "Popen", refuse("subprocess.Popen"))
    monkeypatch.setattr(asyncio, "create_subprocess_exec", refuse("asyncio.create_subprocess_exec"))
    monkeypatch.setattr(asyncio, "create_subprocess_shell", refuse("asyncio.create_subprocess_shell"))
    monkeypatch.setattr(os, "fork", refuse("os.fork"))
    monkeypatch.setattr(os, "posix_spawn", refuse("os.posix_spawn"))
    return attempts


def test_actions_go_through_the_engine_never_a_cli_process(no_subprocesses: list[str]) -> None:
    engine = FakeEngine(fake_state("web", memory=48 << 20, created_at=1.0), fake_state("db", created_at=2.0))
    app = dashboard(engine)
    web = engine._find("web").id

    async def scenario(pilot: Pilot[None]) -> None:
        await leave_terminal(pilot, app)
        assert app.selected == web
        await pilot.press("s")
        await until(pilot, lambda: app.listed[web].state.status == "exited", "web stopped")
        assert engine.called("stop") == [((web, 1.0), {})]
        assert ("web stopped", "information") in messages(app)

        await pilot.press("r")
        await until(pilot, lambda: names(app) == ["db", "web"] and by_name(app, "web") != web
                    and app.selected == by_name(app, "web"), "web restarted (a new id), selected")
        assert engine.called("restart") == [((web, ), {"force": True, "fork_fallback": False})]
        second = by_name(app, "web")
        assert app.listed[second].state.spec.resources.memory == 48 << 20  # the same spec

        await pilot.press("k")
        await until(pilot, lambda: app.listed[second].state.status == "exited", "web killed")
        assert engine.called("kill") == [((second, 9), {})]
        await until(pilot, lambda: card_status(app, "web") == "■ exited (137)", "its card")

        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: names(app) == ["db"], "web removed")
        assert engine.called("remove") == [((second,), {"force": True})]
        await pilot.press("ctrl+q")

    run(app, scenario)
    assert no_subprocesses == []


def test_a_typed_engine_error_is_a_notification() -> None:
    engine = FakeEngine(fake_state("web"))
    engine.fail["stop"] = ContainerStateError("cannot stop container web: its supervisor does not answer")
    app = dashboard(engine)

    async def scenario(pilot: Pilot[None]) -> None:
        await leave_terminal(pilot, app)
        await pilot.press("s")
        await until(pilot, lambda: messages(app), "a notification")
        assert messages(app) == [("stop web: cannot stop container web: its supervisor does not answer", "error")]
        assert app.listed[by_name(app, "web")].state.status == "running" and app.busy == set()
        # a name taken between the dialog and the start: the engine's own words
        engine.fail["start_detached"] = NameInUseError("the name 'late' is already in use")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NewContainerDialog), "the dialog")
        app.screen.query_one("#field-name", Input).value = "late"
        await pilot.pause()
        await pilot.click("#create")
        await until(pilot, lambda: any("cannot create late" in m for m, _ in messages(app)), "the error")
        assert ("cannot create late: the name 'late' is already in use", "error") in messages(app)
        assert names(app) == ["web"]
        await pilot.press("ctrl+q")

    run(app, scenario)


def test_logs_and_inspect_views_come_from_the_engine() -> None:
    engine = FakeEngine(fake_state("web"), fake_state("fg", status="exited", exit_code=0, created_at=time_after()))
    web = engine._find("web").id
    engine.logs_data[web] = b"booted-42\r\nready\r\n"
    app = dashboard(engine)

    async def scenario(pilot: Pilot[None]) -> None:
        await leave_terminal(pilot, app)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogsScreen), "the logs view")
        assert app.screen.lines == ["booted-42", "ready"]  # type: ignore[attr-defined]
        await pilot.press("escape")
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, InspectScreen), "the inspect view")
        assert app.screen.record["name"] == "web"  # type: ignore[attr-defined]
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, InspectScreen), "back")
        # a foreground run kept no log: the engine says so, as a warning, and no view opens
        engine.fail["logs"] = ContainerStateError("container fg ran in the foreground: its output was not logged")
        await pilot.press("alt+2", "l")
        await until(pilot, lambda: messages(app), "the warning")
        assert messages(app) == [("container fg ran in the foreground: its output was not logged", "warning")]
        assert not isinstance(app.screen, LogsScreen)
        await pilot.press("ctrl+q")

    run(app, scenario)


def time_after() -> float:
    import time

    return time.time() + 60


# ---- the palette ------------------------------------------------------------------------------------


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
    await pilot.press("ctrl+p")
    await until(pilot, lambda: isinstance(app.screen, CommandPalette) and len(palette_titles(app)) > 1,
                "the command palette with its commands", timeout=10)
    return palette_titles(app)


def test_palette_offers_what_suits_the_selected_container() -> None:
    engine = FakeEngine(*THREE)
    app = dashboard(engine)

    async def scenario(pilot: Pilot[None]) -> None:
        await leave_terminal(pilot, app)
        offered = await open_palette(pilot, app)
        for title in ("Stop web", "Kill web", "Restart web", "Remove web", "Logs of web", "Inspect web",
                      "Exec a shell in web", "New container", "Switch to hog", "Switch to quitter"):
            assert title in offered, (title, offered)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, CommandPalette), "the palette closed")
        await pilot.press("alt+2")
        await until(pilot, lambda: app.selected == by_name(app, "hog"), "hog selected")
        offered = await open_palette(pilot, app)
        for title in ("Restart hog", "Remove hog", "Logs of hog", "Inspect hog"):
            assert title in offered, (title, offered)
        for title in ("Stop hog", "Kill hog", "Exec a shell in hog"):
            assert title not in offered, (title, offered)
        await type_text(pilot, "inspect hog")
        await until(pilot, lambda: palette_titles(app)[:1] == ["Inspect hog"], "the best hit")
        await pilot.press("down", "enter")
        await until(pilot, lambda: isinstance(app.screen, InspectScreen), "the inspect view")
        assert app.screen.record["name"] == "hog"  # type: ignore[attr-defined]
        await pilot.press("escape")
        await pilot.press("ctrl+q")

    run(app, scenario)


# ---- keys and layout --------------------------------------------------------------------------------

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((200, 60), id="200x60")]
ACTION_KEYS = ("n New", "s Stop", "k Kill", "r Restart", "x Remove", "l Logs", "i Info", "e Exec")


@pytest.mark.parametrize("size", SIZES)
def test_footer_shows_every_container_action(size: tuple[int, int]) -> None:
    app = dashboard(FakeEngine(*THREE))

    async def scenario(pilot: Pilot[None]) -> None:
        await leave_terminal(pilot, app)
        keys = (*ACTION_KEYS, "^q Quit", "^p Palette")
        try:
            await until(pilot, lambda: all(key in drawn_lines(app)[-1] for key in keys),
                        "the footer with the dashboard's keys", timeout=10)
        except AssertionError:
            bottom = drawn_lines(app)[-1]
            raise AssertionError(f"not on the bottom line: {[k for k in keys if k not in bottom]}\n{bottom}") from None
        bottom = drawn_lines(app)[-1]
        assert "Next" not in bottom and "Prev" not in bottom and "Command key" not in bottom, bottom
        assert "esc Terminal" not in bottom, bottom  # no shell to go back to
        # an exited container: the keys that need it running are still labelled, but do nothing
        await pilot.press("alt+2")
        await until(pilot, lambda: app.selected == by_name(app, "hog"), "hog selected")
        assert app._allowed("stop") is None and app._allowed("restart") is True
        await pilot.press("s")
        await pilot.pause()
        assert not engine_calls(app, "stop")
        await pilot.press("ctrl+q")

    run(app, scenario, size=size)


def engine_calls(app: RustainerApp, method: str) -> list[object]:
    engine = app.engine
    assert isinstance(engine, FakeEngine)
    return list(engine.called(method))


@pytest.mark.parametrize("size", SIZES)
def test_layout_at_size(size: tuple[int, int]) -> None:
    width, height = size
    engine = FakeEngine(fake_state("web", memory=128 << 20, created_at=1.0),
                        fake_state("db", memory=256 << 20, cpus=(1,), created_at=2.0))
    app = dashboard(engine)

    async def scenario(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: names(app) == ["web", "db"] and len(app.screen.query_one(ContainerList).cards()) == 2
                    and app.selected is not None, "both containers' cards")
        screen = app.screen
        header, footer = screen.query_one(Header), screen.query_one(Footer)
        sidebar, listing, panes = screen.query_one("#sidebar"), screen.query_one(ContainerList), screen.query_one("#panes")
        assert (header.region.x, header.region.y, header.region.width, header.region.height) == (0, 0, width, 1)
        assert (footer.region.x, footer.region.y, footer.region.width, footer.region.height) == (0, height - 1, width, 1)
        body = (1, height - 2)
        assert (sidebar.region.x, sidebar.region.y, sidebar.region.height) == (0, *body)
        assert (panes.region.y, panes.region.height) == body and panes.region.right == width
        assert sidebar.region.right <= panes.region.x
        assert sidebar.region.width >= 30 and panes.region.width >= width // 2, (sidebar.region, panes.region)
        cards = listing.cards()
        assert len(cards) == 2 and all(c.region.bottom <= listing.region.bottom for c in cards)
        drawn_list = region_text(app, listing)
        for c, where, limit in zip(cards, ("busybox · cpus 0", "busybox · cpus 1"), ("128M", "256M"), strict=True):
            top = c.region.y - listing.region.y
            lines = drawn_list[top:top + c.region.height]
            assert c.row.name in lines[0] and "● running" in lines[0], lines
            assert where in lines[1], lines
            assert lines[2].lstrip().startswith("CPU") and f"/{limit}" in lines[3], lines
            for label in c.query(".card-status, .card-where, .card-mem"):
                assert label.region.right <= listing.region.right
        assert "web" in drawn_lines(app)[0]  # the selected container's name in the header
        await pilot.press("ctrl+q")

    run(app, scenario, size=size)
