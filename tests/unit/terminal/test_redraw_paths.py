"""Differential tests aimed at the redraw fast paths (see backend/terminal/fastpath.py):

* ED and EL by copying cached blank rows (rows of any shape: written in 0..k-1, with gaps, with
  the extra cell pyte's EL 1 writes while a wrap is pending, created under DECSCNM);
* whole CR LF-ended lines drawn in one pass down to the bottom margin;
* CUP and EL inlined in the parser loop (origin mode and scroll regions included);
* runs of text kept as ready cells and shared by every terminal (same text at other columns and
  with other attributes, on screens of other widths).

Each compares the core with stock pyte cell for cell (and which cells are written), and with
itself under any chunking.  CI runs a fixed set of seeds; more by hand:
    RUSTAINER_FUZZ_SEEDS=5000 .venv/bin/pytest tests/unit/terminal/test_redraw_paths.py
"""

from __future__ import annotations

import random

import pyte
import pytest

from rustainer.backend.terminal import Terminal, fastpath, rowcache

from .streams import (
    SEEDS,
    displayable,
    pyte_or_none,
    pyte_screen,
    redraw_stream,
    same_under_chunking,
    screen_diff,
    state,
)

SIZES = [(20, 6), (40, 10), (80, 24), (7, 3), (12, 2)]


def _case(seed: int) -> tuple[bytes, int, int]:
    rng = random.Random(seed + 1_000_003)
    columns, lines = rng.choice(SIZES)
    return redraw_stream(rng, columns, lines), columns, lines


@pytest.mark.parametrize("block", range(4))
def test_redraw_paths_equal_stock_pyte(block: int) -> None:
    compared = 0
    for seed in range(block, SEEDS, 4):
        data, columns, lines = _case(seed)
        ref = pyte_or_none(data, columns, lines)
        if ref is None or not displayable(ref):
            continue
        term = Terminal(columns, lines)
        term.feed(data)
        diff = screen_diff(term, ref)
        assert diff is None, f"seed {seed}: {diff}"
        compared += 1
    assert compared >= SEEDS // 8


@pytest.mark.parametrize("block", range(2))
def test_redraw_paths_under_any_chunking(block: int) -> None:
    for seed in range(block, SEEDS, 2):
        data, columns, lines = _case(seed)
        assert same_under_chunking(data, columns, lines, random.Random(seed * 11 + 3), [1, 3, 29, 500]), f"seed {seed}"


def test_the_redraw_stream_exercises_the_fast_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guard against tests that silently only reach the general paths."""
    calls = {"blank row": 0, "lines": 0, "kept run": 0}
    fresh, draw_line = fastpath.fresh_row, fastpath.draw_line

    def counting_fresh(default: pyte.screens.Char) -> object:
        calls["blank row"] += 1
        return fresh(default)

    def counting_draw(row: object, key: object, cells: object) -> None:
        before = len(rowcache.LINE_CELLS)
        draw_line(row, key, cells)  # type: ignore[arg-type]
        calls["kept run"] += len(rowcache.LINE_CELLS) > before

    text_lines = fastpath.Parser._text_lines

    def counting_lines(parser: fastpath.Parser, text: str, pos: int) -> int:
        y = parser.screen.cursor.y
        end = text_lines(parser, text, pos)
        calls["lines"] += parser.screen.cursor.y - y > 1
        return end

    monkeypatch.setattr(fastpath, "fresh_row", counting_fresh)
    monkeypatch.setattr(fastpath, "draw_line", counting_draw)
    monkeypatch.setattr(fastpath.Parser, "_text_lines", counting_lines)
    rowcache.LINE_CELLS.clear()
    for seed in range(8):
        data, columns, lines = _case(seed)
        Terminal(columns, lines).feed(data)
    assert calls["blank row"] > 20 and calls["lines"] > 20 and calls["kept run"] > 5, calls
    assert rowcache.LINE_CELLS, "repeated runs are drawn from kept cells"


def _written(screen: pyte.Screen) -> list[tuple[int, ...]]:
    return [tuple(sorted(screen.buffer[y])) for y in range(screen.lines)]


@pytest.mark.parametrize("erase", [b"\x1b[1K\x1b[J", b"\x1b[1K\x1b[H\x1b[J", b"\x1b[1K\r\x1b[K", b"\x1b[1K\x1b[2K",
                                   b"\x1b[1K\x1b[41m\x1b[2J", b"\x1b[1K\x1b[44m\x1b[1J"])
def test_erasing_a_row_pyte_wrote_past_its_end(erase: bytes) -> None:
    """EL 1 while a wrap is pending writes column ``columns`` in pyte: a row with as many written
    cells as columns is then not every column, and erasing must keep that cell as pyte does."""
    data = b"\x1b[2;3Habc\r\n\x1b[5C" + b"z" * 5 + b"\x1b[2;1H" + b"y" * 10 + b"\x1b[1;1H" + b"0123456789" + erase
    ref = pyte_screen(data, 10, 4)
    term = Terminal(10, 4)
    term.feed(data)
    assert screen_diff(term, ref) is None
    assert _written(term.screen) == _written(ref)


@pytest.mark.parametrize("erase", [b"\x1b[H\x1b[J", b"\x1b[2J", b"\x1b[6;1H\x1b[1J", b"\x1b[2;1H\x1b[K\x1b[2K"])
def test_erasing_rows_of_every_shape(erase: bytes) -> None:
    """Rows written in 0..k-1, with gaps, full with a gap and pyte's extra cell at ``columns``
    (ICH moves the last cell there), and rows created under DECSCNM (their blank cells stay
    reverse after it is reset)."""
    data = (b"\x1b[?5h\x1b[2;1Habc\x1b[3;4Hab\x1b[?5l\x1b[3;9Hc\x1b[4;1H" + b"q" * 12 + b"\x1b[4;6H\x1b[@"
            b"\x1b[5;1H" + b"r" * 12 + b"\x1b[5;3H\x1b[3@\x1b[6;2Hx\x1b[31m" + erase)
    for columns in (12, 20):
        ref = pyte_screen(data, columns, 7)
        term = Terminal(columns, 7)
        term.feed(data)
        assert screen_diff(term, ref) is None, columns


def test_kept_runs_depend_on_column_attributes_and_width() -> None:
    """The run cache is shared by every terminal: the same text drawn elsewhere, in other colours
    and on narrower screens (where it wraps) must still come out as pyte draws it."""
    rowcache.LINE_CELLS.clear()
    run = b"shared run of text"
    for columns, prefix in [(80, b""), (80, b"\x1b[1;31m"), (80, b"\x1b[3;7H"), (20, b""), (12, b"\x1b[7m"),
                            (80, b""), (80, b"\x1b[3;7H\x1b[1;31m"), (20, b"\x1b[2;3H")]:
        data = b"\x1b[H\x1b[J" + (prefix + run + b"\r\n") * 3 + prefix + run
        for _ in range(2):  # The second time round the runs come from the cache.
            ref = pyte_screen(data * 2, columns, 6)
            term = Terminal(columns, 6)
            term.feed(data * 2)
            assert screen_diff(term, ref) is None, (columns, prefix)


@pytest.mark.parametrize("erase", [0, 1, 2])
def test_erased_rows_keep_their_own_default(erase: int) -> None:
    """A row keeps the blank cell it was made with (pyte erases in place): main-screen rows made
    before DECSCNM was set on the alternate screen stay non-reverse after an erase.  Stock pyte has
    no alternate screen, so the reference is pyte's own ``erase_in_display`` on the same screen."""
    data = b"\x1b[2;1Habc\x1b[3;1H" + b"d" * 12 + b"\x1b[?1049h\x1b[?5h\x1b[?1049l\x1b[2;2H"
    fast, ref = Terminal(12, 5), Terminal(12, 5)
    fast.feed(data)
    ref.feed(data)
    fast.feed(b"\x1b[%dJ" % erase)
    pyte.Screen.erase_in_display(ref.screen, erase)
    assert state(fast) == state(ref)
    assert [fast.screen.buffer[y].default for y in range(5)] == [ref.screen.buffer[y].default for y in range(5)]


@pytest.mark.parametrize("edit", [b"\x1b[M", b"\x1b[2M", b"\x1b[L", b"\x1b[3L"])
def test_rows_left_blank_by_bulk_scrolling_exist_like_in_pyte(edit: bytes) -> None:
    """pyte's index creates every row above the bottom one, and DL/IL move a row only if the one
    it comes from exists: rows the bulk path scrolled in blank must exist too (found by the redraw
    fuzzer, seed 2180 of a long run)."""
    data = b"a\r\nb\r\n\r\n\r\n\r\n\r\n\x1b[2;1H\x1b[7m\x1b[2K" + edit + b"\x1b[3;1H\x1b[2K" + edit
    ref = pyte_screen(data, 10, 4)
    term = Terminal(10, 4)
    term.feed(data)
    assert screen_diff(term, ref) is None
