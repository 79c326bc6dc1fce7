"""Stand-in supervisors for the dashboard's tests without containers (and without root): each serves
the attach protocol on a container's socket path, in the test's own event loop.

A client's HELLO gets a SNAPSHOT of the fake container's screen; its INPUT is recorded and echoed
back as OUTPUT (a line ended by Enter also gets a newline and the prompt again, as a shell's would);
RESIZE is recorded. ``write`` sends output to every attached client, as the program inside would.
"""

from __future__ import annotations

import asyncio
import json
import os

from rustainer.backend.supervisor import protocol as P
from rustainer.backend.terminal.terminal import Terminal


class FakeSupervisor:
    def __init__(self, path: str, name: str) -> None:
        self.path = path
        self.name = name
        self.prompt = f"{name}$ ".encode()
        self.screen = Terminal(80, 24, 100)
        self.screen.feed(self.prompt)
        self.typed = bytearray()  # every INPUT byte, in order
        self.sizes: list[tuple[int, int]] = []  # (columns, lines) of every HELLO and RESIZE
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with P.SocketPath(self.path) as path:  # (a deep temporary folder: bound through its descriptor)
            self.server = await asyncio.start_unix_server(self._serve, path)

    async def close(self) -> None:
        for writer in self.writers:
            writer.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    @property
    def size(self) -> tuple[int, int]:
        return self.sizes[-1] if self.sizes else (0, 0)

    def write(self, data: bytes) -> None:
        """Output of the program inside, to every client."""
        self.screen.feed(data)
        for writer in self.writers:
            if not writer.is_closing():
                writer.write(P.frame(P.OUTPUT, data))

    def _resize(self, rows: int, cols: int) -> None:
        if rows and cols:
            self.sizes.append((cols, rows))
            self.screen.resize(cols, rows)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = P.Decoder(P.FROM_CLIENT)
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                for kind, payload in decoder.feed(data):
                    if kind == P.HELLO:
                        _mode, rows, cols = P.parse_hello(payload)
                        self._resize(rows, cols)
                        writer.write(P.frame(P.SNAPSHOT, json.dumps(self.screen.snapshot()).encode()))
                        self.writers.append(writer)
                    elif kind == P.INPUT:
                        self.typed += payload
                        echo = payload.replace(b"\r", b"\r\n" + self.prompt)
                        self.write(echo)
                    elif kind == P.RESIZE:
                        self._resize(*P.parse_size(payload))
                    elif kind == P.DETACH:
                        return
        finally:
            if writer in self.writers:
                self.writers.remove(writer)
            writer.close()


async def start_supervisors(engine: object, names: list[str]) -> dict[str, FakeSupervisor]:
    """One stand-in supervisor for each of these containers of a FakeEngine, at its socket path."""
    out = {}
    for name in names:
        state = engine._find(name)  # type: ignore[attr-defined]
        sup = FakeSupervisor(engine.socket_path(state.id), name)  # type: ignore[attr-defined]
        await sup.start()
        out[name] = sup
    return out


class SupervisorThread:
    """Stand-in supervisors served by an event loop of their own, in a thread: for tests whose app
    runs in a loop the test does not control (snapshot tests). ``write`` is thread-safe."""

    def __init__(self, engine: object, names: list[str]) -> None:
        import threading

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.supervisors = asyncio.run_coroutine_threadsafe(start_supervisors(engine, names), self.loop).result(10)

    def write(self, name: str, data: bytes) -> None:
        self.loop.call_soon_threadsafe(self.supervisors[name].write, data)

    def close(self) -> None:
        async def close_all() -> None:
            for sup in self.supervisors.values():
                await sup.close()

        asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def fake_top(name: str, load: int) -> bytes:
    """A screen like busybox top's (alternate screen, a summary and a process table), the same every
    time for the same arguments: snapshot tests draw it."""
    lines = [f"Mem: {load * 1000 + 2048}K used, 1021020K free, 0K shrd, 124K buff, 5120K cached",
             f"CPU:  {load}.0% usr  1.0% sys  0.0% nic 9{9 - load}.0% idle  0.0% io  0.0% irq  0.0% sirq",
             f"Load average: 0.{load}0 0.05 0.01 2/120 {40 + load}",
             "\x1b[7m  PID  PPID USER     STAT   VSZ %VSZ CPU %CPU COMMAND                        \x1b[m"]
    procs = [("1", "0", "S", "1224", "sh"), ("2", "1", "R", "1228", "top"), (str(7 + load), "1", "S", "1220",
             f"{name}-worker")]
    for pid, ppid, stat, vsz, cmd in procs:
        lines.append(f"{pid:>5} {ppid:>5} root     {stat}     {vsz}  0.1   0  {load}.0 {cmd}")
    return b"\x1b[?1049h\x1b[H\x1b[2J" + "\r\n".join(lines).encode()
