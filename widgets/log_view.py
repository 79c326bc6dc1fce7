"""A container's recorded output as readable, scrollable text.

The log holds raw pty bytes (carriage returns, colours, cursor moves), so it is replayed through the
engine's own terminal core and the resulting lines are shown: what scrolled past, then the screen.
"""

from __future__ import annotations

from textual.widgets import Log

from rustainer.backend.container.logs import tail_bytes
from rustainer.backend.terminal import Terminal

MAX_LINES = 5000


def render_log(data: bytes, columns: int = 200) -> list[str]:
    """Plain lines a person can read; trailing blank lines are dropped."""
    term = Terminal(columns, 50, history=MAX_LINES)
    term.feed(data.replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n"))
    lines = term.history_text() + [line.rstrip() for line in term.display]
    while lines and not lines[-1]:
        lines.pop()
    return lines[-MAX_LINES:]


def read_log(path: str) -> list[str]:
    try:
        data = tail_bytes(path, MAX_LINES)
    except OSError:
        return ["(no output recorded)"]
    return render_log(data) or ["(no output yet)"]


class LogView(Log):
    """Read-only log lines, scrolled to the end on load (where the latest output is)."""

    DEFAULT_CSS = "LogView { height: 1fr; }"

    def show_lines(self, lines: list[str]) -> None:
        self.clear()
        self.write_lines(lines)
        self.scroll_end(animate=False)
