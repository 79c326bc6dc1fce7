"""Differential tests on byte streams recorded from real programs in real ptys (busybox), plus
generated redraw traffic: the core against stock pyte (cell for cell) and against tmux (text)."""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator

import pyte
import pytest
from terminal_corpus import COLUMNS, LINES, Tmux, corpus, gen_ansi, gen_redraw, tmux_display, tmux_server

from rustainer.backend.terminal import Terminal

_ALT = (b"\x1b[?1049h", b"\x1b[?1047h", b"\x1b[?47h")
NAMES = ["seq", "ls-color", "sh-session", "top", "less", "vi", "gen-ansi", "gen-redraw"]


@pytest.fixture(scope="module")
def streams() -> dict[str, bytes]:
    if shutil.which("busybox") is None:
        pytest.skip("busybox is not installed (apt-get install busybox-static)")
    recorded = corpus()
    recorded["gen-ansi"] = gen_ansi(150_000)
    recorded["gen-redraw"] = gen_redraw(150_000)
    return recorded


@pytest.fixture(scope="module")
def tmux() -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    with tmux_server() as server:
        yield server


def _pyte(data: bytes) -> pyte.Screen:
    screen = pyte.Screen(COLUMNS, LINES)
    pyte.ByteStream(screen).feed(data)
    return screen


def _core(data: bytes, columns: int = COLUMNS, lines: int = LINES) -> Terminal:
    t = Terminal(columns, lines)
    t.feed(data)
    return t


def _cells(t: Terminal) -> list[list[object]]:
    return [t.line(y) for y in range(t.lines)]


def test_the_corpus_is_real(streams: dict[str, bytes]) -> None:
    """Each recording caught its program's output, not an error message."""
    assert streams["seq"].startswith(b"1\r\n2\r\n") and b"30000\r\n" in streams["seq"]
    assert b"\x1b[" in streams["ls-color"] and len(streams["ls-color"]) > 10_000
    assert b"hello world\r\n" in streams["sh-session"]
    assert b"PID" in streams["top"] and b"\x1b[H" in streams["top"]
    assert b"line 000" in streams["less"]
    assert b"\x1b[?1049h" in streams["vi"] and b"\x1b[?1049l" in streams["vi"]


@pytest.mark.parametrize("name", NAMES)
def test_core_equals_stock_pyte_where_pyte_is_right(streams: dict[str, bytes], name: str) -> None:
    data = streams[name]
    core = _core(data)
    if any(seq in data for seq in _ALT) and b"\x1b[?1049l" in data:
        ref = _pyte(data)
        assert ref.display != core.display or (ref.cursor.x, ref.cursor.y) != core.cursor, (
            "pyte has no alternate screen; if it now agrees, compare cell for cell again")
        return
    ref = _pyte(data)
    for y in range(LINES):
        assert core.line(y) == [ref.buffer[y][x] for x in range(COLUMNS)], f"{name}: line {y}"
    assert core.cursor == (ref.cursor.x, ref.cursor.y)
    assert core.screen.cursor.attrs == ref.cursor.attrs
    assert core.title == ref.title


@pytest.mark.parametrize("name", NAMES)
def test_core_text_equals_tmux(streams: dict[str, bytes], tmux: Tmux, name: str) -> None:
    data = streams[name]
    core = _core(data)
    text, cursor = tmux_display(tmux, data)
    assert [line.rstrip() for line in core.display] == text
    x, y = core.cursor
    assert (min(x, COLUMNS - 1), y) == cursor


@pytest.mark.parametrize("name", NAMES)
def test_any_chunking_of_real_streams(streams: dict[str, bytes], name: str) -> None:
    data = streams[name][:60_000]
    whole = _core(data)
    rng = random.Random(name)
    for max_chunk in (1, 5, 4096):
        if max_chunk == 1 and len(data) > 30_000:
            continue
        t = Terminal(COLUMNS, LINES)
        i = 0
        while i < len(data):
            n = rng.randint(1, max_chunk)
            t.feed(data[i : i + n])
            i += n
        assert _cells(t) == _cells(whole), f"{name} max_chunk={max_chunk}"
        assert t.cursor == whole.cursor
        assert t.history == whole.history


def _in_vi(streams: dict[str, bytes]) -> bytes:
    """Scrollback, then vi still running on the alternate screen."""
    vi = streams["vi"]
    # Cut the listing at a line's end: a cut inside an escape sequence would swallow vi's first
    # bytes (where it lands depends on what /usr/share/doc holds on the machine that recorded it).
    listing = streams["ls-color"][:20_000]
    return listing[: listing.rindex(b"\n") + 1] + vi[: vi.rindex(b"\x1b[?1049l")]


@pytest.mark.parametrize("case", ["ls-color", "top", "in-vi", "gen-redraw"])
def test_repaint_into_tmux_and_a_fresh_core(streams: dict[str, bytes], tmux: Tmux, case: str) -> None:
    data = _in_vi(streams) if case == "in-vi" else streams[case]
    core = _core(data)
    paint = core.repaint()
    fresh = _core(paint)
    assert _cells(fresh) == _cells(core)
    assert fresh.cursor == core.cursor and fresh.modes == core.modes and fresh.title == core.title
    text, cursor = tmux_display(tmux, paint)
    assert [line.rstrip() for line in core.display] == text
    assert (min(core.cursor[0], COLUMNS - 1), core.cursor[1]) == cursor
    if case == "in-vi":
        assert core.alternate_screen and fresh.alternate_screen
        back = b"\x1b[?1049l"
        core.feed(back)
        fresh.feed(back)
        assert _cells(fresh) == _cells(core)
        text, _ = tmux_display(tmux, paint + back)
        assert [line.rstrip() for line in core.display] == text


@pytest.mark.parametrize("case", ["ls-color", "in-vi", "top"])
def test_snapshot_restore_on_real_streams(streams: dict[str, bytes], case: str) -> None:
    data = _in_vi(streams) if case == "in-vi" else streams[case]
    core = _core(data)
    back = Terminal.restore(core.snapshot())
    assert _cells(back) == _cells(core)
    assert back.history == core.history and back.cursor == core.cursor and back.modes == core.modes


@pytest.mark.parametrize("name", ["sh-session", "ls-color", "less"])
@pytest.mark.parametrize("heights", [(20, 40), (10, 30), (45, 25)])
def test_resize_height_like_tmux(streams: dict[str, bytes], tmux: Tmux, name: str, heights: tuple[int, int]) -> None:
    data = streams[name]
    core = _core(data)
    tmux.consume(data)
    try:
        for height in heights:
            tmux.run("resize-window", "-t", tmux.session, "-y", str(height))
            core.resize(COLUMNS, height)
            assert [line.rstrip() for line in tmux.capture()] == [line.rstrip() for line in core.display]
            assert tmux.cursor() == core.cursor
    finally:
        tmux.kill_session()



@pytest.mark.parametrize("name", ["top", "less", "gen-redraw", "sh-session"])
def test_repeated_redraws_equal_stock_pyte_cell_for_cell(streams: dict[str, bytes], name: str) -> None:
    """Programs redraw the same screen again and again (what the benchmark feeds): by the third
    time the rows have the shapes and contents the redraw fast paths meet in practice (rows only
    partly written, runs of text the core keeps as cells).  Every cell, and which cells are
    written (pyte's erases only touch those), equals stock pyte's."""
    data = streams[name][:200_000] * 3
    core = _core(data)
    ref = _pyte(data)
    screen = core.screen
    for y in range(LINES):
        assert core.line(y) == [ref.buffer[y][x] for x in range(COLUMNS)], f"{name}: line {y}"
        assert sorted(screen.buffer[y]) == sorted(ref.buffer[y]), f"{name}: written cells of line {y}"
    assert core.cursor == (ref.cursor.x, ref.cursor.y)
    assert screen.cursor.attrs == ref.cursor.attrs
