"""The pure search over a terminal's lines (backend/terminal/search.py): plain text and regular
expressions, with and without case, counting, positions and stepping with wrap-round."""

from __future__ import annotations

import pytest

from rustainer.backend.errors import InvalidSpecError
from rustainer.backend.terminal import Terminal
from rustainer.backend.terminal.search import Query, SearchText, row_columns, row_text, search

LINES = ["total 12", "drwxr-xr-x  2 root root Error here", "", "-rw-r--r--  1 root root error, ERROR", "done"]


def hits(lines: list[str], query: Query) -> list[tuple[int, int, int]]:
    matches = search(SearchText(lines), query)
    return [matches.hit(i) for i in range(matches.total)]


def test_plain_text_ignores_case_by_default_and_counts_every_match() -> None:
    matches = search(SearchText(LINES), Query("error"))
    assert matches.total == 3 and matches.lines == [1, 3]
    assert [matches.hit(i) for i in range(3)] == [(1, 24, 29), (3, 24, 29), (3, 31, 36)]


def test_case_sensitive_plain_text() -> None:
    assert hits(LINES, Query("Error", ignore_case=False)) == [(1, 24, 29)]
    assert hits(LINES, Query("ERROR", ignore_case=False)) == [(3, 31, 36)]


def test_plain_text_is_not_a_pattern() -> None:
    assert hits(["a.b axb", "(x)"], Query("a.b")) == [(0, 0, 3)]
    assert hits(["a.b axb", "(x)"], Query("(x)")) == [(1, 0, 3)]


def test_regular_expressions_with_and_without_case() -> None:
    assert hits(LINES, Query(r"ro+t", regex=True))[:3] == [(1, 14, 18), (1, 19, 23), (3, 14, 18)]
    assert hits(LINES, Query(r"^d", regex=True)) == [(1, 0, 1), (4, 0, 1)]
    assert hits(LINES, Query(r"e$", regex=True)) == [(1, 33, 34), (4, 3, 4)]
    assert hits(LINES, Query(r"ERR\w+", regex=True, ignore_case=False)) == [(3, 31, 36)]


def test_empty_matches_and_empty_patterns_find_nothing() -> None:
    assert search(SearchText(LINES), Query("")).total == 0
    assert hits(["abc", "", "xaay"], Query("a*", regex=True)) == [(0, 0, 1), (2, 1, 3)]


def test_a_match_never_spans_two_lines() -> None:
    assert hits(["ab", "cd"], Query(r"b\sc", regex=True)) == []
    assert hits(["ab", "cd"], Query("b\nc")) == []
    assert hits(["ab ", "b"], Query(r"b\s*", regex=True)) == [(0, 1, 3), (1, 0, 1)]


def test_non_ascii_text_without_case() -> None:
    lines = ["Straße ÉTÉ", "été", "İstanbul"]
    assert hits(lines, Query("été")) == [(0, 7, 10), (1, 0, 3)]
    assert hits(lines, Query("stanbul")) == [(2, 1, 8)]


def test_a_bad_regular_expression_is_a_one_line_error() -> None:
    with pytest.raises(InvalidSpecError, match="not a regular expression"):
        search(SearchText(LINES), Query("(unclosed", regex=True))


def test_stepping_forwards_and_backwards_wraps_round() -> None:
    matches = search(SearchText(LINES), Query("root"))
    assert matches.total == 4
    assert matches.first() == (1, 14, 18) and matches.last() == (3, 19, 23)
    assert matches.following(1, 12) == (1, 14, 18)
    assert matches.following(1, 14) == (1, 19, 23)
    assert matches.following(1, 19) == (3, 14, 18)
    assert matches.following(3, 19) is None
    assert matches.following(3, 19, wrap=True) == (1, 14, 18)
    assert matches.preceding(1, 14) is None
    assert matches.preceding(1, 14, wrap=True) == (3, 19, 23)
    assert matches.preceding(3, 17) == (3, 14, 18)
    assert matches.ordinal((3, 14, 18)) == 2 and matches.hit(2) == (3, 14, 18)
    assert matches.near(2) == (1, 19, 23)  # the last one at or above the line
    assert matches.near(0) == (1, 14, 18)  # none above: the first one below
    nothing = search(SearchText(LINES), Query("nowhere"))
    assert not nothing and nothing.following(0, 0, wrap=True) is None and nothing.near(3) is None


def test_a_line_the_scan_noted_but_without_a_match_of_its_own_is_skipped() -> None:
    # The scan sees "a" followed by the next line; the line searched alone has no such match.
    matches = search(SearchText(["xa", "b", "ya"]), Query(r"a(?=\n)", regex=True))
    assert matches.total == 0 and matches.first() is None and not matches


def test_rows_with_wide_characters_map_characters_to_cells() -> None:
    term = Terminal(20, 3, 100)
    term.feed("a界b x\u0301y".encode())
    crow = term.compact_line(0)
    assert row_text(crow) == "a界b x\u0301y"
    columns = row_columns(crow)
    assert columns is not None
    assert [columns[i] for i in range(len(row_text(crow)))] == [0, 1, 3, 4, 5, 5, 6]


def test_the_scrollback_and_screen_of_a_terminal_are_searched_as_one() -> None:
    term = Terminal(40, 5, 1000)
    term.feed(b"".join(b"line %d\r\n" % i for i in range(100)) + b"last")
    rows = term.history + term.compact_lines()
    text = SearchText.of_rows(rows)
    matches = search(text, Query(r"line 9\d", regex=True))
    assert matches.total == 10
    assert [text.lines[line] for line in matches.lines][:2] == ["line 90", "line 91"]
    assert text.lines[matches.hit(matches.total - 1)[0]] == "line 99"
    assert search(text, Query("last")).lines == [len(rows) - 1]


def test_counting_a_slice_at_a_time_ends_with_the_same_total() -> None:
    lines = [f"{i} root root" for i in range(1000)]
    matches = search(SearchText(lines), Query("root"))
    steps = 0
    while not matches.count_ahead(300):
        steps += 1
        assert not matches.counted
    assert steps == 3 and matches.counted and matches.total == 2000
    assert matches.ordinal((999, 6, 10)) == 1999
