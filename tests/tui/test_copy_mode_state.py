"""Copy mode's state alone (widgets/copy_mode.py, no app): cursor motions, selections and their text,
wide characters, searching and stepping, and the drawn highlight."""

from __future__ import annotations

from rustainer.backend.terminal import Terminal
from rustainer.backend.terminal.search import Query
from rustainer.widgets.copy_mode import CURRENT_STYLE, MATCH_STYLE, SELECTION_STYLE, CopyMode


def held(text: bytes, lines: int = 5) -> CopyMode:
    term = Terminal(40, lines, 100)
    term.feed(text)
    rows = term.history + term.compact_lines()
    return CopyMode(rows, lines, len(term.history), (len(term.history), 0))


def test_selections_by_character_and_by_line_and_their_text() -> None:
    mode = held(b"alpha beta gamma\r\nsecond line   \r\nthird")
    mode.move_to(0, 6)
    mode.toggle_selection()
    mode.word_end()  # to the end of "beta"
    assert mode.selected_text() == "beta"
    mode.move(lines=1)  # across lines: from the anchor to the cursor, both included
    assert mode.selected_text() == "beta gamma\nsecond lin"
    mode.toggle_selection(line_mode=True)  # whole lines instead
    assert mode.selected_text() == "alpha beta gamma\nsecond line"  # trailing blanks left out
    mode.toggle_selection(line_mode=True)
    assert mode.selection() is None and mode.selected_text() == ""


def test_words_lines_and_the_ends() -> None:
    mode = held(b"one two  three\r\n  four")
    mode.move_to(0, 0)
    mode.word(forward=True)
    assert mode.cursor == (0, 4)
    mode.word(forward=True)
    mode.word(forward=True)  # past the last word of the line: the first of the next
    assert mode.cursor == (1, 2)
    mode.word(forward=False)
    assert mode.cursor == (0, 9)  # the last word of the line above
    mode.word(forward=False)
    assert mode.cursor == (0, 4)
    mode.line_start()
    mode.line_end()
    assert mode.cursor == (0, 13)
    mode.move(lines=-10)
    assert mode.cursor[0] == 0


def test_wide_characters_are_selected_by_character_and_drawn_by_cell() -> None:
    mode = held("a界b 終わり\r\n".encode())
    assert mode.cell_of(0, 2) == 3 and mode.char_at(0, 3) == 2 and mode.char_at(0, 2) == 1
    mode.move_to(0, 1)
    mode.toggle_selection()
    mode.move_to(0, 2)
    assert mode.selected_text() == "界b"


def test_search_starts_from_the_view_and_steps_with_wrap_round() -> None:
    mode = held(b"".join(b"line %d%s\r\n" % (i, b" hit" if i % 10 == 0 else b"") for i in range(50)), lines=5)
    mode.set_query(Query("hit"))
    assert mode.current is not None and mode.text.lines[mode.current[0]] == "line 40 hit"
    assert mode.top <= mode.current[0] < mode.top + mode.height  # scrolled to it
    mode.step(older=True)
    assert mode.current is not None and mode.text.lines[mode.current[0]] == "line 30 hit"
    for _ in range(4):
        mode.step(older=True)  # 20, 10, 0, then round to 40
    assert mode.current is not None and mode.text.lines[mode.current[0]] == "line 40 hit"
    mode.set_query(Query("(", regex=True))
    assert mode.error.startswith("not a regular expression") and mode.current is None
    assert "not a regular expression" in mode.status()


def test_the_drawn_line_lays_the_highlights_over_the_text() -> None:
    mode = held(b"x hit y hit\r\n", lines=3)
    mode.set_query(Query("hit"))  # the current match: the last one (searching up from the view's bottom)
    assert mode.current == (0, 8, 11) and mode.cursor == (0, 8)
    y = 0 - mode.top
    strip = mode.render_line(y, 20)
    assert strip.cell_length == 20
    drawn = [(segment.text, segment.style.bgcolor if segment.style else None) for segment in strip]
    assert ("hit", MATCH_STYLE.bgcolor) in drawn
    assert ("it", CURRENT_STYLE.bgcolor) in drawn  # (its "h" under the cursor, reversed)
    mode.toggle_selection()
    mode.move_to(0, 0)  # selected from the start of the line to that match
    drawn = [(segment.text, segment.style.bgcolor if segment.style else None) for segment in mode.render_line(y, 20)]
    assert ("hit", SELECTION_STYLE.bgcolor) in drawn  # the selection over the first match
