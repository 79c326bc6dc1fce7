"""A restored terminal must behave like the original from then on, not only look like it.

pyte's buffer holds more than the cells it shows: whether a blank row exists or is missing (IL
moves an existing blank row down but leaves the row below a missing one as it was), which cells of
a row are written (ED, EL and DCH treat written and unwritten cells differently), the cell pyte's
EL 1 writes one past the last column while a wrap is pending (DCH brings it back on screen), and
each row's own default cell (rows created under DECSCNM).  Each case feeds a stream, takes a
snapshot (through JSON, as the supervisor sends it), restores it into a new Terminal, feeds the
same continuation (DL, IL, ED, EL, ICH, DCH, ECH, DECSCNM, scroll regions, text) to both and
compares everything, which cells are written included.  CI runs a fixed set of seeds; more by hand:
    RUSTAINER_FUZZ_SEEDS=5000 .venv/bin/pytest tests/unit/terminal/test_snapshot_fidelity.py
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from rustainer.backend.terminal import Terminal

from .streams import SEEDS, feed_chunked, flood_stream, fuzz_stream, redraw_stream, state

SIZES = [(20, 6), (40, 10), (80, 24), (7, 3), (12, 2)]
EXTRA = [b"", b"", b"\x1b[?1049h\x1b[3;3Halt\x1b[2;5r\x1b[4L", b"\x1b[?1047h\x1b[?5hx\x1b[?5l", b"\x1b[?5h",
         b"\x1b[?1049h\x1b[?5h\x1b[2Jz\x1b[?1049l", b"\x1b[5;1H" + b"w" * 90 + b"\x1b[1K"]


def continuation(rng: random.Random, columns: int, lines: int, length: int = 60) -> bytes:
    """What sees the buffer's hidden state: line and character insertion and deletion, erases in
    colour, reverse-video screen mode, scroll regions, cursor moves between them, some text."""
    out: list[str] = []
    for _ in range(length):
        r = rng.random()
        if r < 0.25:
            out.append(f"\x1b[{rng.randint(1, lines + 1)};{rng.randint(1, columns + 2)}H")
        elif r < 0.45:
            out.append(f"\x1b[{rng.choice(['', '1', '2', str(lines)])}{rng.choice('LM')}")
        elif r < 0.55:
            out.append(f"\x1b[{rng.choice(['', '0', '1', '2'])}{rng.choice('JK')}")
        elif r < 0.65:
            out.append(f"\x1b[{rng.choice(['', '1', '3', str(columns)])}{rng.choice('@PX')}")
        elif r < 0.72:
            out.append(rng.choice(["\x1b[41m", "\x1b[0m", "\x1b[7;32m", "\x1b[m"]))
        elif r < 0.77:
            out.append(rng.choice(["\x1b[?5h", "\x1b[?5l"]))
        elif r < 0.82:
            top = rng.randint(1, lines)
            out.append(rng.choice([f"\x1b[{top};{rng.randint(top, lines)}r", "\x1b[r"]))
        elif r < 0.88:
            out.append(rng.choice(["\n", "\r", "\x1bM", "\x1bD", "\x1b8", "\x1b7", "\x08", "\t"]))
        elif r < 0.95:
            out.append("".join(rng.choice("pq r") for _ in range(rng.randint(1, columns + 3))))
        else:
            out.append(rng.choice(["\x1b[?1049h", "\x1b[?1049l", "\x1b[?47h", "\x1b[?47l", "\r\n" * 3]))
    return "".join(out).encode()


def _case(seed: int) -> tuple[bytes, bytes, int, int]:
    rng = random.Random(seed + 5_000_011)
    columns, lines = rng.choice(SIZES)
    kind = seed % 3
    if kind == 0:
        prefix = fuzz_stream(rng, 120)
    elif kind == 1:
        prefix = redraw_stream(rng, columns, lines, 100)
    else:
        prefix = flood_stream(rng, columns, 150)
    return prefix + rng.choice(EXTRA), continuation(rng, columns, lines), columns, lines


def _buffer(buffer: Any, lines: int) -> dict[int, tuple[Any, ...]]:
    """Every row of the screen that exists, with its default cell and its written cells (read
    without creating rows or cells).  pyte sometimes leaves a row below the last line in a buffer,
    where nothing reads it (a snapshot does not keep it)."""
    return {y: (row.default, sorted(row.items())) for y, row in buffer.items() if y < lines}


def full_state(term: Terminal) -> tuple[object, ...]:
    screen = term.screen
    main = screen.main_buffer
    saves = [(s.cursor.x, s.cursor.y, s.cursor.attrs, s.cursor.hidden, s.origin, s.wrap) for s in screen.savepoints]
    alt = screen.alt_cursor
    lines = screen.lines
    return (_buffer(screen.buffer, lines), _buffer(main, lines) if main is not None else None, saves,
            (alt.x, alt.y, alt.attrs) if alt is not None else None, sorted(screen.tabstops))


def _restored(term: Terminal) -> Terminal:
    return Terminal.restore(json.loads(json.dumps(term.snapshot())))


@pytest.mark.parametrize("block", range(4))
def test_restored_terminal_behaves_like_the_original(block: int) -> None:
    for seed in range(block, SEEDS, 4):
        prefix, more, columns, lines = _case(seed)
        rng = random.Random(seed * 7 + 1)
        original = Terminal(columns, lines)
        feed_chunked(original, prefix, rng, rng.choice([7, 500, 100000]))
        copy = _restored(original)
        feed_chunked(original, more, rng, 50)
        copy.feed(more)
        assert full_state(copy) == full_state(original), f"seed {seed}"  # Before state() creates rows.
        assert state(copy) == state(original), f"seed {seed}"


@pytest.mark.parametrize("block", range(2))
def test_restore_keeps_the_buffer_exactly(block: int) -> None:
    """Right after restoring: the same rows, written cells and row defaults."""
    for seed in range(block, SEEDS, 2):
        prefix, _, columns, lines = _case(seed)
        original = Terminal(columns, lines)
        original.feed(prefix)
        copy = _restored(original)
        assert full_state(copy) == full_state(original), f"seed {seed}"
        assert state(copy) == state(original), f"seed {seed}"


@pytest.mark.parametrize("data", [
    b"\x1b[5;1H\n\n\x1b[2;1Hx\x1b[2;1H",  # Scrolling created the blank rows (they exist).
    b"\x1b[?5h\x1b[5;1H\n\x1b[?5l\x1b[2;1Hx\x1b[2;1H",  # ... under DECSCNM, then reset.
    b"\x1b[?1049h\x1b[5;1H\n\n\x1b[2;1Hx\x1b[2;1H",  # ... on the alternate screen.
    b"\x1b[4;1Hrow\x1b[3;1H",  # Missing rows stay missing.
])
def test_delete_line_after_restore(data: bytes) -> None:
    """pyte's DL pulls up an existing row, blank or not, but leaves a row whose lower neighbour
    is missing as it was: a restored screen must keep which blank rows exist."""
    original = Terminal(12, 5)
    original.feed(data)
    copy = _restored(original)
    assert full_state(copy) == full_state(original)
    for term in (original, copy):
        term.feed(b"\x1b[M\x1b[2L\x1b[M\x1b[?5h\x1b[?5l\x1b[?1049l\x1b[M")
    assert full_state(copy) == full_state(original)
    assert copy.display == original.display


def test_text_dropped_after_a_refused_character_stays_dropped() -> None:
    """pyte drops the rest of a text run after a character it refuses to draw; the core carries
    that across feeds, and so must a snapshot taken between them."""
    original = Terminal(20, 3)
    original.feed(b"ab\x01cd")
    copy = _restored(original)
    for term in (original, copy):
        term.feed(b"ef\r\nnext")
    assert copy.display == original.display == ["ab" + " " * 18, "next" + " " * 16, " " * 20]


def test_snapshots_without_the_later_keys_still_restore() -> None:
    """Snapshots from a supervisor that predates ``exact_rows`` and ``dropping``: the same cells."""
    for seed in range(12):
        prefix, _, columns, lines = _case(seed)
        original = Terminal(columns, lines)
        original.feed(prefix)
        snap = json.loads(json.dumps(original.snapshot()))
        del snap["exact_rows"], snap["dropping"]
        assert Terminal.restore(snap).display == original.display, f"seed {seed}"
