"""Reading the screen in the middle of a flood (what the dashboard's pane does every frame).

``Terminal.compact_line``/``compact_lines`` read the rows the bulk path keeps aside without writing
them back into pyte's buffer.  Such a read must return exactly the cells stock pyte has at that
point, and must change nothing: a terminal read between arbitrary chunks ends in the same state
(every cell, which cells are written, cursor, scrollback) as one fed the same chunks and never read.
"""

from __future__ import annotations

import random

import pytest

from rustainer.backend.terminal import Terminal
from rustainer.backend.terminal.cells import row_to_compact

from .streams import (
    SEEDS,
    displayable,
    feed_chunked,
    flood_stream,
    fuzz_stream,
    pyte_or_none,
    pyte_screen,
    redraw_stream,
    screen_diff,
    state,
)

SIZES = [(20, 6), (40, 10), (80, 24), (7, 3), (12, 2), (30, 1)]
def _case(seed: int) -> tuple[bytes, int, int]:
    rng = random.Random(seed + 7_000_001)
    columns, lines = rng.choice(SIZES)
    kind = seed % 4
    if kind == 0:
        data = flood_stream(rng, columns)
    elif kind == 1:
        data = flood_stream(rng, columns, 150) + fuzz_stream(rng, 60) + flood_stream(rng, columns, 150)
    elif kind == 2:
        data = fuzz_stream(rng, 120)
    else:
        data = flood_stream(rng, columns, 100) + redraw_stream(rng, columns, lines, 80) + flood_stream(rng, columns, 100)
    return data, columns, lines


def _chunks(data: bytes, rng: random.Random) -> list[bytes]:
    out = []
    i = 0
    top = rng.choice([1, 5, 40, 400, 5000])
    while i < len(data):
        n = rng.randint(1, top)
        out.append(data[i : i + n])
        i += n
    return out


def _read(term: Terminal, rng: random.Random) -> list[object]:
    """Lines read the ways a front end reads them: all at once, or some lines in any order
    (the same line twice included)."""
    lines = term.lines
    if rng.random() < 0.5:
        return list(term.compact_lines())
    got: dict[int, object] = {}
    for y in rng.sample(range(lines), rng.randint(1, lines)) + [rng.randrange(lines)]:
        got[y] = term.compact_line(y)
    return [got.get(y) for y in range(lines)]


def _rows(term: Terminal) -> dict[int, tuple[list[int], object]]:
    """Which rows exist in pyte's buffer, which of their cells are written and their default cell
    (read without creating rows): pyte's erase, insert and delete functions can tell them apart."""
    return {y: (sorted(row), row.default) for y, row in term.screen.buffer.items()}


@pytest.mark.parametrize("block", range(4))
def test_reading_mid_feed_returns_pyte_cells_and_changes_nothing(block: int) -> None:
    """Three terminals fed the same chunks: ``reader`` read through the new path between chunks,
    ``synced`` read the old way (its kept rows written back into pyte's buffer before each read),
    ``unread`` never read.  Every read equals the synced buffer's row and, at a few points, stock
    pyte fed everything so far in one go (chunked pyte is not the reference: it drops or keeps
    text after a bad character depending on where a chunk ends, the core does not)."""
    read_while_kept = pyte_compared = 0
    for seed in range(block, SEEDS, 4):
        data, columns, lines = _case(seed)
        rng = random.Random(seed * 31 + 5)
        reader, synced, unread = Terminal(columns, lines), Terminal(columns, lines), Terminal(columns, lines)
        chunks = _chunks(data, rng)
        check_pyte = set(rng.sample(range(len(chunks)), min(2, len(chunks))))
        p_read = min(0.6, 150 / len(chunks))  # About 150 reads a case, however small the chunks.
        fed = 0
        for i, chunk in enumerate(chunks):
            fed += len(chunk)
            for term in (reader, synced, unread):
                term.feed(chunk)
            if rng.random() >= p_read and i not in check_pyte:
                continue
            kept = reader.rows_kept_aside
            got = _read(reader, rng)
            # A read writes nothing back: the rows kept aside stay aside.
            assert (reader.rows_kept_aside) == kept, f"seed {seed}"
            read_while_kept += kept
            buffer = synced.screen.buffer
            for y, crow in enumerate(got):
                if crow is not None:
                    want = row_to_compact(buffer.get(y) or {}, columns)
                    assert crow == want, f"seed {seed}, line {y}: {crow} != {want}"
            assert reader.cursor == synced.cursor == unread.cursor, f"seed {seed}"
            if i in check_pyte:
                ref = pyte_or_none(data[:fed], columns, lines)
                if ref is None:
                    continue
                pyte_compared += 1
                assert reader.cursor == (ref.cursor.x, ref.cursor.y), f"seed {seed}"
                for y, crow in enumerate(reader.compact_lines()):
                    want = row_to_compact(ref.buffer.get(y) or {}, columns)
                    assert crow == want, f"seed {seed}, line {y} (pyte): {crow} != {want}"
        assert _rows(reader) == _rows(unread), f"seed {seed}"
        assert state(reader) == state(unread) == state(synced), f"seed {seed}"
        ref = pyte_or_none(data, columns, lines)
        if ref is not None and displayable(ref):
            assert screen_diff(reader, ref) is None, f"seed {seed}: {screen_diff(reader, ref)}"
    assert read_while_kept >= SEEDS // 8, "the reads reached the rows kept aside"
    assert pyte_compared >= SEEDS // 8


def test_reads_in_a_flood_leave_the_bulk_path_alone() -> None:
    """A 120x40 flood read every 64 KiB (a pane's frames): the reads never bring the kept rows in,
    and every line read equals stock pyte's."""
    data = b"".join(b"%d\r\n" % i for i in range(1, 60000))
    data += b"".join(b"-rw-r--r-- 1 root \x1b[01;34m%d\x1b[0m\r\n" % i for i in range(20000))
    term = Terminal(120, 40)
    feeds = 0
    for i in range(0, len(data), 65536):
        chunk = data[i : i + 65536]
        term.feed(chunk)
        feeds += 1
        assert term.rows_kept_aside
        lines = term.compact_lines()
        assert term.rows_kept_aside
        ref = pyte_screen(data[max(0, i - 4000) : i + len(chunk)], 120, 40)
        assert lines == [row_to_compact(ref.buffer.get(y) or {}, 120) for y in range(40)]
    assert feeds > 5


def test_compact_line_after_sync_is_unchanged() -> None:
    """Where nothing is kept aside the read is the buffer's own row, as before."""
    rng = random.Random(3)
    data = fuzz_stream(rng, 300)
    term = Terminal(40, 10)
    feed_chunked(term, data, rng, 50)
    term.screen  # noqa: B018 - brings the kept rows in
    assert not term.rows_kept_aside
    assert term.compact_lines() == [row_to_compact(term.screen.buffer.get(y) or {}, 40) for y in range(10)]
