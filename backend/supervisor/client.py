"""Clients of a supervisor: connect, and ``rustainer attach`` in a plain terminal.

Detaching is a key sequence (docker's default Ctrl-P Ctrl-Q, or ``--detach-keys``). A prefix of it
that is not followed by the rest reaches the shell at once when the next key arrives, or after a
short pause when nothing follows, so Ctrl-P alone still works in the shell.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import struct

from rustainer.backend.errors import ContainerStateError, InvalidSpecError, ProtocolError
from rustainer.backend.supervisor import protocol as P

TYPE_CHECKING = False
if TYPE_CHECKING:
    from rustainer.backend.container.state import ContainerState, StateStore

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
PREFIX_TIMEOUT = 0.3  # seconds a detach-key prefix waits for the rest before it goes to the shell


def parse_detach_keys(spec: str) -> bytes:
    """docker's format: comma-separated ``ctrl-<x>`` or single characters (``ctrl-p,ctrl-q``)."""
    keys = bytearray()
    for item in spec.split(","):
        item = item.strip()
        if len(item) == 1:
            keys.append(ord(item))
        elif item.lower().startswith("ctrl-") and len(item) == 6 and (item[5].isalpha() or item[5] in "@[\\]^_"):
            keys.append(ord(item[5].upper()) & 0x1F)
        else:
            raise InvalidSpecError(f"invalid detach keys {spec!r}: use e.g. ctrl-p,ctrl-q")
    if not keys:
        raise InvalidSpecError("the detach key sequence cannot be empty")
    return bytes(keys)


def connect(store: StateStore, state: ContainerState) -> socket.socket:
    if state.status != "running":
        raise ContainerStateError(f"container {state.name} is not running ({state.status})", container=state.name)
    if not state.detached:
        raise ContainerStateError(
            f"container {state.name} runs in the foreground of another rustainer; only containers "
            "started with --detach can be attached")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        with P.SocketPath(store.socket_path(state.id)) as path:
            sock.connect(path)
    except OSError as err:
        sock.close()
        raise ContainerStateError(f"cannot reach the supervisor of {state.name}: {err.strerror}", container=state.name) from err
    return sock


class DetachMatcher:
    """Splits typed input into what goes to the shell and whether the detach sequence completed."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""  # a prefix of ``keys`` typed so far

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        out = bytearray()
        for byte in data:
            candidate = self.held + bytes([byte])
            if self.keys.startswith(candidate):
                if candidate == self.keys:
                    return bytes(out), True
                self.held = candidate
                continue
            out += self.held
            self.held = b""
            if self.keys.startswith(bytes([byte])):
                self.held = bytes([byte])
            else:
                out.append(byte)
        return bytes(out), False

    def flush(self) -> bytes:
        held, self.held = self.held, b""
        return held


def _window_size(fd: int) -> tuple[int, int]:
    import fcntl
    import termios

    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
        return rows, cols
    except OSError:
        return 0, 0


def attach(store: StateStore, state: ContainerState, detach_keys: bytes) -> int:
    """Attach our terminal to the container; returns its exit code, or 0 on detach."""
    sock = connect(store, state)
    interactive = os.isatty(0)
    rows, cols = _window_size(0) if interactive else (0, 0)
    sock.sendall(P.hello(P.MODE_REPAINT, rows, cols))
    saved = None
    if interactive:
        import termios
        import tty

        saved = termios.tcgetattr(0)
        tty.setraw(0, termios.TCSANOW)
    resized = [False]
    old_winch = signal.signal(signal.SIGWINCH, lambda *_: resized.__setitem__(0, True))
    matcher = DetachMatcher(detach_keys)
    decoder = P.Decoder(P.FROM_SUPERVISOR)
    brought = False  # the connection brought something (a repaint at least)
    stdin_open = True
    try:
        while True:
            if resized[0]:
                resized[0] = False
                _send(sock, P.resize(*_window_size(0)))
            watch = [sock] + ([0] if stdin_open else [])
            try:
                ready, _, _ = select.select(watch, [], [], PREFIX_TIMEOUT if matcher.held else None)
            except InterruptedError:
                continue
            if not ready and matcher.held:
                _send(sock, P.frame(P.INPUT, matcher.flush()))
                continue
            if sock in ready:
                try:
                    data = sock.recv(65536)
                except OSError:  # reset: the supervisor died with our input unread
                    data = b""
                if not data:
                    # Closed without an exit code: the supervisor let us go (we fell 8 MB behind)
                    # and goes on (attach again: its repaint shows the current screen), or is gone.
                    sock.close()
                    size = _window_size(0) if interactive else (0, 0)
                    # (a connection closed before it brought anything is not tried again: no loop)
                    again = attach_again(store, state, size if brought else None)
                    if isinstance(again, int):
                        return again
                    sock, decoder, brought = again, P.Decoder(P.FROM_SUPERVISOR), False
                    continue
                brought = True
                try:
                    frames = decoder.feed(data)
                except ProtocolError as err:
                    raise ProtocolError(f"the supervisor of {state.name} broke the attach protocol: {err}",
                                        container=state.name) from None
                for kind, payload in frames:
                    if kind == P.OUTPUT:
                        os.write(1, payload)
                    elif kind == P.EXIT:
                        return P.parse_exit(payload)
            if 0 in ready:
                data = os.read(0, 65536)
                if not data:
                    stdin_open = False
                    continue
                to_shell, detach = matcher.feed(data)
                if to_shell:
                    _send(sock, P.frame(P.INPUT, to_shell))
                if detach:
                    _send(sock, P.frame(P.DETACH))
                    _drain_until_closed(sock, decoder)
                    if interactive:
                        os.write(1, f"\r\nrustainer: detached from {state.name}\r\n".encode())
                    return 0
    finally:
        signal.signal(signal.SIGWINCH, old_winch)
        if saved is not None:
            import termios

            termios.tcsetattr(0, termios.TCSAFLUSH, saved)
        sock.close()


def _send(sock: socket.socket, data: bytes) -> None:
    """Send, or drop the data if the connection is gone: the next read tells how it ended."""
    try:
        sock.sendall(data)
    except OSError:
        pass


def attach_again(store: StateStore, state: ContainerState, size: tuple[int, int] | None) -> socket.socket | int:
    """A new connection (with a repaint) while the container and its supervisor run, unless ``size``
    is None; else the exit code to end with: the recorded one, or 125 (and a line on stderr) when
    there is none."""
    from rustainer.backend.container.liveness import owner_alive
    from rustainer.backend.container.state import RUNNING
    from rustainer.backend.errors import RustainerError

    try:
        current = store.load(state.id)
        if current.status != RUNNING:
            return current.exit_code if current.exit_code is not None else 125
        if size is not None and owner_alive(current):
            sock = connect(store, current)
            try:
                sock.sendall(P.hello(P.MODE_REPAINT, *size))
            except OSError:
                sock.close()
                raise
            return sock
    except (OSError, RustainerError):
        pass
    os.write(2, f"\r\nrustainer: lost the connection to the supervisor of {state.name}\r\n".encode())
    return 125


def _drain_until_closed(sock: socket.socket, decoder: P.Decoder) -> None:
    """Output already on its way is shown before we let go (the supervisor closes after DETACH)."""
    sock.settimeout(1.0)
    try:
        while data := sock.recv(65536):
            for kind, payload in decoder.feed(data):
                if kind == P.OUTPUT:
                    os.write(1, payload)
    except (OSError, ProtocolError):
        pass
