"""The public face of the terminal core, shared by the supervisor and the dashboard."""

from __future__ import annotations

import codecs
from typing import Any

from pyte.screens import Char, wcwidth

from .cells import CompactRow, compact_text
from .fastpath import Parser
from .modes import Modes, modes_of
from .repaint import repaint
from .screen import CoreScreen
from .snapshot import restore, take


class Terminal:
    """A terminal emulator: bytes in, screen, scrollback, title and modes out.

    ``feed`` accepts any chunking (split escape sequences and UTF-8 characters included).
    """

    __slots__ = ("_screen", "_parser", "_decoder")

    def __init__(self, columns: int, lines: int, history: int = 10000) -> None:
        self._screen = CoreScreen(columns, lines, history)
        self._parser = Parser(self._screen)
        # Same decoder and error policy as pyte.ByteStream, so broken UTF-8 renders identically.
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    # -- input ---------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        if text:
            self._parser.feed(text)

    @property
    def screen(self) -> CoreScreen:
        """The pyte screen (a :class:`CoreScreen`), brought up to date with the fast path first.

        The bulk path keeps rows aside between feeds; read cells through this property (or the
        accessors below) after each feed rather than through a reference kept from earlier."""
        self._parser.sync()
        return self._screen

    # -- geometry ------------------------------------------------------------------------------
    @property
    def columns(self) -> int:
        return int(self._screen.columns)

    @property
    def lines(self) -> int:
        return int(self._screen.lines)

    def resize(self, columns: int, lines: int) -> None:
        self.screen.resize(lines=lines, columns=columns)

    # -- output --------------------------------------------------------------------------------
    @property
    def display(self) -> list[str]:
        """One string per line, rendered like pyte's ``Screen.display`` (wide-char stubs skipped)."""
        screen = self.screen
        columns = screen.columns
        out: list[str] = []
        for y in range(screen.lines):
            row = screen.buffer.get(y)
            if not row:
                out.append(" " * columns)
                continue
            cells = [row[x].data for x in range(columns)]
            text = "".join(cells)
            if len(text) != columns or not text.isascii():
                parts: list[str] = []
                wide = False
                for data in cells:
                    if wide:
                        wide = False
                        continue
                    parts.append(data)
                    wide = bool(data) and wcwidth(data[0]) == 2
                text = "".join(parts)
            out.append(text)
        return out

    @property
    def cursor(self) -> tuple[int, int]:
        """(x, y); x equals ``columns`` while a wrap is pending after writing the last column."""
        c = self._screen.cursor
        return (int(c.x), int(c.y))

    @property
    def cursor_hidden(self) -> bool:
        return bool(self._screen.cursor.hidden)

    @property
    def title(self) -> str:
        return str(self._screen.title)

    @property
    def bells(self) -> int:
        """How many times the bell rang (BEL outside an OSC string) since this core was made."""
        return int(self._screen.bells)

    @property
    def icon_name(self) -> str:
        return str(self._screen.icon_name)

    @property
    def modes(self) -> Modes:
        return modes_of(self._screen.mode, bool(self._screen.cursor.hidden), self._screen.in_alt)

    @property
    def alternate_screen(self) -> bool:
        return bool(self._screen.in_alt)

    @property
    def dropping(self) -> bool:
        """Parser state a snapshot keeps: the text run that ended the last feed followed a character
        pyte refuses to draw, so pyte drops the text that continues it."""
        return self._parser.dropping

    @dropping.setter
    def dropping(self, value: bool) -> None:
        self._parser.dropping = value

    @property
    def rows_kept_aside(self) -> bool:
        """Whether the bulk path keeps screen rows aside (see :mod:`.bulk`): :meth:`compact_line`
        reads them where they are, :attr:`screen` writes them back into pyte's buffer first."""
        return self._parser.rows_kept_aside

    @property
    def dirty(self) -> set[int]:
        """Line numbers changed since :meth:`clear_dirty` (a live set; the caller may clear it)."""
        dirty: set[int] = self._screen.dirty
        return dirty

    def clear_dirty(self) -> None:
        self._screen.dirty.clear()

    def line(self, y: int) -> list[Char]:
        """The cells of screen line ``y``: pyte ``Char`` tuples (data, fg, bg, bold, italics,
        underscore, strikethrough, reverse, blink); a wide character is followed by a "" stub."""
        return self.screen.row(y)

    def compact_line(self, y: int) -> CompactRow:
        """Screen line ``y`` in compact form (see :mod:`.cells`; trailing default blanks trimmed).

        A pure read: unlike :attr:`screen`, :meth:`line` or :attr:`display` it does not write the
        rows the bulk path keeps aside back into pyte's buffer, so a front end drawing the screen
        while output floods in costs the parser nothing."""
        return self._parser.bulk.compact_row(y)

    def compact_lines(self) -> list[CompactRow]:
        """Every screen line in compact form, as :meth:`compact_line` reads them."""
        row = self._parser.bulk.compact_row
        return [row(y) for y in range(self._screen.lines)]

    @property
    def history(self) -> list[CompactRow]:
        """Scrollback rows, oldest first, in compact form (see :mod:`.cells`)."""
        return list(self._screen.history)

    def history_text(self) -> list[str]:
        columns = self._screen.columns
        return [compact_text(r, columns).rstrip() for r in self._screen.history]

    # -- snapshots -----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """JSON-compatible state (format in :mod:`.snapshot`); a half-read escape sequence is not
        part of it."""
        return take(self)

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> Terminal:
        return restore(cls, snapshot)

    def repaint(self, include_history: bool = False) -> bytes:
        """Bytes that make any xterm-compatible terminal show this state (see :mod:`.repaint`);
        with ``include_history`` the scrollback is replayed first so it lands in the viewer's own."""
        return repaint(self, include_history)
