"""The dashboard's R against a real detached container (root): the supervisor records while the card
says REC, what was typed meanwhile is in the asciicast file, and R again stops it."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import type_text, until
from test_dashboard import by_name, names, run, screen_text
from test_dashboard_fake import card_status
from textual.pilot import Pilot

from rustainer.app.tui_app import create_app
from rustainer.backend.terminal.asciicast import parse
from rustainer.widgets.terminal_pane import TerminalPane

pytestmark = pytest.mark.root


def test_r_records_the_shown_container(containers, busybox_rootfs: Path, rroot: Path) -> None:  # type: ignore[no-untyped-def]
    containers("taped", "--rootfs", str(busybox_rootfs), "--", "sh")
    app = create_app(str(rroot))

    async def scenario(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: names(app) == ["taped"] and isinstance(app.focused, TerminalPane)
                    and "#" in screen_text(app, "taped"), "the shell")
        cid = by_name(app, "taped")
        cast = rroot / "containers" / cid / "recording.cast"
        await pilot.press("ctrl+right_square_bracket", "R")
        await until(pilot, lambda: "REC" in card_status(app, "taped"), "REC on the card")
        assert app.listed[cid].state.recording and cast.exists()
        await until(pilot, lambda: "taped ● REC" in str(app.terminal_view.border_title), "REC in the title bar")
        await pilot.press("escape")  # back into the shell
        await until(pilot, lambda: isinstance(app.focused, TerminalPane), "the terminal focused")
        await type_text(pilot, "echo taped-$((6*7))")
        await pilot.press("enter")
        await until(pilot, lambda: "taped-42" in screen_text(app, "taped").replace("$((6*7))", ""), "the output")
        await until(pilot, lambda: b"taped-42" in cast.read_bytes(), "the output in the recording")
        await pilot.press("ctrl+right_square_bracket", "R")
        await until(pilot, lambda: "REC" not in card_status(app, "taped"), "REC gone")
        await until(pilot, lambda: "REC" not in str(app.terminal_view.border_title), "REC gone from the title bar")
        assert any(f"logs --asciicast FILE taped exports it ({cast})" in n.message for n in app._notifications)
        _, events = parse(cast.read_bytes())
        assert "taped-42" in "".join(text for _, kind, text in events if kind == "o")
        await pilot.press("ctrl+q")

    run(app, scenario)
