"""Terminal core benchmark, run by hand (not collected by pytest):

    .venv/bin/python tests/bench/bench_terminal.py [--size MB] [--chunk BYTES]

Prints MB/s for stock pyte 0.8.2 (Screen and HistoryScreen), this core and tmux (a detached
120x40 session consuming the same file) measured in the same run, with ratios, plus the
tracemalloc figure for a 120x40 screen holding 10,000 lines of scrollback.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1] / "integration" / "terminal"))

import pyte  # noqa: E402
from terminal_corpus import COLUMNS, LINES, corpus, gen_ansi, gen_plain, gen_redraw, tmux_server  # noqa: E402

from rustainer.backend.terminal import Terminal  # noqa: E402


def _rate(feed: Callable[[bytes], None], data: bytes, chunk: int, min_time: float = 1.0) -> float:
    """MB/s feeding ``data`` in ``chunk``-byte reads, repeated until ``min_time`` has passed."""
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    total, elapsed = 0, 0.0
    while elapsed < min_time:
        gc.collect()
        start = time.perf_counter()
        for c in chunks:
            feed(c)
        elapsed += time.perf_counter() - start
        total += len(data)
    return total / elapsed / 1e6


def core_rate(data: bytes, chunk: int) -> float:
    term = Terminal(COLUMNS, LINES, history=10000)
    return _rate(term.feed, data, chunk)


def pyte_rate(data: bytes, chunk: int, history: bool = False) -> float:
    screen = pyte.HistoryScreen(COLUMNS, LINES, history=10000) if history else pyte.Screen(COLUMNS, LINES)
    stream = pyte.ByteStream(screen)
    return _rate(stream.feed, data, chunk, min_time=0.5)


def tmux_rate(data: bytes) -> float | None:
    if shutil.which("tmux") is None:
        return None
    big = data * max(1, int(20e6 // len(data)))  # Long enough that session start-up is noise.
    with tmux_server() as server:
        elapsed = server.consume(big, COLUMNS, LINES, deadline=300)
        server.kill_session()
    return len(big) / elapsed / 1e6


def memory_mb() -> tuple[float, float, float]:
    """Traced memory of a 120x40 terminal after 12,000 coloured lines (10,000 kept as scrollback):
    as fed (scrollback partly kept as raw blocks), after the scrollback was read (every row
    expanded to its compact form), and for stock pyte's HistoryScreen holding the same."""
    data = gen_ansi(1_500_000)
    gc.collect()
    tracemalloc.start()
    term = Terminal(COLUMNS, LINES, history=10000)
    term.feed(data)
    fed, _ = tracemalloc.get_traced_memory()
    assert len(list(term.screen.history)) == 10000  # Reading the scrollback expands it.
    read, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del term
    gc.collect()
    tracemalloc.start()
    screen = pyte.HistoryScreen(COLUMNS, LINES, history=10000)
    stream = pyte.ByteStream(screen)
    for i in range(0, len(data), 4096):
        stream.feed(data[i : i + 4096])
    ref, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return fed / 1e6, read / 1e6, ref / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=float, default=2.0, help="MB per generated stream")
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--no-history-screen", action="store_true")
    args = parser.parse_args()
    size = int(args.size * 1e6)
    streams = {"plain (seq)": gen_plain(size), "ANSI (ls -lR)": gen_ansi(size), "redraw (htop)": gen_redraw(size)}
    recorded = corpus()
    if recorded:
        streams["recorded seq"] = recorded["seq"]
        streams["recorded ls"] = recorded["ls-color"]
        streams["recorded top"] = recorded["top"]
    header = f"{'stream':16} {'pyte':>8} {'pyteHist':>8} {'core':>8} {'tmux':>8} {'core/pyte':>10} {'core/tmux':>10}"
    print(f"MB/s, {COLUMNS}x{LINES}, {args.chunk}-byte reads, Python {sys.version.split()[0]}")
    print(header)
    print("-" * len(header))
    for name, data in streams.items():
        ref = pyte_rate(data[:400_000], args.chunk)
        hist = float("nan") if args.no_history_screen else pyte_rate(data[:200_000], args.chunk, history=True)
        core = core_rate(data, args.chunk)
        tmux = tmux_rate(data)
        tmux_s = f"{tmux:8.2f}" if tmux else f"{'n/a':>8}"
        ratio_t = f"{core / tmux:10.2f}" if tmux else f"{'n/a':>10}"
        print(f"{name:16} {ref:8.2f} {hist:8.2f} {core:8.2f} {tmux_s} {core / ref:9.1f}x {ratio_t}", flush=True)
    fed, read, ref = memory_mb()
    print(f"\nmemory (tracemalloc), {COLUMNS}x{LINES} + 10,000 lines of coloured scrollback: core {fed:.1f} MB "
          f"as fed, {read:.1f} MB once the scrollback is read; pyte HistoryScreen {ref:.1f} MB")


if __name__ == "__main__":
    main()
