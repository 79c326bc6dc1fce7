"""The attach protocol between a container's supervisor and its clients: small typed frames.

A frame is one type byte, a 4-byte big-endian length and the payload. Clients send HELLO first
(what they want to see and their window size), then INPUT, RESIZE and DETACH; the supervisor sends
OUTPUT (pty bytes), SNAPSHOT (the terminal core's compact state, JSON) and EXIT (the exit code).
A control client sends RECORD ("1" start, "0" stop recording the session) without a HELLO, so no
output flows to it, and gets one REPLY ("0" and the recording's path, or "1" and an error).

Each side decodes with the kinds it accepts, and every frame is checked (kind, length, payload)
before it is used: a peer that breaks the protocol gets ProtocolError, and its connection is
dropped; the supervisor goes on serving the container and its other clients.
"""

from __future__ import annotations

import struct

from rustainer.backend.errors import ProtocolError

HELLO, INPUT, RESIZE, DETACH = b"H", b"I", b"R", b"D"
OUTPUT, SNAPSHOT, EXIT = b"O", b"S", b"E"
RECORD, REPLY = b"C", b"A"
# HELLO modes: a repaint stream for a plain terminal, a snapshot for the dashboard, or nothing.
MODE_REPAINT, MODE_SNAPSHOT, MODE_NONE = b"r", b"s", b"n"
MODES = (MODE_REPAINT, MODE_SNAPSHOT, MODE_NONE)

_HEADER = struct.Struct(">cI")
_SIZE = struct.Struct(">HH")
MAX_FRAME = 16 << 20  # OUTPUT and SNAPSHOT (a repaint or a snapshot with 10,000 lines of scrollback)
MAX_INPUT = 1 << 20  # one INPUT frame; the supervisor queues at most this much for the pty anyway
MAX_SIZE = 4096  # rows or columns of a HELLO or RESIZE (0: unknown, leave the size alone)
NAMES = {HELLO: "HELLO", INPUT: "INPUT", RESIZE: "RESIZE", DETACH: "DETACH", OUTPUT: "OUTPUT",
         SNAPSHOT: "SNAPSHOT", EXIT: "EXIT", RECORD: "RECORD", REPLY: "REPLY"}

# What each side accepts: frame kind -> (shortest, longest) payload. Anything else is a broken peer.
FROM_CLIENT = {HELLO: (1, 1 + _SIZE.size), INPUT: (0, MAX_INPUT), RESIZE: (_SIZE.size, _SIZE.size),
               DETACH: (0, 0), RECORD: (1, 1)}
FROM_SUPERVISOR = {OUTPUT: (0, MAX_FRAME), SNAPSHOT: (2, MAX_FRAME), EXIT: (1, 3), REPLY: (1, 4096)}


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    return _HEADER.pack(kind, len(payload)) + payload


def hello(mode: bytes, rows: int = 0, cols: int = 0) -> bytes:
    """rows/cols of 0: leave the container's window size alone (e.g. a second, smaller client)."""
    return frame(HELLO, mode + _SIZE.pack(rows, cols))


def resize(rows: int, cols: int) -> bytes:
    return frame(RESIZE, _SIZE.pack(rows, cols))


def parse_size(payload: bytes) -> tuple[int, int]:
    """(rows, columns) of a RESIZE (or the end of a HELLO); ProtocolError unless well-formed."""
    if len(payload) != _SIZE.size:
        raise ProtocolError(f"a window size of {len(payload)} bytes (expected {_SIZE.size})")
    rows, cols = _SIZE.unpack(payload)
    if rows > MAX_SIZE or cols > MAX_SIZE:
        raise ProtocolError(f"a window size of {rows}x{cols} is over the limit ({MAX_SIZE})")
    return rows, cols


def parse_hello(payload: bytes) -> tuple[bytes, int, int]:
    """(mode, rows, columns) of a HELLO; the size is optional (0, 0)."""
    mode = payload[:1]
    if mode not in MODES:
        raise ProtocolError(f"unknown HELLO mode {mode!r}")
    if len(payload) == 1:
        return mode, 0, 0
    return (mode, *parse_size(payload[1:]))


def parse_exit(payload: bytes) -> int:
    """The exit code an EXIT frame carries: 0-255 in decimal."""
    if not (payload.isdigit() and int(payload) <= 255):
        raise ProtocolError(f"an exit code of {payload[:8]!r}")
    return int(payload)


def reply(ok: bool, message: str) -> bytes:
    """A REPLY frame (one line, cut to fit)."""
    return frame(REPLY, (b"0" if ok else b"1") + message.encode(errors="replace")[:4000])


def parse_reply(payload: bytes) -> tuple[bool, str]:
    """(ok, message) of a REPLY."""
    if payload[:1] not in (b"0", b"1"):
        raise ProtocolError(f"a reply of {payload[:8]!r}")
    return payload[:1] == b"0", payload[1:].decode(errors="replace")


def _check_payload(kind: bytes, payload: bytes) -> None:
    if kind == RECORD:
        if payload not in (b"0", b"1"):
            raise ProtocolError(f"a RECORD frame of {payload!r}")
    elif kind == REPLY:
        parse_reply(payload)
    elif kind == RESIZE:
        parse_size(payload)
    elif kind == HELLO:
        parse_hello(payload)
    elif kind == EXIT:
        parse_exit(payload)


class Decoder:
    """Feed it bytes in any chunking; it yields complete (kind, payload) frames, each of a kind
    ``accepts`` lists (FROM_CLIENT or FROM_SUPERVISOR), of a length in its bounds and with a
    well-formed payload (sizes, modes, exit codes; a SNAPSHOT's JSON is its reader's to check).
    Anything else raises ProtocolError as soon as it shows (a bad header before its payload
    arrives): the connection is then broken for good, and its reader drops it."""

    __slots__ = ("_buf", "_accepts")

    def __init__(self, accepts: dict[bytes, tuple[int, int]]) -> None:
        self._buf = bytearray()
        self._accepts = accepts

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        self._buf += data
        frames: list[tuple[bytes, bytes]] = []
        buf = self._buf
        accepts = self._accepts
        pos = 0
        try:
            while len(buf) - pos >= _HEADER.size:
                kind, length = _HEADER.unpack_from(buf, pos)
                bounds = accepts.get(kind)
                if bounds is None:
                    raise ProtocolError(f"unexpected frame kind {kind!r}")
                if not bounds[0] <= length <= bounds[1]:
                    raise ProtocolError(f"a {NAMES[kind]} frame of {length} bytes (allowed: "
                                        f"{bounds[0]}-{bounds[1]})")
                end = pos + _HEADER.size + length
                if len(buf) < end:
                    break
                payload = bytes(buf[pos + _HEADER.size:end])
                _check_payload(kind, payload)
                frames.append((kind, payload))
                pos = end
        except ProtocolError:
            buf.clear()
            raise
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
