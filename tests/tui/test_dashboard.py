"""The dashboard's flows, headless (App.run_test and Pilot) against real detached containers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import type_text, until
from textual.pilot import Pilot
from textual.widgets import ContentSwitcher, Input, Label, Select, Static

from rustainer.app.tui_app import RustainerApp, create_app
from rustainer.app.tui_dialogs import ConfirmDialog, NewContainerDialog
from rustainer.app.tui_views import ExecScreen, InspectScreen, LogsScreen
from rustainer.widgets.container_list import ContainerCard, ContainerList
from rustainer.widgets.terminal_pane import TerminalPane

pytestmark = pytest.mark.root


def screen_text(app: RustainerApp, name: str) -> str:
    session = app.session_of(by_name(app, name))
    assert session is not None, f"no session for {name}"
    return "\n".join(session.terminal.display)


def by_name(app: RustainerApp, name: str) -> str:
    return next(cid for cid, item in app.listed.items() if item.state.name == name)


def names(app: RustainerApp) -> list[str]:
    return [app.listed[cid].state.name for cid in app.order]


def shown(app: RustainerApp) -> str | None:
    """The container whose session the terminal pane draws, or which placeholder is shown."""
    current = app.get_screen_stack_base().query_one("#panes", ContentSwitcher).current
    if current != "terminal":
        return current
    return next((cid for cid, s in app.sessions.items() if s is app.terminal_view.session), None)


async def create_through_dialog(pilot: Pilot[None], app: RustainerApp, name: str, rootfs: Path) -> None:
    await pilot.press("ctrl+right_square_bracket", "n")
    await until(pilot, lambda: isinstance(app.screen, NewContainerDialog), "the new-container dialog")
    dialog = app.screen
    dialog.query_one("#field-name", Input).value = ""
    await type_text(pilot, name)
    await pilot.press("tab", "tab")  # past the image (none)
    await type_text(pilot, str(rootfs))
    await pilot.press("tab", "tab")
    await type_text(pilot, "0")  # CPUs
    await pilot.press("tab")
    await type_text(pilot, "64M")
    await pilot.press("enter")
    await until(pilot, lambda: not isinstance(app.screen, NewContainerDialog), "the dialog to close")
    await until(pilot, lambda: app.selected in app.listed and app.listed[app.selected].state.name == name
                and isinstance(app.focused, TerminalPane) and "/ #" in screen_text(app, name),
                f"{name}'s shell in the terminal pane")


async def command(pilot: Pilot[None], app: RustainerApp, name: str, text: str, expect: str) -> None:
    await type_text(pilot, text)
    await pilot.press("enter")
    await until(pilot, lambda: expect in screen_text(app, name).replace(text, ""), f"{expect!r} in {name}")


def run(app: RustainerApp, scenario: Callable[[Pilot[None]], object], size: tuple[int, int] = (120, 40)) -> None:
    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await scenario(pilot)  # type: ignore[misc]

    asyncio.run(main())


def test_two_shells_switch_stop_remove_and_reattach(containers, busybox_rootfs: Path,  # type: ignore[no-untyped-def]
                                                     rroot: Path) -> None:
    app = create_app(str(rroot), stop_timeout=1)

    async def first_run(pilot: Pilot[None]) -> None:
        await create_through_dialog(pilot, app, "alpha", busybox_rootfs)
        await command(pilot, app, "alpha", "echo A-$((20+1))", "A-21")
        await create_through_dialog(pilot, app, "beta", busybox_rootfs)
        await command(pilot, app, "beta", "echo B-$((30+2))", "B-32")
        assert names(app) == ["alpha", "beta"]
        alpha, beta = by_name(app, "alpha"), by_name(app, "beta")
        # the enforced limits, read back from the cgroup
        card = app.screen.query_one(ContainerList).cards()[0]
        assert (card.row.cpuset, card.row.memory_limit) == ("0", 64 << 20)

        await pilot.press("ctrl+pageup")  # previous: alpha, at once, with its own screen
        assert app.selected == alpha and shown(app) == alpha
        assert app.focused is app.terminal_view
        assert "A-21" in screen_text(app, "alpha") and "B-32" not in screen_text(app, "alpha")
        await command(pilot, app, "alpha", "echo again-$((1+1))", "again-2")

        await pilot.press("ctrl+pagedown")
        assert app.selected == beta and shown(app) == beta
        assert "B-32" in screen_text(app, "beta") and "again-2" not in screen_text(app, "beta")
        await pilot.press("alt+1")
        assert app.selected == alpha
        await pilot.press("alt+2")
        assert app.selected == beta
        await pilot.click(f"#card-{alpha[:12]}")  # a click in the list
        await until(pilot, lambda: app.selected == alpha and isinstance(app.focused, TerminalPane),
                    "alpha selected by the mouse, terminal focused")
        # a hidden pane keeps up: beta's output arrives while alpha is shown
        await pilot.press("alt+2")
        await type_text(pilot, "sleep 1; echo late-$((3+4))")
        await pilot.press("enter", "alt+1")
        assert shown(app) == alpha
        await until(pilot, lambda: "late-7" in screen_text(app, "beta").replace("$((3+4))", ""),
                    "beta's output while hidden")

        # stop beta, then remove it after the confirmation
        await pilot.press("alt+2", "ctrl+right_square_bracket")
        assert isinstance(app.focused, ContainerList)
        await pilot.press("s")
        await until(pilot, lambda: app.listed[beta].state.status == "exited", "beta stopped")
        assert app.screen.query_one(f"#card-{beta[:12]}", ContainerCard).row.status == "exited"
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: beta not in app.listed, "beta removed")
        assert names(app) == ["alpha"]
        await pilot.press("ctrl+q")

    run(app, first_run)
    assert app.return_code in (0, None)

    again = create_app(str(rroot), stop_timeout=1)

    async def second_run(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: names(again) == ["alpha"] and again.session_of(by_name(again, "alpha")) is not None
                    and "again-2" in screen_text(again, "alpha"), "alpha reattached with its screen")
        assert isinstance(again.focused, TerminalPane)
        await command(pilot, again, "alpha", "echo still-$((5+5))", "still-10")
        await pilot.press("ctrl+q")

    run(again, second_run)


def test_cli_containers_come_and_go_logs_inspect_exec(containers, cli, busybox_rootfs: Path,  # type: ignore[no-untyped-def]
                                                       rroot: Path) -> None:
    app = create_app(str(rroot), stop_timeout=1)

    async def scenario(pilot: Pilot[None]) -> None:
        assert names(app) == []
        containers("fromcli", "--rootfs", str(busybox_rootfs), "--", "sh", "-c",
                   "echo logged-line-$((6*7)); exec sh")
        await until(pilot, lambda: names(app) == ["fromcli"] and app.session_of(by_name(app, "fromcli")) is not None,
                    "a container started from the CLI to appear")
        await until(pilot, lambda: isinstance(app.focused, TerminalPane), "its terminal focused")

        await pilot.press("ctrl+right_square_bracket", "l")
        await until(pilot, lambda: isinstance(app.screen, LogsScreen), "the logs view")
        assert any("logged-line-42" in line for line in app.screen.lines)
        await pilot.press("escape")

        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, InspectScreen), "the inspect view")
        record = app.screen.record  # type: ignore[attr-defined]
        assert record["name"] == "fromcli" and record["state"]["running"] is True
        await pilot.press("escape")

        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ExecScreen), "the exec screen")
        pane = app.screen.query_one(TerminalPane)
        await until(pilot, lambda: "#" in "\n".join(pane.terminal.display), "the exec'd shell's prompt")
        await type_text(pilot, "echo exec-$((2+3)); exit")
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, ExecScreen), "the exec screen to close at exit")

        cli("rm", "-f", "fromcli", check_rc=0)
        await until(pilot, lambda: names(app) == [] and shown(app) == "placeholder",
                    "a container removed from the CLI to disappear")

        # a foreground run keeps no log: the logs key says so instead of showing an empty view
        cli("run", "--name", "fg", "--rootfs", str(busybox_rootfs), "--", "true", check_rc=0)
        await until(pilot, lambda: names(app) == ["fg"] and app.selected == by_name(app, "fg"), "the foreground run")
        await pilot.press("l")
        await until(pilot, lambda: any("ran in the foreground" in n.message for n in app._notifications),
                    "the note that it kept no log")
        assert not isinstance(app.screen, LogsScreen)
        await pilot.press("ctrl+q")

    run(app, scenario)


def test_kill_shows_exit_code_and_restart_brings_it_back(containers, busybox_rootfs: Path,  # type: ignore[no-untyped-def]
                                                          rroot: Path) -> None:
    containers("victim", "--rootfs", str(busybox_rootfs), "-m", "32M", "--", "sh")
    app = create_app(str(rroot), stop_timeout=1)

    async def scenario(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: names(app) == ["victim"] and isinstance(app.focused, TerminalPane),
                    "the container with its terminal")
        old = by_name(app, "victim")
        await pilot.press("ctrl+right_square_bracket", "k")
        await until(pilot, lambda: app.listed[old].state.status == "exited", "the container killed")
        assert app.listed[old].state.exit_code == 137
        card = app.screen.query_one(f"#card-{old[:12]}", ContainerCard)
        assert "exited (137)" in str(card.query_one(".card-status", Static).render())
        await pilot.press("r")
        await until(pilot, lambda: names(app) == ["victim"] and by_name(app, "victim") != old
                    and app.listed[by_name(app, "victim")].state.status == "running"
                    and isinstance(app.focused, TerminalPane), "the restarted container")
        assert app.listed[by_name(app, "victim")].state.spec.resources.memory == 32 << 20
        await command(pilot, app, "victim", "echo back-$((8+1))", "back-9")
        await pilot.press("ctrl+q")

    run(app, scenario)


def test_a_container_on_a_bridge_network_shows_its_address(rroot: Path, containers,  # type: ignore[no-untyped-def]
                                                            busybox_rootfs: Path) -> None:
    """The dialog's network field reaches the engine; the list shows the network and the address."""
    app = create_app(str(rroot), poll=False)

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("ctrl+right_square_bracket", "n")
        await until(pilot, lambda: isinstance(app.screen, NewContainerDialog), "the dialog")
        dialog = app.screen
        for field, value in (("name", "netted"), ("rootfs", str(busybox_rootfs)), ("network", "bridge")):
            dialog.query_one(f"#field-{field}", Input).value = value
        await pilot.pause()
        await pilot.click("#create")
        await until(pilot, lambda: "netted" in names(app) and app.listed[by_name(app, "netted")].row.address,
                    "the new container with its address")
        row = app.listed[by_name(app, "netted")].row
        assert row.network == "bridge" and row.address and row.address.startswith("10.")

        def where() -> str:  # the card may be between two refreshes: read it again until it shows
            cards = app.get_screen_stack_base().query(f"#card-{row.id[:12]}").results(ContainerCard)
            labels = [label for card in cards for label in card.query(".card-where").results(Label)]
            return str(labels[0].render()) if labels else ""

        await until(pilot, lambda: f"bridge {row.address}" in where(), "the card's network and address")
        await until(pilot, lambda: app.session_of(row.id) is not None and "/ #" in screen_text(app, "netted"),
                    "its shell in the pane")
        await pilot.press("ctrl+q")

    run(app, scenario)


def test_a_container_from_a_local_image_through_the_dialog(rroot: Path, containers, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                            busybox_rootfs: Path) -> None:
    """An imported image (busybox as its one layer; Entrypoint, Cmd, Env, WorkingDir in its config) is
    offered by the dialog and started as ``run --detach --image`` would: the image's command runs, in its
    working directory with its environment, and the card names the image."""
    from imagetools import Layout, tar_of
    from rustainer.backend.engine import Engine

    layout = Layout(tmp_path / "layout")
    layout.tag("t", layout.image([tar_of(tree=busybox_rootfs)], entrypoint=["sh", "-c"],
                                 cmd=['echo "from-image $GREETING in $(pwd)"; exec sh'], env=["GREETING=hello"],
                                 workdir="/srv/app"))
    Engine(str(rroot)).import_image(str(layout.folder), "local/greeter:v1")
    app = create_app(str(rroot), poll=False)

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("ctrl+right_square_bracket", "n")
        await until(pilot, lambda: isinstance(app.screen, NewContainerDialog), "the dialog")
        dialog = app.screen
        select = dialog.query_one("#field-image", Select)
        dialog.query_one("#field-name", Input).value = "greeter"
        await pilot.click("#field-image")
        await until(pilot, lambda: select.expanded, "the image list")
        await pilot.press("d", "enter")  # docker.io/local/greeter:v1, the one image
        await until(pilot, lambda: select.value == "docker.io/local/greeter:v1", "the image chosen")
        await pilot.click("#create")
        await until(pilot, lambda: "greeter" in names(app) and app.session_of(by_name(app, "greeter")) is not None
                    and "from-image hello in /srv/app" in screen_text(app, "greeter"), "the image's command's output")
        state = app.listed[by_name(app, "greeter")].state
        assert state.status == "running" and state.spec.image_name == "docker.io/local/greeter:v1"
        assert state.spec.rootfs is None and state.spec.command[:2] == ("sh", "-c")
        card = app.get_screen_stack_base().query_one(f"#card-{state.id[:12]}", ContainerCard)
        assert "docker.io/local/greeter:v1" in str(card.query_one(".card-where", Label).render())
        await until(pilot, lambda: "/srv/app #" in screen_text(app, "greeter"), "the shell it exec'd, in /srv/app")
        await command(pilot, app, "greeter", "echo shell-$((20+3))", "shell-23")
        await pilot.press("ctrl+q")

    run(app, scenario)


def drawn_text(app: RustainerApp) -> str:
    """What the terminal pane draws now, line by line (its strips, as the screen gets them)."""
    view = app.terminal_view
    return "\n".join("".join(segment.text for segment in view.render_line(y))
                     for y in range(view.content_size.height))


def test_switching_among_three_shows_each_ones_current_screen_at_once(containers, busybox_rootfs: Path,  # type: ignore[no-untyped-def]
                                                                      rroot: Path) -> None:
    """One pane draws whichever container is selected: right after the key, it draws that
    container's own current screen; the others stay attached and keep being parsed meanwhile."""
    order = ["c1", "c2", "c3"]
    for name in order:
        containers(name, "--rootfs", str(busybox_rootfs), "--", "sh")
    app = create_app(str(rroot), poll=False)

    async def scenario(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: names(app) == order and all(
            app.session_of(by_name(app, n)) is not None and "/ #" in screen_text(app, n) for n in order),
            "three attached shells")
        for index, name in enumerate(order, start=1):
            await pilot.press(f"alt+{index}")
            await command(pilot, app, name, f"echo mark-{name}-$(({index}*11))", f"mark-{name}-{index * 11}")

        # c1 keeps writing while c3 is shown: its session is parsed in the background
        await pilot.press("alt+1")
        await type_text(pilot, "for i in 1 2 3 4 5; do echo tick-$((i*100)); sleep 0.2; done")
        await pilot.press("enter", "alt+3")
        assert shown(app) == by_name(app, "c3")
        await until(pilot, lambda: "tick-500" in screen_text(app, "c1")
                    and screen_text(app, "c1").strip().splitlines()[-1].startswith("/ #"),
                    "c1's output (and its prompt after it) while c3 is shown")
        assert shown(app) == by_name(app, "c3") and "tick-" not in drawn_text(app)

        for name in ["c2", "c1", "c3", "c1", "c2", "c3", "c2"]:
            await pilot.press(f"alt+{order.index(name) + 1}")
            cid = by_name(app, name)
            # at once: no waiting for output, the pane draws the selected container's screen
            assert app.selected == cid and shown(app) == cid and app.focused is app.terminal_view
            drawn = drawn_text(app)
            assert f"mark-{name}-{(order.index(name) + 1) * 11}" in drawn, (name, drawn)
            assert not any(f"mark-{other}-" in drawn for other in order if other != name), (name, drawn)
            assert ("tick-500" in drawn) == (name == "c1"), (name, drawn)
            assert drawn.strip().splitlines()[-1].startswith("/ #")  # its prompt, with the cursor
            # and the screen as composed (the pane's lines as cached for painting, not only its core)
            picture = app.export_screenshot().replace("&#160;", " ")
            assert f"mark-{name}-{(order.index(name) + 1) * 11}" in picture, name
            assert not any(f"mark-{other}-" in picture for other in order if other != name), name
        await pilot.press("ctrl+q")

    run(app, scenario)
