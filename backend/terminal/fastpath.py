"""The parser: a regex tokenizer for what dominates real output, pyte's own parser for the rest.

Why it is fast:
* runs of whole lines that scroll away are turned into compact scrollback rows in bulk, without
  ever being drawn on screen (the screen and the scrollback still come out exact; :mod:`.bulk`);
* printable ASCII runs are written with one ``dict.update`` per row, not a method call per cell,
  and whole CR LF-ended lines going down the screen in one pass;
* each distinct escape sequence is parsed once and its handler cached; cursor positioning and
  erase-in-line are inlined in the loop;
* redraws: erasing copies a cached blank row instead of writing cell by cell, and runs of text a
  program draws again and again (same text, column and attributes) are kept as ready cells
  (:mod:`.rowcache`).
Why it is exact: anything the fast tokens do not cover is fed one character at a time to pyte's
own parser bound to the same screen, and the tokenizer never splits a sequence at a chunk boundary
(an unfinished escape sequence is held back until the next feed).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

import pyte
from pyte import modes as mo
from pyte.screens import Char, wcwidth

from .bulk import BULK, BulkScroll
from .cells import CharCaches
from .rowcache import LINE_CELLS, blank, blanks_for, draw_line, fresh_row
from .screen import CoreScreen
from .sgr import sgr_params

# Characters that end a text run in pyte's Stream (its ``_special`` set).
_SPECIAL = "\x1b\x9b\x00\x7f\x9d\x07\x08\t\n\x0b\x0c\r\x0e\x0f"
_TEXT = "[^" + re.escape(_SPECIAL) + "]+"

_T_TEXT, _T_CRLF, _T_BASIC, _T_SGR, _T_CSI, _T_ESC, _T_IGNORE = 1, 2, 3, 4, 5, 6, 7
_TOKEN = re.compile(
    "(" + _TEXT + ")"
    r"|(\r\n)"
    r"|([\n\r\x08\t\x07\x0b\x0c])"
    r"|\x1b\[([0-9;:]*)m"
    r"|(\x1b\[\??[0-9;]*[\x40-\x7e])"
    r"|(\x1b(?:[^\[\]#%()]|[#%()].))"
    r"|([\x00\x7f\x0e\x0f])",
    re.DOTALL,
)
# A chunk ending in one of these might be the start of a fast token: hold it back.
_PENDING = re.compile(r"\x1b(?:\[[0-9;:?]*|[#%()])?\Z")
_PENDING_MAX = 256
# CR LF, then whole lines of printable ASCII each ended by CR LF: a screen redrawn line by line.
_LINES = re.compile(r"\r\n(?:[\x20-\x7e]*+\r\n)*+")

_ESC_METHODS = {
    "c": "reset", "D": "index", "E": "linefeed", "M": "reverse_index",
    "H": "set_tab_stop", "7": "save_cursor", "8": "restore_cursor", "#8": "alignment_display",
}
_PRIVATE_OK = frozenset("hlJKc")  # pyte raises TypeError for "?" with any other final byte.

# (method, args, kwargs, op): ``op`` names the handlers the main loop inlines (see _build_csi).
Handler = tuple[Callable[..., Any], tuple[int, ...], dict[str, bool], int]
_OP_CALL, _OP_CUP, _OP_EL = 0, 1, 2
_IRM, _DECOM, _DECSCNM = mo.IRM, mo.DECOM, mo.DECSCNM


def _draw_breaks_at(run: str, ok: set[str]) -> int:
    """Where pyte's ``draw`` gives up on a run (a character that is neither printable nor
    combining); pyte then drops the rest of the run, and so must we."""
    for i, ch in enumerate(run):
        if ch in ok:
            continue
        w = wcwidth(ch)
        if w < 0 or (w == 0 and not unicodedata.combining(ch)):
            return i
        ok.add(ch)
    return -1


class Parser:
    """Feeds decoded text into a :class:`CoreScreen`."""

    def __init__(self, screen: CoreScreen) -> None:
        self.screen = screen
        self._stream = pyte.Stream(screen)
        self._send = self._stream._send_to_parser
        self._ground = True
        self._dropping = False
        self._pending = ""
        self._chars = CharCaches()
        self._csi: dict[str, Handler | None] = {}
        self._esc: dict[str, Handler | None] = {}
        self._sgr: dict[tuple[Char, str], Char] = {}
        self._printable: set[str] = set()
        self._narrow_chars: set[str] = set()
        self._scratch = pyte.Screen(1, 1)  # Computes SGR transitions off-screen.
        # The bulk scrolling path and the screen rows it keeps aside (see :mod:`.bulk`).
        self.bulk = BulkScroll(screen, self._sgr_attrs, self._chars)
        basic = screen
        self._basic: dict[str, Callable[[], Any]] = {
            "\n": self._linefeed, "\x0b": self._linefeed, "\x0c": self._linefeed,
            "\r": basic.carriage_return, "\x08": basic.backspace, "\t": basic.tab, "\x07": basic.bell,
        }

    @property
    def idle(self) -> bool:
        """True when no escape sequence is half-read (a snapshot taken now is complete)."""
        return self._ground and not self._pending

    @property
    def dropping(self) -> bool:
        """True when the text run that ended the last feed followed a character pyte refuses to
        draw: pyte drops the rest of such a run, and so the text that continues it (snapshots keep
        this)."""
        return self._dropping

    @dropping.setter
    def dropping(self, value: bool) -> None:
        self._dropping = value

    # -- main loop -----------------------------------------------------------------------------
    def feed(self, text: str) -> None:
        if self._pending:
            text = self._pending + text
            self._pending = ""
        screen = self.screen
        cursor = screen.cursor
        match = _TOKEN.match
        basic = self._basic
        sgr_cache = self._sgr
        csi_cache = self._csi
        last_attrs: Char | None = None
        get: Callable[[str], Char] = str  # type: ignore[assignment]
        # Re-read after anything that may replace them (RIS, the alternate screen, DECCOLM).
        mode, buffer, columns = screen.mode, screen.buffer, screen.columns
        dirty_add = screen.dirty.add
        line_cells = LINE_CELLS
        bulk_path = self.bulk
        bottom = screen.lines - 1
        ground = self._ground
        lazy = bulk_path.kept is not None  # Only the bulk path and sync change it.
        pos, end = 0, len(text)
        while pos < end:
            if not ground:
                bulk_path.sync()
                lazy = False
                pos = self._slow(text, pos, end)
                ground = self._ground
                cursor = screen.cursor
                mode, buffer, columns, bottom = screen.mode, screen.buffer, screen.columns, screen.lines - 1
                continue
            if cursor.x == 0 and cursor.y == bottom and not self._dropping:
                bulk = BULK.match(text, pos)
                if bulk is not None and bulk_path.ok():
                    bulk_path.scroll(bulk.group())
                    lazy = bulk_path.kept is not None
                    pos = bulk.end()
                    cursor = screen.cursor
                    continue
            m = match(text, pos)
            if m is None:
                if end - pos < _PENDING_MAX and _PENDING.match(text, pos):
                    self._pending = text[pos:]
                    return
                if lazy:
                    bulk_path.sync()
                    lazy = False
                self._dropping = False
                pos = self._slow(text, pos, end)
                ground = self._ground
                cursor = screen.cursor
                mode, buffer, columns, bottom = screen.mode, screen.buffer, screen.columns, screen.lines - 1
                continue
            if lazy:
                if self._lazy_token(m):
                    pos = m.end()
                    continue
                bulk_path.sync()
                lazy = False
            kind = m.lastindex
            pos = m.end()
            if kind == _T_TEXT:
                run = m.group(1)
                x = cursor.x
                n = x + len(run)
                if (n <= columns and not self._dropping and _IRM not in mode
                        and ((run.isascii() and run.isprintable()) or self._narrow(run))):
                    # The common case inline: the run fits on the cursor's row.
                    attrs = cursor.attrs
                    y = cursor.y
                    key = (run, x, attrs)
                    cells = line_cells.get(key)
                    if cells is not None:
                        buffer[y].update(cells)
                    else:
                        if attrs is not last_attrs:
                            last_attrs = attrs
                            get = self._chars[attrs].__getitem__
                        draw_line(buffer[y], key, zip(range(x, n), map(get, run), strict=True))
                    cursor.x = n
                    dirty_add(y)
                    if text.startswith("\r\n", pos):
                        pos = self._text_lines(text, pos)
                elif self._dropping:
                    self._dropping = pos == end
                elif (run.isascii() and run.isprintable()) or self._narrow(run):
                    self._draw_narrow(run)
                else:
                    cut = _draw_breaks_at(run, self._printable)
                    if cut < 0:
                        screen.draw(run)
                    else:
                        screen.draw(run[: cut + 1])  # pyte stops at the bad character itself.
                        self._dropping = pos == end
                continue
            self._dropping = False
            if kind == _T_SGR:
                cached = sgr_cache.get((cursor.attrs, m.group(4)))
                if cached is not None and _DECSCNM not in mode:
                    cursor.attrs = cached
                else:
                    self._select_graphic_rendition(m.group(4))
            elif kind == _T_CSI:
                handler = csi_cache.get(m.group(5))
                if handler is None:
                    self._dispatch_csi(m.group(5))
                    cursor = screen.cursor
                    mode, buffer, columns, bottom = screen.mode, screen.buffer, screen.columns, screen.lines - 1
                    continue
                op = handler[3]
                if op == _OP_CUP:
                    if screen.margins is None or _DECOM not in mode:
                        y, x = handler[1]
                        cursor.x = x if x < columns else columns - 1
                        cursor.y = y if y <= bottom else bottom
                    else:
                        self._cursor_position(*handler[1])
                elif op == _OP_EL and handler[1][0] == 0 and cursor.x:
                    y = cursor.y
                    dirty_add(y)
                    buffer[y].update(blank(cursor.attrs, cursor.x, columns))
                else:
                    try:
                        handler[0](*handler[1], **handler[2])
                    except Exception:  # noqa: BLE001
                        pass  # As in _dispatch_csi.
                    cursor = screen.cursor
                    mode, buffer, columns, bottom = screen.mode, screen.buffer, screen.columns, screen.lines - 1
            elif kind == _T_CRLF:
                pos = self._text_lines(text, pos - 2)
            elif kind == _T_BASIC:
                basic[m.group(3)]()
            elif kind == _T_ESC:
                self._dispatch_esc(m.group(6))
                cursor = screen.cursor  # DECRC and RIS replace the cursor object.
                mode, buffer, columns, bottom = screen.mode, screen.buffer, screen.columns, screen.lines - 1

    def _narrow(self, run: str) -> bool:
        """Whether every character is one cell wide (then pyte's ``draw`` treats the run exactly
        like ASCII text)."""
        chars = set(run)
        narrow = self._narrow_chars
        if chars <= narrow:
            return True
        if len(narrow) > 65536:
            narrow.clear()
        for ch in chars - narrow:
            if wcwidth(ch) != 1:
                return False
            narrow.add(ch)
        return True

    def _slow(self, text: str, pos: int, end: int) -> int:
        """pyte's own parser, one character at a time, until it is back in the ground state."""
        send = self._send
        ground: Any = None
        while pos < end:
            ch = text[pos]
            pos += 1
            try:
                ground = send(ch)
            except Exception:  # pyte raises from some handlers (e.g. "?" on SGR) and resets itself.
                ground = True
            if ground:
                break
        self._ground = bool(ground)
        return pos

    # -- handlers ------------------------------------------------------------------------------
    def _draw_narrow(self, text: str) -> None:
        screen = self.screen
        mode = screen.mode
        if mo.IRM in mode:
            screen.draw(text)
            return
        cursor = screen.cursor
        cache = self._chars[cursor.attrs]
        get = cache.__getitem__
        buffer = screen.buffer
        columns = screen.columns
        autowrap = mo.DECAWM in mode
        dirty = screen.dirty
        i, n = 0, len(text)
        while i < n:
            x = cursor.x
            if x >= columns:
                if autowrap:
                    dirty.add(cursor.y)
                    screen.carriage_return()
                    screen.linefeed()
                    x = cursor.x
                else:
                    buffer[cursor.y][columns - 1] = get(text[-1])
                    cursor.x = columns
                    break
            k = min(n - i, columns - x)
            buffer[cursor.y].update(zip(range(x, x + k), map(get, text[i : i + k]), strict=False))
            cursor.x = x + k
            i += k
        dirty.add(cursor.y)

    def _select_graphic_rendition(self, params: str) -> None:
        screen = self.screen
        if mo.DECSCNM in screen.mode:  # Changes what "reset" means: use the screen itself.
            values = sgr_params(params)
            if values or ":" not in params:
                screen.select_graphic_rendition(*values)
            return
        cursor = screen.cursor
        cursor.attrs = self._sgr_attrs(cursor.attrs, params)

    def _dispatch_csi(self, seq: str) -> None:
        try:
            handler = self._csi[seq]
        except KeyError:
            handler = self._csi[seq] = self._build_csi(seq)
        if handler is not None:
            func, args, kwargs, _ = handler
            try:
                func(*args, **kwargs)
            except Exception:  # noqa: BLE001
                pass  # pyte raises on surplus or out-of-range parameters; a terminal ignores them.

    def _build_csi(self, seq: str) -> Handler | None:
        if len(self._csi) > 4096:
            self._csi.clear()
        final = seq[-1]
        private = seq[2] == "?"
        body = seq[3:-1] if private else seq[2:-1]
        name = pyte.Stream.csi.get(final)
        if name is None or (private and final not in _PRIVATE_OK):
            return None
        args = tuple(min(int(p or 0), 9999) for p in body.split(";"))
        if not private and final in "Hf" and len(args) <= 2:
            # Inlined by the loop; the arguments become 0-based (still to be clamped to the screen).
            line, column = (args + (0,))[:2]
            return (self._cursor_position, ((line or 1) - 1, (column or 1) - 1), {}, _OP_CUP)
        if not private and final == "K" and len(args) == 1 and args[0] in (0, 1, 2):
            return (self._erase_in_line, args, {}, _OP_EL)
        if not private and final == "J" and args[0] in (0, 1, 2, 3):
            return (self._erase_in_display, args[:1], {}, _OP_CALL)
        return (getattr(self.screen, name), args, {"private": True} if private else {}, _OP_CALL)

    def _cursor_position(self, y: int, x: int) -> None:
        """pyte's ``cursor_position`` (``y`` and ``x`` 0-based, at least 0), without origin mode
        minus the method calls."""
        screen = self.screen
        if screen.margins is not None and mo.DECOM in screen.mode:
            screen.cursor_position(y + 1, x + 1)
            return
        cursor = screen.cursor
        cursor.x = min(x, screen.columns - 1)
        cursor.y = min(y, screen.lines - 1)

    def _erase_in_display(self, how: int) -> None:
        """pyte's ``erase_in_display``: only cells already written are erased (bug for bug).
        A row written in columns 0..k-1 (the usual shape) is replaced by a copy of a blank row."""
        screen = self.screen
        cursor = screen.cursor
        if how == 0:
            interval = range(cursor.y + 1, screen.lines)
        elif how == 1:
            interval = range(cursor.y)
        else:
            interval = range(screen.lines)
        screen.dirty.update(interval)
        buffer = screen.buffer
        columns = screen.columns
        blanks = blanks_for(cursor.attrs)
        for y in interval:
            line = buffer[y]
            if line:
                k = len(line)
                # A row's keys are distinct columns in 0..columns (``columns`` itself only from EL 1
                # while a wrap is pending): k of them below k are exactly 0..k-1.
                if (k == columns and columns not in line) or max(line) == k - 1:
                    row = fresh_row(line.default)
                    row.update(blanks[k])
                    buffer[y] = row
                else:
                    line.update(dict.fromkeys(line, blanks.attrs))
        if how == 0 or how == 1:
            self._erase_in_line(how)

    def _text_lines(self, text: str, pos: int) -> int:
        """CR LF at ``pos``, and the whole lines of printable ASCII (each ended by CR LF) after it,
        as far as they go down without scrolling: one ``dict.update`` per line.  Returns where
        the next token starts (after at least the first CR LF)."""
        screen = self.screen
        cursor = screen.cursor
        margins = screen.margins
        y = cursor.y
        room = (margins.bottom if margins is not None else screen.lines - 1) - y
        if room <= 0 or mo.IRM in screen.mode:
            cursor.x = 0
            self._linefeed()
            return pos + 2
        m = _LINES.match(text, pos)
        assert m is not None
        lines = m.group().split("\r\n")
        n = min(len(lines) - 1, room)  # CR LFs taken: lines[1:n] are drawn on the rows below.
        if n > 1:
            drawn = lines[1:n]
            columns = screen.columns
            if max(map(len, drawn)) > columns:  # Stop before the first line that would wrap.
                n = 1 + next(i for i, line in enumerate(drawn) if len(line) > columns)
                drawn = lines[1:n]
            buffer = screen.buffer
            attrs = cursor.attrs
            get = self._chars[attrs].__getitem__
            cache = LINE_CELLS
            for row_y, line in zip(range(y + 1, y + n), drawn, strict=True):
                if line:
                    key = (line, 0, attrs)
                    cells = cache.get(key)
                    if cells is not None:
                        buffer[row_y].update(cells)
                    else:
                        draw_line(buffer[row_y], key, zip(range(len(line)), map(get, line), strict=True))
            screen.dirty.update(range(y + 1, y + n))  # A superset: the empty lines too.
        cursor.x = 0
        cursor.y = y + n
        return pos + 2 * n + sum(map(len, lines[:n]))

    def _linefeed(self) -> None:
        """pyte's ``linefeed`` when it does not scroll: just the cursor moves."""
        screen = self.screen
        cursor = screen.cursor
        margins = screen.margins
        bottom = margins.bottom if margins is not None else screen.lines - 1
        if cursor.y == bottom:
            screen.linefeed()
            return
        cursor.y = min(cursor.y + 1, bottom)  # Like cursor_down: below the region moves up to it.
        if mo.LNM in screen.mode:
            cursor.x = 0

    def _erase_in_line(self, how: int) -> None:
        """pyte's ``erase_in_line`` with one ``dict.update`` of a cached blank run instead of a
        loop (or, for the whole row, a copy of a blank row)."""
        screen = self.screen
        cursor = screen.cursor
        y = cursor.y
        x = cursor.x
        screen.dirty.add(y)
        columns = screen.columns
        line = screen.buffer[y]
        if how == 2 or (how == 0 and x == 0):
            row = fresh_row(line.default)
            row.update(blanks_for(cursor.attrs)[columns])
            if columns in line:  # Written by EL 1 while a wrap was pending; not erased.
                row[columns] = line[columns]
            screen.buffer[y] = row
        elif how == 0:
            line.update(blank(cursor.attrs, x, columns))
        else:
            line.update(blank(cursor.attrs, 0, x + 1))  # x + 1 may be columns + 1, as in pyte.

    def _dispatch_esc(self, seq: str) -> None:
        try:
            handler = self._esc[seq]
        except KeyError:
            name = _ESC_METHODS.get(seq[1:])
            handler = self._esc[seq] = (getattr(self.screen, name), (), {}, _OP_CALL) if name else None
        if handler is not None:
            handler[0]()

    # -- rows kept aside by the bulk path --------------------------------------------------------
    def _lazy_token(self, m: re.Match[str]) -> bool:
        """Handle a token without materialising the rows kept aside, if it only touches the
        bottom row: text that fits, CR LF (scroll the kept rows) and SGR."""
        kind = m.lastindex
        screen = self.screen
        cursor = screen.cursor
        if kind == _T_TEXT:
            run = m.group(1)
            if (self._dropping or not (run.isascii() and run.isprintable())
                    or cursor.x + len(run) > screen.columns or mo.IRM in screen.mode):
                return False
            self._draw_narrow(run)
            return True
        if kind == _T_SGR:
            self._dropping = False
            self._select_graphic_rendition(m.group(4))
            return True
        if kind == _T_BASIC:
            ch = m.group(3)
            if ch == "\r":
                self._dropping = False
                cursor.x = 0
                return True
            if ch != "\n":
                return False
            if mo.LNM in screen.mode:
                cursor.x = 0
        if kind == _T_CRLF or kind == _T_BASIC:
            self._dropping = False
            if kind == _T_CRLF:
                cursor.x = 0
            self.bulk.scroll_one()
            return True
        return False

    @property
    def rows_kept_aside(self) -> bool:
        """Whether the bulk path keeps screen rows aside (not yet written back into pyte's buffer)."""
        return self.bulk.kept is not None

    def sync(self) -> None:
        """Write the rows kept aside by the bulk path back into pyte's buffer."""
        self.bulk.sync()

    def _sgr_attrs(self, attrs: Char, params: str) -> Char:
        """SGR as a pure function of the attributes (reverse-video screen mode excluded)."""
        key = (attrs, params)
        cached = self._sgr.get(key)
        if cached is not None:
            return cached
        scratch = self._scratch
        scratch.cursor.attrs = attrs
        values = sgr_params(params)
        if values or ":" not in params:
            scratch.select_graphic_rendition(*values)
        result: Char = scratch.cursor.attrs
        if len(self._sgr) > 4096:
            self._sgr.clear()
        self._sgr[key] = result
        return result
