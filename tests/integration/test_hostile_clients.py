"""A supervisor against hostile attach clients (issue 14; frame validation and SO_PEERCRED are in
test_supervisor_protocol.py): clients that never read while the container floods its output, and
thousands of connections opened and dropped, one after another and in concurrent bursts. The
supervisor never dies of a client and never holds the container up for one; the clients that behave
are served all along; afterwards its descriptors and memory are back where they were."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import psutil
import pytest

from helpers import ps, wait_for

pytestmark = pytest.mark.root

FLOOD_LINES = 2_000_000  # `seq 1 2000000`: 14.9 MB, more than a client may have queued (8 MB)


def connect(path: Path, *, rcvbuf: int | None = None) -> socket.socket:
    from rustainer.backend.supervisor import protocol as P

    def attempt() -> socket.socket | None:
        sock = socket.socket(socket.AF_UNIX)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(20)
        try:
            with P.SocketPath(str(path)) as short:
                sock.connect(short)
        except BlockingIOError:  # the listen backlog is full: the supervisor has not taken them yet
            sock.close()
            return None
        return sock

    return wait_for(attempt, timeout=20, what="room in the supervisor's listen backlog", interval=0.001)  # type: ignore[no-any-return]


class Reader(threading.Thread):
    """A client that reads everything (OUTPUT payloads kept, to look for markers)."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        from rustainer.backend.supervisor import protocol as P

        self.sock = sock
        self.decoder = P.Decoder(P.FROM_SUPERVISOR)
        self.output = bytearray()
        self.closed = False
        self.lock = threading.Lock()

    def run(self) -> None:
        from rustainer.backend.supervisor import protocol as P

        try:
            while chunk := self.sock.recv(1 << 20):
                with self.lock:
                    for kind, payload in self.decoder.feed(chunk):
                        if kind == P.OUTPUT:
                            self.output += payload
        except OSError:
            pass
        self.closed = True

    def seen(self, marker: bytes) -> bool:
        with self.lock:
            return marker in self.output[-(1 << 20):]  # the newest output (the flood is 15 MB)


def say(sock: socket.socket, reader: Reader, word: str) -> None:
    """Type ``echo`` into the shell through ``sock``; its output must come back to ``reader``."""
    from rustainer.backend.supervisor import protocol as P

    sock.sendall(P.frame(P.INPUT, f"echo {word}-$((6*7))\r".encode()))
    wait_for(lambda: reader.seen(f"{word}-42".encode()), timeout=20, what=f"{word} through a good client")


def test_clients_that_never_read_are_dropped_alone_during_a_flood(cli, started, rroot: Path) -> None:
    from rustainer.backend.supervisor import protocol as P

    state = started("flood", "sh", "-c", f"read go; seq 1 {FLOOD_LINES}; echo FLOOD-END; read stop")
    sup = psutil.Process(state["state"]["supervisor_pid"])
    path = rroot / "containers" / state["id"] / "attach.sock"
    # Ten clients that say HELLO and then never read (tiny receive buffers), one that reads it all.
    stuck = [connect(path, rcvbuf=4096) for _ in range(10)]
    peak_before = vm_hwm(sup.pid)
    good = connect(path)
    reader = Reader(good)
    try:
        for sock in stuck:
            sock.sendall(P.hello(P.MODE_NONE))
        reader.start()
        good.sendall(P.hello(P.MODE_NONE) + P.frame(P.INPUT, b"\n"))  # in its output from the start; go
        # The container is never held up: the flood ends, and the good client gets all of it.
        wait_for(lambda: reader.seen(b"FLOOD-END"), timeout=90, what="the flood's end at the good client")
        assert reader.output.count(b"\n") >= FLOOD_LINES and f"\n{FLOOD_LINES}\r\n".encode() in reader.output
        # Each stuck client was dropped: it reads what was on its way, then the end of the stream.
        for sock in stuck:
            received = 0
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
            assert received < 12_000_000, "a client that never read was served the whole flood"
        # What the clients held together stayed bounded (32 MB), not ten times the client limit.
        grown = vm_hwm(sup.pid) - peak_before
        assert grown < 56 << 20, f"the supervisor's peak memory grew by {grown >> 20} MB"
        # The supervisor goes on serving: the good client's input reaches the shell.
        good.sendall(P.frame(P.INPUT, b"x\r"))  # ends `read stop`; the shell exits, so does the container
        wait_for(lambda: ps(cli)["flood"]["status"] == "exited", timeout=20, what="the container's end")
        wait_for(lambda: not sup.is_running() or sup.status() == psutil.STATUS_ZOMBIE, what="the supervisor's end")
        assert ps(cli)["flood"]["exit_code"] == 0
    finally:
        for sock in stuck:
            sock.close()
        good.close()


def vm_hwm(pid: int) -> int:
    """The process's peak resident memory so far, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_clients_that_never_read_never_hold_the_supervisor_up(cli, started, rroot: Path) -> None:
    """Clients with output queued that never read, then ask to detach, or are still there when the
    container ends: the supervisor waits for none of them (it used to give each one a second,
    blocking: the container's output and every other client waited)."""
    from rustainer.backend.supervisor import protocol as P

    state = started("shell", "sh")
    sup = psutil.Process(state["state"]["supervisor_pid"])
    path = rroot / "containers" / state["id"] / "attach.sock"
    good = connect(path)
    reader = Reader(good)
    stuck = [connect(path, rcvbuf=4096) for _ in range(16)]
    try:
        good.sendall(P.hello(P.MODE_NONE))
        reader.start()
        for sock in stuck:
            sock.sendall(P.hello(P.MODE_NONE))
        # About 1 MB of output each stuck client cannot take: it stays queued for them.
        good.sendall(P.frame(P.INPUT, b"seq 1 150000; echo BATCH-$((6*7))\r"))
        wait_for(lambda: reader.seen(b"BATCH-42"), timeout=30, what="the batch at the good client")
        for sock in stuck[:8]:
            sock.sendall(P.frame(P.DETACH))
        begun = time.monotonic()
        say(good, reader, "after-detach")
        took = time.monotonic() - begun
        assert took < 4, f"eight clients detaching without reading held the supervisor up for {took:.1f} s"
        # The container ends with eight stuck clients still attached: the supervisor goes at once.
        good.sendall(P.frame(P.INPUT, b"exit\r"))
        begun = time.monotonic()
        wait_for(lambda: not sup.is_running() or sup.status() == psutil.STATUS_ZOMBIE, what="the supervisor's end")
        took = time.monotonic() - begun
        assert took < 4, f"the supervisor took {took:.1f} s to say goodbye to eight clients that never read"
        assert ps(cli)["shell"]["status"] == "exited"
    finally:
        for sock in stuck:
            sock.close()
        good.close()


def uss(proc: psutil.Process) -> int:
    return int(proc.memory_full_info().uss)


def test_thousands_of_connections_opened_and_dropped(cli, started, rroot: Path) -> None:
    """1,000 connections one after another (closed at once, after garbage, after a cut frame, after
    a HELLO, after a HELLO and unread output) and two bursts of 1,100 held open together then
    dropped (more than select() can watch, had the supervisor taken them all): a client that
    behaves is served after each burst, and afterwards the supervisor's descriptors are exactly
    as before and its memory within 1 MB."""
    from rustainer.backend.supervisor import protocol as P

    state = started("target", "sh")
    sup = psutil.Process(state["state"]["supervisor_pid"])
    path = rroot / "containers" / state["id"] / "attach.sock"
    good = connect(path)
    reader = Reader(good)
    good.sendall(P.hello(P.MODE_REPAINT, 24, 80))
    reader.start()
    try:
        say(good, reader, "warm")
        fds, memory = sup.num_fds(), uss(sup)
        variants = (b"", b"garbage that is no frame\r\n", b"H\x00\x00", P.hello(P.MODE_NONE),
                    P.hello(P.MODE_REPAINT, 24, 80))
        started_at = time.monotonic()
        for i in range(1000):
            sock = connect(path)
            if variants[i % 5]:
                try:
                    sock.sendall(variants[i % 5])
                except OSError:
                    pass  # dropped already (garbage)
            sock.close()
        say(good, reader, "sequential")
        for burst in range(2):
            held = []
            for i in range(1100):
                sock = connect(path)
                if i % 2:
                    try:
                        sock.sendall(P.hello(P.MODE_NONE))
                    except OSError:
                        pass  # made room for newer ones already
                held.append(sock)
            for sock in held:
                sock.close()
            say(good, reader, f"burst{burst}")
        took = time.monotonic() - started_at
        assert took < 60, f"3200 connections took {took:.0f} s"
        wait_for(lambda: sup.num_fds() == fds, timeout=20, what=f"the supervisor's descriptors back to {fds}")
        wait_for(lambda: uss(sup) <= memory + 1024 * 1024, timeout=20,
                 what=f"the supervisor's memory back to {memory // 1024} KB (now {uss(sup) // 1024} KB)")
        # A new client is served as the first one was.
        late = connect(path)
        late_reader = Reader(late)
        late.sendall(P.hello(P.MODE_NONE))
        late_reader.start()
        try:
            say(late, late_reader, "late")
        finally:
            late.close()
        assert sup.is_running() and ps(cli)["target"]["status"] == "running"
    finally:
        good.close()
