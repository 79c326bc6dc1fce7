"""Search over a terminal's text: its scrollback and screen as one list of lines.

Pure functions and plain data, no Textual: the dashboard builds a :class:`SearchText` once when a
search starts (the rows stay still while it lasts) and runs :func:`search` at each keystroke.

Why it is fast enough for a keystroke (10,000 lines within one 60 Hz frame): the lines are joined
into one string once, so scanning the lines that do not match is one C-level ``str.find`` or regex
search per matching line, never a Python step per line; the matches of one line are counted (not
listed) during the scan, and a line's match positions are only worked out when it is drawn or
stepped to (:meth:`Matches.spans`).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from itertools import accumulate

from rustainer.backend.errors import InvalidSpecError

from .cells import CompactRow

#: Where a match is: (line, start, end), character offsets in the line's text.
Hit = tuple[int, int, int]


@dataclass(frozen=True)
class Query:
    """What to look for: plain text or a regular expression (Python's ``re`` syntax, one line at a
    time: a match never spans two lines), with or without case."""

    pattern: str
    regex: bool = False
    ignore_case: bool = True


def row_text(crow: CompactRow) -> str:
    """A row's characters (wide characters' stubs left out), trailing blanks trimmed: what a search
    and a copy see of it."""
    text = crow[0]
    return (text if isinstance(text, str) else "".join(text)).rstrip()


def row_columns(crow: CompactRow) -> list[int] | None:
    """For a row with wide characters or combining marks, the cell column of each character of
    :func:`row_text` (and one past the end); None for the usual row, where they are equal."""
    text = crow[0]
    if isinstance(text, str):
        return None
    columns: list[int] = []
    for x, cell in enumerate(text):
        columns.extend([x] * len(cell))
    columns.append(len(text))
    return columns


class SearchText:
    """The lines to search, joined once; line ``i`` is ``text[starts[i]:starts[i] + len(lines[i])]``."""

    __slots__ = ("lines", "text", "starts", "_lower")

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.text = "\n".join(lines)
        self.starts = [0, *accumulate(len(line) + 1 for line in lines)][:len(lines)] if lines else [0]
        self._lower: str | None = None

    @classmethod
    def of_rows(cls, rows: list[CompactRow]) -> SearchText:
        return cls([row_text(r) for r in rows])

    def lower(self) -> str | None:
        """The text in lower case when that keeps every offset (ASCII text), else None."""
        if self._lower is None and self.text.isascii():
            self._lower = self.text.lower()
        return self._lower


def compile_query(query: Query) -> re.Pattern[str]:
    """The query as a pattern; InvalidSpecError (one line) for a regular expression that is none."""
    flags = re.MULTILINE | (re.IGNORECASE if query.ignore_case else 0)
    source = query.pattern if query.regex else re.escape(query.pattern)
    try:
        return re.compile(source, flags)
    except re.error as err:
        raise InvalidSpecError(f"not a regular expression: {err}") from None


class Matches:
    """Every match of a query in a :class:`SearchText`, in line order.

    The scan only notes which lines have a match (``lines``, a C-level search per matching line);
    a line's match positions are worked out when it is drawn or stepped to (:meth:`spans`, the line
    searched alone), and the count (:attr:`total`, :meth:`ordinal`) when first asked for: listing
    every match of a pattern that is on every line costs several times the scan."""

    __slots__ = ("text", "pattern", "needle", "fold", "lines", "_spans", "_before", "_partial")

    def __init__(self, text: SearchText, lines: list[int], *, pattern: re.Pattern[str] | None = None,
                 needle: str = "", fold: bool = False) -> None:
        self.text = text
        self.pattern = pattern  # a regular expression (else: plain text, ``needle``)
        self.needle = needle
        self.fold = fold  # plain text without case: ``needle`` is lower-cased, and so is each line
        self.lines = lines  # lines with a match (for a pattern, a few may turn out to have none)
        self._spans: dict[int, list[tuple[int, int]]] = {}
        self._before: list[int] | None = None  # matches before each line of ``lines`` (and all)
        self._partial: list[int] = [0]  # the same, while being counted

    def spans(self, line: int) -> list[tuple[int, int]]:
        """(start, end) of each match in ``line``, character offsets in its text; a pattern is
        matched against the line alone (``$`` matches at its end), and empty matches are left out."""
        spans = self._spans.get(line)
        if spans is not None:
            return spans
        spans = []
        if 0 <= line < len(self.text.lines):
            if self.pattern is not None:
                start = self.text.starts[line]
                end = start + len(self.text.lines[line])
                spans = [(m.start() - start, m.end() - start)
                         for m in self.pattern.finditer(self.text.text, start, end) if m.end() > m.start()]
            elif self.needle:
                text = self.text.lines[line]
                if self.fold:
                    text = text.lower()
                size = len(self.needle)
                at = text.find(self.needle)
                while at >= 0:
                    spans.append((at, at + size))
                    at = text.find(self.needle, at + size)
        self._spans[line] = spans
        return spans

    def _counts(self) -> list[int]:
        while not self.count_ahead(1 << 30):
            pass
        assert self._before is not None
        return self._before

    def count_ahead(self, lines: int) -> bool:
        """Count the matches of up to ``lines`` more lines; True once all are counted. Counting every
        match of a pattern on every line takes a few frames' time: a front end does it a slice at a
        time between frames (:attr:`total` counts all at once)."""
        before = self._before if self._before is not None else self._partial
        done = len(before) - 1
        stop = min(len(self.lines), done + lines)
        total = before[-1]
        for line in self.lines[done:stop]:
            total += len(self.spans(line))
            before.append(total)
        if len(before) - 1 == len(self.lines):
            self._before = before
            return True
        return False

    @property
    def total(self) -> int:
        """How many matches there are (worked out on first use)."""
        return self._counts()[-1]

    @property
    def counted(self) -> bool:
        """Whether :attr:`total` is known without counting."""
        return self._before is not None

    def __bool__(self) -> bool:
        return self.first() is not None

    def hit(self, ordinal: int) -> Hit:
        """The ``ordinal``-th match (0-based, in line order)."""
        before = self._counts()
        index = bisect_right(before, ordinal) - 1
        while before[index + 1] == before[index]:
            index += 1  # (a line that turned out to have none)
        line = self.lines[index]
        start, end = self.spans(line)[ordinal - before[index]]
        return (line, start, end)

    def ordinal(self, hit: Hit) -> int:
        """How many matches come before ``hit`` (its 0-based ordinal when it is one)."""
        line, start, _ = hit
        index = bisect_left(self.lines, line)
        before = self._counts()[index]
        if index < len(self.lines) and self.lines[index] == line:
            before += bisect_left([s for s, _ in self.spans(line)], start)
        return before

    def first(self) -> Hit | None:
        return self.following(-1, 0)

    def last(self) -> Hit | None:
        return self.preceding(len(self.text.lines), 0)

    def following(self, line: int, column: int, wrap: bool = False) -> Hit | None:
        """The first match that starts after (line, column); with ``wrap``, the first of all when
        none does."""
        index = bisect_left(self.lines, line)
        lines = self.lines
        while index < len(lines):
            number = lines[index]
            for start, end in self.spans(number):
                if number > line or start > column:
                    return (number, start, end)
            index += 1
        return self.following(-1, 0) if wrap and line >= 0 else None

    def preceding(self, line: int, column: int, wrap: bool = False) -> Hit | None:
        """The last match that starts before (line, column); with ``wrap``, the last of all when
        none does."""
        index = bisect_right(self.lines, line) - 1
        lines = self.lines
        while index >= 0:
            number = lines[index]
            for start, end in reversed(self.spans(number)):
                if number < line or start < column:
                    return (number, start, end)
            index -= 1
        count = len(self.text.lines)
        return self.preceding(count, 0) if wrap and line < count else None

    def near(self, line: int) -> Hit | None:
        """The last match at or above ``line`` (searching back from where the view is), else the
        first one below it."""
        return self.preceding(line + 1, 0) or self.following(line, -1)


def search(text: SearchText, query: Query) -> Matches:
    """Every match of ``query`` in ``text`` (an empty pattern matches nothing). InvalidSpecError for
    a regular expression that is none."""
    if not query.pattern:
        return Matches(text, [])
    if not query.regex and "\n" not in query.pattern:
        if not query.ignore_case:
            return _search_plain(text, text.text, query.pattern, fold=False)
        lowered = text.lower()
        if lowered is not None:
            return _search_plain(text, lowered, query.pattern.lower(), fold=True)
    return _search_pattern(text, compile_query(query))


def _search_plain(text: SearchText, haystack: str, needle: str, fold: bool) -> Matches:
    """Plain text: one ``find`` to the next matching line, one to its end."""
    lines: list[int] = []
    append = lines.append
    starts = text.starts
    find = haystack.find
    at = find(needle)
    while at >= 0:
        append(bisect_right(starts, at) - 1)
        end = find("\n", at)
        if end < 0:
            break
        at = find(needle, end)
    return Matches(text, lines, needle=needle, fold=fold)


def _search_pattern(text: SearchText, pattern: re.Pattern[str]) -> Matches:
    """A pattern: one regex search to the next line with a match, one ``find`` to its end. A line
    whose first match is empty or runs into the next line is searched alone at once (rare)."""
    lines: list[int] = []
    append = lines.append
    starts = text.starts
    haystack = text.text
    size = len(haystack)
    search_at, find = pattern.search, haystack.find
    matches = Matches(text, lines, pattern=pattern)
    pos = 0
    while pos <= size:
        m = search_at(haystack, pos)
        if m is None:
            break
        at = m.start()
        line = bisect_right(starts, at) - 1
        end = find("\n", at)
        if end < 0:
            end = size
        if (m.end() > at and m.end() <= end) or matches.spans(line):
            append(line)
        pos = end + 1
    return matches
