"""The parser: a regex tokenizer for what dominates real output, pyte's own parser for the rest.

Why it is fast:
* runs of whole lines that scroll away are turned into compact scrollback rows in bulk, without
  ever being drawn on screen (the screen and the scrollback still come out exact);
* printable ASCII runs are written with one ``dict.update`` per row, not a method call per cell,
  and whole CR LF-ended lines going down the screen in one pass;
* each distinct escape sequence is parsed once and its handler cached; cursor positioning and
  erase-in-line are inlined in the loop;
* redraws: erasing copies a cached blank row instead of writing cell by cell, and runs of text a
  program draws again and again (same text, column and attributes) are kept as ready cells.
Why it is exact: anything the fast tokens do not cover is fed one character at a time to pyte's
own parser bound to the same screen, and the tokenizer never splits a sequence at a chunk boundary
(an unfinished escape sequence is held back until the next feed).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any

import pyte
from pyte import modes as mo
from pyte.screens import Char, StaticDefaultDict, wcwidth

from .cells import BLANK_ROW, DEFAULT_ATTRS, Attrs, CharCaches, CompactRow, compact_to_row, row_to_compact
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
# Whole lines of printable ASCII and plain SGR, each ended by CR LF: the bulk scrolling path.
_BULK = re.compile(r"(?:(?:[\x20-\x7e]++|\x1b\[[0-9;]*+m)*+\r\n)+")
_SGR_SPLIT = re.compile(r"\x1b\[([0-9;]*)m")
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


_new_dict = dict.__new__


def _fresh_row(default: Char) -> StaticDefaultDict[int, Char]:
    """An empty pyte row (``StaticDefaultDict(default)`` without the Python-level ``__init__``)."""
    row: StaticDefaultDict[int, Char] = _new_dict(StaticDefaultDict)
    row.default = default
    return row


class _Blanks(dict[int, dict[int, Char]]):
    """``blanks[k]``: ``{x: attrs for x < k}`` for one ``attrs``, built on first use."""

    __slots__ = ("attrs",)

    def __init__(self, attrs: Char) -> None:
        super().__init__()
        self.attrs = attrs

    def __missing__(self, k: int) -> dict[int, Char]:
        blank = dict.fromkeys(range(k), self.attrs)
        if len(self) < 32:  # Rows come in few lengths; beyond that, build without keeping.
            self[k] = blank
        return blank


# Shared by every screen (a few hundred KB at most); the tables are only ever copied from, never
# handed out for mutation.
_blank_rows: dict[Char, _Blanks] = {}
_blank_tails: dict[tuple[Char, int, int], dict[int, Char]] = {}


def _blanks_for(attrs: Char) -> _Blanks:
    blanks = _blank_rows.get(attrs)
    if blanks is None:
        if len(_blank_rows) >= 8:
            _blank_rows.clear()
        blanks = _blank_rows[attrs] = _Blanks(attrs)
    return blanks


def _blank(attrs: Char, start: int, stop: int) -> dict[int, Char]:
    """``{x: attrs}`` for ``start <= x < stop`` (cached): erasing part of a row is one ``update``."""
    if start == 0:
        return _blanks_for(attrs)[stop]
    key = (attrs, start, stop)
    blank = _blank_tails.get(key)
    if blank is None:
        if len(_blank_tails) >= 256:
            _blank_tails.clear()
        blank = _blank_tails[key] = dict.fromkeys(range(start, stop), attrs)
    return blank


# Runs of text as cells, for the runs a redraw repeats (a full-screen program redraws mostly the
# same lines; busybox top, e.g., all of them every second): drawing one is then a single copy.
# Keyed by (text, column, attributes); a run is kept the second time it is seen (of the last 4096
# different ones), the oldest kept run making room.  Shared by every screen, only ever copied from.
_LINE_CELLS_MAX = 256
_line_cells: dict[tuple[str, int, Char], dict[int, Char]] = {}
_line_seen: set[int] = set()


def _draw_line(row: dict[int, Char], key: tuple[str, int, Char], cells: Iterable[tuple[int, Char]]) -> None:
    """Draw a run that is not in ``_line_cells`` (``cells`` are its cells), keeping it there if it
    was seen before."""
    digest = hash(key)
    if digest not in _line_seen:
        if len(_line_seen) >= 4096:
            _line_seen.clear()
        _line_seen.add(digest)
        row.update(cells)
        return
    if len(_line_cells) >= _LINE_CELLS_MAX:
        try:
            del _line_cells[next(iter(_line_cells))]
        except (KeyError, RuntimeError, StopIteration):  # Another thread got there first.
            pass
    kept = _line_cells[key] = dict(cells)
    row.update(kept)


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
        self._lazy: list[Any] | None = None  # Screen rows above the bottom one, kept by _bulk.
        self._runs_by_len: dict[Attrs, list[Any]] = {}
        self._scratch = pyte.Screen(1, 1)  # Computes SGR transitions off-screen.
        screen.history.expander = self._expand_block
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
        line_cells = _line_cells
        bottom = screen.lines - 1
        ground = self._ground
        lazy = self._lazy is not None  # Only _bulk and sync change it.
        pos, end = 0, len(text)
        while pos < end:
            if not ground:
                self.sync()
                lazy = False
                pos = self._slow(text, pos, end)
                ground = self._ground
                cursor = screen.cursor
                mode, buffer, columns, bottom = screen.mode, screen.buffer, screen.columns, screen.lines - 1
                continue
            if cursor.x == 0 and cursor.y == bottom and not self._dropping:
                bulk = _BULK.match(text, pos)
                if bulk is not None and self._bulk_ok():
                    self._bulk(bulk.group())
                    lazy = self._lazy is not None
                    pos = bulk.end()
                    cursor = screen.cursor
                    continue
            m = match(text, pos)
            if m is None:
                if end - pos < _PENDING_MAX and _PENDING.match(text, pos):
                    self._pending = text[pos:]
                    return
                if lazy:
                    self.sync()
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
                self.sync()
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
                        _draw_line(buffer[y], key, zip(range(x, n), map(get, run), strict=True))
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
                    buffer[y].update(_blank(cursor.attrs, cursor.x, columns))
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
        blanks = _blanks_for(cursor.attrs)
        for y in interval:
            line = buffer[y]
            if line:
                k = len(line)
                # A row's keys are distinct columns in 0..columns (``columns`` itself only from EL 1
                # while a wrap is pending): k of them below k are exactly 0..k-1.
                if (k == columns and columns not in line) or max(line) == k - 1:
                    row = _fresh_row(line.default)
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
            cache = _line_cells
            for row_y, line in zip(range(y + 1, y + n), drawn, strict=True):
                if line:
                    key = (line, 0, attrs)
                    cells = cache.get(key)
                    if cells is not None:
                        buffer[row_y].update(cells)
                    else:
                        _draw_line(buffer[row_y], key, zip(range(len(line)), map(get, line), strict=True))
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
            row = _fresh_row(line.default)
            row.update(_blanks_for(cursor.attrs)[columns])
            if columns in line:  # Written by EL 1 while a wrap was pending; not erased.
                row[columns] = line[columns]
            screen.buffer[y] = row
        elif how == 0:
            line.update(_blank(cursor.attrs, x, columns))
        else:
            line.update(_blank(cursor.attrs, 0, x + 1))  # x + 1 may be columns + 1, as in pyte.

    def _dispatch_esc(self, seq: str) -> None:
        try:
            handler = self._esc[seq]
        except KeyError:
            name = _ESC_METHODS.get(seq[1:])
            handler = self._esc[seq] = (getattr(self.screen, name), (), {}, _OP_CALL) if name else None
        if handler is not None:
            handler[0]()

    # -- bulk scrolling ------------------------------------------------------------------------
    def _bulk_ok(self) -> bool:
        screen = self.screen
        mode = screen.mode
        return (
            mo.DECAWM in mode
            and mo.IRM not in mode
            and mo.DECSCNM not in mode
            and screen.margins is None
            and not screen.buffer.get(screen.lines - 1)
        )

    def _bulk(self, block: str) -> None:
        """Whole lines written on a blank bottom row and scrolled up.

        Lines that end in the scrollback go there as one raw block (see :mod:`.history`) when they
        need no wrapping; only the last screenful is turned into rows, and those are kept aside
        (``self._lazy``) rather than drawn into pyte's buffer until something else needs it."""
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
                    rows.append(_RawLine(line, start, attrs))
        else:
            rows, attrs = self._rows(raw_lines, attrs, columns)
        screen.cursor.attrs = attrs

        lazy = self._lazy
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
                history.extend(map(_trim, rows[: len(rows) - keep]))
        self._lazy = (lazy[gone_old:] + rows)[-keep:] if keep else []
        screen.dirty.update(range(lines))

    def _to_history(self, rows: list[Any]) -> None:
        """Rows leaving the kept-aside screen: runs of raw lines go to the scrollback as one block."""
        history = self.screen.history
        columns = self.screen.columns
        out: list[CompactRow] = []
        i, n = 0, len(rows)
        while i < n:
            row = rows[i]
            if isinstance(row, _RawLine):
                j = i + 1
                while j < n and isinstance(rows[j], _RawLine) and rows[j].attrs == rows[j - 1].end:
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
                out.append(_trim(row))
            else:
                out.append(row_to_compact(row, columns))
            i += 1
        if out:
            history.extend(out)

    def _expand_block(self, text: str, attrs: Char) -> list[CompactRow]:
        raw_lines = text.split("\r\n")
        raw_lines.pop()
        rows, _ = self._rows(raw_lines, attrs, self.screen.columns)
        return list(map(_trim, rows))

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
                    rows.extend(_wrap(raw, [(a, len(raw))], columns))
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
                rows.extend(_wrap(text, runs, columns))
        return rows, attrs

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
            lazy = self._lazy
            assert lazy is not None
            self._dropping = False
            if kind == _T_CRLF:
                cursor.x = 0
            bottom = screen.buffer.pop(screen.lines - 1, None)
            lazy.append(bottom)
            gone = lazy.pop(0)
            if screen.main_buffer is None and screen.history.maxlen:
                self._to_history([gone])
            screen.dirty.update(range(screen.lines))
            return True
        return False

    def compact_row(self, y: int) -> CompactRow:
        """Screen row ``y`` in compact form, trailing default blanks trimmed (what
        :func:`row_to_compact` gives for the row after :meth:`sync`), read from the rows kept
        aside without writing them back: a front end reading the screen in the middle of a flood
        leaves them for the next bulk feed to scroll away as they are."""
        screen = self.screen
        columns = screen.columns
        lazy = self._lazy
        if lazy is not None and 0 <= y < len(lazy):
            row = lazy[y]
            if row is None:
                return BLANK_ROW
            if isinstance(row, _RawLine):
                row = self._rows([row.text], row.attrs, columns)[0][0]
            if isinstance(row, tuple):
                return _trim(row) if row[1] else BLANK_ROW
            return row_to_compact(row, columns)
        # Not buffer[y]: reading through the defaultdict would create the row.
        return row_to_compact(screen.buffer.get(y) or {}, columns)

    def sync(self) -> None:
        """Write the rows kept aside by the bulk path back into pyte's buffer."""
        lazy = self._lazy
        if lazy is None:
            return
        self._lazy = None
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
                row = _fresh_row(default)
            elif isinstance(row, _RawLine):
                row = self._rows([row.text], row.attrs, columns)[0][0]
            if isinstance(row, tuple):
                row = compact_to_row(row, default, columns, chars) if row[1] else _fresh_row(default)
            buffer[y] = row
        if bottom is not None:
            buffer[screen.lines - 1] = bottom

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


class _RawLine:
    """A screen row kept as the text that drew it (SGR included) on a blank row."""

    __slots__ = ("text", "attrs", "end")

    def __init__(self, text: str, attrs: Char, end: Char) -> None:
        self.text = text
        self.attrs = attrs  # In force before the line.
        self.end = end  # In force after it.


def _trim(row: CompactRow) -> CompactRow:
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
    return _trim((text[: len(text) - last_count], runs[:-1])) if runs[:-1] else ("", ())


def _wrap(text: str, runs: list[tuple[Any, int]], columns: int) -> list[CompactRow]:
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
