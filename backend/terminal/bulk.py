"""Bulk scrolling: whole lines that scroll away are never drawn.

When output is whole lines written on a blank bottom row (``seq``, ``ls``, logs), the lines that
end in the scrollback go there as one raw block (see :mod:`.history`) and only the last screenful is
turned into rows, which are kept aside (:attr:`BulkScroll.kept`) rather than drawn into pyte's
buffer until something needs the buffer itself (:meth:`BulkScroll.sync`). A front end reads them
where they are (:meth:`BulkScroll.compact_row`), so drawing the screen during a flood costs the
parser nothing.  The screen and the scrollback come out exactly as stock pyte's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pyte import modes as mo
from pyte.screens import Char

from .cells import BLANK_ROW, DEFAULT_ATTRS, Attrs, CharCaches, CompactRow, compact_to_row, row_to_compact
from .rowcache import fresh_row
from .screen import CoreScreen

#: Whole lines of printable ASCII and plain SGR, each ended by CR LF: what :meth:`BulkScroll.scroll` takes.
BULK = re.compile(r"(?:(?:[\x20-\x7e]++|\x1b\[[0-9;]*+m)*+\r\n)+")
_SGR_SPLIT = re.compile(r"\x1b\[([0-9;]*)m")


class RawLine:
    """A screen row kept as the text that drew it (SGR included) on a blank row."""

    __slots__ = ("text", "attrs", "end")

    def __init__(self, text: str, attrs: Char, end: Char) -> None:
        self.text = text
        self.attrs = attrs  # In force before the line.
        self.end = end  # In force after it.


class BulkScroll:
    """The bulk scrolling path of one screen, and the screen rows it keeps aside.

    ``sgr_attrs(attrs, params)`` is the parser's SGR transition (a pure function of the attributes)
    and ``chars`` its cell caches."""

    def __init__(self, screen: CoreScreen, sgr_attrs: Callable[[Char, str], Char], chars: CharCaches) -> None:
        self.screen = screen
        #: The screen rows above the bottom one while kept aside (None: they are in pyte's buffer).
        #: Each is None (missing), a pyte row, a compact row or a :class:`RawLine`.
        self.kept: list[Any] | None = None
        self._sgr_attrs = sgr_attrs
        self._chars = chars
        self._runs_by_len: dict[Attrs, list[Any]] = {}
        screen.history.expander = self.expand_block

    def ok(self) -> bool:
        """Whether the screen is in a state the bulk path reproduces exactly."""
        screen = self.screen
        mode = screen.mode
        return (
            mo.DECAWM in mode
            and mo.IRM not in mode
            and mo.DECSCNM not in mode
            and screen.margins is None
            and not screen.buffer.get(screen.lines - 1)
        )

    def scroll(self, block: str) -> None:
        """Whole lines (a :data:`BULK` match) written on a blank bottom row and scrolled up.

        Lines that end in the scrollback go there as one raw block (see :mod:`.history`) when they
        need no wrapping; only the last screenful is turned into rows, and those are kept aside
        (:attr:`kept`) rather than drawn into pyte's buffer until something else needs it."""
        screen = self.screen
        columns, lines = screen.columns, screen.lines
        keep = lines - 1  # Rows above the (blank) bottom row.
        raw_lines = block.split("\r\n")
        raw_lines.pop()
        attrs = screen.cursor.attrs
        rows: list[Any]
        head_text = ""
        head_attrs = attrs
        head_count = 0
        plain = "\x1b" not in block
        visible = raw_lines if plain else _SGR_SPLIT.sub("", block).split("\r\n")
        if max(map(len, visible)) <= columns:
            head_count = max(0, len(raw_lines) - keep)
            if head_count:
                head_text = "\r\n".join(raw_lines[:head_count]) + "\r\n"
                del raw_lines[:head_count]
                if not plain:
                    for params in _SGR_SPLIT.findall(head_text):
                        attrs = self._sgr_attrs(attrs, params)
            if plain:
                rows = self._plain_rows(raw_lines, attrs[1:], columns)
            else:
                # Keep the lines raw: most of them scroll away before anyone looks.
                rows = []
                transition = self._sgr_attrs
                for line in raw_lines:
                    start = attrs
                    if "\x1b" in line:
                        for params in _SGR_SPLIT.findall(line):
                            attrs = transition(attrs, params)
                    rows.append(RawLine(line, start, attrs))
        else:
            rows, attrs = self._rows(raw_lines, attrs, columns)
        screen.cursor.attrs = attrs

        lazy = self.kept
        if lazy is None:
            buffer = screen.buffer
            lazy = [buffer.get(y) for y in range(keep)]
        total = head_count + len(rows)
        gone_old = min(total, keep)
        history = screen.history
        if total > 0 and screen.main_buffer is None and history.maxlen:
            self._to_history(lazy[:gone_old])
            if head_count:
                history.add_block(head_text, head_attrs, head_count)
            if len(rows) > keep:
                history.extend(map(trim, rows[: len(rows) - keep]))
        self.kept = (lazy[gone_old:] + rows)[-keep:] if keep else []
        screen.dirty.update(range(lines))

    def scroll_one(self) -> None:
        """A line feed on the bottom row while rows are kept aside: the bottom row joins them and
        the top one leaves for the scrollback (the cursor is the caller's)."""
        lazy = self.kept
        assert lazy is not None
        screen = self.screen
        bottom = screen.buffer.pop(screen.lines - 1, None)
        lazy.append(bottom)
        gone = lazy.pop(0)
        if screen.main_buffer is None and screen.history.maxlen:
            self._to_history([gone])
        screen.dirty.update(range(screen.lines))

    def _to_history(self, rows: list[Any]) -> None:
        """Rows leaving the kept-aside screen: runs of raw lines go to the scrollback as one block."""
        history = self.screen.history
        columns = self.screen.columns
        out: list[CompactRow] = []
        i, n = 0, len(rows)
        while i < n:
            row = rows[i]
            if isinstance(row, RawLine):
                j = i + 1
                while j < n and isinstance(rows[j], RawLine) and rows[j].attrs == rows[j - 1].end:
                    j += 1
                if out:
                    history.extend(out)
                    out = []
                history.add_block("".join([r.text + "\r\n" for r in rows[i:j]]), row.attrs, j - i)
                i = j
                continue
            if row is None:
                out.append(BLANK_ROW)
            elif isinstance(row, tuple):
                out.append(trim(row))
            else:
                out.append(row_to_compact(row, columns))
            i += 1
        if out:
            history.extend(out)

    def expand_block(self, text: str, attrs: Char, skip: int = 0, count: int = -1) -> list[CompactRow]:
        """The rows of a raw scrollback block (the history's expander): its ``count`` lines after the
        first ``skip`` (-1: all). The skipped lines (those the scrollback dropped: after a flood,
        nearly all of a block) are not made into rows, only read for the attributes they leave,
        from their last SGR reset on: the first look at 10,000 lines left of a flood of 300,000
        costs the 10,000."""
        if skip and count >= 0:
            pos = len(text) - 2  # the CR LF ending the last line
            for _ in range(count):
                pos = text.rfind("\r\n", 0, pos)
            start = pos + 2
            if text.rfind("\x1b", 0, start) >= 0:
                transition = self._sgr_attrs
                reset = max(text.rfind("\x1b[0m", 0, start), text.rfind("\x1b[m", 0, start))
                if reset >= 0:
                    attrs = transition(attrs, "0")  # (SGR 0 leaves the same attributes whatever was before)
                for params in _SGR_SPLIT.findall(text, max(reset, 0), start):
                    attrs = transition(attrs, params)
            text = text[start:]
        raw_lines = text.split("\r\n")
        raw_lines.pop()
        rows, _ = self._rows(raw_lines, attrs, self.screen.columns)
        rows = list(map(trim, rows))
        return rows if count < 0 else rows[:count]

    def _plain_rows(self, raw_lines: list[str], attrs: Attrs, columns: int) -> list[CompactRow]:
        runs = self._runs_by_len.get(attrs)
        if runs is None or len(runs) <= columns:
            runs = [((attrs, n),) if n else () for n in range(columns + 1)]
            if len(self._runs_by_len) > 64:
                self._runs_by_len.clear()
            self._runs_by_len[attrs] = runs
        return list(zip(raw_lines, map(runs.__getitem__, map(len, raw_lines)), strict=True))

    def _rows(self, raw_lines: list[str], attrs: Char, columns: int) -> tuple[list[CompactRow], Char]:
        rows: list[CompactRow] = []
        add = rows.append
        transition = self._sgr_attrs
        for raw in raw_lines:
            if "\x1b" not in raw:
                a = attrs[1:]
                if not raw:
                    add(BLANK_ROW)
                elif len(raw) <= columns:
                    add((raw, ((a, len(raw)),)))
                else:
                    rows.extend(wrap(raw, [(a, len(raw))], columns))
                continue
            pieces = _SGR_SPLIT.split(raw)
            text_parts: list[str] = []
            runs: list[tuple[Any, int]] = []
            for j, piece in enumerate(pieces):
                if j & 1:
                    attrs = transition(attrs, piece)
                elif piece:
                    text_parts.append(piece)
                    a = attrs[1:]
                    if runs and runs[-1][0] == a:  # Same canonical form as row_to_compact.
                        runs[-1] = (a, runs[-1][1] + len(piece))
                    else:
                        runs.append((a, len(piece)))
            text = "".join(text_parts)
            if len(text) <= columns:
                add((text, tuple(runs)) if text else BLANK_ROW)
            else:
                rows.extend(wrap(text, runs, columns))
        return rows, attrs

    def compact_row(self, y: int) -> CompactRow:
        """Screen row ``y`` in compact form, trailing default blanks trimmed (what
        :func:`row_to_compact` gives for the row after :meth:`sync`), read from the rows kept
        aside without writing them back: a front end reading the screen in the middle of a flood
        leaves them for the next bulk feed to scroll away as they are."""
        screen = self.screen
        columns = screen.columns
        lazy = self.kept
        if lazy is not None and 0 <= y < len(lazy):
            row = lazy[y]
            if row is None:
                return BLANK_ROW
            if isinstance(row, RawLine):
                row = self._rows([row.text], row.attrs, columns)[0][0]
            if isinstance(row, tuple):
                return trim(row) if row[1] else BLANK_ROW
            return row_to_compact(row, columns)
        # Not buffer[y]: reading through the defaultdict would create the row.
        return row_to_compact(screen.buffer.get(y) or {}, columns)

    def sync(self) -> None:
        """Write the rows kept aside back into pyte's buffer."""
        lazy = self.kept
        if lazy is None:
            return
        self.kept = None
        screen = self.screen
        buffer = screen.buffer
        bottom = buffer.get(screen.lines - 1)
        buffer.clear()
        default = screen.default_char
        columns = screen.columns
        chars = self._chars
        for y, row in enumerate(lazy):
            # The rows above the bottom one all exist after a scroll, blank or not: pyte's index
            # creates them (and delete_lines/insert_lines tell an empty row from a missing one).
            if row is None:
                row = fresh_row(default)
            elif isinstance(row, RawLine):
                row = self._rows([row.text], row.attrs, columns)[0][0]
            if isinstance(row, tuple):
                row = compact_to_row(row, default, columns, chars) if row[1] else fresh_row(default)
            buffer[y] = row
        if bottom is not None:
            buffer[screen.lines - 1] = bottom


def trim(row: CompactRow) -> CompactRow:
    """Drop trailing default blanks, the canonical form :func:`row_to_compact` produces."""
    text, runs = row
    assert isinstance(text, str)
    if not runs or text[-1:] != " " or runs[-1][0] != DEFAULT_ATTRS:
        return row
    stripped = text.rstrip(" ")
    cut = len(text) - len(stripped)
    last_attrs, last_count = runs[-1]
    if cut < last_count:
        return (stripped, runs[:-1] + ((last_attrs, last_count - cut),))
    # The default run is all blanks; earlier runs may end in non-default blanks, which stay.
    return trim((text[: len(text) - last_count], runs[:-1])) if runs[:-1] else ("", ())


def wrap(text: str, runs: list[tuple[Any, int]], columns: int) -> list[CompactRow]:
    """Split one logical line into rows of ``columns`` cells, cutting attribute runs to match."""
    out: list[CompactRow] = []
    flat: list[Any] = []
    for a, n in runs:
        flat.extend([a] * n)
    for i in range(0, len(text), columns):
        part_attrs = flat[i : i + columns]
        row_runs: list[tuple[Any, int]] = []
        for a in part_attrs:
            if row_runs and row_runs[-1][0] == a:
                row_runs[-1] = (a, row_runs[-1][1] + 1)
            else:
                row_runs.append((a, 1))
        out.append((text[i : i + columns], tuple(row_runs)))
    return out
