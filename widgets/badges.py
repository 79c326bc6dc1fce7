"""Badges on the container list's cards, as tmux and screen flag their windows: what happened in a
container since it was last shown. Pure data and drawing; :mod:`rustainer.app.tui_badges` decides
when they come and go."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

ACTIVITY = "activity"  # output since it was last shown
BELL = "bell"  # its program rang the bell (BEL)
SILENCE = "silence"  # no output for the watched time (screen's ``silence``)
ENDED = "ended"  # it ended while not shown (the card's state says how)
OOM = "oom"  # ... killed by the OOM killer

#: In the order drawn: (flag, label, style); xterm 256-colour palette colours on dark cards.
BADGES: tuple[tuple[str, str, str], ...] = (
    (BELL, "bell", "bold #000000 on #ffaf00"),
    (OOM, "end", "bold #ffffff on #d70000"),
    (ENDED, "end", "#000000 on #ff8787"),
    (SILENCE, "quiet", "#000000 on #afafaf"),
    (ACTIVITY, "act", "#000000 on #87afd7"),
)

#: What each badge means, as the help screen explains them.
LEGEND: tuple[tuple[str, str], ...] = (
    ("act", "output since you last looked (tmux's activity flag)"),
    ("bell", "its program rang the bell; a notification says so"),
    ("quiet", "no output for the watched time (S toggles the watch; screen's silence)"),
    ("end", "it ended while you looked elsewhere; the card says how (exit code, OOM: white on red)"),
)


def badge_text(flags: Iterable[str], silence_watch: float | None = None) -> Text:
    """The badges of a card, short words in colour; a watched container shows how long a silence
    it is watched for (dim) until the silence comes."""
    flags = set(flags)
    if OOM in flags:
        flags.discard(ENDED)
    text = Text(no_wrap=True, overflow="crop", end="")
    for flag, label, style in BADGES:
        if flag in flags:
            if text:
                text.append(" ")
            text.append(label, style=style)
    if silence_watch is not None and SILENCE not in flags and ENDED not in flags and OOM not in flags:
        if text:
            text.append(" ")
        text.append(f"~{silence_watch:g}s", style="dim")
    return text
