"""A terminal pane: a container's (or an exec session's) screen, live, inside the dashboard.

Two halves. A :class:`TerminalSession` is one session's byte pipe (a supervisor socket or a local
pty) and its terminal core: output is read in asyncio callbacks and fed to the core in bounded
slices whether or not anything shows it, so a session in the background stays current. A
:class:`TerminalPane` is the widget that draws one session at a time and sends it the keys; it can
be re-pointed at another session (:meth:`TerminalPane.show`), which only changes what it draws: no
widget comes or goes, nothing is laid out again. It repaints on a frame clock (at most ~60
frames/s, only the lines that changed, from a per-line cache of strips): however fast a program
writes, keys and the other widgets keep being served between slices.
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
from typing import Any

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.content import Content
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from rustainer.backend.supervisor import protocol as P
from rustainer.backend.terminal.cells import BLANK_ROW, Attrs, CompactRow
from rustainer.backend.terminal.terminal import Terminal
from rustainer.widgets.keys import APP_KEYS, key_to_bytes

FRAME_INTERVAL = 1 / 60  # seconds between two repaints at most
FLOOD_FRAME_INTERVAL = 1 / 25  # during a flood: fewer frames (each costs the core time), still >= 20/s
FLOOD_BYTES = 16 << 10  # output fed since the last frame that makes it a flood
FEED_SLICE = 64 << 10  # bytes fed to the core at once (big slices keep its bulk path busy)
FEED_BUDGET = 0.008  # seconds of feeding before the loop gets a turn
BACKLOG_LIMIT = 16 << 20  # unfed output kept at most (beyond it the oldest half is skipped)
READ_CHUNK = 64 << 10
SNAPSHOT_TIMEOUT = 30.0  # generous: a loaded 2-core machine, many containers starting at once
WHEEL_LINES = 3

# pyte's colour names (it calls yellow "brown") to the ANSI colour numbers Rich and Textual theme.
_ANSI = {name: i for i, name in enumerate(
    ("black", "red", "green", "brown", "blue", "magenta", "cyan", "white"))}
_ANSI.update({"yellow": 3})
_ANSI.update({"bright" + name: i + 8 for name, i in list(_ANSI.items())})


def _color(name: str) -> Color | None:
    if name == "default" or not name:
        return None
    number = _ANSI.get(name)
    if number is not None:
        return Color.from_ansi(number)
    if len(name) == 6:
        try:
            return Color.from_rgb(int(name[0:2], 16), int(name[2:4], 16), int(name[4:6], 16))
        except ValueError:
            return None
    return None


_STYLES: dict[Attrs, Style] = {}


def cell_style(attrs: Attrs) -> Style:
    """Rich style of a cell's attributes (cached: a screen uses a handful of them)."""
    style = _STYLES.get(attrs)
    if style is None:
        fg, bg, bold, italics, underscore, strikethrough, reverse, blink = attrs
        style = Style(color=_color(fg), bgcolor=_color(bg), bold=bold or None, italic=italics or None,
                      underline=underscore or None, strike=strikethrough or None,
                      reverse=reverse or None, blink=blink or None)
        if len(_STYLES) > 4096:
            _STYLES.clear()
        _STYLES[attrs] = style
    return style


_CURSOR_STYLE = Style(reverse=True)


def compact_to_segments(crow: CompactRow, width: int, cursor_x: int = -1) -> list[Segment]:
    """A row in the core's compact form (cell text plus attribute runs) is already nearly a list
    of segments: one per run, split around the cursor; "" stubs of wide characters join away."""
    text, runs = crow
    if not isinstance(text, str):
        return _cells_to_segments(text, runs, width, cursor_x)
    segments: list[Segment] = []
    append = segments.append
    x = 0
    for attrs, count in runs:
        end = x + count
        style = cell_style(attrs)
        if x <= cursor_x < end:
            if cursor_x > x:
                append(Segment(text[x:cursor_x], style))
            append(Segment(text[cursor_x], style + _CURSOR_STYLE))
            if end > cursor_x + 1:
                append(Segment(text[cursor_x + 1:end], style))
        else:
            append(Segment(text[x:end], style))
        x = end
    if cursor_x >= x and cursor_x < width:
        if cursor_x > x:
            append(Segment(" " * (cursor_x - x)))
        append(Segment(" ", _CURSOR_STYLE))
    return segments


def _cells_to_segments(text: tuple[str, ...], runs: tuple[tuple[Attrs, int], ...], width: int,
                       cursor_x: int) -> list[Segment]:
    """:func:`compact_to_segments` for a row with wide characters or combining marks (one string
    per cell, "" for the stub after a wide character)."""
    segments: list[Segment] = []
    append = segments.append
    x = 0
    for attrs, count in runs:
        end = x + count
        style = cell_style(attrs)
        if x <= cursor_x < end:
            if cursor_x > x:
                append(Segment("".join(text[x:cursor_x]), style))
            cell = text[cursor_x]
            if cell:  # (on the stub of a wide character there is nothing to draw)
                append(Segment(cell, style + _CURSOR_STYLE))
            if end > cursor_x + 1:
                append(Segment("".join(text[cursor_x + 1:end]), style))
        else:
            append(Segment("".join(text[x:end]), style))
        x = end
    if cursor_x >= x and cursor_x < width:
        if cursor_x > x:
            append(Segment(" " * (cursor_x - x)))
        append(Segment(" ", _CURSOR_STYLE))
    return segments


def row_strip(crow: CompactRow, width: int, cursor_x: int = -1) -> Strip:
    """The strip of one row, exactly ``width`` cells. A row of one-cell characters (nearly all of
    them) has as many cells as characters: its strip is made once, with its length, rather than
    measured and then padded or cropped into a second one."""
    segments = compact_to_segments(crow, width, cursor_x)
    text = crow[0]
    if isinstance(text, str) and text.isascii():
        cells = len(text)
        if cursor_x >= cells and cursor_x < width:
            cells = cursor_x + 1
        if cells <= width:
            if cells < width:
                segments.append(Segment(" " * (width - cells)))
            return Strip(segments, width)
    return Strip(segments).adjust_cell_length(width)


class _Link:
    """One session's byte pipe (socket or pty)."""

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def resize(self, rows: int, cols: int) -> None:
        raise NotImplementedError

    def close(self, detach: bool) -> None:
        raise NotImplementedError


class _SocketProtocol(asyncio.Protocol):
    def __init__(self, owner: TerminalSession, generation: int) -> None:
        self.owner = owner
        self.generation = generation
        self.decoder = P.Decoder()
        self.snapshot: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.exit_code: int | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.decoder.feed(data)
        except P.ProtocolError:
            if self.transport is not None:
                self.transport.close()
            return
        for kind, payload in frames:
            if kind == P.OUTPUT:
                self.owner._received(self.generation, payload)
            elif kind == P.SNAPSHOT:
                # Installed here, not where attach_socket awaits: OUTPUT frames right behind it in
                # this same read belong to the restored screen.
                snap = json.loads(payload)
                self.owner._restored(self.generation, snap)
                if not self.snapshot.done():
                    self.snapshot.set_result(snap)
            elif kind == P.EXIT:
                try:
                    self.exit_code = int(payload or b"0")
                except ValueError:
                    self.exit_code = None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.snapshot.done():
            self.snapshot.set_exception(ConnectionError("the supervisor closed the connection"))
        self.owner._ended(self.generation, self.exit_code)


class _SocketLink(_Link):
    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def write(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(P.frame(P.INPUT, data))

    def resize(self, rows: int, cols: int) -> None:
        if not self.transport.is_closing():
            self.transport.write(P.resize(rows, cols))

    def close(self, detach: bool) -> None:
        if detach and not self.transport.is_closing():
            self.transport.write(P.frame(P.DETACH))
        self.transport.close()


class _PtyLink(_Link):
    """A local pty master; the session owns the descriptor from attach to the end."""

    def __init__(self, owner: TerminalSession, generation: int, fd: int, pid: int | None) -> None:
        self.owner = owner
        self.generation = generation
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
            self.owner._received(self.generation, data)

    def _finish(self) -> None:
        self.close(detach=False)
        if self.pid is None:
            self.owner._ended(self.generation, None)
            return
        pid = self.pid

        def reap() -> int | None:
            try:
                return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            except ChildProcessError:
                return None

        future = self.loop.run_in_executor(None, reap)
        generation = self.generation
        future.add_done_callback(
            lambda f: self.owner._ended(generation, None if f.exception() else f.result()))

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
    which keeps being fed in the background. The pane showing it (if any) hears about new output,
    a restored screen and the end of the session."""

    def __init__(self, *, history: int = 10000, columns: int = 80, lines: int = 24, label: str = "") -> None:
        self.history_limit = history
        self.label = label  # what the pane's title bar names it by (a container's name), before the window title
        self.terminal = Terminal(columns, lines, history)
        self.view: TerminalPane | None = None  # the pane showing this session
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
        # The drawn screen lines' strips (with the cursor column each was drawn with), reused until
        # the core marks a line dirty; valid for one (pane width, lines, columns) and one core.
        self.strips: list[tuple[int, Strip] | None] = []
        self.strips_key: tuple[int, int, int] | None = None

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
        self._told_size = (columns, lines)
        with P.SocketPath(socket_path) as path:
            transport, protocol = await loop.create_unix_connection(
                lambda: _SocketProtocol(self, generation), path)
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
        self._link = _PtyLink(self, self._generation, master_fd, pid)
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
        if self.view is not None:
            self.view._session_replaced(self)

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

    def _install(self, term: Terminal) -> None:
        self.terminal = term
        self.strips_key = None
        term.clear_dirty()
        if self.view is not None:
            self.view._session_replaced(self)

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
        view = self.view
        # A frame that falls due is drawn on time, not after the rest of the slice.
        frame_due = view._frame_due if view is not None and view._frame_handle is not None else float("inf")
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
        if self.view is not None:
            self.view._session_output(self)
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
            if self.view is not None:
                self.view._session_output(self)
            self._finish()

    def _finish(self) -> None:
        if self._exited:
            return
        self._exited = True
        self._ending = False
        self.ended = True
        if self.view is not None:
            self.view._session_ended(self)


def screen_lines(term: Terminal) -> list[Text]:
    """The core's screen as styled text, one line per row (no cursor), trailing blank rows left out:
    what stays worth showing of a session that ended."""
    lines: list[Text] = []
    for y in range(term.lines):
        line = Text(no_wrap=True, overflow="crop", end="")
        for segment in compact_to_segments(term.compact_line(y), term.columns):
            line.append(segment.text, segment.style)
        line.rstrip()
        lines.append(line)
    while lines and not lines[-1].plain:
        lines.pop()
    return lines


class TerminalPane(Widget, can_focus=True):
    """The widget that shows one :class:`TerminalSession` at a time and sends it the keys.

    On its own it has a session of its own: :meth:`attach_socket` (a detached container's
    supervisor) or :meth:`attach_pty` (a pty the app spawned). An app that keeps several sessions
    alive re-points one pane at each of them with :meth:`show`. The pane posts :class:`Exited` when
    the shown session ends and :class:`TitleChanged` when the shown title changes.

    Its top line is a title bar (a one-line top border): the session's label (a container's name) and
    the window title its programs set (OSC 0/2). The session's pty gets the lines and columns below
    it (the content area), nothing more."""

    DEFAULT_CSS = """
    TerminalPane {
        width: 1fr;
        height: 1fr;
        border-top: blank;
        border-title-align: left;
        border-title-color: $foreground;
        border-title-background: $panel;
        border-title-style: bold;
    }
    """

    class Exited(Message):
        """The session ended: ``code`` is the exit code when known (None: the connection was lost,
        or a pty session without a pid)."""

        def __init__(self, pane: TerminalPane, code: int | None, session: TerminalSession | None = None) -> None:
            super().__init__()
            self.pane = pane
            self.code = code
            self.session = session

        @property
        def control(self) -> TerminalPane:
            return self.pane

    class TitleChanged(Message):
        def __init__(self, pane: TerminalPane, title: str) -> None:
            super().__init__()
            self.pane = pane
            self.title = title

        @property
        def control(self) -> TerminalPane:
            return self.pane

    class Resized(Message):
        """The pane's size in cells changed (the shown session was resized with it; an app may
        resize the sessions it keeps in the background too, so that showing them is instant)."""

        def __init__(self, pane: TerminalPane, columns: int, lines: int) -> None:
            super().__init__()
            self.pane = pane
            self.columns = columns
            self.lines = lines

        @property
        def control(self) -> TerminalPane:
            return self.pane

    def __init__(self, *, history: int = 10000, label: str = "", name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._own = TerminalSession(history=history, label=label)
        self._shown = self._own
        self._own.view = self
        self._frame_handle: asyncio.TimerHandle | None = None
        self._last_frame = 0.0  # when the last frame was due
        self._frame_due = 0.0
        self._fed_at_frame = 0  # the shown session's ``fed`` at the last frame
        self._shown_cursor: tuple[int, int, bool] = (-1, -1, False)
        self._title = ""
        self._bar = ""  # what the title bar says: label and window title
        self._scroll = 0  # lines scrolled back into the history; 0 is the live screen
        self._history_view: list[CompactRow] = []
        self._cells = (0, 0)  # (columns, lines) last seen
        self.frames = 0  # repaints requested (the benchmark reads it)

    # -- public API ------------------------------------------------------------------------------
    @property
    def session(self) -> TerminalSession:
        """The session shown now."""
        return self._shown

    @property
    def terminal(self) -> Terminal:
        return self._shown.terminal

    @property
    def title(self) -> str:
        return self._shown.terminal.title

    @property
    def attached(self) -> bool:
        return self._shown.attached

    @property
    def scrollback(self) -> int:
        """How many lines the view is scrolled back into the history (0: live)."""
        return self._scroll

    def show(self, session: TerminalSession | None) -> None:
        """Draw ``session`` from now on (None: the pane's own); the other one keeps running in the
        background. Its screen is drawn at the next refresh: only lines it changed since it was last
        shown are rendered again."""
        session = session if session is not None else self._own
        if session is self._shown:
            return
        if self._shown.view is self:
            self._shown.view = None
        if session.view is not None and session.view is not self:
            session.view._shown_elsewhere(session)
        session.view = self
        self._shown = session
        self._scroll = 0
        self._history_view = []
        self._sync_size()
        # Lines it changed while in the background are drawn again; the others come from its cache.
        term = session.terminal
        strips = session.strips
        for y in term.dirty:
            if 0 <= y < len(strips):
                strips[y] = None
        term.clear_dirty()
        self._shown_cursor = (*term.cursor, self._cursor_shown())
        self._check_title()
        self.refresh()

    async def attach_socket(self, socket_path: str) -> None:
        """Attach the shown session to a detached container's supervisor; returns once its screen
        is shown. Raises OSError when the supervisor cannot be reached."""
        cols, lines = self._content_size()
        await self._shown.attach_socket(socket_path, cols, lines)
        self._sync_size()  # the pane may have been resized meanwhile

    async def attach_pty(self, master_fd: int, *, pid: int | None = None) -> None:
        """Show a pty the app spawned (``rustainer exec -it NAME sh``). The session owns
        ``master_fd`` from now on and closes it at the end; given ``pid``, it reaps that process to
        report its exit code in :class:`Exited` (otherwise the code is None)."""
        cols, lines = self._content_size()
        await self._shown.attach_pty(master_fd, pid=pid, columns=cols, lines=lines)

    async def detach(self) -> None:
        """Let go of the shown session (DETACH for a container: it keeps running). No Exited follows."""
        await self._shown.close(detach=True)

    def send(self, data: bytes) -> None:
        """Bytes to the program, as if typed."""
        self._shown.send(data)

    # -- from the sessions -------------------------------------------------------------------------
    def _session_output(self, session: TerminalSession) -> None:
        if session is self._shown:
            self._schedule_frame()

    def _session_replaced(self, session: TerminalSession) -> None:
        if session is self._shown:
            self._scroll = 0
            self._history_view = []
            self._shown_cursor = (-1, -1, False)
            self._check_title()
            self.refresh()

    def _session_ended(self, session: TerminalSession) -> None:
        if session is self._shown:
            self._schedule_frame()
            self.post_message(self.Exited(self, session.exit_code, session))

    def _shown_elsewhere(self, session: TerminalSession) -> None:
        if session is self._shown:
            self.show(None)

    def _content_size(self) -> tuple[int, int]:
        size = self.content_size
        return (size.width, size.height)

    def _sync_size(self) -> None:
        cols, lines = self._content_size()
        if cols <= 0 or lines <= 0:
            return
        self._shown.resize(cols, lines)
        if (cols, lines) != self._cells:
            self._cells = (cols, lines)
            self.post_message(self.Resized(self, cols, lines))

    # -- frames ------------------------------------------------------------------------------------
    def _schedule_frame(self) -> None:
        if self._frame_handle is not None:
            return
        loop = asyncio.get_running_loop()
        session = self._shown
        flood = session.pending or session.fed - self._fed_at_frame > FLOOD_BYTES
        now = loop.time()
        self._frame_due = max(now, self._last_frame + (FLOOD_FRAME_INTERVAL if flood else FRAME_INTERVAL))
        self._frame_handle = loop.call_at(self._frame_due, self._frame)

    def _frame(self) -> None:
        self._frame_handle = None
        now = asyncio.get_running_loop().time()
        # Paced from when the frame was due: a feed slice that delays it does not slow the clock down.
        self._last_frame = self._frame_due if now - self._frame_due < FLOOD_FRAME_INTERVAL else now
        self._fed_at_frame = self._shown.fed
        self._check_title()
        if not self.is_mounted:
            return
        term = self._shown.terminal
        dirty = term.dirty
        cursor = (*term.cursor, self._cursor_shown())
        if cursor != self._shown_cursor:
            dirty.add(self._shown_cursor[1])
            dirty.add(cursor[1])
            self._shown_cursor = cursor
        lines = term.lines
        dirty = {y for y in dirty if 0 <= y < lines}
        term.clear_dirty()
        if not dirty:
            return
        self.frames += 1
        strips = self._shown.strips
        for y in dirty:
            if y < len(strips):
                strips[y] = None
        if self._scroll:
            self._history_view = term.history
            self.refresh()
            return
        width = self.content_size.width
        if len(dirty) >= lines:
            self.refresh(Region(0, 0, width, lines))
            return
        ys = sorted(dirty)
        start = prev = ys[0]
        for y in ys[1:] + [-2]:
            if y != prev + 1:
                self.refresh(Region(0, start, width, prev - start + 1))
                start = y
            prev = y

    def _check_title(self) -> None:
        title = self._shown.terminal.title
        bar = " — ".join(part for part in (self._shown.label, title) if part)
        if bar != self._bar:
            self._bar = bar
            # Content, not a str: a str would be read as markup, and programs choose their titles.
            self.border_title = Content(f" {bar} ") if bar else None
        if title != self._title:
            self._title = title
            self.post_message(self.TitleChanged(self, title))

    def _cursor_shown(self) -> bool:
        return self.has_focus and not self._shown.terminal.cursor_hidden and self._scroll == 0

    def render_line(self, y: int) -> Strip:
        width = self.content_size.width
        session = self._shown
        term = session.terminal
        if self._scroll:
            top = len(self._history_view) - self._scroll
            row = top + y
            if row < len(self._history_view):
                crow = self._history_view[row] if row >= 0 else BLANK_ROW
                return row_strip(crow, width)
            y = row - len(self._history_view)
        lines = term.lines
        if y >= lines:
            return Strip.blank(width)
        cx, cy = term.cursor
        cursor_x = cx if (cy == y and self._cursor_shown()) else -1
        columns = term.columns
        if cursor_x >= columns:
            cursor_x = columns - 1
        # A line's strip is kept until the core marks the line dirty (a frame then drops it too).
        strips = session.strips
        key = (width, lines, columns)
        if session.strips_key != key:
            session.strips_key = key
            strips = session.strips = [None] * lines
        if y in term.dirty:
            strips[y] = None
            return row_strip(term.compact_line(y), width, cursor_x)
        cached = strips[y]
        if cached is not None and cached[0] == cursor_x:
            return cached[1]
        strip = row_strip(term.compact_line(y), width, cursor_x)
        strips[y] = (cursor_x, strip)
        return strip

    # -- scrollback ----------------------------------------------------------------------------------
    def scroll_history(self, lines: int) -> None:
        """Move the view ``lines`` back into the history (negative: towards the live screen)."""
        term = self._shown.terminal
        if term.alternate_screen and lines > 0 and not self._scroll:
            return  # full-screen programs own the screen; their history is not ours to show
        view = term.history if lines > 0 or self._scroll else self._history_view
        new = max(0, min(len(view), self._scroll + lines))
        if new != self._scroll:
            self._history_view = view
            self._scroll = new
            self.refresh()

    def _to_live(self) -> None:
        if self._scroll:
            self._scroll = 0
            self._history_view = []
            self.refresh()

    # -- events ----------------------------------------------------------------------------------------
    def on_resize(self, event: events.Resize) -> None:
        self._sync_size()

    def on_mount(self) -> None:
        self._sync_size()
        self._check_title()

    def on_unmount(self) -> None:
        if self._frame_handle is not None:
            self._frame_handle.cancel()
            self._frame_handle = None
        # The pane's own session goes with it; sessions an app keeps are the app's to close.
        self._own.close_now()
        if self._shown.view is self:
            self._shown.view = None

    def on_focus(self, event: events.Focus) -> None:
        self._schedule_frame()

    def on_blur(self, event: events.Blur) -> None:
        self._schedule_frame()

    def on_key(self, event: events.Key) -> None:
        key = event.key
        if key in APP_KEYS:
            return  # the app's own keys: not ours to consume
        if key == "shift+pageup":
            self.scroll_history(max(1, self._shown.terminal.lines - 1))
        elif key == "shift+pagedown":
            self.scroll_history(-max(1, self._shown.terminal.lines - 1))
        else:
            data = key_to_bytes(key, event.character, self._shown.terminal.modes.application_cursor)
            if data is None:
                return
            self._to_live()
            self.send(data)
        event.stop()
        event.prevent_default()

    def on_paste(self, event: events.Paste) -> None:
        text = event.text.replace("\r\n", "\r").replace("\n", "\r")
        data = text.encode("utf-8", "replace")
        if self._shown.terminal.modes.bracketed_paste:
            data = b"\x1b[200~" + data.replace(b"\x1b[201~", b"") + b"\x1b[201~"
        self._to_live()
        self.send(data)
        event.stop()

    def _wheel(self, event: events.MouseEvent, up: bool) -> None:
        term = self._shown.terminal
        modes = term.modes
        if modes.mouse and self._scroll == 0:
            button = 64 if up else 65
            x, y = event.x + 1, event.y + 1
            if modes.mouse_encoding == "sgr":
                self.send(f"\x1b[<{button};{x};{y}M".encode())
            elif x < 223 and y < 223:
                self.send(bytes([0x1B, 0x5B, 0x4D, 32 + button, 32 + x, 32 + y]))
        elif term.alternate_screen and self._scroll == 0:
            # What xterm's alternateScroll does: wheel as cursor keys (less, man, vi scroll).
            key = "up" if up else "down"
            self.send((key_to_bytes(key, None, modes.application_cursor) or b"") * WHEEL_LINES)
        else:
            self.scroll_history(WHEEL_LINES if up else -WHEEL_LINES)
        event.stop()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._wheel(event, up=True)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self._wheel(event, up=False)
