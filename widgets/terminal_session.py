"""A terminal session: one byte pipe (a detached container's supervisor socket, or a local pty) and
the terminal core it feeds, shown or not.

Output is read in asyncio callbacks and fed to the core in bounded slices whether or not anything
shows the session, so a session in the background stays current. Whoever shows it (a
:class:`~rustainer.widgets.terminal_pane.TerminalPane`) hears what changed through the
:class:`SessionListener` interface and reads the session through its public members only.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import os
import struct
import termios
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple, Protocol

from rustainer.backend.errors import ProtocolError
from rustainer.backend.supervisor import protocol as P
from rustainer.backend.terminal.terminal import Terminal
from rustainer.widgets.terminal_render import StripCache

FEED_SLICE = 64 << 10  # bytes fed to the core at once (big slices keep its bulk path busy)
FEED_BUDGET = 0.008  # seconds of feeding before the loop gets a turn
BACKLOG_LIMIT = 16 << 20  # unfed output kept at most (beyond it the oldest half is skipped)
READ_CHUNK = 64 << 10
SNAPSHOT_TIMEOUT = 30.0  # generous: a loaded 2-core machine, many containers starting at once


class SessionListener(Protocol):
    """What a session tells the one showing it (at most one at a time, see
    :meth:`TerminalSession.set_listener`). Called synchronously, from the event loop."""

    def session_output(self, session: TerminalSession) -> None:
        """Output was fed to the core (or the stream ended): lines may have changed."""

    def session_replaced(self, session: TerminalSession) -> None:
        """The core was replaced or resized (a restored snapshot, a new pty, a new window size):
        everything shown of it is stale."""

    def session_ended(self, session: TerminalSession) -> None:
        """The byte stream ended and all of it was fed (:attr:`TerminalSession.exit_code` says how);
        told once, and never for a session closed by its owner."""

    def session_taken(self, session: TerminalSession) -> None:
        """Another listener shows the session from now on: stop showing it."""

    def next_frame_due(self) -> float | None:
        """When (event-loop time) the listener's next repaint is due, None if none is scheduled:
        feeding breaks off then so that the frame is drawn on time."""


class _LinkEvents(NamedTuple):
    """What a link reports to its session, bound to one attach (the session ignores what a link it
    has left behind still reports)."""

    output: Callable[[bytes], None]  # bytes the program wrote
    snapshot: Callable[[dict[str, Any]], None]  # the supervisor's snapshot of the screen
    ended: Callable[[int | None], None]  # the byte stream ended (the exit code when known)


class _Link:
    """One session's byte pipe (socket or pty)."""

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def resize(self, rows: int, cols: int) -> None:
        raise NotImplementedError

    def close(self, detach: bool) -> None:
        raise NotImplementedError


class _SocketProtocol(asyncio.Protocol):
    def __init__(self, events: _LinkEvents) -> None:
        self.events = events
        self.decoder = P.Decoder(P.FROM_SUPERVISOR)
        self.snapshot: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.exit_code: int | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            for kind, payload in self.decoder.feed(data):
                if kind == P.OUTPUT:
                    self.events.output(payload)
                elif kind == P.SNAPSHOT:
                    # Installed here, not where attach_socket awaits: OUTPUT frames right behind it
                    # in this same read belong to the restored screen.
                    snap = self._restore(payload)
                    if not self.snapshot.done():
                        self.snapshot.set_result(snap)
                elif kind == P.EXIT:
                    self.exit_code = P.parse_exit(payload)
        except ProtocolError as err:
            # A supervisor that breaks the protocol: the session ends (attach_socket raises it).
            if not self.snapshot.done():
                self.snapshot.set_exception(err)
            if self.transport is not None:
                self.transport.close()

    def _restore(self, payload: bytes) -> dict[str, Any]:
        """Install the screen a SNAPSHOT carries; ProtocolError unless it is one."""
        try:
            snap = json.loads(payload)
            if not isinstance(snap, dict):
                raise TypeError("not an object")
            self.events.snapshot(snap)
        except (ValueError, TypeError, KeyError, IndexError) as err:
            raise ProtocolError(f"the supervisor sent a snapshot that is none: {err}") from None
        return snap

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.snapshot.done():
            self.snapshot.set_exception(ConnectionError("the supervisor closed the connection"))
        self.events.ended(self.exit_code)


class _SocketLink(_Link):
    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def write(self, data: bytes) -> None:
        if not self.transport.is_closing():
            for start in range(0, len(data), P.MAX_INPUT):  # a huge paste: frames the protocol allows
                self.transport.write(P.frame(P.INPUT, data[start:start + P.MAX_INPUT]))

    def resize(self, rows: int, cols: int) -> None:
        if not self.transport.is_closing():
            self.transport.write(P.resize(rows, cols))

    def close(self, detach: bool) -> None:
        if detach and not self.transport.is_closing():
            self.transport.write(P.frame(P.DETACH))
        self.transport.close()


class _PtyLink(_Link):
    """A local pty master; the session owns the descriptor from attach to the end."""

    def __init__(self, events: _LinkEvents, fd: int, pid: int | None) -> None:
        self.events = events
        self.fd = fd
        self.pid = pid
        self.out = bytearray()
        self.loop = asyncio.get_running_loop()
        self.closed = False
        os.set_blocking(fd, False)
        self.loop.add_reader(fd, self._readable)

    def _readable(self) -> None:
        for _ in range(16):
            try:
                data = os.read(self.fd, READ_CHUNK)
            except BlockingIOError:
                return
            except OSError as err:
                if err.errno not in (errno.EIO, errno.EBADF):
                    raise
                data = b""
            if not data:
                self._finish()
                return
            self.events.output(data)

    def _finish(self) -> None:
        self.close(detach=False)
        if self.pid is None:
            self.events.ended(None)
            return
        pid = self.pid

        def reap() -> int | None:
            try:
                return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            except ChildProcessError:
                return None

        future = self.loop.run_in_executor(None, reap)
        ended = self.events.ended
        future.add_done_callback(lambda f: ended(None if f.exception() else f.result()))

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        if self.out:
            self.out += data
            return
        try:
            n = os.write(self.fd, data)
        except BlockingIOError:
            n = 0
        except OSError:
            return
        if n < len(data):
            self.out += data[n:]
            self.loop.add_writer(self.fd, self._writable)

    def _writable(self) -> None:
        try:
            n = os.write(self.fd, self.out)
        except BlockingIOError:
            return
        except OSError:
            self.out.clear()
            n = 0
        del self.out[:n]
        if not self.out:
            self.loop.remove_writer(self.fd)

    def resize(self, rows: int, cols: int) -> None:
        if not self.closed:
            try:
                fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            except OSError:
                pass

    def close(self, detach: bool) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.remove_reader(self.fd)
        if self.out:
            self.loop.remove_writer(self.fd)
        os.close(self.fd)


class TerminalSession:
    """One terminal session, shown or not: its link (:meth:`attach_socket` for a detached
    container's supervisor, :meth:`attach_pty` for a pty the app spawned) and its terminal core,
    which keeps being fed in the background. Its listener (the pane showing it, if any) hears
    about new output, a replaced screen and the end of the session (:class:`SessionListener`)."""

    def __init__(self, *, history: int = 10000, columns: int = 80, lines: int = 24, label: str = "") -> None:
        self.history_limit = history
        self.label = label  # what the pane's title bar names it by (a container's name), before the window title
        self.terminal = Terminal(columns, lines, history)
        self.exit_code: int | None = None
        self.ended = False  # the session's byte stream ended and everything was fed
        self.fed = 0  # bytes fed to the core so far
        self._link: _Link | None = None
        self._pending: deque[bytes] = deque()
        self._pending_size = 0
        self._feed_handle: asyncio.Handle | None = None
        self._ending = False
        self._exited = False
        self._told_size = (0, 0)  # (columns, lines) the session was last told
        self._generation = 0  # bumped per attach: late callbacks of an old link are ignored
        self._listener: SessionListener | None = None
        # The drawn screen lines' strips, kept with the session so that showing it again draws only
        # what it changed meanwhile; the core's listener uses them, a new core resets them.
        self.strips = StripCache()

    @property
    def listener(self) -> SessionListener | None:
        """Who shows this session now (None: nobody)."""
        return self._listener

    def set_listener(self, listener: SessionListener | None) -> None:
        """Show the session through ``listener`` from now on (None: nobody); a different listener
        that showed it is told first (:meth:`SessionListener.session_taken`)."""
        old = self._listener
        if old is not None and listener is not None and old is not listener:
            old.session_taken(self)
        self._listener = listener

    @property
    def attached(self) -> bool:
        return self._link is not None

    @property
    def pending(self) -> int:
        """Bytes received but not fed to the core yet."""
        return self._pending_size

    async def attach_socket(self, socket_path: str, columns: int = 0, lines: int = 0) -> None:
        """Attach to a detached container's supervisor at ``columns`` x ``lines`` (0: leave its
        window size alone); returns once its screen is restored. Raises OSError when the supervisor
        cannot be reached."""
        await self.close(detach=True)
        self._reset()
        loop = asyncio.get_running_loop()
        generation = self._generation
        events = self._link_events()
        self._told_size = (columns, lines)
        with P.SocketPath(socket_path) as path:
            transport, protocol = await loop.create_unix_connection(
                lambda: _SocketProtocol(events), path)
        assert isinstance(transport, asyncio.Transport)
        self._link = _SocketLink(transport)
        transport.write(P.hello(P.MODE_SNAPSHOT, lines, columns))
        try:
            await asyncio.wait_for(asyncio.shield(protocol.snapshot), SNAPSHOT_TIMEOUT)
        except BaseException:
            if self._generation == generation:
                await self.close(detach=True)
            raise

    async def attach_pty(self, master_fd: int, *, pid: int | None = None, columns: int = 80,
                         lines: int = 24) -> None:
        """Drive a pty the app spawned; the session owns ``master_fd`` from now on and closes it at
        the end. Given ``pid``, it reaps that process for the exit code."""
        await self.close(detach=True)
        self._reset()
        self._install(Terminal(columns or 80, lines or 24, self.history_limit))
        self._link = _PtyLink(self._link_events(), master_fd, pid)
        self._told_size = (0, 0)
        if columns and lines:
            self.resize(columns, lines)

    async def close(self, detach: bool) -> None:
        """Let go of the link (DETACH for a container: it keeps running). No end is reported."""
        link, self._link = self._link, None
        if link is not None:
            self._exited = True  # a session we leave ourselves does not "exit"
            link.close(detach)
            await asyncio.sleep(0)

    def close_now(self) -> None:
        """:meth:`close` with DETACH, from synchronous code (a pane going away)."""
        if self._feed_handle is not None:
            self._feed_handle.cancel()
            self._feed_handle = None
        link, self._link = self._link, None
        if link is not None:
            self._exited = True
            link.close(True)

    def send(self, data: bytes) -> None:
        """Bytes to the program, as if typed."""
        if self._link is not None and data:
            self._link.write(data)

    def resize(self, columns: int, lines: int) -> None:
        """The window size: the core's, and the program's (SIGWINCH) when it changed."""
        if columns <= 0 or lines <= 0 or (columns, lines) == self._told_size:
            return
        self._told_size = (columns, lines)
        self.drain()  # output written at the old size is parsed at the old size
        if (self.terminal.columns, self.terminal.lines) != (columns, lines):
            self.terminal.resize(columns, lines)
        if self._link is not None:
            self._link.resize(lines, columns)
        if self._listener is not None:
            self._listener.session_replaced(self)

    def drain(self) -> None:
        """Feed everything received so far, now."""
        while self._pending:
            self.terminal.feed(self._pending.popleft())
        self._pending_size = 0

    # -- plumbing ----------------------------------------------------------------------------------
    def _reset(self) -> None:
        self._generation += 1
        self._pending.clear()
        self._pending_size = 0
        self._ending = False
        self._exited = False
        self.ended = False
        self.exit_code = None

    def _link_events(self) -> _LinkEvents:
        generation = self._generation
        return _LinkEvents(partial(self._received, generation), partial(self._restored, generation),
                           partial(self._ended, generation))

    def _install(self, term: Terminal) -> None:
        self.terminal = term
        self.strips.reset()
        term.clear_dirty()
        if self._listener is not None:
            self._listener.session_replaced(self)

    def _restored(self, generation: int, snap: dict[str, Any]) -> None:
        if generation != self._generation:
            return
        self._pending.clear()
        self._pending_size = 0
        term = Terminal.restore(snap)
        cols, lines = self._told_size
        if cols and lines and (term.columns, term.lines) != (cols, lines):
            term.resize(cols, lines)
        self._install(term)

    def _received(self, generation: int, data: bytes) -> None:
        if generation != self._generation:
            return
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size > BACKLOG_LIMIT:
            # Far behind a flood: keep the newest output (line output stays right; full-screen
            # programs repaint soon anyway), as the supervisor does.
            while self._pending_size > BACKLOG_LIMIT // 2 and len(self._pending) > 1:
                self._pending_size -= len(self._pending.popleft())
        if self._feed_handle is None:
            self._feed_handle = asyncio.get_running_loop().call_soon(self._feed)

    def _feed(self) -> None:
        """Feed for a bounded time, then give the loop back (keys, timers, other widgets)."""
        self._feed_handle = None
        deadline = time.perf_counter() + FEED_BUDGET
        loop = asyncio.get_running_loop()
        # A frame that falls due is drawn on time, not after the rest of the slice.
        due = self._listener.next_frame_due() if self._listener is not None else None
        frame_due = due if due is not None else float("inf")
        pending = self._pending
        feed = self.terminal.feed
        while pending:
            chunk = pending.popleft()
            if len(chunk) > FEED_SLICE:
                pending.appendleft(chunk[FEED_SLICE:])
                chunk = chunk[:FEED_SLICE]
            elif pending and len(chunk) < FEED_SLICE:
                parts = [chunk]
                size = len(chunk)
                while pending and size + len(pending[0]) <= FEED_SLICE:
                    part = pending.popleft()
                    parts.append(part)
                    size += len(part)
                chunk = b"".join(parts)
            self._pending_size -= len(chunk)
            self.fed += len(chunk)
            feed(chunk)
            if time.perf_counter() > deadline or loop.time() >= frame_due:
                break
        if self._listener is not None:
            self._listener.session_output(self)
        if pending:
            self._feed_handle = loop.call_soon(self._feed)
        elif self._ending:
            self._finish()

    def _ended(self, generation: int, code: int | None) -> None:
        """The byte stream ended: feed what is left, then report the end once."""
        if self._exited or generation != self._generation:
            return
        self._link = None
        self.exit_code = code
        self._ending = True
        if not self._pending and self._feed_handle is None:
            if self._listener is not None:
                self._listener.session_output(self)
            self._finish()

    def _finish(self) -> None:
        if self._exited:
            return
        self._exited = True
        self._ending = False
        self.ended = True
        if self._listener is not None:
            self._listener.session_ended(self)
