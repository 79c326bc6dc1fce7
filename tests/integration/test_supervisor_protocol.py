"""A supervisor's attach protocol against broken peers (root): a client that sends garbage, a cut
frame, a bad RESIZE, an oversized length or a bad payload of any kind is dropped, alone; the
supervisor, its container and its other clients go on. A supervisor that breaks the protocol ends
`rustainer attach` with one line (125), not a traceback."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pexpect
import pytest

from helpers import CLI, inspect, wait_for

pytestmark = pytest.mark.root

# Frames the supervisor must refuse (each dropped its client); those marked cut end the connection
# half-way (the client shuts its side down after them).
BAD_CLIENT_FRAMES: dict[str, tuple[bytes, bool]] = {
    "garbage": (b"this is no frame at all\r\n" * 4, False),
    "cut header": (b"R\x00\x00", True),
    "cut payload": ((b"I" + (100).to_bytes(4, "big") + b"echo never"), True),
    "short RESIZE": (b"R" + (2).to_bytes(4, "big") + b"\x00\x18", False),
    "RESIZE too long": (b"R" + (5).to_bytes(4, "big") + b"\x00\x18\x00\x50\x00", False),
    "RESIZE too big": (b"R" + (4).to_bytes(4, "big") + b"\xff\xff\xff\xff", False),
    "oversized length": (b"I" + (0xFFFFFFFF).to_bytes(4, "big"), False),
    "INPUT over the limit": (b"I" + (2 << 20).to_bytes(4, "big") + b"x" * 65536, False),
    "HELLO without a mode": (b"H" + (0).to_bytes(4, "big"), False),
    "HELLO of an unknown mode": (b"H" + (5).to_bytes(4, "big") + b"x\x00\x18\x00\x50", False),
    "HELLO with a cut size": (b"H" + (3).to_bytes(4, "big") + b"r\x00\x18", False),
    "DETACH with a payload": (b"D" + (3).to_bytes(4, "big") + b"now", False),
    "a supervisor's kind": (b"O" + (2).to_bytes(4, "big") + b"hi", False),
    "EXIT from a client": (b"E" + (1).to_bytes(4, "big") + b"0", False),
    "RECORD with a bad payload": (b"C" + (1).to_bytes(4, "big") + b"x", False),
    "a REPLY from a client": (b"A" + (2).to_bytes(4, "big") + b"0x", False),
}


def connect(path: str) -> socket.socket:
    from rustainer.backend.supervisor import protocol as P

    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(10)
    with P.SocketPath(path) as short:
        sock.connect(short)
    return sock


def closed_by_peer(sock: socket.socket) -> bool:
    """Read (and forget) until the peer closes: True, or False if it keeps the connection open."""
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def wait_output(sock: socket.socket, marker: bytes) -> None:
    from rustainer.backend.supervisor import protocol as P

    decoder = P.Decoder(P.FROM_SUPERVISOR)
    seen = b""
    end = time.monotonic() + 10
    while marker not in seen:
        assert time.monotonic() < end, f"no {marker!r} in {seen[-300:]!r}"
        chunk = sock.recv(65536)
        assert chunk, "the supervisor closed a good client's connection"
        seen += b"".join(payload for kind, payload in decoder.feed(chunk) if kind == P.OUTPUT)


def test_a_broken_client_is_dropped_alone(cli, started, rroot: Path) -> None:
    from rustainer.backend.supervisor import protocol as P

    state = started("target", "sh")
    sup = state["state"]["supervisor_pid"]
    path = str(rroot / "containers" / state["id"] / "attach.sock")
    good = connect(path)
    try:
        good.sendall(P.hello(P.MODE_NONE))
        for case, (data, cut) in BAD_CLIENT_FRAMES.items():
            bad = connect(path)
            try:
                bad.sendall(P.hello(P.MODE_NONE, 24, 80) + data)
                if cut:
                    bad.shutdown(socket.SHUT_WR)
                assert closed_by_peer(bad), f"{case}: the client was not dropped"
            finally:
                bad.close()
            assert os.path.exists(f"/proc/{sup}"), f"{case}: the supervisor died"
        # The client that behaved is still served: its input reaches the shell, the output comes back.
        good.sendall(P.frame(P.INPUT, b"echo alive-$((6*7))\r"))
        wait_output(good, b"alive-42")
    finally:
        good.close()
    # The output was drained all along (it is in the log) and a new attach works.
    wait_for(lambda: "alive-42" in cli("logs", "target").stdout, what="the output in the log")
    attached = pexpect.spawn(CLI[0], [*CLI[1:], "attach", "target"], env=dict(os.environ), timeout=15,
                             dimensions=(24, 80))
    try:
        attached.sendline("echo again-$((7*7))")
        attached.expect("again-49")
        attached.send("\x10\x11")
        attached.expect(pexpect.EOF)
    finally:
        if attached.isalive():
            attached.kill(signal.SIGKILL)
        attached.close(force=True)
    assert attached.exitstatus == 0
    assert inspect(cli, "target")["state"]["status"] == "running"


@contextmanager
def fake_supervisor(path: str, send: bytes) -> Iterator[None]:
    """A supervisor that answers every client with ``send`` (the real one's socket put aside)."""
    from rustainer.backend.supervisor.shim import open_listener

    os.rename(path, path + ".real")
    listener = open_listener(path)
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        conns = []
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.recv(64)  # its HELLO
            conn.sendall(send)
            conns.append(conn)
        for conn in conns:
            conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        listener.close()
        os.replace(path + ".real", path)


@pytest.mark.parametrize("send", [
    b"Z" + (0).to_bytes(4, "big"),  # an unknown kind
    b"E" + (3).to_bytes(4, "big") + b"abc",  # an exit code that is no number
    b"E" + (0).to_bytes(4, "big"),  # nor is nothing
    b"E" + (4).to_bytes(4, "big") + b"1000",  # nor one over 255
    b"I" + (2).to_bytes(4, "big") + b"hi",  # a client's kind
    b"O" + (0xFFFFFFFF).to_bytes(4, "big"),  # an oversized length
], ids=["unknown-kind", "exit-no-number", "exit-empty", "exit-too-big", "client-kind", "oversized"])
def test_attach_to_a_supervisor_that_breaks_the_protocol_says_so(cli, started, rroot: Path, send: bytes) -> None:
    state = started("victim", "sh")
    path = str(rroot / "containers" / state["id"] / "attach.sock")
    with fake_supervisor(path, b"O" + (3).to_bytes(4, "big") + b"hi\n" + send):
        proc = cli("attach", "victim", timeout=20)
    assert proc.returncode == 125, (proc.returncode, proc.stderr)
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("rustainer: "), proc.stderr
    assert "protocol" in proc.stderr


def test_only_root_may_attach(cli, started, rroot: Path) -> None:
    """The supervisor checks its clients' credentials (SO_PEERCRED): one that is not uid 0 is let go
    at once, even past the socket's mode (loosened here for the test)."""
    import subprocess
    import sys

    state = started("guarded", "sh")
    folder = rroot / "containers" / state["id"]
    sock_path = folder / "attach.sock"
    # A non-root client that reaches the socket through a descriptor of its folder, opened by root.
    script = ("import os, socket, sys\n"
              "os.setgid(65534); os.setuid(65534)\n"
              "s = socket.socket(socket.AF_UNIX); s.settimeout(10)\n"
              "s.connect(f'/proc/self/fd/{sys.argv[1]}/attach.sock')\n"
              "try:\n"
              "    s.sendall(b'H\\x00\\x00\\x00\\x01r'); got = s.recv(100)\n"
              "except (BrokenPipeError, ConnectionResetError):\n"
              "    got = b''\n"
              "print('dropped' if got == b'' else 'served')\n")
    fd = os.open(folder, os.O_PATH | os.O_DIRECTORY)
    folder_mode = folder.stat().st_mode & 0o7777
    os.chmod(folder, folder_mode | 0o001)
    os.chmod(sock_path, 0o666)
    try:
        proc = subprocess.run([sys.executable, "-c", script, str(fd)], pass_fds=(fd,), capture_output=True,
                              text=True, timeout=20)
    finally:
        os.chmod(sock_path, 0o600)
        os.chmod(folder, folder_mode)
        os.close(fd)
    assert proc.stdout.strip() == "dropped", proc.stderr
    assert inspect(cli, "guarded")["state"]["status"] == "running"
