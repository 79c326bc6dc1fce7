"""Drawing a terminal core's cells with Textual: colours and styles, rows as strips, and the
per-line strip cache a session keeps so that a repaint renders only the lines that changed."""

from __future__ import annotations

from collections.abc import Iterable

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip

from rustainer.backend.terminal.cells import Attrs, CompactRow
from rustainer.backend.terminal.terminal import Terminal

# pyte's colour names (it calls yellow "brown") to the ANSI colour numbers Rich and Textual theme.
_ANSI = {name: i for i, name in enumerate(
    ("black", "red", "green", "brown", "blue", "magenta", "cyan", "white"))}
_ANSI.update({"yellow": 3})
_ANSI.update({"bright" + name: i + 8 for name, i in list(_ANSI.items())})


def cell_color(name: str) -> Color | None:
    """Rich colour of a pyte colour: a name ("red", "brightblue"), six hex digits, or "default"
    (None, the theme's own)."""
    if name == "default" or not name:
        return None
    number = _ANSI.get(name)
    if number is not None:
        return Color.from_ansi(number)
    if len(name) == 6:
        try:
            return Color.from_rgb(int(name[0:2], 16), int(name[2:4], 16), int(name[4:6], 16))
        except ValueError:
            return None
    return None


_STYLES: dict[Attrs, Style] = {}


def cell_style(attrs: Attrs) -> Style:
    """Rich style of a cell's attributes (cached: a screen uses a handful of them)."""
    style = _STYLES.get(attrs)
    if style is None:
        fg, bg, bold, italics, underscore, strikethrough, reverse, blink = attrs
        style = Style(color=cell_color(fg), bgcolor=cell_color(bg), bold=bold or None, italic=italics or None,
                      underline=underscore or None, strike=strikethrough or None,
                      reverse=reverse or None, blink=blink or None)
        if len(_STYLES) > 4096:
            _STYLES.clear()
        _STYLES[attrs] = style
    return style


_CURSOR_STYLE = Style(reverse=True)


def compact_to_segments(crow: CompactRow, width: int, cursor_x: int = -1) -> list[Segment]:
    """A row in the core's compact form (cell text plus attribute runs) is already nearly a list
    of segments: one per run, split around the cursor; "" stubs of wide characters join away."""
    text, runs = crow
    if not isinstance(text, str):
        return _cells_to_segments(text, runs, width, cursor_x)
    segments: list[Segment] = []
    append = segments.append
    x = 0
    for attrs, count in runs:
        end = x + count
        style = cell_style(attrs)
        if x <= cursor_x < end:
            if cursor_x > x:
                append(Segment(text[x:cursor_x], style))
            append(Segment(text[cursor_x], style + _CURSOR_STYLE))
            if end > cursor_x + 1:
                append(Segment(text[cursor_x + 1:end], style))
        else:
            append(Segment(text[x:end], style))
        x = end
    if cursor_x >= x and cursor_x < width:
        if cursor_x > x:
            append(Segment(" " * (cursor_x - x)))
        append(Segment(" ", _CURSOR_STYLE))
    return segments


def _cells_to_segments(text: tuple[str, ...], runs: tuple[tuple[Attrs, int], ...], width: int,
                       cursor_x: int) -> list[Segment]:
    """:func:`compact_to_segments` for a row with wide characters or combining marks (one string
    per cell, "" for the stub after a wide character)."""
    segments: list[Segment] = []
    append = segments.append
    x = 0
    for attrs, count in runs:
        end = x + count
        style = cell_style(attrs)
        if x <= cursor_x < end:
            if cursor_x > x:
                append(Segment("".join(text[x:cursor_x]), style))
            cell = text[cursor_x]
            if cell:  # (on the stub of a wide character there is nothing to draw)
                append(Segment(cell, style + _CURSOR_STYLE))
            if end > cursor_x + 1:
                append(Segment("".join(text[cursor_x + 1:end]), style))
        else:
            append(Segment("".join(text[x:end]), style))
        x = end
    if cursor_x >= x and cursor_x < width:
        if cursor_x > x:
            append(Segment(" " * (cursor_x - x)))
        append(Segment(" ", _CURSOR_STYLE))
    return segments


def row_strip(crow: CompactRow, width: int, cursor_x: int = -1) -> Strip:
    """The strip of one row, exactly ``width`` cells. A row of one-cell characters (nearly all of
    them) has as many cells as characters: its strip is made once, with its length, rather than
    measured and then padded or cropped into a second one."""
    segments = compact_to_segments(crow, width, cursor_x)
    text = crow[0]
    if isinstance(text, str) and text.isascii():
        cells = len(text)
        if cursor_x >= cells and cursor_x < width:
            cells = cursor_x + 1
        if cells <= width:
            if cells < width:
                segments.append(Segment(" " * (width - cells)))
            return Strip(segments, width)
    return Strip(segments).adjust_cell_length(width)


class StripCache:
    """The strips of a core's screen lines, each with the cursor column it was drawn with, reused
    until the core marks the line dirty. Valid for one (width, lines, columns) and one core: a new
    size starts it afresh, a new core must :meth:`reset` it."""

    __slots__ = ("_strips", "_key")

    def __init__(self) -> None:
        self._strips: list[tuple[int, Strip] | None] = []
        self._key: tuple[int, int, int] | None = None

    def reset(self) -> None:
        """Forget every line (the core was replaced)."""
        self._key = None

    def forget(self, lines: Iterable[int]) -> None:
        """Draw these lines again next time (lines out of range are ignored)."""
        strips = self._strips
        count = len(strips)
        for y in lines:
            if 0 <= y < count:
                strips[y] = None

    def line(self, term: Terminal, y: int, width: int, cursor_x: int) -> Strip:
        """The strip of screen line ``y`` (``0 <= y < term.lines``), ``width`` cells wide, with the
        cursor drawn at ``cursor_x`` (-1: not on this line or not shown)."""
        strips = self._strips
        key = (width, term.lines, term.columns)
        if self._key != key:
            self._key = key
            strips = self._strips = [None] * term.lines
        if y in term.dirty:
            strips[y] = None
            return row_strip(term.compact_line(y), width, cursor_x)
        cached = strips[y]
        if cached is not None and cached[0] == cursor_x:
            return cached[1]
        strip = row_strip(term.compact_line(y), width, cursor_x)
        strips[y] = (cursor_x, strip)
        return strip


def screen_lines(term: Terminal) -> list[Text]:
    """The core's screen as styled text, one line per row (no cursor), trailing blank rows left out:
    what stays worth showing of a session that ended."""
    lines: list[Text] = []
    for y in range(term.lines):
        line = Text(no_wrap=True, overflow="crop", end="")
        for segment in compact_to_segments(term.compact_line(y), term.columns):
            line.append(segment.text, segment.style)
        line.rstrip()
        lines.append(line)
    while lines and not lines[-1].plain:
        lines.pop()
    return lines
