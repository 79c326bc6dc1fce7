"""Recording a detached container's session as an asciicast v2 file (asciinema's format).

The supervisor already reads every byte the container writes to its terminal; when a client asks
(a RECORD frame: ``rustainer record start NAME``, the dashboard's ``R``) it also keeps that output,
timed, in ``containers/<id>/recording.cast`` until asked to stop or the container ends. The file
plays with ``asciinema play`` and exports with ``rustainer logs --asciicast FILE NAME``.

Why it costs little: no work per byte while the container writes. A read only appends the chunk
to the current event (reads less than ``COALESCE`` seconds apart share one, so a flood makes ~100
events a second, an interactive shell one per echo, as asciinema itself records); the events are
encoded and written (one decode, one JSON encode each, one write for all) when the supervisor has
nothing to read, as the terminal model is parsed behind the output, or once ``FLUSH_AFTER`` bytes
wait. The timestamps are those of the reads, whenever the events are written.

A recording starts with the current screen (the terminal core's repaint), so played back it shows
what the container showed when the recording began, not a blank terminal. It stops by itself past
``MAX_BYTES``, like the log's cap, so a forgotten recording of a flood cannot fill the disk.

The client side (``request``) is here too: a control connection that sends RECORD without a HELLO
(so no output flows to it), reads the REPLY and closes.
"""

from __future__ import annotations

import os
import time

from rustainer.backend.supervisor import protocol as P
from rustainer.backend.terminal import asciicast

TYPE_CHECKING = False
if TYPE_CHECKING:
    from rustainer.backend.container.state import ContainerState, StateStore

FILE_NAME = "recording.cast"
MAX_BYTES = 512 << 20  # a recording stops by itself when it reaches this size
COALESCE = 0.01  # seconds: reads closer than this to the start of an event join it
FLUSH_AFTER = 4 << 20  # bytes of output kept unwritten at most (the supervisor writes them when idle)
REPLY_TIMEOUT = 10.0


def recording_path(store: StateStore, cid: str) -> str:
    """Where the supervisor of container ``cid`` records (the last recording stays until ``rm``)."""
    return os.path.join(store.container_dir(cid), FILE_NAME)


class Recorder:
    """One recording in progress: output chunks are kept as they are read, in timed events, and
    written by ``flush`` (the supervisor calls it when idle, or when ``due``)."""

    __slots__ = ("path", "_fd", "_start", "_events", "_pending_bytes", "_decoder", "written", "full")

    def __init__(self, path: str, rows: int, cols: int, *, env: dict[str, str], title: str) -> None:
        self.path = path
        # A new file each time (a former recording is replaced); never through a symlink.
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        self._start = time.monotonic()
        self._events: list[tuple[float, list[bytes]]] = []  # (when the first read came, the reads)
        self._pending_bytes = 0
        self._decoder = asciicast.OutputDecoder()
        self.written = 0
        self.full = False  # reached MAX_BYTES: the supervisor stops it
        self._write(asciicast.header(cols, rows, int(time.time()), env=env, title=title))

    @property
    def pending(self) -> bool:
        return bool(self._events)

    @property
    def due(self) -> bool:
        """Enough waits that it should be written even though the container is still writing."""
        return self._pending_bytes >= FLUSH_AFTER

    def output(self, data: bytes) -> None:
        """A chunk of the container's output, as read (the hot path: a clock read and an append)."""
        now = time.monotonic()
        events = self._events
        if events and now - events[-1][0] < COALESCE:
            events[-1][1].append(data)
        else:
            events.append((now, [data]))
        self._pending_bytes += len(data)

    def flush(self, final: bool = False) -> None:
        """Write the events kept so far (``final``: a character cut at the very end is completed)."""
        events, self._events = self._events, []
        self._pending_bytes = 0
        lines = []
        for index, (when, chunks) in enumerate(events):
            last = final and index == len(events) - 1
            text = self._decoder.decode(chunks[0] if len(chunks) == 1 else b"".join(chunks), last)
            if text:
                lines.append(asciicast.output_event(when - self._start, text))
        if final and not events:
            text = self._decoder.decode(b"", True)
            if text:
                lines.append(asciicast.output_event(time.monotonic() - self._start, text))
        if lines:
            self._write(b"".join(lines))

    def resize(self, rows: int, cols: int) -> None:
        self.flush()
        self._write(asciicast.resize_event(time.monotonic() - self._start, cols, rows))

    def close(self) -> None:
        try:
            self.flush(final=True)
        finally:
            os.close(self._fd)

    def _write(self, line: bytes) -> None:
        view = memoryview(line)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self.written += len(line)
        if self.written >= MAX_BYTES:
            self.full = True


def request(store: StateStore, state: ContainerState, on: bool) -> str:
    """Ask the container's supervisor to start (``on``) or stop recording; -> the recording's path.
    ContainerStateError when it cannot (not running, foreground, a supervisor that refuses)."""
    import select

    from rustainer.backend.errors import ContainerStateError, ProtocolError
    from rustainer.backend.supervisor.client import connect

    sock = connect(store, state)
    try:
        sock.sendall(P.frame(P.RECORD, b"1" if on else b"0"))
        decoder = P.Decoder(P.FROM_SUPERVISOR)
        end = time.monotonic() + REPLY_TIMEOUT
        while True:
            left = end - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                raise ContainerStateError(f"the supervisor of {state.name} did not answer", container=state.name)
            data = sock.recv(65536)
            if not data:
                raise ContainerStateError(
                    f"the supervisor of {state.name} cannot record (it runs an older rustainer: "
                    "restart the container to record it)", container=state.name)
            try:
                frames = decoder.feed(data)
            except ProtocolError as err:
                raise ProtocolError(f"the supervisor of {state.name} broke the attach protocol: {err}",
                                    container=state.name) from None
            for kind, payload in frames:
                if kind == P.REPLY:
                    ok, message = P.parse_reply(payload)
                    if not ok:
                        raise ContainerStateError(f"{state.name}: {message}", container=state.name)
                    return message
    except OSError as err:
        raise ContainerStateError(f"lost the connection to the supervisor of {state.name}: {err.strerror}",
                                  container=state.name) from err
    finally:
        sock.close()
