"""End to end in a real terminal: rustainer-tui inside a private tmux server at 120x40, driven with
send-keys and read back with capture-pane (what a person would see)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from tmuxtools import Tmux

pytestmark = [pytest.mark.root, pytest.mark.slow]


def test_dashboard_in_tmux(containers, rroot: Path) -> None:  # type: ignore[no-untyped-def]
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (the test set-up command installs it)")
    tmux = Tmux("rustainer-tui-test")
    screen, wait_for = tmux.screen, tmux.wait_for

    def create(name: str) -> None:
        tmux("send-keys", "-t", "dash", "C-]")
        wait_for(lambda s: "n New" in s, "the dashboard's keys in the footer")
        tmux("send-keys", "-t", "dash", "n")
        wait_for(lambda s: "New container" in s, "the dialog")
        # the suggested name is selected: typing replaces it
        tmux("send-keys", "-t", "dash", "-l", name)
        wait_for(lambda s: f"Name        {name} " in s, "the name typed")
        tmux("send-keys", "-t", "dash", "Enter")  # the default rootfs: the host view
        wait_for(lambda s: "New container" not in s and f"rustainer — {name}" in s.replace("—  ", "— ")
                 and f"@{name}" in s, f"{name}'s shell")

    def run_in_shell(text: str, expect: str) -> None:
        tmux("send-keys", "-t", "dash", "-l", text)
        tmux("send-keys", "-t", "dash", "Enter")
        wait_for(lambda s: expect in s.replace(text, ""), repr(expect))

    command = f"RUSTAINER_ROOT={rroot} TERM=xterm-256color {sys.executable} -m rustainer.app.tui"
    try:
        tmux("new-session", "-d", "-s", "dash", "-x", "120", "-y", "40", command)
        assert tmux("display", "-p", "-t", "dash", "#{window_width}x#{window_height}").strip() == "120x40"
        wait_for(lambda s: "No containers yet" in s, "the empty dashboard")
        create("first")
        run_in_shell("echo one-$((1+2))", "one-3")
        create("second")
        run_in_shell("echo two-$((2+2))", "two-4")
        text = screen()
        assert "first" in text and "second" in text and text.count("running") == 2, text
        assert "one-3" not in text  # only the selected container's screen is shown
        tmux("send-keys", "-t", "dash", "C-PPage")
        text = wait_for(lambda s: "one-3" in s.replace("$((1+2))", ""), "the first shell again")
        assert "two-4" not in text.replace("$((2+2))", "")
        assert "Quit" in text and "Command key" in text  # the footer
        tmux("send-keys", "-t", "dash", "C-q")
        wait_for(lambda s: "rustainer" not in s or "No containers" in s, "the dashboard to quit", timeout=10)
    finally:
        tmux.kill()
