"""Split view throughput against the single pane, run by hand (not collected by pytest):

    .venv/bin/python tests/bench/bench_split.py [--columns 160] [--lines 48] [--repeat 3]

Headless (Textual's run_test), fed by ``seq 1 1000000`` recorded beforehand, through stand-in
supervisor sockets (the dashboard's path: the attach protocol; see bench_widget.py). Three cases,
each run ``--repeat`` times, medians shown:

- single: one pane filling the window, one flood (the baseline);
- split, one flooding: the same flood in the left pane of a side-by-side split, the right pane
  showing an idle session;
- split, both flooding: the same flood into both panes at once (MB/s counts both).

Reports MB/s, the ratio to the single pane, frames per second of the flooding pane(s) and the
event loop's worst stall.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time

from textual.app import App, ComposeResult

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_widget import FAKE_SUPERVISOR, record  # noqa: E402

from rustainer.widgets.split_view import SplitView  # noqa: E402
from rustainer.widgets.terminal_pane import TerminalPane  # noqa: E402


class BenchApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.ended: dict[int, asyncio.Event] = {}  # id(pane) -> its session ended (everything fed)

    def on_terminal_pane_exited(self, event: TerminalPane.Exited) -> None:
        if id(event.pane) in self.ended:
            self.ended[id(event.pane)].set()


class SingleApp(BenchApp):
    CSS = "TerminalPane { width: 1fr; height: 1fr; }"

    def compose(self) -> ComposeResult:
        yield TerminalPane(id="one")


class SplitApp(BenchApp):
    def compose(self) -> ComposeResult:
        yield SplitView(id="split")


def serve(path: str, sock: str, columns: int, lines: int) -> subprocess.Popen[str]:
    server = subprocess.Popen([sys.executable, "-c", FAKE_SUPERVISOR, sock, path, str(columns), str(lines)],
                              stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    return server


async def flood(case: str, path: str, columns: int, lines: int, mb: float) -> tuple[float, float, float]:
    """(MB/s, frames/s of each flooding pane, worst loop stall in ms)."""
    app: BenchApp = SingleApp() if case == "single" else SplitApp()
    tmp = os.path.dirname(path)
    async with app.run_test(size=(columns, lines)) as pilot:
        if case == "single":
            panes = [app.query_one(TerminalPane)]
        else:
            split = app.query_one(SplitView)
            panes = [await split.add_pane("left"), await split.add_pane("right")]
        await pilot.pause()
        flooding = panes if case == "both" else panes[:1]
        ended = app.ended = {id(p): asyncio.Event() for p in flooding}
        servers = []
        for i, pane in enumerate(flooding):
            size = pane.content_size
            sock = os.path.join(tmp, f"s{i}.sock")
            servers.append((serve(path, sock, size.width, size.height), sock))
        frames = [p.frames for p in flooding]
        worst = 0.0
        stop = False

        async def probe() -> None:
            nonlocal worst
            while not stop:
                t = time.perf_counter()
                await asyncio.sleep(0.005)
                worst = max(worst, time.perf_counter() - t - 0.005)

        probing = asyncio.create_task(probe())
        start = time.perf_counter()
        await asyncio.gather(*(pane.attach_socket(sock) for pane, (_server, sock) in zip(flooding, servers,
                                                                                          strict=True)))
        for event in ended.values():
            await event.wait()
        elapsed = time.perf_counter() - start
        stop = True
        await probing
        fps = statistics.mean((p.frames - f) / elapsed for p, f in zip(flooding, frames, strict=True))
        for server, sock in servers:
            server.wait()
            os.unlink(sock)
    return mb * len(flooding) / elapsed, fps, worst * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--columns", type=int, default=160)
    parser.add_argument("--lines", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = record(["seq", "1", "1000000"], args.columns, args.lines)
    mb = len(data) / 1e6
    results: dict[str, list[tuple[float, float, float]]] = {"single": [], "one": [], "both": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "out")
        with open(path, "wb") as f:
            f.write(data)
        for _ in range(args.repeat):
            for case in results:  # interleaved, so that the machine's load hits every case alike
                results[case].append(asyncio.run(flood(case, path, args.columns, args.lines, mb)))
    single = statistics.median(r[0] for r in results["single"])
    print(f"window {args.columns}x{args.lines} (headless), seq 1 1000000 ({mb:.1f} MB) per flood, "
          f"medians of {args.repeat} runs")
    print(f"{'case':<26}{'MB/s':>8}{'x single':>10}{'frames/s':>10}{'worst stall ms':>16}")
    labels = {"single": "single pane", "one": "split, one flooding", "both": "split, both flooding"}
    for case, runs in results.items():
        rate, fps, stall = (statistics.median(column) for column in zip(*runs, strict=True))
        print(f"{labels[case]:<26}{rate:>8.1f}{rate / single:>10.2f}{fps:>10.1f}{stall:>16.1f}")


if __name__ == "__main__":
    main()
