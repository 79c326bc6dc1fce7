"""Reading a raw scrollback block the scrollback has mostly dropped (a flood): only the kept lines
are made into rows, the dropped ones read for the attributes they leave. The rows must be exactly
those of expanding the whole block and dropping the skipped ones."""

from __future__ import annotations

import random

import pytest

from rustainer.backend.terminal import Terminal
from rustainer.backend.terminal.history import _Block

SGRS = ["\x1b[0m", "\x1b[m", "\x1b[1m", "\x1b[31m", "\x1b[1;32m", "\x1b[0;33m", "\x1b[38;5;208m", "\x1b[7m",
        "\x1b[22m", "\x1b[48;5;17m", "\x1b[4;35m"]


def stream(seed: int, lines: int, resets: bool) -> bytes:
    rng = random.Random(seed)
    out = []
    for i in range(lines):
        parts = []
        for _ in range(rng.randint(0, 3)):
            sgr = rng.choice(SGRS if resets else [s for s in SGRS if s not in ("\x1b[0m", "\x1b[m")])
            parts.append(sgr + "".join(rng.choice("abc xyz-_") for _ in range(rng.randint(0, 12))))
        out.append(f"{i} " + "".join(parts) + "\r\n")
    return "".join(out).encode()


@pytest.mark.parametrize(("seed", "resets"), [(1, True), (2, False), (3, True), (4, False)])
def test_a_mostly_dropped_block_reads_as_the_whole_block_would(seed: int, resets: bool) -> None:
    term = Terminal(80, 24, 500)
    term.feed(stream(seed, 5000, resets))  # one read: a raw block of ~5000 lines, 500 kept
    history = term._screen.history
    expander = history.expander
    assert expander is not None
    blocks = [seg for seg in history._segments if isinstance(seg, _Block)]
    assert blocks and any(b.skip > 1000 for b in blocks)
    for block in blocks:
        whole = expander(block.text, block.attrs, 0, -1)[block.skip:block.skip + block.count]
        assert expander(block.text, block.attrs, block.skip, block.count) == whole
    # and through the scrollback itself, as a front end reads it
    rows = term.history
    assert len(rows) == 500 and rows[-1][0].startswith(f"{5000 - 24} ")  # (the screen holds the last 24)
