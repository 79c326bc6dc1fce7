"""Cells, attributes and the compact row form used for scrollback and snapshots.

On screen, rows stay pyte's ``{column: Char}`` dictionaries so that every stock pyte method keeps
working unchanged (that is what makes the slow path exact by construction).  Rows that leave the
screen are stored compactly: the cell strings plus run-length encoded attributes, which is two
small objects per line instead of one tuple per cell.
"""

from __future__ import annotations

from itertools import groupby
from operator import itemgetter

from pyte.screens import Char, StaticDefaultDict

#: Everything about a cell but its text: (fg, bg, bold, italics, underscore, strikethrough, reverse,
#: blink), i.e. ``Char[1:]``.
Attrs = tuple[str, str, bool, bool, bool, bool, bool, bool]

#: A row that is not on screen: its cells (a ``str`` when every cell is one code point, else a tuple
#: of cell strings, "" marking the stub after a wide character) and ``(attrs, count)`` runs covering
#: exactly those cells.  Cells past the end are blank with default attributes.
CompactRow = tuple["str | tuple[str, ...]", tuple[tuple[Attrs, int], ...]]

DEFAULT_CHAR = Char(" ")
DEFAULT_ATTRS: Attrs = DEFAULT_CHAR[1:]
BLANK_ROW: CompactRow = ("", ())

_attrs_of = itemgetter(slice(1, None))
_data_of = itemgetter(0)

Row = StaticDefaultDict  # pyte's row type: {column: Char} with a default for missing columns.


def row_to_compact(row: dict[int, Char], columns: int, trim: bool = True) -> CompactRow:
    """Scrollback rows are trimmed: trailing default blanks carry no information there.  Screen rows
    (``trim=False``) keep every written cell, because pyte's erase functions only touch those."""
    if not row:
        return BLANK_ROW
    top = max(row) + 1
    if top > columns:
        top = max((k for k in row if k < columns), default=-1) + 1
    get = row.get
    default = getattr(row, "default", DEFAULT_CHAR)
    cells = [get(x, default) for x in range(top)] if top != len(row) else [row[x] for x in range(top)]
    end = top
    if trim:
        while end and cells[end - 1] == DEFAULT_CHAR:
            end -= 1
    if end == 0:
        return BLANK_ROW
    del cells[end:]
    datas = list(map(_data_of, cells))
    joined = "".join(datas)
    text: str | tuple[str, ...] = joined
    if len(joined) != end or (not joined.isascii() and any(len(d) != 1 for d in datas)):
        text = tuple(datas)
    attrs_list = list(map(_attrs_of, cells))  # Grouping a list is about twice as fast as a map.
    runs = tuple((attrs, len(list(group))) for attrs, group in groupby(attrs_list))
    return (text, runs)


def compact_cells(crow: CompactRow) -> list[Char]:
    """Expand a compact row into its written cells (without the blank tail)."""
    text, runs = crow
    out: list[Char] = []
    x = 0
    for attrs, count in runs:
        for i in range(x, x + count):
            out.append(Char(text[i], *attrs))
        x += count
    return out


def compact_to_row(
    crow: CompactRow, default: Char, columns: int, chars: CharCaches | None = None
) -> StaticDefaultDict[int, Char]:
    row: StaticDefaultDict[int, Char] = StaticDefaultDict(default)
    text, runs = crow
    x = 0
    for attrs, count in runs:
        end = min(x + count, columns)
        if end > x:
            if chars is not None:
                get = chars[Char(" ", *attrs)].__getitem__
            else:
                def get(data: str, attrs: Attrs = attrs) -> Char:
                    return Char(data, *attrs)
            row.update(zip(range(x, end), map(get, text[x:end]), strict=True))
        x += count
    return row


def compact_text(crow: CompactRow, columns: int) -> str:
    """The row as pyte's ``display`` would render it (stubs of wide characters skipped)."""
    text = crow[0]
    if isinstance(text, str):
        return text[:columns].ljust(columns)
    return "".join(text[:columns]) + " " * max(0, columns - len(text))


def normalise(crow: CompactRow) -> CompactRow:
    """Canonical form for comparisons: trailing default blanks dropped, runs merged."""
    cells = compact_cells(crow)
    row = {x: c for x, c in enumerate(cells)}
    return row_to_compact(row, len(cells))


class CharCache(dict[str, Char]):
    """Per-attribute cache of cell tuples: drawing a run then costs one dict lookup per character."""

    __slots__ = ("attrs",)

    def __init__(self, attrs: Char) -> None:
        super().__init__()
        self.attrs = attrs

    def __missing__(self, key: str) -> Char:
        value: Char = self.attrs._replace(data=key)
        self[key] = value
        return value


class CharCaches(dict[Char, CharCache]):
    __slots__ = ()

    def __missing__(self, key: Char) -> CharCache:
        if len(self) > 512:
            self.clear()
        value = CharCache(key)
        self[key] = value
        return value
