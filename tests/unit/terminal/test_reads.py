"""Reading the screen in the middle of a flood (what the dashboard's pane does every frame).

``Terminal.compact_line``/``compact_lines`` read the rows the bulk path keeps aside without writing
them back into pyte's buffer.  Such a read must return exactly the cells stock pyte has at that
point, and must change nothing: a terminal read between arbitrary chunks ends in the same state
(every cell, which cells are written, cursor, scrollback) as one fed the same chunks and never read.
"""

from __future__ import annotations

import os
import random

import pyte
import pytest

from rustainer.backend.terminal import Terminal
from rustainer.backend.terminal.cells import row_to_compact

from .streams import feed_chunked, fuzz_stream, pyte_screen, screen_diff, state
from .test_redraw_paths import redraw_stream

SEEDS = int(os.environ.get("RUSTAINER_FUZZ_SEEDS", "100"))
SIZES = [(20, 6), (40, 10), (80, 24), (7, 3), (12, 2), (30, 1)]
_COLOURS = [b"\x1b[0m", b"\x1b[1;34m", b"\x1b[01;32m", b"\x1b[38;5;208m", b"\x1b[7m", b"\x1b[m", b"\x1b[44m"]


def flood_stream(rng: random.Random, columns: int, length: int = 300) -> bytes:
    """``seq`` and coloured ``ls -lR`` alike: CR LF-ended lines, some with SGR runs, some longer
    than the screen is wide (they wrap), some blank, a few partial lines and stray controls."""
    out: list[bytes] = []
    n = rng.randint(1, 10**6)
    for _ in range(length):
        r = rng.random()
        if r < 0.35:
            out.append(b"%d\r\n" % n)
            n += 1
        elif r < 0.65:
            name = "".join(rng.choice("abcdefghij-_.") for _ in range(rng.randint(0, columns + 5)))
            out.append(b"-rw-r--r-- 1 root %s%s\x1b[0m\r\n" % (rng.choice(_COLOURS), name.encode()))
        elif r < 0.72:
            out.append(b"\r\n")
        elif r < 0.78:
            out.append(b"x" * rng.randint(columns - 1, 2 * columns + 1) + b"\r\n")  # Wraps.
        elif r < 0.84:
            out.append(rng.choice(_COLOURS) + b"partial ")  # Text left on the bottom row.
        elif r < 0.88:
            out.append(rng.choice([b"\n", b"\r", b"\x08", b"\t", b"\x1b[K", b"\x1b[2K", b"\x1b[J", b"\x1bM"]))
        elif r < 0.92:
            out.append(rng.choice([b"\x1b[M", b"\x1b[L", b"\x1b[2M", b"\x1b[3L", b"\x1b[1J", b"\x1b[2J"]))
        elif r < 0.95:
            out.append(f"\x1b[{rng.randint(1, 30)};{rng.randint(1, 90)}H".encode())
        else:
            out.append("wide 中文 e\u0301\r\n".encode())
    return b"".join(out)


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


def _pyte_or_none(data: bytes, columns: int, lines: int) -> pyte.Screen | None:
    try:
        return pyte_screen(data, columns, lines)
    except Exception:  # noqa: BLE001 - stock pyte raises on some inputs
        return None


def _displayable(screen: pyte.Screen) -> bool:
    try:
        screen.display  # noqa: B018 - raises IndexError on some screens (a "" cell not after a wide one)
    except Exception:  # noqa: BLE001
        return False
    return True


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
            kept = reader._parser._lazy is not None
            got = _read(reader, rng)
            # A read writes nothing back: the rows kept aside stay aside.
            assert (reader._parser._lazy is not None) == kept, f"seed {seed}"
            read_while_kept += kept
            buffer = synced.screen.buffer
            for y, crow in enumerate(got):
                if crow is not None:
                    want = row_to_compact(buffer.get(y) or {}, columns)
                    assert crow == want, f"seed {seed}, line {y}: {crow} != {want}"
            assert reader.cursor == synced.cursor == unread.cursor, f"seed {seed}"
            if i in check_pyte:
                ref = _pyte_or_none(data[:fed], columns, lines)
                if ref is None:
                    continue
                pyte_compared += 1
                assert reader.cursor == (ref.cursor.x, ref.cursor.y), f"seed {seed}"
                for y, crow in enumerate(reader.compact_lines()):
                    want = row_to_compact(ref.buffer.get(y) or {}, columns)
                    assert crow == want, f"seed {seed}, line {y} (pyte): {crow} != {want}"
        assert _rows(reader) == _rows(unread), f"seed {seed}"
        assert state(reader) == state(unread) == state(synced), f"seed {seed}"
        ref = _pyte_or_none(data, columns, lines)
        if ref is not None and _displayable(ref):
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
        assert term._parser._lazy is not None
        lines = term.compact_lines()
        assert term._parser._lazy is not None
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
    assert term._parser._lazy is None
    assert term.compact_lines() == [row_to_compact(term.screen.buffer.get(y) or {}, 40) for y in range(10)]
