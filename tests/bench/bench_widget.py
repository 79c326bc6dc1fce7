"""TerminalPane benchmark, run by hand (not collected by pytest):

    .venv/bin/python tests/bench/bench_widget.py [--columns 120] [--lines 40] [--repeat 5]

Headless (Textual's run_test), one pane filling the screen, fed by output recorded beforehand
(``seq 1 2000000``; coloured ``ls -lR``) through a stand-in supervisor socket (the dashboard's
path: the attach protocol) and through a local pty (``cat``), so the widget's cost is what is
measured. Each flood runs ``--repeat`` times, each time right after feeding the same bytes straight
into the terminal core, and the medians are shown (the machine may be busy with other work).
Reports:

- MB/s through the widget (link, protocol, slices, core, frames) against the core alone, and the
  ratio (goal >= 0.8); the CPU ratio is the same comparison in CPU time of the app's thread (what
  the widget itself costs, less disturbed by other work on the machine than the wall clock);
- frames drawn per second while the flood runs (goal >= 20), the longest time between two frames,
  and the event loop's worst lag then (what a key press or another widget would wait);
- keystroke echo latency (key event to the echoed character drawn) against a bare pty round trip
  through the same raw ``cat``, median and p99.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time

from textual import events
from textual.app import App, ComposeResult
from textual.strip import Strip

from rustainer.backend.terminal.terminal import Terminal
from rustainer.widgets.terminal_pane import TerminalPane


def record(argv: list[str], columns: int, lines: int) -> bytes:
    """A command's output as a terminal of this size would receive it (through a pty)."""
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 1 << 16)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait()
    os.close(master)
    return b"".join(chunks)


def core_time(data: bytes, columns: int, lines: int) -> tuple[float, float]:
    """(seconds, CPU seconds of this thread) to feed ``data`` straight into the terminal core."""
    term = Terminal(columns, lines, 10000)
    chunks = [data[i:i + 65536] for i in range(0, len(data), 65536)]
    gc.collect()
    start, cpu = time.perf_counter(), time.thread_time()
    for chunk in chunks:
        term.feed(chunk)
    term.display  # noqa: B018 - brings the lazy screen up to date, as a repaint would
    return time.perf_counter() - start, time.thread_time() - cpu


class CountingPane(TerminalPane):
    """Counts frames actually drawn (line 0 is redrawn by every frame of a scrolling flood) and
    remembers the cursor the last drawn frame showed."""

    def __init__(self) -> None:
        super().__init__()
        self.drawn = 0
        self.drawn_at: list[float] = []
        self.drawn_cursor: tuple[int, int] = (-1, -1)

    def render_line(self, y: int) -> Strip:
        if y == 0:
            self.drawn += 1
            self.drawn_at.append(time.perf_counter())
        cursor = self.terminal.cursor
        if y == cursor[1]:
            self.drawn_cursor = cursor
        return super().render_line(y)


class BenchApp(App[None]):
    CSS = "CountingPane { width: 1fr; height: 1fr; }"

    def __init__(self) -> None:
        super().__init__()
        self.exited = asyncio.Event()

    def compose(self) -> ComposeResult:
        yield CountingPane()

    def on_terminal_pane_exited(self, event: TerminalPane.Exited) -> None:
        self.exited.set()  # everything received was fed to the core


def spawn(argv: list[str], raw: bool = False) -> tuple[int, int]:
    """``raw``: no output processing, so recorded CR LF stay CR LF (not CR CR LF)."""
    import tty

    master, slave = os.openpty()
    if raw:
        tty.setraw(slave)
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    return master, proc.pid


FAKE_SUPERVISOR = """
import json, os, socket, sys
from rustainer.backend.supervisor import protocol as P
from rustainer.backend.terminal.terminal import Terminal
path, data_path, cols, lines = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
listener = socket.socket(socket.AF_UNIX)
listener.bind(path)
listener.listen(1)
print("ready", flush=True)
conn, _ = listener.accept()
decoder = P.Decoder(P.FROM_CLIENT)  # (the client's HELLO)
while not decoder.feed(conn.recv(65536)):
    pass
conn.sendall(P.frame(P.SNAPSHOT, json.dumps(Terminal(cols, lines).snapshot()).encode()))
data = open(data_path, "rb").read()
for i in range(0, len(data), 65536):
    conn.sendall(P.frame(P.OUTPUT, data[i:i + 65536]))
conn.sendall(P.frame(P.EXIT, b"0"))
conn.close()
"""


def transport_time(path: str) -> float:
    """Seconds for the bytes to cross a raw pty with nothing else done to them."""
    master, pid = spawn(["cat", path], raw=True)
    start = time.perf_counter()
    while True:
        try:
            if not os.read(master, 1 << 16):
                break
        except OSError:
            break
    elapsed = time.perf_counter() - start
    os.waitpid(pid, 0)
    os.close(master)
    return elapsed


async def flood(path: str, columns: int, lines: int, via: str = "pty") -> tuple[float, float, float, float, float]:
    """(seconds, CPU seconds of the app's thread, frames drawn per second, longest time between two
    frames in ms, worst loop lag in ms) for ``cat path`` in a pane, through a pty or a stand-in
    supervisor socket. Frames per second are counted over the flood itself: from the first frame
    drawn after the attach to the last."""
    app = BenchApp()
    async with app.run_test(size=(columns, lines)) as pilot:
        pane = app.query_one(CountingPane)
        pane.focus()
        await pilot.pause()
        exited = app.exited = asyncio.Event()
        lags: list[float] = []
        stop = False

        async def probe() -> None:
            while not stop:
                t = time.perf_counter()
                await asyncio.sleep(0.005)
                lags.append(time.perf_counter() - t - 0.005)

        probe_task = asyncio.create_task(probe())
        server = None
        if via == "pty":
            master, pid = spawn(["cat", path], raw=True)
        else:
            sock = os.path.join(os.path.dirname(path), "bench.sock")
            server = subprocess.Popen([sys.executable, "-c", FAKE_SUPERVISOR, sock, path, str(columns),
                                       str(lines)], stdout=subprocess.PIPE, text=True)
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        start, cpu = time.perf_counter(), time.thread_time()
        if server is None:
            await pane.attach_pty(master, pid=pid)
        else:
            await pane.attach_socket(sock)
        await exited.wait()
        elapsed, cpu = time.perf_counter() - start, time.thread_time() - cpu
        await pilot.pause()
        stop = True
        await probe_task
        drawn = [t for t in pane.drawn_at if start < t <= start + elapsed]
        gaps = [b - a for a, b in zip(drawn, drawn[1:], strict=False)]
        fps = (len(drawn) - 1) / (drawn[-1] - drawn[0]) if len(drawn) > 1 and drawn[-1] > drawn[0] else 0.0
        if server is not None:
            server.wait()
            os.unlink(sock)
        return elapsed, cpu, fps, max(gaps, default=elapsed) * 1000, max(lags) * 1000 if lags else 0.0


def bare_latency(samples: int) -> list[float]:
    master, pid = spawn(["sh", "-c", "stty raw -echo; exec cat"])
    time.sleep(0.3)  # let stty take effect before the first byte (a benchmark, not a test)
    out = []
    for i in range(samples):
        byte = bytes([ord("a") + i % 26])
        t = time.perf_counter()
        os.write(master, byte)
        got = b""
        while byte not in got:
            got += os.read(master, 1024)
        out.append(time.perf_counter() - t)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    os.close(master)
    return out


async def widget_latency(samples: int, columns: int, lines: int) -> list[float]:
    app = BenchApp()
    out: list[float] = []
    async with app.run_test(size=(columns, lines)) as pilot:
        pane = app.query_one(CountingPane)
        pane.focus()
        await pilot.pause()
        master, pid = spawn(["sh", "-c", "stty raw -echo; exec cat"])
        await pane.attach_pty(master, pid=pid)
        await asyncio.sleep(0.3)
        for i in range(samples):
            key = "enter" if i % 40 == 39 else chr(ord("a") + i % 26)
            before = pane.terminal.cursor
            t = time.perf_counter()
            pane.post_message(events.Key(key, "\r" if key == "enter" else key))
            while pane.drawn_cursor == before or pane.terminal.cursor == before:
                await asyncio.sleep(0)
            out.append(time.perf_counter() - t)
            await asyncio.sleep(0.005)
        os.kill(pid, 9)
        await pilot.pause(0.2)
    return out


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--columns", type=int, default=120)
    parser.add_argument("--lines", type=int, default=40)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5,
                        help="runs of each flood, each with its own core run right before (medians shown)")
    args = parser.parse_args()
    cols, lines = args.columns, args.lines
    inputs = {
        "seq 1 2000000": record(["seq", "1", "2000000"], cols, lines),
        "ls -lR --color": record(["ls", "-lR", "--color=always", "/usr/share", "/usr/lib"], cols, lines),
    }
    print(f"pane {cols}x{lines} (headless), Python {sys.version.split()[0]}, medians of {args.repeat} runs "
          "(ratio: of each run to the core run just before it)")
    print(f"{'input':<16}{'via':<7}{'MB':>6}{'core MB/s':>11}{'link MB/s':>11}{'pane MB/s':>11}{'ratio':>7}"
          f"{'CPU ratio':>11}{'frames/s':>10}{'max gap ms':>12}{'max lag ms':>12}")
    median = statistics.median
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in inputs.items():
            path = os.path.join(tmp, "out")
            with open(path, "wb") as f:
                f.write(data)
            mb = len(data) / 1e6
            runs: dict[str, list[tuple[float, ...]]] = {"socket": [], "pty": []}
            for _ in range(args.repeat):
                for via in ("socket", "pty"):
                    core_s, core_cpu = core_time(data, cols, lines)
                    link = mb / transport_time(path) if via == "pty" else float("nan")
                    elapsed, cpu, fps, gap, lag = asyncio.run(flood(path, cols, lines, via))
                    core, pane = mb / core_s, mb / elapsed
                    runs[via].append((core, link, pane, pane / core, core_cpu / cpu, fps, gap, lag))
            for via, results in runs.items():
                core, link, pane, ratio, cpu_ratio, fps, gap, lag = (
                    median(column) for column in zip(*results, strict=True))
                print(f"{name:<16}{via:<7}{mb:>6.1f}{core:>11.1f}{link:>11.1f}{pane:>11.1f}{ratio:>7.2f}"
                      f"{cpu_ratio:>11.2f}{fps:>10.1f}{gap:>12.0f}{lag:>12.1f}")
    bare = bare_latency(args.samples)
    widget = asyncio.run(widget_latency(args.samples, cols, lines))
    print(f"\n{'echo latency':<16}{'median ms':>11}{'p99 ms':>9}")
    print(f"{'bare pty':<16}{pct(bare, 0.5):>11.2f}{pct(bare, 0.99):>9.2f}")
    print(f"{'pane (drawn)':<16}{pct(widget, 0.5):>11.2f}{pct(widget, 0.99):>9.2f}")


if __name__ == "__main__":
    main()
