"""The dashboard's recording key (R), the exec key's shell lookup and the empty state, against the
in-memory engine (no root): what the engine is asked, what the card shows, what the user is told."""

from __future__ import annotations

import pytest
from conftest import until
from fake_engine import FakeEngine, fake_state
from test_dashboard_fake import (
    card_status,
    dashboard,
    drawn_lines,
    engine_calls,
    leave_terminal,
    messages,
    run,
)
from textual.pilot import Pilot
from textual.widgets import Static

from rustainer.app.tui_views import ExecScreen


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_r_starts_and_stops_recording_and_the_card_says_rec(size: tuple[int, int]) -> None:
    engine = FakeEngine(fake_state("web", created_at=1.0), fake_state("done", status="exited", exit_code=0,
                                                                        created_at=2.0))
    app = dashboard(engine)

    async def scenario(pilot: Pilot[None]) -> None:
        await leave_terminal(pilot, app)
        assert "REC" not in card_status(app, "web")
        # labelled in the footer where there is room; the key works at any width
        if size[0] >= app.RECORD_WIDE:
            await until(pilot, lambda: "R Rec" in drawn_lines(app)[-1], "R in the footer")
        else:
            await until(pilot, lambda: "e Exec" in drawn_lines(app)[-1], "the footer")
            assert "R Rec" not in drawn_lines(app)[-1]
        await pilot.press("R")
        await until(pilot, lambda: "REC" in card_status(app, "web"), "REC on web's card")
        assert engine_calls(app, "record") == [((app.order[0], True), {})]
        assert any("recording web" in m for m, _ in messages(app)), messages(app)
        assert any(" REC " in line for line in drawn_lines(app)), "the REC mark is drawn"
        await pilot.press("R")
        await until(pilot, lambda: "REC" not in card_status(app, "web"), "REC gone")
        assert engine_calls(app, "record")[-1] == ((app.order[0], False), {})
        assert any("logs --asciicast FILE web" in m for m, _ in messages(app)), messages(app)
        # an ended container cannot be recorded: the key is greyed and asks nothing of the engine
        await pilot.press("alt+2")
        await until(pilot, lambda: app.selected == app.order[1], "done selected")
        assert app._allowed("record") is None
        await pilot.press("R")
        await pilot.pause()
        assert len(engine_calls(app, "record")) == 2
        await pilot.press("ctrl+q")

    run(app, scenario, size=size)


def test_a_recording_that_cannot_start_is_a_notification() -> None:
    from rustainer.backend.errors import ContainerStateError

    engine = FakeEngine(fake_state("web"))
    engine.fail["record"] = ContainerStateError("the supervisor of web cannot record (it runs an older rustainer)")
    app = dashboard(engine)

    async def scenario(pilot: Pilot[None]) -> None:
        await leave_terminal(pilot, app)
        await pilot.press("R")
        await until(pilot, lambda: any("older rustainer" in m for m, _ in messages(app)), "the error")
        assert ("record web: the supervisor of web cannot record (it runs an older rustainer)", "error") in messages(app)
        assert "REC" not in card_status(app, "web")
        await pilot.press("ctrl+q")

    run(app, scenario)


def test_exec_without_a_shell_says_so_and_opens_nothing() -> None:
    engine = FakeEngine(fake_state("bare"))
    engine.shells[engine.containers()[0].id] = None
    app = dashboard(engine)

    async def scenario(pilot: Pilot[None]) -> None:
        await leave_terminal(pilot, app)
        await pilot.press("e")
        await until(pilot, lambda: any("no shell in bare" in m for m, _ in messages(app)), "the note")
        assert ("no shell in bare: neither bash nor sh was found in its PATH folders", "warning") in messages(app)
        assert not isinstance(app.screen, ExecScreen)
        assert engine_calls(app, "find_shell")
        await pilot.press("ctrl+q")

    run(app, scenario)


@pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=["80x24", "100x30"])
def test_the_empty_state_explains_the_next_step_uncut(size: tuple[int, int]) -> None:
    app = dashboard(FakeEngine())

    async def scenario(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: app.screen.query_one("#empty-hint").display, "the hint")
        await pilot.pause()
        text = " ".join(" ".join(line.split()) for line in drawn_lines(app))
        hint = app.screen.query_one("#empty-hint", Static)
        # every word of both texts is drawn (wrapped, not cut at the column's edge)
        for sentence in ("No containers yet: press n to create one.", "Press n to create one",
                         "rustainer run --detach --name web -- sh", "ctrl+q quits"):
            words = sentence.split()
            assert all(word in text for word in words), (sentence, text)
        assert hint.region.right <= app.screen.query_one("#sidebar").region.right
        # and the key it names works from there
        await pilot.press("n")
        from rustainer.app.tui_dialogs import NewContainerDialog

        await until(pilot, lambda: isinstance(app.screen, NewContainerDialog), "the new-container dialog")
        await pilot.press("escape")
        await pilot.press("ctrl+q")

    run(app, scenario, size=size)
