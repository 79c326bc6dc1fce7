"""What pyte lacks: alternate screen, colon SGR, scrollback, title, modes, resize."""

from __future__ import annotations

import subprocess
import sys

from rustainer.backend.terminal import Terminal


def _term(data: bytes, columns: int = 20, lines: int = 5, history: int = 100) -> Terminal:
    t = Terminal(columns, lines, history=history)
    t.feed(data)
    return t


def test_alternate_screen_1049_restores_main_screen_and_cursor() -> None:
    t = _term(b"main text\r\nsecond\x1b[31m")
    main_display, main_cursor = t.display, t.cursor
    t.feed(b"\x1b[?1049h")
    assert t.alternate_screen
    assert all(not line.strip() for line in t.display), "the alternate screen starts blank"
    t.feed(b"\x1b[0m\x1b[3;4Hfull-screen app\r\n\r\n\r\n\r\n")
    assert "full-screen app" in "".join(t.display)
    t.feed(b"\x1b[?1049l")
    assert not t.alternate_screen
    assert t.display == main_display
    assert t.cursor == main_cursor
    assert t.screen.cursor.attrs.fg == "red"
    assert t.history_text() == [], "lines scrolled on the alternate screen never reach the scrollback"


def test_alternate_screen_47_and_1047_keep_the_main_screen() -> None:
    for mode in (b"47", b"1047"):
        t = _term(b"keep me")
        t.feed(b"\x1b[?" + mode + b"hother\x1b[?" + mode + b"l")
        assert t.display[0].rstrip() == "keep me"
        assert not t.alternate_screen


def test_colon_separated_sgr_colours() -> None:
    t = _term(b"\x1b[38:2::255:128:0mA\x1b[48:5:196mB\x1b[38:2:1:2:3mC\x1b[4:3mD\x1b[4:0mE\x1b[58:2::1:2:3mF")
    cells = t.line(0)
    assert cells[0].fg == "ff8000"
    assert cells[1].bg == "ff0000" and cells[1].fg == "ff8000"
    assert cells[2].fg == "010203"
    assert cells[3].underscore and not cells[4].underscore
    assert cells[5].fg == "010203", "underline colour (58) must not reset other attributes"
    assert t.display[0].startswith("ABCDEF")


def test_title_and_icon_name() -> None:
    t = _term(b"\x1b]0;both\x07")
    assert (t.title, t.icon_name) == ("both", "both")
    t.feed(b"\x1b]2;just the title\x1b\\")
    assert (t.title, t.icon_name) == ("just the title", "both")


def test_front_end_modes() -> None:
    t = _term(b"")
    m = t.modes
    assert not m.application_cursor and not m.bracketed_paste and m.mouse == "" and m.cursor_visible
    t.feed(b"\x1b[?1h\x1b[?2004h\x1b[?1002h\x1b[?1006h\x1b[?25l")
    m = t.modes
    assert m.application_cursor and m.bracketed_paste and m.mouse == "button" and m.mouse_encoding == "sgr"
    assert not m.cursor_visible
    t.feed(b"\x1b[?1l\x1b[?2004l\x1b[?1002l\x1b[?25h")
    m = t.modes
    assert not m.application_cursor and not m.bracketed_paste and m.mouse == "" and m.cursor_visible


def test_scrollback_is_a_bounded_ring() -> None:
    t = _term(b"".join(b"line %d\r\n" % i for i in range(250)), history=100)
    hist = t.history_text()
    assert len(hist) == 100
    assert hist[-1] == "line 245" and hist[0] == "line 146"
    assert t.display[0].rstrip() == "line 246"


def test_scrollback_keeps_attributes() -> None:
    t = _term(b"\x1b[1;31mred\x1b[0m plain\r\n" + b"\r\n" * 10)
    (text, runs) = t.history[0]
    assert text == "red plain"
    assert runs[0][0][:3] == ("red", "default", True) and runs[0][1] == 3


def test_dirty_lines_and_cells() -> None:
    t = _term(b"")
    t.clear_dirty()
    t.feed(b"\x1b[3;1Hx")
    assert 2 in t.dirty and 0 not in t.dirty
    assert t.line(2)[0].data == "x"


def test_resize_shrink_pushes_top_lines_to_scrollback_and_grow_pulls_them_back() -> None:
    t = _term(b"".join(b"row %d\r\n" % i for i in range(5)) + b"row 5", columns=20, lines=6)
    assert t.display[5].rstrip() == "row 5"
    t.resize(20, 3)
    assert [s.rstrip() for s in t.display] == ["row 3", "row 4", "row 5"]
    assert t.cursor == (5, 2)
    assert t.history_text()[-3:] == ["row 0", "row 1", "row 2"]
    t.resize(20, 6)
    assert [s.rstrip() for s in t.display] == [f"row {i}" for i in range(6)]
    assert t.cursor == (5, 5)


def test_resize_shrink_drops_blank_lines_below_the_cursor_first() -> None:
    t = _term(b"top\r\ncursor here", columns=20, lines=10)
    t.resize(20, 4)
    assert t.display[0].rstrip() == "top"
    assert t.cursor == (11, 1)
    assert t.history_text() == []


def test_resize_width_truncates_without_reflow() -> None:
    t = _term(b"0123456789abcdefghij", columns=20, lines=3)
    t.resize(10, 3)
    assert t.display[0] == "0123456789"
    t.resize(15, 3)
    assert t.display[0] == "0123456789     "
    assert t.cursor[0] <= 14


def test_import_stays_light() -> None:
    """The supervisor imports the core; it must not pull in Textual, rich or dataclasses."""
    code = (
        "import sys; import rustainer.backend.terminal as t; t.Terminal(80, 24).feed(b'x');"
        "bad = [m for m in ('textual', 'rich', 'dataclasses') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _coloured_lines(n: int) -> bytes:
    return b"".join(b"\x1b[3%dm%06d\x1b[0m some text %s\r\n" % (i % 8, i, b"x" * (i % 90)) for i in range(n))


def test_scrollback_from_bulk_output_equals_line_by_line_output() -> None:
    """Blocks kept raw in the scrollback expand to exactly the rows the per-line path makes."""
    data = _coloured_lines(1500) + b"".join(b"%d\r\n" % i for i in range(1500)) + b"tail"
    bulk = _term(data, columns=40, lines=8, history=1000)
    slow = Terminal(40, 8, history=1000)
    for i in range(0, len(data), 3):
        slow.feed(data[i : i + 3])
    assert len(bulk.history) == 1000
    assert bulk.history == slow.history
    assert bulk.display == slow.display and bulk.cursor == slow.cursor
    assert bulk.screen.history[-1] == slow.screen.history[-1]
    bulk.resize(20, 12)  # Pulls rows back out of the scrollback.
    slow.resize(20, 12)
    assert bulk.display == slow.display and bulk.history == slow.history


def test_memory_for_10000_lines_of_scrollback_stays_small() -> None:
    import tracemalloc

    data = _coloured_lines(12000)
    tracemalloc.start()
    try:
        t = Terminal(120, 40, history=10000)
        t.feed(data)
        raw, _ = tracemalloc.get_traced_memory()
        rows = t.history  # Reading the scrollback expands it into compact rows.
        expanded, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(rows) == 10000
    assert raw < 8e6, raw
    assert expanded < 20e6, expanded
