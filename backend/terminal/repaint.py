"""An escape-sequence stream that repaints a terminal's state on any xterm-compatible terminal.

Used by ``rustainer attach`` from a plain terminal: contents, colours, cursor (including a pending
wrap), modes, title, margins, tab stops and the alternate screen (with the main screen beneath it).
Not reproduced: the DECSC save stack and wide-character stubs orphaned by overwriting half a
wide character (painted as a blank).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyte import graphics as g
from pyte import modes as mo
from pyte.screens import Char, wcwidth

from .cells import DEFAULT_CHAR, Attrs, compact_cells
from .modes import REPAINT_PRIVATE

if TYPE_CHECKING:
    from .terminal import Terminal

_FG = {name: code for code, name in {**g.FG_ANSI, **g.FG_AIXTERM}.items() if name != "default"}
_BG = {name: code for code, name in {**g.BG_ANSI, **g.BG_AIXTERM}.items() if name != "default"}


def _colour(value: str, table: dict[str, int], base: int) -> str:
    if value in table:
        return f";{table[value]}"
    if len(value) == 6:
        try:
            r, gr, b = int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
        except ValueError:
            return ""
        return f";{base};2;{r};{gr};{b}"
    return ""


def sgr(attrs: Attrs) -> str:
    """One SGR that sets exactly ``attrs`` from any previous state."""
    fg, bg, bold, italics, underscore, strike, reverse, blink = attrs
    out = "\x1b[0"
    if bold:
        out += ";1"
    if italics:
        out += ";3"
    if underscore:
        out += ";4"
    if blink:
        out += ";5"
    if reverse:
        out += ";7"
    if strike:
        out += ";9"
    out += _colour(fg, _FG, 38) + _colour(bg, _BG, 48)
    return out + "m"


def _paint_rows(out: list[str], buffer: Any, columns: int, lines: int, default: Char) -> None:
    out.append("\x1b[0m\x1b[H\x1b[2J")
    for y in range(lines):
        row = buffer.get(y)
        if not row:
            continue
        cells = [row[x] for x in range(columns)]
        end = columns
        while end and cells[end - 1] == default:
            end -= 1
        if not end:
            continue
        out.append(f"\x1b[{y + 1}H")
        current: Attrs | None = None
        wide = False
        for cell in cells[:end]:
            data = cell.data
            if data == "" and wide:
                wide = False
                continue
            attrs: Attrs = cell[1:]
            if attrs != current:
                out.append(sgr(attrs))
                current = attrs
            out.append(data or " ")
            wide = bool(data) and wcwidth(data[0]) == 2


def _position(out: list[str], cursor_x: int, cursor_y: int, buffer: Any, columns: int, origin_top: int) -> None:
    if cursor_x >= columns:  # Pending wrap: repaint the last cell, leaving the cursor past it.
        out.append(f"\x1b[{cursor_y - origin_top + 1};{columns}H")
        cell = buffer[cursor_y][columns - 1]
        out.append(sgr(cell[1:]) + (cell.data or " "))
    else:
        out.append(f"\x1b[{cursor_y - origin_top + 1};{cursor_x + 1}H")


def repaint(term: Terminal, include_history: bool = False) -> bytes:
    screen = term.screen
    columns, lines = screen.columns, screen.lines
    mode = screen.mode
    out: list[str] = ["\x1b[?1049l\x1b[r\x1b[?6l\x1b[?7h\x1b[4l\x1b[20l"]
    if mo.DECSCNM in mode:
        out.append("\x1b[?5h")
    else:
        out.append("\x1b[?5l")
    default = screen.default_char if mo.DECSCNM in mode else DEFAULT_CHAR

    if include_history and screen.history:
        out.append("\x1b[0m\x1b[H\x1b[2J")
        for crow in screen.history:
            current: Attrs | None = None
            for cell in compact_cells(crow):
                if cell.data == "":
                    continue
                if cell[1:] != current:
                    current = cell[1:]
                    out.append(sgr(current))
                out.append(cell.data)
            out.append("\x1b[0m\r\n")
        out.append("\r\n" * (lines - 1))

    main = screen.main_buffer if screen.main_buffer is not None else screen.buffer
    _paint_rows(out, main, columns, lines, default)
    if screen.main_buffer is not None:
        saved = screen.alt_cursor
        if saved is not None:
            out.append(f"\x1b[{saved.y + 1};{min(saved.x, columns - 1) + 1}H" + sgr(saved.attrs[1:]))
            out.append("\x1b[?1049h")
        else:
            out.append("\x1b[?1047h")
        _paint_rows(out, screen.buffer, columns, lines, default)

    tabstops = screen.tabstops
    if tabstops != set(range(8, columns, 8)):
        out.append("\x1b[3g")
        for t in sorted(tabstops):
            if t < columns:
                out.append(f"\x1b[1;{t + 1}H\x1bH")
    for m in REPAINT_PRIVATE:
        out.append(f"\x1b[?{m}{'h' if (m << 5) in mode else 'l'}")
    if mo.IRM in mode:
        out.append("\x1b[4h")
    if mo.LNM in mode:
        out.append("\x1b[20h")
    cursor = screen.cursor
    margins = screen.margins
    if margins is not None:
        out.append(f"\x1b[{margins.top + 1};{margins.bottom + 1}r")
    origin_top = 0
    if mo.DECOM in mode:
        out.append("\x1b[?6h")
        origin_top = margins.top if margins is not None else 0
    _position(out, cursor.x, cursor.y, screen.buffer, columns, origin_top)
    if mo.DECAWM not in mode:
        out.append("\x1b[?7l")
    out.append(sgr(cursor.attrs[1:]))
    out.append("\x1b[?25l" if cursor.hidden else "\x1b[?25h")
    if screen.icon_name == screen.title:
        out.append(f"\x1b]0;{screen.title}\x07")
    else:
        out.append(f"\x1b]1;{screen.icon_name}\x07\x1b]2;{screen.title}\x07")
    return "".join(out).encode("utf-8", "replace")
