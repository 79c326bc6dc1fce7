"""The overview, the split view and broadcast input end to end in a real terminal: rustainer-tui
inside a private tmux server at 120x40 with real containers, driven with send-keys and read back
with capture-pane (what a person would see); the split is still there after the dashboard is quit
and started again."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest
from tmuxtools import Tmux

pytestmark = [pytest.mark.root, pytest.mark.slow]

TICKER = "i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.2; done"


def test_overview_and_split_in_tmux(containers, busybox_rootfs: Path, rroot: Path) -> None:  # type: ignore[no-untyped-def]
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (the test set-up command installs it)")
    tmux = Tmux("rustainer-tui-layout")
    wait_for, keys = tmux.wait_for, tmux.keys

    def typed(text: str) -> None:
        tmux.typed(text)
        keys("Enter")

    def ticks(text: str) -> list[int]:
        return [int(n) for n in re.findall(r"tick-(\d+)", text)]

    rootfs = str(busybox_rootfs)
    containers("web", "--rootfs", rootfs, "--", "sh")
    containers("db", "--rootfs", rootfs, "--", "sh")
    containers("ticker", "--rootfs", rootfs, "--", "sh", "-c", TICKER)
    command = f"RUSTAINER_ROOT={rroot} TERM=xterm-256color {sys.executable} -m rustainer.app.tui"

    def start_dashboard() -> None:
        tmux("new-session", "-d", "-s", "dash", "-x", "120", "-y", "40", command)
        # listed, attached, and the first shell has the focus (its footer): the command key leaves it
        wait_for(lambda s: s.count("running") == 3 and "Command key" in s and "/ #" in s, "the dashboard")

    try:
        start_dashboard()
        # the overview: every container's screen as a tile, live
        keys("C-]")
        wait_for(lambda s: "n New" in s, "the list's keys")
        keys("o")
        text = wait_for(lambda s: "overview" in s and "/ #" in s and ticks(s), "the overview's tiles")
        assert all(name in text for name in ("web", "db", "ticker"))
        assert text.count("/ #") >= 2  # both shells' prompts, drawn small
        first = max(ticks(text))
        wait_for(lambda s: ticks(s) and max(ticks(s)) >= first + 3, "the ticker's tile to move on")
        # arrows pick, Enter zooms: the ticker (third) fills the view, its name in the title bar
        keys("Right", "Right", "Enter")
        text = wait_for(lambda s: "overview" not in s and "rustainer — ticker" in s.replace("—  ", "— "), "the zoom")
        # back to web; a split side by side: web | db, both shells interactive, the focus moved by ctrl+] w
        keys("C-NPage")  # (wraps round to the first)
        wait_for(lambda s: "rustainer — web" in s.replace("—  ", "— "), "web selected")
        keys("C-]")
        wait_for(lambda s: "n New" in s, "the list's keys")
        keys("|")
        wait_for(lambda s: "rustainer — db" in s.replace("—  ", "— ") and s.count("/ #") >= 2, "the split")
        typed("echo right-$((2+3))")
        wait_for(lambda s: "right-5" in s.replace("$((2+3))", ""), "db's output")
        keys("C-]", "w")
        wait_for(lambda s: "rustainer — web" in s.replace("—  ", "— "), "the focus in web's pane")
        typed("echo left-$((1+1))")
        text = wait_for(lambda s: "left-2" in s.replace("$((1+1))", ""), "web's output")
        # both panes on screen at once, side by side: left-2 is left of right-5 on their lines
        lines = text.splitlines()
        left = next(line for line in lines if "left-2" in line.replace("$((1+1))", ""))
        right = next(line for line in lines if "right-5" in line.replace("$((2+3))", ""))
        assert left.replace("$((1+1))", "").index("left-2") < right.replace("$((2+3))", "").index("right-5")
        # quit and start again: the split comes back with both screens
        keys("C-q")
        wait_for(lambda s: "running" not in s, "the dashboard to quit", timeout=10)
        tmux.new_server()
        assert '"web"' in (rroot / "tui-layout.json").read_text()
        start_dashboard()
        wait_for(lambda s: "left-2" in s.replace("$((1+1))", "") and "right-5" in s.replace("$((2+3))", ""),
                 "the split restored")
        # broadcast input: both marked, one line typed once runs in both shells
        keys("C-]")
        wait_for(lambda s: "n New" in s, "the list's keys")
        keys("m", "w")
        wait_for(lambda s: "rustainer — db" in s.replace("—  ", "— "), "the focus in db's pane")
        keys("C-]")
        wait_for(lambda s: "n New" in s, "the list's keys")
        keys("m", "B")
        wait_for(lambda s: "BROADCAST" in s and "web, db" in s, "the broadcast banner")
        keys("Escape")
        wait_for(lambda s: "Command key" in s, "the focus back in db's pane")
        typed("echo both-$((3*3))")
        wait_for(lambda s: s.replace("$((3*3))", "").count("both-9") == 2, "the line run in both shells")
        keys("C-q")
    finally:
        tmux.kill()
