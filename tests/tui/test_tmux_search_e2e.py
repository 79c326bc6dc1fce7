"""End to end in a real terminal: rustainer-tui inside a private tmux server at 120x40, with real
containers, driven with send-keys and read back with capture-pane (what a person would see):
searching a shell's scrollback, copying a match with OSC 52 (tmux with ``set-clipboard on`` keeps
what the dashboard sent the outer terminal as a paste buffer: ``show-buffer``), and the badges and
notifications of a container in the background (a bell, its end)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from tmuxtools import Tmux

pytestmark = [pytest.mark.root, pytest.mark.slow]


def test_search_copy_and_badges_in_tmux(containers, cli, busybox_rootfs: Path,  # type: ignore[no-untyped-def]
                                        rroot: Path, tmp_path: Path) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (the test set-up command installs it)")
    containers("web", "--rootfs", str(busybox_rootfs), "--", "sh")
    containers("bg", "--rootfs", str(busybox_rootfs), "--", "sh")
    config = tmp_path / "tmux.conf"
    config.write_text("set -g set-clipboard on\n")  # accept OSC 52 from the program: a paste buffer
    tmux = Tmux("rustainer-tui-search", str(config))
    wait_for, keys, typed = tmux.wait_for, tmux.keys, tmux.typed

    def bottom(text: str) -> str:
        return next((line for line in reversed(text.splitlines()) if line.strip()), "")

    def card_line(text: str, name: str) -> str:
        return next((line for line in text.splitlines() if line.lstrip().startswith(name + " ")), "")

    command = f"RUSTAINER_ROOT={rroot} TERM=xterm-256color {sys.executable} -m rustainer.app.tui"
    try:
        tmux("new-session", "-d", "-s", "dash", "-x", "120", "-y", "40", command)
        assert tmux("show-options", "-g", "set-clipboard").strip() == "set-clipboard on"
        wait_for(lambda s: "web" in s and "bg" in s and s.count("running") == 2 and "rustainer — web" in s,
                 "both containers, web shown")
        wait_for(lambda s: "#" in s or "$" in s, "web's prompt")
        # 400 numbered rows of output, far more than the screen holds.
        typed("i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo row-$i; done; echo fin-$((6*7))")
        keys("Enter")
        wait_for(lambda s: "fin-42" in s.replace("$((6*7))", ""), "the rows")
        # bg rings the bell once told to (by a file its shell waits for), while web is shown.
        keys("C-NPage")
        wait_for(lambda s: "rustainer — bg" in s, "bg shown")
        typed("while [ ! -e /tmp/go ]; do sleep 0.1; done; printf 'ding\\a\\n'")
        keys("Enter")
        # (switching before bg's shell has it all would send the rest to web's: the key events
        # queued for the pane are read after the app's ctrl+pgup, and the pane then shows web)
        wait_for(lambda s: "'ding" in s, "bg's shell to have the command")
        keys("C-PPage")
        text = wait_for(lambda s: "rustainer — web" in s and "fin-42" in s, "web shown again")
        assert "bell" not in card_line(text, "bg")

        # Search: the row is far up in the scrollback; the view scrolls to it, the count shows.
        keys("C-]")
        wait_for(lambda s: "n New" in s, "the dashboard's keys")
        keys("/")
        wait_for(lambda s: "Search" in bottom(s), "the search bar")
        typed("row-123")
        wait_for(lambda s: "1/1" in bottom(s) and "row-123" in s and "row-400" not in s and "match 1/1" in s,
                 "one match, scrolled to")
        # Enter: copy mode at the match; select to the line's end and copy: OSC 52 to tmux.
        keys("Enter")
        wait_for(lambda s: "v Select" in bottom(s), "copy mode's keys in the footer")
        keys("v", "$", "y")
        wait_for(lambda s: "Copied 7 characters" in s, "the copy's notification")
        assert tmux("show-buffer") == "row-123"
        text = wait_for(lambda s: "COPY" not in s and "fin-42" in s, "back to the live screen")

        # The bell in the background: a badge on bg's card and a notification.
        cli("exec", "bg", "touch", "/tmp/go", check_rc=0)
        text = wait_for(lambda s: "bell" in card_line(s, "bg") and "bg rang the bell" in s, "bg's bell")
        assert "bell" not in card_line(text, "web")
        # Its end, in the background: a badge and a notification with the exit code.
        cli("kill", "bg", check_rc=0)
        text = wait_for(lambda s: "end " in card_line(s, "bg") and "bg exited with code 137" in s, "bg's end")
        assert "exited (137)" in card_line(text, "bg")
        # Looking at it clears the badges.
        keys("C-NPage")
        wait_for(lambda s: "bg has exited" in s and "end " not in card_line(s, "bg"), "bg shown, its badge gone")
        keys("C-q")
        wait_for(lambda s: "rustainer" not in s, "the dashboard to quit", timeout=10)
    finally:
        tmux.kill()
