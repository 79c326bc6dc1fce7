"""The exact screen: stock pyte plus what pyte lacks (alternate screen, scrollback, modes, resize).

Every method not overridden here is pyte 0.8.2's own, so the per-character path is the reference
implementation itself; the fast path in :mod:`.fastpath` must produce the same cells.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pyte
from pyte import modes as mo
from pyte.screens import Char, Cursor, StaticDefaultDict

from .cells import CompactRow, compact_to_row, row_to_compact
from .history import History

# Private modes are stored by pyte shifted left by five bits.
ALT_47 = 47 << 5
ALT_1047 = 1047 << 5
ALT_1049 = 1049 << 5
_ALT_MODES = frozenset((47, 1047, 1049))


class CoreScreen(pyte.Screen):
    """pyte's Screen with a bounded scrollback ring and an alternate screen."""

    def __init__(self, columns: int, lines: int, history: int = 10000) -> None:
        self.history = History(history)
        self.bells = 0  # BELs (not those ending an OSC string) seen since the screen was made
        self.main_buffer: Any = None  # The main screen's rows while the alternate screen is shown.
        self.alt_cursor: Cursor | None = None  # Cursor saved by DECSET 1049.
        super().__init__(columns, lines)

    # -- state helpers -------------------------------------------------------------------------
    @property
    def in_alt(self) -> bool:
        return self.main_buffer is not None

    def new_buffer(self) -> Any:
        return defaultdict(lambda: StaticDefaultDict(self.default_char))

    def push_history(self, row: CompactRow) -> None:
        self.history.append(row)

    # -- scrolling -----------------------------------------------------------------------------
    def index(self) -> None:
        """pyte's ``index``, with the rows of the region moved in one ``dict.update`` rather than
        one at a time; like xterm and tmux, lines scrolled off a full-screen region of the main
        screen are kept in the scrollback."""
        margins = self.margins
        top, bottom = (0, self.lines - 1) if margins is None else margins
        if self.cursor.y != bottom:
            self.cursor_down()
            return
        buffer = self.buffer
        if self.main_buffer is None and self.history.maxlen and top == 0 and bottom == self.lines - 1:
            row = buffer.get(0)
            self.history.append(row_to_compact(row, self.columns) if row else ("", ()))
        self.dirty.update(range(self.lines))
        if bottom > top:
            # Reading each row below through the defaultdict creates it if missing, as pyte does.
            moved = list(map(buffer.__getitem__, range(top + 1, bottom + 1)))
            buffer.update(zip(range(top, bottom), moved, strict=True))
        buffer.pop(bottom, None)

    def reset(self) -> None:
        if getattr(self, "main_buffer", None) is not None:
            self.buffer = self.main_buffer
            self.main_buffer = None
        self.alt_cursor = None
        super().reset()

    # -- modes ---------------------------------------------------------------------------------
    def set_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private"):
            for m in modes:
                if m in _ALT_MODES:
                    self.enter_alt(save_cursor=m == 1049)
        super().set_mode(*modes, **kwargs)

    def reset_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private"):
            for m in modes:
                if m in _ALT_MODES:
                    self.leave_alt(restore_cursor=m == 1049)
        super().reset_mode(*modes, **kwargs)

    def enter_alt(self, save_cursor: bool) -> None:
        """tmux semantics: entering clears the alternate screen; entering twice is a no-op."""
        if save_cursor:
            saved = Cursor(self.cursor.x, self.cursor.y, self.cursor.attrs)
            self.alt_cursor = saved
        if self.main_buffer is not None:
            return
        self.main_buffer = self.buffer
        self.buffer = self.new_buffer()
        self.dirty.update(range(self.lines))

    def leave_alt(self, restore_cursor: bool) -> None:
        if restore_cursor and self.alt_cursor is not None:
            saved = self.alt_cursor
            self.cursor.x, self.cursor.y, self.cursor.attrs = saved.x, saved.y, saved.attrs
            self.ensure_hbounds()
            self.ensure_vbounds()
        if self.main_buffer is None:
            return
        self.buffer = self.main_buffer
        self.main_buffer = None
        self.mode.difference_update((ALT_47, ALT_1047, ALT_1049))
        self.dirty.update(range(self.lines))

    # -- resize --------------------------------------------------------------------------------
    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        """tmux's rules for height (lines below the cursor go first, then the top goes to the
        scrollback; growing pulls lines back from it); width truncates without reflow like xterm."""
        lines = lines or self.lines
        columns = columns or self.columns
        if lines == self.lines and columns == self.columns:
            return
        old_lines, old_columns = self.lines, self.columns
        buffers = [self.buffer] + ([self.main_buffer] if self.main_buffer is not None else [])
        if columns != old_columns:
            self.history.materialize()  # Raw blocks are expanded at the width they were written at.
        if columns < old_columns:
            for buf in buffers:
                for row in buf.values():
                    for x in [k for k in row if k >= columns]:
                        del row[x]
        self.lines, self.columns = lines, columns
        if lines != old_lines:
            cursor_y = self._resize_rows(self.buffer, old_lines, lines, self.cursor.y, not self.in_alt)
            self.cursor.y = cursor_y
            if self.main_buffer is not None:
                saved = self.alt_cursor
                y = saved.y if saved is not None else old_lines - 1
                y = self._resize_rows(self.main_buffer, old_lines, lines, y, True)
                if saved is not None:
                    saved.y = y
        self.margins = None
        if self.cursor.x > columns - 1 and columns != old_columns:
            self.cursor.x = columns - 1
        self.cursor.y = min(max(self.cursor.y, 0), lines - 1)
        if columns != old_columns:
            self.tabstops = set(range(8, columns, 8))  # tmux resets tab stops on a width change.
        self.dirty.clear()
        self.dirty.update(range(lines))

    def _resize_rows(self, buf: Any, old: int, new: int, cursor_y: int, with_history: bool) -> int:
        rows = [buf.get(y) for y in range(old)]
        if new < old:
            needed = old - new
            below = min(max(old - 1 - cursor_y, 0), needed)
            if below:
                del rows[old - below:]
            needed -= below
            if needed:
                top = rows[:needed]
                del rows[:needed]
                if with_history and self.history.maxlen:
                    for row in top:
                        self.history.append(row_to_compact(row, self.columns) if row else ("", ()))
                cursor_y -= needed
        else:
            needed = new - old
            pulled: list[Any] = []
            if with_history:
                while needed and self.history:
                    pulled.append(compact_to_row(self.history.pop(), self.default_char, self.columns))
                    needed -= 1
            pulled.reverse()
            rows = pulled + rows + [None] * needed
            cursor_y += len(pulled)
        buf.clear()
        for y, row in enumerate(rows):
            if row is not None:
                buf[y] = row
        return cursor_y

    def bell(self, *args: Any) -> None:
        """Counted, for a front end to flag (pyte's own does nothing)."""
        self.bells += 1

    # -- convenience ---------------------------------------------------------------------------
    def row(self, y: int) -> list[Char]:
        line = self.buffer[y]
        return [line[x] for x in range(self.columns)]

    @property
    def modes(self) -> set[int]:
        return set(self.mode)

    def debug(self, *args: Any, **kwargs: Any) -> None:
        """Unknown sequences are ignored, exactly like stock pyte."""


__all__ = ["CoreScreen", "mo"]
