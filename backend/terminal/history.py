"""The scrollback: a bounded ring of compact rows, where whole blocks of output can be kept raw.

When thousands of lines scroll by in one read, turning each into a row object costs more than
parsing them.  The fast path therefore appends the raw text of such a block (whole lines of
printable text and SGR that need no wrapping) with the attributes in force at its start, and
rows are only built if someone reads the scrollback.  Dropping old lines off a raw block just
moves an offset.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pyte.screens import Char

from .cells import CompactRow

#: Expands a raw block (text of lines each ended by CR LF, attributes at its start) into rows: the
#: ``count`` rows after the first ``skip`` lines.
Expander = Callable[[str, Char, int, int], list[CompactRow]]


class _Block:
    __slots__ = ("text", "attrs", "count", "skip")

    def __init__(self, text: str, attrs: Char, count: int) -> None:
        self.text = text
        self.attrs = attrs
        self.count = count  # Lines still in the scrollback (after skip).
        self.skip = 0


class History:
    """Bounded like ``deque(maxlen=...)``; iterating yields canonical compact rows, oldest first."""

    __slots__ = ("maxlen", "_segments", "_len", "expander")

    def __init__(self, maxlen: int) -> None:
        self.maxlen = max(0, maxlen)
        self._segments: deque[Any] = deque()  # list[CompactRow] or _Block
        self._len = 0
        self.expander: Expander | None = None

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def _rows_of(self, block: _Block) -> list[CompactRow]:
        assert self.expander is not None
        return self.expander(block.text, block.attrs, block.skip, block.count)

    def materialize(self) -> None:
        """Expand every raw block (needed before the column count changes)."""
        segs = self._segments
        for i, seg in enumerate(segs):
            if isinstance(seg, _Block):
                segs[i] = self._rows_of(seg)

    def __iter__(self) -> Iterator[CompactRow]:
        segs = self._segments
        for i in range(len(segs)):
            seg = segs[i]
            if isinstance(seg, _Block):
                seg = segs[i] = self._rows_of(seg)  # Someone is looking: keep the rows.
            yield from seg

    def __getitem__(self, index: int) -> CompactRow:
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(index)
        for i, seg in enumerate(self._segments):
            n = seg.count if isinstance(seg, _Block) else len(seg)
            if index < n:
                if isinstance(seg, _Block):
                    seg = self._segments[i] = self._rows_of(seg)
                row: CompactRow = seg[index]
                return row
            index -= n
        raise IndexError(index)

    def _tail_list(self) -> list[CompactRow]:
        segs = self._segments
        if segs and isinstance(segs[-1], list) and len(segs[-1]) < 4096:
            tail: list[CompactRow] = segs[-1]
            return tail
        tail = []
        segs.append(tail)
        return tail

    def append(self, row: CompactRow) -> None:
        if not self.maxlen:
            return
        self._tail_list().append(row)
        self._len += 1
        if self._len > self.maxlen:
            self._trim()

    def extend(self, rows: Iterable[CompactRow]) -> None:
        if not self.maxlen:
            return
        rows = list(rows)[-self.maxlen :]
        if not rows:
            return
        self._segments.append(rows)
        self._len += len(rows)
        if self._len > self.maxlen:
            self._trim()

    def add_block(self, text: str, attrs: Char, count: int) -> None:
        if not self.maxlen or not count:
            return
        self._segments.append(_Block(text, attrs, count))
        self._len += count
        if self._len > self.maxlen:
            self._trim()

    def _trim(self) -> None:
        segs = self._segments
        excess = self._len - self.maxlen
        while excess > 0:
            seg = segs[0]
            n = seg.count if isinstance(seg, _Block) else len(seg)
            if n <= excess:
                segs.popleft()
                excess -= n
                self._len -= n
            elif isinstance(seg, _Block):
                seg.skip += excess
                seg.count -= excess
                self._len -= excess
                excess = 0
            else:
                del seg[:excess]
                self._len -= excess
                excess = 0

    def pop(self) -> CompactRow:
        segs = self._segments
        while segs:
            seg = segs[-1]
            if isinstance(seg, _Block):
                seg = segs[-1] = self._rows_of(seg)
            if seg:
                self._len -= 1
                row: CompactRow = seg.pop()
                if not seg:
                    segs.pop()
                return row
            segs.pop()
        raise IndexError("pop from an empty history")

    def clear(self) -> None:
        self._segments.clear()
        self._len = 0
