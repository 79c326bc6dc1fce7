"""A terminal pane: a container's (or an exec session's) screen, live, inside the dashboard.

Output is read in asyncio callbacks and fed to the terminal core in bounded slices, and the widget
repaints on a frame clock (at most ~60 frames/s, only the lines that changed): however fast a
program writes, keys and the other widgets keep being served between slices.
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
from textual import events
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from rustainer.backend.supervisor import protocol as P
from rustainer.backend.terminal.cells import BLANK_ROW, Attrs, CompactRow
from rustainer.backend.terminal.terminal import Terminal
from rustainer.widgets.keys import APP_KEYS, key_to_bytes

FRAME_INTERVAL = 1 / 60  # seconds between two repaints at most
FLOOD_FRAME_INTERVAL = 1 / 30  # while output is queued: fewer frames, more time for the core
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
    segments: list[Segment] = []
    x = 0
    for attrs, count in runs:
        end = x + count
        style = cell_style(attrs)
        if x <= cursor_x < end:
            if cursor_x > x:
                segments.append(Segment("".join(text[x:cursor_x]), style))
            cell = text[cursor_x]
            if cell:  # (on the stub of a wide character there is nothing to draw)
                segments.append(Segment(cell, style + _CURSOR_STYLE))
            if end > cursor_x + 1:
                segments.append(Segment("".join(text[cursor_x + 1:end]), style))
        else:
            segments.append(Segment("".join(text[x:end]) if not isinstance(text, str) else text[x:end], style))
        x = end
    if cursor_x >= x and cursor_x < width:
        if cursor_x > x:
            segments.append(Segment(" " * (cursor_x - x)))
        segments.append(Segment(" ", _CURSOR_STYLE))
    return segments


class _Link:
    """One session's byte pipe (socket or pty) as seen by the pane."""

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def resize(self, rows: int, cols: int) -> None:
        raise NotImplementedError

    def close(self, detach: bool) -> None:
        raise NotImplementedError


class _SocketProtocol(asyncio.Protocol):
    def __init__(self, pane: TerminalPane, session: int) -> None:
        self.pane = pane
        self.session = session
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
                self.pane._received(self.session, payload)
            elif kind == P.SNAPSHOT:
                # Installed here, not where attach_socket awaits: OUTPUT frames right behind it in
                # this same read belong to the restored screen.
                snap = json.loads(payload)
                self.pane._restored(self.session, snap)
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
        self.pane._ended(self.session, self.exit_code)


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
    """A local pty master; the pane owns the descriptor from attach to the end."""

    def __init__(self, pane: TerminalPane, session: int, fd: int, pid: int | None) -> None:
        self.pane = pane
        self.session = session
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
            self.pane._received(self.session, data)

    def _finish(self) -> None:
        self.close(detach=False)
        if self.pid is None:
            self.pane._ended(self.session, None)
            return
        pid = self.pid

        def reap() -> int | None:
            try:
                return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            except ChildProcessError:
                return None

        future = self.loop.run_in_executor(None, reap)
        session = self.session
        future.add_done_callback(
            lambda f: self.pane._ended(session, None if f.exception() else f.result()))

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


class TerminalPane(Widget, can_focus=True):
    """One terminal session. The app attaches it with :meth:`attach_socket` (a detached container's
    supervisor) or :meth:`attach_pty` (a pty it spawned), and hears :class:`Exited` and
    :class:`TitleChanged`."""

    DEFAULT_CSS = """
    TerminalPane {
        width: 1fr;
        height: 1fr;
    }
    """

    class Exited(Message):
        """The session ended: ``code`` is the exit code when known (None: the connection was lost,
        or a pty session without a pid)."""

        def __init__(self, pane: TerminalPane, code: int | None) -> None:
            super().__init__()
            self.pane = pane
            self.code = code

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

    def __init__(self, *, history: int = 10000, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._history_limit = history
        self._term = Terminal(80, 24, history)
        self._link: _Link | None = None
        self._pending: deque[bytes] = deque()
        self._pending_size = 0
        self._feed_handle: asyncio.Handle | None = None
        self._frame_handle: asyncio.TimerHandle | None = None
        self._last_frame = 0.0
        self._shown_cursor: tuple[int, int, bool] = (-1, -1, False)
        self._title = ""
        self._scroll = 0  # lines scrolled back into the history; 0 is the live screen
        self._history_view: list[CompactRow] = []
        self._ended_code: int | None = None
        self._ending = False
        self._exited = False
        self._told_size = (0, 0)  # (columns, lines) the session was last told
        self._session = 0  # bumped per attach: late callbacks of an old session are ignored
        self.frames = 0  # repaints requested (the benchmark reads it)

    # -- public API ------------------------------------------------------------------------------
    @property
    def terminal(self) -> Terminal:
        return self._term

    @property
    def title(self) -> str:
        return self._term.title

    @property
    def attached(self) -> bool:
        return self._link is not None

    @property
    def scrollback(self) -> int:
        """How many lines the view is scrolled back into the history (0: live)."""
        return self._scroll

    async def attach_socket(self, socket_path: str) -> None:
        """Attach to a detached container's supervisor; returns once its screen is shown.
        Raises OSError when the supervisor cannot be reached."""
        await self._close_link(detach=True)
        self._reset_session()
        loop = asyncio.get_running_loop()
        cols, lines = self._content_size()
        session = self._session
        self._told_size = (cols, lines)
        with P.SocketPath(socket_path) as path:
            transport, protocol = await loop.create_unix_connection(
                lambda: _SocketProtocol(self, session), path)
        assert isinstance(transport, asyncio.Transport)
        self._link = _SocketLink(transport)
        transport.write(P.hello(P.MODE_SNAPSHOT, lines, cols))
        try:
            await asyncio.wait_for(asyncio.shield(protocol.snapshot), SNAPSHOT_TIMEOUT)
        except BaseException:
            if self._session == session:
                await self._close_link(detach=True)
            raise
        self._sync_size()  # the pane may have been resized meanwhile

    async def attach_pty(self, master_fd: int, *, pid: int | None = None) -> None:
        """Show a pty the app spawned (``rustainer exec -it NAME sh``). The pane owns ``master_fd``
        from now on and closes it at the end; given ``pid``, it reaps that process to report its
        exit code in :class:`Exited` (otherwise the code is None)."""
        await self._close_link(detach=True)
        self._reset_session()
        cols, lines = self._content_size()
        self._install(Terminal(cols or 80, lines or 24, self._history_limit))
        self._link = _PtyLink(self, self._session, master_fd, pid)
        self._told_size = (0, 0)
        self._sync_size()

    async def detach(self) -> None:
        """Let go of the session (DETACH for a container: it keeps running). No Exited follows."""
        await self._close_link(detach=True)

    def send(self, data: bytes) -> None:
        """Bytes to the program, as if typed."""
        if self._link is not None and data:
            self._link.write(data)

    # -- session plumbing ----------------------------------------------------------------------------
    def _reset_session(self) -> None:
        self._session += 1
        self._pending.clear()
        self._pending_size = 0
        self._ending = False
        self._exited = False
        self._ended_code = None

    async def _close_link(self, detach: bool) -> None:
        link, self._link = self._link, None
        if link is not None:
            self._exited = True  # a session we leave ourselves does not "exit"
            link.close(detach)
            await asyncio.sleep(0)

    def _install(self, term: Terminal) -> None:
        self._term = term
        self._scroll = 0
        self._shown_cursor = (-1, -1, False)
        term.clear_dirty()
        self._check_title()
        self.refresh()

    def _content_size(self) -> tuple[int, int]:
        size = self.content_size
        return (size.width, size.height)

    def _sync_size(self) -> None:
        cols, lines = self._content_size()
        if cols <= 0 or lines <= 0 or (cols, lines) == self._told_size:
            return
        self._told_size = (cols, lines)
        self._drain_pending()  # output written at the old size is parsed at the old size
        if (self._term.columns, self._term.lines) != (cols, lines):
            self._term.resize(cols, lines)
        if self._link is not None:
            self._link.resize(lines, cols)
        self.refresh()

    def _restored(self, session: int, snap: dict[str, Any]) -> None:
        if session != self._session:
            return
        self._pending.clear()
        self._pending_size = 0
        term = Terminal.restore(snap)
        cols, lines = self._told_size
        if cols and lines and (term.columns, term.lines) != (cols, lines):
            term.resize(cols, lines)
        self._install(term)

    def _received(self, session: int, data: bytes) -> None:
        if session != self._session:
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
        pending = self._pending
        feed = self._term.feed
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
            feed(chunk)
            if time.perf_counter() > deadline:
                break
        self._schedule_frame()
        if pending:
            self._feed_handle = asyncio.get_running_loop().call_soon(self._feed)
        elif self._ending:
            self._post_exited()

    def _drain_pending(self) -> None:
        while self._pending:
            chunk = self._pending.popleft()
            self._term.feed(chunk)
        self._pending_size = 0

    def _ended(self, session: int, code: int | None) -> None:
        """The session's byte stream ended: show what is left, then post Exited once."""
        if self._exited or session != self._session:
            return
        self._link = None
        self._ended_code = code
        self._ending = True
        if not self._pending and self._feed_handle is None:
            self._schedule_frame()
            self._post_exited()

    def _post_exited(self) -> None:
        if self._exited:
            return
        self._exited = True
        self._ending = False
        self.post_message(self.Exited(self, self._ended_code))

    # -- frames ------------------------------------------------------------------------------------
    def _schedule_frame(self) -> None:
        if self._frame_handle is not None:
            return
        loop = asyncio.get_running_loop()
        interval = FLOOD_FRAME_INTERVAL if self._pending else FRAME_INTERVAL
        delay = max(0.0, self._last_frame + interval - loop.time())
        self._frame_handle = loop.call_later(delay, self._frame)

    def _frame(self) -> None:
        self._frame_handle = None
        self._last_frame = asyncio.get_running_loop().time()
        self._check_title()
        if not self.is_mounted:
            return
        term = self._term
        term.screen  # noqa: B018 - brings lazily scrolled rows (and their dirty marks) up to date
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
        if self._scroll:
            self._history_view = term.history
            self.refresh()
            return
        width = self.content_size.width
        ys = sorted(dirty)
        start = prev = ys[0]
        for y in ys[1:] + [-2]:
            if y != prev + 1:
                self.refresh(Region(0, start, width, prev - start + 1))
                start = y
            prev = y

    def _check_title(self) -> None:
        title = self._term.title
        if title != self._title:
            self._title = title
            self.border_title = title or None
            self.post_message(self.TitleChanged(self, title))

    def _cursor_shown(self) -> bool:
        return self.has_focus and not self._term.cursor_hidden and self._scroll == 0

    def render_line(self, y: int) -> Strip:
        width = self.content_size.width
        term = self._term
        if self._scroll:
            top = len(self._history_view) - self._scroll
            row = top + y
            if row < len(self._history_view):
                crow = self._history_view[row] if row >= 0 else BLANK_ROW
                return Strip(compact_to_segments(crow, width)).adjust_cell_length(width)
            y = row - len(self._history_view)
        if y >= term.lines:
            return Strip.blank(width)
        cx, cy = term.cursor
        cursor_x = cx if (cy == y and self._scroll == 0 and self._cursor_shown()) else -1
        if cursor_x >= term.columns:
            cursor_x = term.columns - 1
        return Strip(compact_to_segments(term.compact_line(y), width, cursor_x)).adjust_cell_length(width)

    # -- scrollback ----------------------------------------------------------------------------------
    def scroll_history(self, lines: int) -> None:
        """Move the view ``lines`` back into the history (negative: towards the live screen)."""
        if self._term.alternate_screen and lines > 0 and not self._scroll:
            return  # full-screen programs own the screen; their history is not ours to show
        view = self._term.history if lines > 0 or self._scroll else self._history_view
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

    def on_unmount(self) -> None:
        if self._feed_handle is not None:
            self._feed_handle.cancel()
            self._feed_handle = None
        if self._frame_handle is not None:
            self._frame_handle.cancel()
            self._frame_handle = None
        link, self._link = self._link, None
        if link is not None:
            self._exited = True
            link.close(detach=True)

    def on_focus(self, event: events.Focus) -> None:
        self._schedule_frame()

    def on_blur(self, event: events.Blur) -> None:
        self._schedule_frame()

    def on_key(self, event: events.Key) -> None:
        key = event.key
        if key in APP_KEYS:
            return  # the app's own keys: not ours to consume
        if key == "shift+pageup":
            self.scroll_history(max(1, self._term.lines - 1))
        elif key == "shift+pagedown":
            self.scroll_history(-max(1, self._term.lines - 1))
        else:
            data = key_to_bytes(key, event.character, self._term.modes.application_cursor)
            if data is None:
                return
            self._to_live()
            self.send(data)
        event.stop()
        event.prevent_default()

    def on_paste(self, event: events.Paste) -> None:
        text = event.text.replace("\r\n", "\r").replace("\n", "\r")
        data = text.encode("utf-8", "replace")
        if self._term.modes.bracketed_paste:
            data = b"\x1b[200~" + data.replace(b"\x1b[201~", b"") + b"\x1b[201~"
        self._to_live()
        self.send(data)
        event.stop()

    def _wheel(self, event: events.MouseEvent, up: bool) -> None:
        modes = self._term.modes
        if modes.mouse and self._scroll == 0:
            button = 64 if up else 65
            x, y = event.x + 1, event.y + 1
            if modes.mouse_encoding == "sgr":
                self.send(f"\x1b[<{button};{x};{y}M".encode())
            elif x < 223 and y < 223:
                self.send(bytes([0x1B, 0x5B, 0x4D, 32 + button, 32 + x, 32 + y]))
        elif self._term.alternate_screen and self._scroll == 0:
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
