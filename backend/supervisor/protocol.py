"""The attach protocol between a container's supervisor and its clients: small typed frames.

A frame is one type byte, a 4-byte big-endian length and the payload. Clients send HELLO first
(what they want to see and their window size), then INPUT, RESIZE and DETACH; the supervisor sends
OUTPUT (pty bytes), SNAPSHOT (the terminal core's compact state, JSON) and EXIT (the exit code).
"""

from __future__ import annotations

import struct

from rustainer.backend.errors import ProtocolError

HELLO, INPUT, RESIZE, DETACH = b"H", b"I", b"R", b"D"
OUTPUT, SNAPSHOT, EXIT = b"O", b"S", b"E"
# HELLO modes: a repaint stream for a plain terminal, a snapshot for the dashboard, or nothing.
MODE_REPAINT, MODE_SNAPSHOT, MODE_NONE = b"r", b"s", b"n"

_HEADER = struct.Struct(">cI")
MAX_FRAME = 16 << 20


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    return _HEADER.pack(kind, len(payload)) + payload


def hello(mode: bytes, rows: int = 0, cols: int = 0) -> bytes:
    """rows/cols of 0: leave the container's window size alone (e.g. a second, smaller client)."""
    return frame(HELLO, mode + struct.pack(">HH", rows, cols))


def resize(rows: int, cols: int) -> bytes:
    return frame(RESIZE, struct.pack(">HH", rows, cols))


def parse_size(payload: bytes) -> tuple[int, int]:
    rows, cols = struct.unpack(">HH", payload[:4])
    return rows, cols



class Decoder:
    """Feed it bytes in any chunking; it yields complete (kind, payload) frames."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        self._buf += data
        frames: list[tuple[bytes, bytes]] = []
        buf = self._buf
        pos = 0
        while len(buf) - pos >= _HEADER.size:
            kind, length = _HEADER.unpack_from(buf, pos)
            if length > MAX_FRAME:
                raise ProtocolError(f"frame of {length} bytes is over the limit")
            end = pos + _HEADER.size + length
            if len(buf) < end:
                break
            frames.append((kind, bytes(buf[pos + _HEADER.size:end])))
            pos = end
        del buf[:pos]
        return frames


class SocketPath:
    """A unix socket path short enough for sun_path (108 bytes), however deep RUSTAINER_ROOT is.

    Long paths go through a descriptor of their folder: ``/proc/self/fd/N/attach.sock``.
    """

    def __init__(self, path: str) -> None:
        import os

        self._fd = -1
        self.path = path
        if len(os.fsencode(path)) >= 100:
            self._fd = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            self.path = f"/proc/self/fd/{self._fd}/{os.path.basename(path)}"

    def __enter__(self) -> str:
        return self.path

    def __exit__(self, *_exc: object) -> None:
        import os

        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
