"""Differential fuzzer: the fast core against stock pyte 0.8.2, and against itself under any chunking.

CI runs a fixed set of seeds; for a longer run by hand:
    RUSTAINER_FUZZ_SEEDS=5000 .venv/bin/pytest tests/unit/terminal/test_fuzz.py
"""

from __future__ import annotations

import random

import pytest

from rustainer.backend.terminal import Terminal
from rustainer.backend.terminal.bulk import BulkScroll

from .streams import SEEDS, displayable, fuzz_stream, pyte_or_none, same_under_chunking, screen_diff, state

SIZES = [(20, 6), (40, 10), (80, 24), (7, 3), (3, 1)]


def _case(seed: int) -> tuple[bytes, int, int]:
    rng = random.Random(seed)
    columns, lines = rng.choice(SIZES)
    return fuzz_stream(rng, 120), columns, lines


@pytest.mark.parametrize("block", range(4))
def test_core_equals_stock_pyte(block: int) -> None:
    compared = 0
    for seed in range(block, SEEDS, 4):
        data, columns, lines = _case(seed)
        ref = pyte_or_none(data, columns, lines)
        if ref is None or not displayable(ref):
            continue
        term = Terminal(columns, lines)
        term.feed(data)
        diff = screen_diff(term, ref)
        assert diff is None, f"seed {seed}: {diff}"
        compared += 1
    assert compared >= SEEDS // 8


@pytest.mark.parametrize("block", range(4))
def test_any_chunking_gives_the_same_state(block: int) -> None:
    for seed in range(block, SEEDS, 4):
        data, columns, lines = _case(seed)
        assert same_under_chunking(data, columns, lines, random.Random(seed * 7 + 1), [2, 5, 17, 300]), f"seed {seed}"


def test_one_byte_at_a_time() -> None:
    data, columns, lines = _case(12345)
    whole = Terminal(columns, lines)
    whole.feed(data)
    single = Terminal(columns, lines)
    for i in range(len(data)):
        single.feed(data[i : i + 1])
    assert state(single) == state(whole)


def test_the_fuzzer_exercises_the_fast_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guard against a fuzzer that silently only tests the slow path."""
    data, columns, lines = _case(3)
    term = Terminal(columns, lines)
    calls = {"bulk": 0}
    original = BulkScroll.scroll

    def counting(self: BulkScroll, block: str) -> None:
        calls["bulk"] += 1
        original(self, block)

    monkeypatch.setattr(BulkScroll, "scroll", counting)
    term.feed(data)
    assert calls["bulk"] > 0
    assert len(term.history) > 0
