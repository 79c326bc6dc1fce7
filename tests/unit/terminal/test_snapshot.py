"""Snapshots for reattach: snapshot -> restore and repaint -> fresh emulator give the same screen."""

from __future__ import annotations

import json
import random

import pytest

from rustainer.backend.terminal import Terminal

from .streams import fuzz_stream, state

EXTRA = [
    b"\x1b[?1049h\x1b[5;5H\x1b[44malt screen\x1b[0m",
    b"\x1b[?1047hforty-seven",
    b"\x1b[38:2::10:20:30mcolon\x1b[0m",
    b"\x1b[?1h\x1b[?2004h\x1b[?1003h\x1b[?1006h",
    b"\x1b]2;a title\x07",
    b"\x1b[3;8r\x1b[?6h\x1b[2;2Hin region",
    b"\x1b[?7l" + b"x" * 50,
]


def _streams() -> list[tuple[bytes, int, int]]:
    cases = []
    for seed in range(40):
        rng = random.Random(1000 + seed)
        columns, lines = rng.choice([(20, 6), (40, 10), (80, 24)])
        data = fuzz_stream(rng, 80)
        data = data.replace(b"\x1b[?5h", b"")  # Reverse-video screens are not repainted (see repaint.py).
        cases.append((data + rng.choice(EXTRA), columns, lines))
    return cases


CASES = _streams()


@pytest.mark.parametrize("index", range(len(CASES)))
def test_snapshot_restore_round_trip(index: int) -> None:
    data, columns, lines = CASES[index]
    t = Terminal(columns, lines, history=50)
    t.feed(data)
    snap = json.loads(json.dumps(t.snapshot()))  # Must survive a JSON hop to the dashboard.
    back = Terminal.restore(snap)
    # Before state(): reading cells through pyte's buffer creates the rows it reads, and a
    # snapshot keeps which rows exist.
    assert back.snapshot() == snap
    assert state(back) == state(t)
    assert back.history == [r for r in t.history]
    # The restored terminal keeps behaving the same way.
    tail = b"\x1b[?1049l\r\nmore\x1b[2Aup\x1b[1;1H\x1b[2K"
    t.feed(tail)
    back.feed(tail)
    assert state(back) == state(t)


@pytest.mark.parametrize("index", range(len(CASES)))
def test_repaint_reproduces_the_screen_in_a_fresh_emulator(index: int) -> None:
    data, columns, lines = CASES[index]
    t = Terminal(columns, lines)
    t.feed(data)
    fresh = Terminal(columns, lines)
    fresh.feed(t.repaint())
    for y in range(lines):
        assert [c for c in fresh.line(y)] == [c for c in t.line(y)] or _orphan_stubs(t, y), f"line {y}"
    assert fresh.display == t.display or any(_orphan_stubs(t, y) for y in range(lines))
    assert fresh.cursor == t.cursor
    assert fresh.screen.cursor.attrs == t.screen.cursor.attrs
    assert fresh.modes == t.modes
    assert fresh.title == t.title and fresh.icon_name == t.icon_name
    assert fresh.screen.margins == t.screen.margins
    assert fresh.screen.tabstops == t.screen.tabstops
    # Leaving the alternate screen shows the same main screen on both.
    fresh.feed(b"\x1b[?1049l\x1b[?1047l")
    t.feed(b"\x1b[?1049l\x1b[?1047l")
    assert fresh.display == t.display
    assert fresh.cursor == t.cursor


def _orphan_stubs(t: Terminal, y: int) -> bool:
    """A wide character's stub left behind after its first half was overwritten: unrepaintable."""
    cells = t.line(y)
    for x, cell in enumerate(cells):
        if cell.data == "" and (x == 0 or cells[x - 1].data == "" or len(cells[x - 1].data.encode()) < 3):
            return True
    return False


def test_repaint_with_history_refills_the_scrollback() -> None:
    t = Terminal(30, 5, history=100)
    t.feed(b"".join(b"\x1b[3%dmline %d\x1b[0m\r\n" % (i % 8, i) for i in range(40)) + b"prompt$ ")
    fresh = Terminal(30, 5, history=100)
    fresh.feed(t.repaint(include_history=True))
    assert fresh.display == t.display
    assert fresh.history_text() == t.history_text()
    assert fresh.cursor == t.cursor


def test_snapshot_is_compact() -> None:
    t = Terminal(120, 40, history=10000)
    t.feed(b"".join(b"\x1b[32m%08d\x1b[0m some text on the line\r\n" % i for i in range(12000)))
    size = len(json.dumps(t.snapshot()))
    assert size < 10000 * 120, size  # Well under one byte per cell of scrollback.


def test_unknown_snapshot_version_is_refused() -> None:
    snap = Terminal(10, 2).snapshot()
    snap["version"] = 99
    with pytest.raises(ValueError):
        Terminal.restore(snap)
