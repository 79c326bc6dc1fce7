"""Ready-made cells the redraw paths copy instead of writing cell by cell.

Shared by every screen (a few hundred KB at most in all); the tables here are only ever copied
from, never handed out for mutation:

* blank rows and blank runs of one attribute (erasing part of a row is one ``dict.update``);
* runs of text a program draws again and again (same text, column and attributes), kept as cells
  the second time they are seen, so that drawing one is a single copy.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyte.screens import Char, StaticDefaultDict

_new_dict = dict.__new__


def fresh_row(default: Char) -> StaticDefaultDict[int, Char]:
    """An empty pyte row (``StaticDefaultDict(default)`` without the Python-level ``__init__``)."""
    row: StaticDefaultDict[int, Char] = _new_dict(StaticDefaultDict)
    row.default = default
    return row


class Blanks(dict[int, dict[int, Char]]):
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


_blank_rows: dict[Char, Blanks] = {}
_blank_tails: dict[tuple[Char, int, int], dict[int, Char]] = {}


def blanks_for(attrs: Char) -> Blanks:
    """The blank rows of ``attrs`` (cached for the last few attributes)."""
    blanks = _blank_rows.get(attrs)
    if blanks is None:
        if len(_blank_rows) >= 8:
            _blank_rows.clear()
        blanks = _blank_rows[attrs] = Blanks(attrs)
    return blanks


def blank(attrs: Char, start: int, stop: int) -> dict[int, Char]:
    """``{x: attrs}`` for ``start <= x < stop`` (cached): erasing part of a row is one ``update``."""
    if start == 0:
        return blanks_for(attrs)[stop]
    key = (attrs, start, stop)
    run = _blank_tails.get(key)
    if run is None:
        if len(_blank_tails) >= 256:
            _blank_tails.clear()
        run = _blank_tails[key] = dict.fromkeys(range(start, stop), attrs)
    return run


# Runs of text as cells, for the runs a redraw repeats (a full-screen program redraws mostly the
# same lines; busybox top, e.g., all of them every second).  Keyed by (text, column, attributes); a
# run is kept the second time it is seen (of the last 4096 different ones), the oldest kept run
# making room.
LINE_CELLS_MAX = 256
#: The kept runs: ``LINE_CELLS[(text, column, attrs)]`` is ``{x: Char}`` ready to copy into a row.
LINE_CELLS: dict[tuple[str, int, Char], dict[int, Char]] = {}
_line_seen: set[int] = set()


def draw_line(row: dict[int, Char], key: tuple[str, int, Char], cells: Iterable[tuple[int, Char]]) -> None:
    """Draw a run that is not in :data:`LINE_CELLS` (``cells`` are its cells), keeping it there if it
    was seen before."""
    digest = hash(key)
    if digest not in _line_seen:
        if len(_line_seen) >= 4096:
            _line_seen.clear()
        _line_seen.add(digest)
        row.update(cells)
        return
    if len(LINE_CELLS) >= LINE_CELLS_MAX:
        try:
            del LINE_CELLS[next(iter(LINE_CELLS))]
        except (KeyError, RuntimeError, StopIteration):  # Another thread got there first.
            pass
    kept = LINE_CELLS[key] = dict(cells)
    row.update(kept)
