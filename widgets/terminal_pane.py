"""The terminal pane: the widget that draws one :class:`~rustainer.widgets.terminal_session.TerminalSession`
at a time and sends it the keys.

It can be re-pointed at another session (:meth:`TerminalPane.show`), which only changes what it
draws: no widget comes or goes, nothing is laid out again. It repaints on a frame clock (at most ~60
frames/s, only the lines that changed, from the session's per-line cache of strips): however fast a
program writes, keys and the other widgets keep being served between the session's feed slices. It
hears from the session it shows through :class:`~rustainer.widgets.terminal_session.SessionListener`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual import events
from textual.content import Content
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip

from rustainer.backend.terminal.cells import BLANK_ROW, CompactRow
from rustainer.backend.terminal.terminal import Terminal
from rustainer.widgets.copy_mode import CopyModeHost, Position
from rustainer.widgets.keys import APP_KEYS, key_to_bytes
from rustainer.widgets.terminal_render import row_strip
from rustainer.widgets.terminal_session import TerminalSession

FRAME_INTERVAL = 1 / 60  # seconds between two repaints at most
FLOOD_FRAME_INTERVAL = 1 / 25  # during a flood: fewer frames (each costs the core time), still >= 20/s
FLOOD_BYTES = 16 << 10  # output fed since the last frame that makes it a flood
WHEEL_LINES = 3

#: Told of every key and paste a pane sends to its program: (pane, key or None for a paste, the key's
#: character or the pasted text, the bytes sent). The dashboard's broadcast input uses it.
TypedHook = Callable[["TerminalPane", str | None, str | None, bytes], None]


class TerminalPane(CopyModeHost, can_focus=True):
    """The widget that shows one :class:`TerminalSession` at a time and sends it the keys.

    On its own it has a session of its own: :meth:`attach_socket` (a detached container's
    supervisor) or :meth:`attach_pty` (a pty the app spawned). An app that keeps several sessions
    alive re-points one pane at each of them with :meth:`show`. The pane posts :class:`Exited` when
    the shown session ends and :class:`TitleChanged` when the shown title changes.

    Its top line is a title bar (a one-line top border): the session's label (a container's name) and
    the window title its programs set (OSC 0/2). The session's pty gets the lines and columns below
    it (the content area), nothing more.

    Copy mode (:mod:`~rustainer.widgets.copy_mode`) holds the shown session's scrollback and screen
    still to be searched and copied; the session goes on in the background meanwhile."""

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
        self._own.set_listener(self)
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
        self.typed_hook: TypedHook | None = None

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
        self.leave_copy_mode()  # what it holds is the other session's
        if self._shown.listener is self:
            self._shown.set_listener(None)
        session.set_listener(self)  # (a pane that showed it is told first, and lets go)
        self._shown = session
        self._scroll = 0
        self._history_view = []
        self._sync_size()
        # Lines it changed while in the background are drawn again; the others come from its cache.
        term = session.terminal
        session.strips.forget(term.dirty)
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

    def paste(self, text: str) -> None:
        """Text to the program as a paste: bracketed (ESC[200~ ... ESC[201~) when it asked for that
        (DECSET 2004), so a shell does not run the lines as they come."""
        data = text.replace("\r\n", "\r").replace("\n", "\r").encode("utf-8", "replace")
        if self._shown.terminal.modes.bracketed_paste:
            data = b"\x1b[200~" + data.replace(b"\x1b[201~", b"") + b"\x1b[201~"
        self._to_live()
        self.send(data)
        if self.typed_hook is not None:
            self.typed_hook(self, None, text, data)

    # -- copy mode (see CopyModeHost) ---------------------------------------------------------------
    def held_rows(self) -> tuple[list[CompactRow], int, Position]:
        term = self._shown.terminal
        history = term.history
        rows = history + term.compact_lines()
        top = max(0, len(history) - self._scroll)
        cx, cy = term.cursor
        cursor = (len(history) + cy, min(cx, max(term.columns - 1, 0))) if not self._scroll else (top, 0)
        return rows, top, cursor

    def copy_mode_changed(self) -> None:
        if self.copy_mode is None:
            # Back to the live screen, as it is now: every line drawn afresh.
            self._scroll = 0
            self._history_view = []
            self._shown.strips.forget(range(self._shown.terminal.lines))
            self._shown_cursor = (-1, -1, False)
        self._check_title()
        self.refresh()

    # -- from the session shown (SessionListener) ------------------------------------------------------
    def session_output(self, session: TerminalSession) -> None:
        if session is self._shown:
            self._schedule_frame()

    def session_replaced(self, session: TerminalSession) -> None:
        if session is self._shown:
            self._scroll = 0
            self._history_view = []
            self._shown_cursor = (-1, -1, False)
            self._check_title()
            self.refresh()

    def session_ended(self, session: TerminalSession) -> None:
        if session is self._shown:
            self._schedule_frame()
            self.post_message(self.Exited(self, session.exit_code, session))

    def session_taken(self, session: TerminalSession) -> None:
        if session is self._shown:
            self.show(None)

    def next_frame_due(self) -> float | None:
        return self._frame_due if self._frame_handle is not None else None

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
        if not self.is_mounted or self.copy_mode is not None:
            return  # (copy mode draws the text it holds; the lines changed meanwhile stay dirty)
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
        self._shown.strips.forget(dirty)
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
        if self.copy_mode is not None:
            bar = f"{bar}  [{self.copy_mode.status()}]"
        if bar != self._bar:
            self._bar = bar
            # Content, not a str: a str would be read as markup, and programs choose their titles.
            self.border_title = Content(f" {bar} ") if bar else None
        if title != self._title:
            self._title = title
            self.post_message(self.TitleChanged(self, title))

    def _cursor_shown(self) -> bool:
        return (self.has_focus and not self._shown.terminal.cursor_hidden and self._scroll == 0
                and self.copy_mode is None)

    def render_line(self, y: int) -> Strip:
        width = self.content_size.width
        if self.copy_mode is not None:
            return self.copy_mode.render_line(y, width)
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
        return session.strips.line(term, y, width, cursor_x)

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
        if self.copy_mode is not None:
            self.copy_mode.resize(self.content_size.height)

    def on_mount(self) -> None:
        self._sync_size()
        self._check_title()

    def on_unmount(self) -> None:
        if self._frame_handle is not None:
            self._frame_handle.cancel()
            self._frame_handle = None
        # The pane's own session goes with it; sessions an app keeps are the app's to close.
        self._own.close_now()
        if self._shown.listener is self:
            self._shown.set_listener(None)

    def on_focus(self, event: events.Focus) -> None:
        self._schedule_frame()

    def on_blur(self, event: events.Blur) -> None:
        self._schedule_frame()

    def on_key(self, event: events.Key) -> None:
        key = event.key
        if key in APP_KEYS:
            return  # the app's own keys: not ours to consume
        if self.copy_mode is not None:
            self.copy_mode_key_event(event)
            return
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
            if self.typed_hook is not None:
                self.typed_hook(self, key, event.character, data)
        event.stop()
        event.prevent_default()

    def on_paste(self, event: events.Paste) -> None:
        self.leave_copy_mode()
        self.paste(event.text)
        event.stop()

    def _wheel(self, event: events.MouseEvent, up: bool) -> None:
        term = self._shown.terminal
        modes = term.modes
        if self.copy_mode is not None:
            self.copy_mode.scroll(-WHEEL_LINES if up else WHEEL_LINES)
            self.refresh()
        elif modes.mouse and self._scroll == 0:
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
