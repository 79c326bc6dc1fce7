"""Compact, JSON-compatible snapshots of a terminal, for a dashboard to restore its own copy.

Format (version 1), all plain lists/dicts/str/int/bool:

``{"version": 1, "columns": C, "lines": L, "history_limit": N,
   "attrs": [[fg, bg, bold, italics, underscore, strikethrough, reverse, blink], ...],
   "screen": [row] * L, "main_screen": [row] * L or None, "history": [row, ...],
   "cursor": [x, y, attrs_index, hidden], "alt_cursor": [x, y, attrs_index] or None,
   "savepoints": [[x, y, attrs_index, hidden, origin, wrap], ...],
   "title": str, "icon_name": str, "modes": [int, ...], "margins": [top, bottom] or None,
   "tabstops": [int, ...]}``

A row is ``[cells, runs]``: ``cells`` a string (one code point per cell) or a list of cell strings,
``runs`` ``[[attrs_index, count], ...]`` covering the cells; cells past the end are default blanks.
Attributes are interned in ``attrs`` because a screen typically uses a handful of them.

Optional keys, added later in version 1 (a restorer without them ignores them and gets the screen's
cells right but not all of the state behind them; a snapshot without them restores as before):

* ``"exact_rows": {"screen": [exact] or absent, "main_screen": [exact] or absent}``: the rows the
  ``[cells, runs]`` form does not reproduce, each ``[y, default_attrs_index, [[x, data,
  attrs_index], ...]]`` with exactly the cells written.  pyte's buffer tells apart what looks
  alike: a blank row that exists from a missing one (DL pulls an existing row up but leaves a row
  whose lower neighbour is missing as it was), written from unwritten cells (erases only touch
  written ones), the cell EL 1 writes one past the last column while a wrap is pending (DCH brings
  it back on screen), and a row's own default cell (rows created under DECSCNM).  A row given the
  ``[cells, runs]`` way is a missing row if its ``runs`` are empty, else written exactly in
  columns ``0..n-1`` with the screen's default cell.
* ``"dropping": bool``: the text run that ended the last feed followed a character pyte refuses to
  draw, so pyte drops the text that continues it.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from pyte.screens import Char, Cursor, Margins, Savepoint, StaticDefaultDict

from .cells import Attrs, CompactRow, compact_to_row, row_to_compact

if TYPE_CHECKING:
    from .terminal import Terminal

VERSION = 1


class _Interner:
    __slots__ = ("index", "table")

    def __init__(self) -> None:
        self.index: dict[Attrs, int] = {}
        self.table: list[list[Any]] = []

    def __call__(self, attrs: Attrs) -> int:
        i = self.index.get(attrs)
        if i is None:
            i = self.index[attrs] = len(self.table)
            self.table.append(list(attrs))
        return i

    def row(self, crow: CompactRow) -> list[Any]:
        cells, runs = crow
        return [cells if isinstance(cells, str) else list(cells), [[self(a), n] for a, n in runs]]


def take(term: Terminal) -> dict[str, Any]:
    screen = term.screen
    columns = screen.columns
    intern = _Interner()

    default = screen.default_char

    def rows(buffer: Any) -> list[list[Any]]:
        return [intern.row(row_to_compact(buffer.get(y) or {}, columns, trim=False)) for y in range(screen.lines)]

    def exact(buffer: Any) -> list[list[Any]]:
        """The rows ``rows`` does not reproduce (see the format above)."""
        out: list[list[Any]] = []
        for y in range(screen.lines):
            row = buffer.get(y)
            if row is None or (row and max(row) == len(row) - 1 < columns and row.default == default):
                continue
            cells = [[x, c.data, intern(c[1:])] for x, c in sorted(row.items())]
            out.append([y, intern(row.default[1:]), cells])
        return out

    exact_rows = {"screen": exact(screen.buffer)}
    if screen.main_buffer is not None:
        exact_rows["main_screen"] = exact(screen.main_buffer)

    cursor = screen.cursor
    alt = screen.alt_cursor
    return {
        "version": VERSION,
        "columns": columns,
        "lines": screen.lines,
        "history_limit": screen.history.maxlen or 0,
        "screen": rows(screen.buffer),
        "main_screen": rows(screen.main_buffer) if screen.main_buffer is not None else None,
        "history": [intern.row(r) for r in screen.history],
        "cursor": [cursor.x, cursor.y, intern(cursor.attrs[1:]), cursor.hidden],
        "alt_cursor": [alt.x, alt.y, intern(alt.attrs[1:])] if alt is not None else None,
        "savepoints": [
            [s.cursor.x, s.cursor.y, intern(s.cursor.attrs[1:]), s.cursor.hidden, s.origin, s.wrap]
            for s in screen.savepoints
        ],
        "title": screen.title,
        "icon_name": screen.icon_name,
        "modes": sorted(screen.mode),
        "margins": list(screen.margins) if screen.margins is not None else None,
        "tabstops": sorted(screen.tabstops),
        "exact_rows": {k: v for k, v in exact_rows.items() if v},
        "dropping": term.dropping,
        "attrs": intern.table,
    }


def restore(cls: type[Terminal], snap: dict[str, Any]) -> Terminal:
    if snap.get("version") != VERSION:
        raise ValueError(f"unsupported terminal snapshot version {snap.get('version')!r}")
    term = cls(snap["columns"], snap["lines"], snap["history_limit"])
    screen = term.screen
    table: list[Attrs] = [tuple(a) for a in snap["attrs"]]
    columns = screen.columns

    def crow(row: list[Any]) -> CompactRow:
        cells, runs = row
        return (cells if isinstance(cells, str) else tuple(cells), tuple((table[i], n) for i, n in runs))

    def fill(buffer: Any, rows: list[list[Any]], exact: list[list[Any]]) -> None:
        buffer.clear()
        for y, row in enumerate(rows):
            if row[1]:
                buffer[y] = compact_to_row(crow(row), screen.default_char, columns)
        for y, default, cells in exact:
            line: StaticDefaultDict[int, Char] = StaticDefaultDict(Char(" ", *table[default]))
            line.update((x, Char(data, *table[a])) for x, data, a in cells)
            buffer[y] = line

    screen.mode = set(snap["modes"])  # Before the rows: it decides the screen's default cell.
    exact_rows = snap.get("exact_rows", {})
    fill(screen.buffer, snap["screen"], exact_rows.get("screen", []))
    if snap["main_screen"] is not None:
        screen.main_buffer = screen.new_buffer()
        fill(screen.main_buffer, snap["main_screen"], exact_rows.get("main_screen", []))
    screen.history.extend(crow(r) for r in snap["history"])
    x, y, a, hidden = snap["cursor"]
    screen.cursor = Cursor(x, y, Char(" ", *table[a]))
    screen.cursor.hidden = hidden
    if snap["alt_cursor"] is not None:
        ax, ay, aa = snap["alt_cursor"]
        screen.alt_cursor = Cursor(ax, ay, Char(" ", *table[aa]))
    for sx, sy, sa, shidden, origin, wrap in snap["savepoints"]:
        saved = Cursor(sx, sy, Char(" ", *table[sa]))
        saved.hidden = shidden
        screen.savepoints.append(Savepoint(copy.copy(saved), screen.g0_charset, screen.g1_charset, 0, origin, wrap))
    screen.title = snap["title"]
    screen.icon_name = snap["icon_name"]
    screen.margins = Margins(*snap["margins"]) if snap["margins"] is not None else None
    screen.tabstops = set(snap["tabstops"])
    term.dropping = bool(snap.get("dropping", False))
    screen.dirty.update(range(screen.lines))
    return term
