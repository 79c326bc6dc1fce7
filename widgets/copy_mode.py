"""Copy mode: the terminal pane's text held still to be searched, read and copied, like tmux's.

While it lasts the pane draws :class:`CopyMode` (its rows, taken from the session's scrollback and
screen when it started) instead of the live screen: the session keeps being fed in the background,
and leaving copy mode shows it as it is then. Held still, line numbers stay put, so search matches,
the cursor and the selection need no adjusting to output that keeps coming.

:class:`CopyMode` is the state and the drawing; :class:`CopyModeHost` is what the pane gets from it:
the keys (vi-like and arrows), the mouse (a drag selects, the release copies), the footer's labels,
and copying to the clipboard with OSC 52 (Textual's ``App.copy_to_clipboard``: the outer terminal
keeps it, through SSH and tmux too).
"""

from __future__ import annotations

from bisect import bisect_right

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from rustainer.backend.errors import InvalidSpecError
from rustainer.backend.terminal.cells import CompactRow
from rustainer.backend.terminal.search import Hit, Matches, Query, SearchText, row_columns, search
from rustainer.widgets.terminal_render import row_strip

# xterm 256-colour palette colours, so a 256-colour terminal shows them as designed.
MATCH_STYLE = Style(color="#000000", bgcolor="#af875f")
CURRENT_STYLE = Style(color="#000000", bgcolor="#ffaf00", bold=True)
SELECTION_STYLE = Style(color="#ffffff", bgcolor="#005f87")
CURSOR_STYLE = Style(reverse=True)
COUNT_SLICE = 2000  # lines whose matches are counted between two frames

Position = tuple[int, int]  # (line, character) in the held text


class CopyMode:
    """The held rows (scrollback, then screen), the view over them, the cursor, the selection and
    the search."""

    def __init__(self, rows: list[CompactRow], height: int, top: int, cursor: Position) -> None:
        self.rows = rows
        self.text = SearchText.of_rows(rows)
        self.height = max(1, height)
        self.top = top  # the first line shown
        self.cursor = cursor
        self.anchor: Position | None = None  # where the selection started (None: no selection)
        self.line_mode = False  # whole lines are selected
        self.query: Query | None = None
        self.matches: Matches | None = None
        self.current: Hit | None = None
        self.error = ""  # why the query finds nothing (a regex that is none)

    # -- geometry ------------------------------------------------------------------------------------
    @property
    def bottom(self) -> int:
        """The last line of the held text."""
        return len(self.rows) - 1

    def line_text(self, line: int) -> str:
        return self.text.lines[line] if 0 <= line < len(self.rows) else ""

    def resize(self, height: int) -> None:
        self.height = max(1, height)
        self.top = max(0, min(self.top, len(self.rows) - self.height))
        self.show(self.cursor[0])

    def show(self, line: int, margin: int = 0) -> None:
        """Scroll the least so that ``line`` is shown (``margin`` lines from the edges if it moves)."""
        margin = min(margin, (self.height - 1) // 2)
        if line < self.top:
            self.top = max(0, line - margin)
        elif line >= self.top + self.height:
            self.top = min(max(0, len(self.rows) - self.height), line - self.height + 1 + margin)

    def scroll(self, lines: int) -> None:
        self.top = max(0, min(self.top + lines, len(self.rows) - self.height))

    def cell_of(self, line: int, char: int) -> int:
        """The cell column of a character of a line (past its end: one cell per character)."""
        columns = row_columns(self.rows[line]) if 0 <= line < len(self.rows) else None
        if columns is None:
            return char
        last = len(columns) - 1
        return columns[char] if char < last else columns[last] + (char - last)

    def char_at(self, line: int, cell: int) -> int:
        """The character of a line drawn at a cell column."""
        columns = row_columns(self.rows[line]) if 0 <= line < len(self.rows) else None
        if columns is None:
            return cell
        last = len(columns) - 1
        if cell >= columns[last]:
            return last + (cell - columns[last])
        return max(0, bisect_right(columns, cell) - 1)

    # -- cursor and selection ------------------------------------------------------------------------
    def move_to(self, line: int, char: int) -> None:
        line = max(0, min(line, self.bottom))
        self.cursor = (line, max(0, char))
        self.show(line)

    def move(self, lines: int = 0, chars: int = 0) -> None:
        line, char = self.cursor
        self.move_to(line + lines, char + chars)

    def line_start(self) -> None:
        self.move_to(self.cursor[0], 0)

    def line_end(self) -> None:
        self.move_to(self.cursor[0], max(0, len(self.line_text(self.cursor[0])) - 1))

    def word(self, forward: bool) -> None:
        """To the start of the next (previous) word, across lines."""
        line, char = self.cursor
        text = self.line_text(line)
        if forward:
            i = char
            while i < len(text) and not text[i].isspace():
                i += 1
            while i < len(text) and text[i].isspace():
                i += 1
            if i >= len(text) and line < self.bottom:
                following = self.line_text(line + 1)
                self.move_to(line + 1, len(following) - len(following.lstrip()))
                return
            self.move_to(line, min(i, max(0, len(text) - 1)))
        else:
            i = min(char, len(text))
            while i > 0 and text[i - 1].isspace():
                i -= 1
            if i == 0 and line > 0:  # no word before it on this line: the last one of the line above
                above = self.line_text(line - 1)
                j = len(above)
                while j > 0 and not above[j - 1].isspace():
                    j -= 1
                self.move_to(line - 1, j)
                return
            while i > 0 and not text[i - 1].isspace():
                i -= 1
            self.move_to(line, i)

    def word_end(self) -> None:
        """To the last character of this word (of the next one when already there)."""
        line, char = self.cursor
        text = self.line_text(line)
        i = char + 1
        while i < len(text) and text[i].isspace():
            i += 1
        while i + 1 < len(text) and not text[i + 1].isspace():
            i += 1
        self.move_to(line, min(i, max(0, len(text) - 1)))

    def toggle_selection(self, line_mode: bool = False) -> None:
        """Start a selection at the cursor; the same key again drops it, the other kind switches to
        it keeping where the selection started (as vi's v and V)."""
        if self.anchor is not None and self.line_mode == line_mode:
            self.anchor = None
            return
        if self.anchor is None:
            self.anchor = self.cursor
        self.line_mode = line_mode

    def selection(self) -> tuple[Position, Position] | None:
        """(start, end), end included, in text order; whole lines in line mode."""
        if self.anchor is None:
            return None
        start, end = sorted((self.anchor, self.cursor))
        if self.line_mode:
            return (start[0], 0), (end[0], max(0, len(self.line_text(end[0])) - 1))
        return start, end

    def selected_text(self) -> str:
        """The selection's text: each line's characters, trailing blanks left out, one line a line
        (a line the program wrapped is two lines here: the terminal core keeps no soft wraps)."""
        span = self.selection()
        if span is None:
            return ""
        (l1, c1), (l2, c2) = span
        if l1 == l2:
            return self.line_text(l1)[c1:c2 + 1]
        parts = [self.line_text(l1)[c1:]]
        parts.extend(self.line_text(line) for line in range(l1 + 1, l2))
        parts.append(self.line_text(l2)[:c2 + 1])
        return "\n".join(parts)

    # -- search --------------------------------------------------------------------------------------
    def set_query(self, query: Query | None, origin: int | None = None) -> None:
        """Search anew; the current match is the last one at or above ``origin`` (default: the last
        line shown), else the first one below (searching back from the view, as less's ``?``)."""
        self.query = query
        self.error = ""
        self.current = None
        self.matches = None
        if query is None or not query.pattern:
            return
        try:
            self.matches = search(self.text, query)
        except InvalidSpecError as err:
            self.error = str(err)
            return
        line = origin if origin is not None else min(self.bottom, self.top + self.height - 1)
        self.go(self.matches.near(line))

    def go(self, hit: Hit | None) -> None:
        """Make ``hit`` the current match: the cursor on its first character, the view around it."""
        self.current = hit
        if hit is None:
            return
        line, start, _ = hit
        self.cursor = (line, start)
        self.show(line, margin=self.height // 3)

    def step(self, older: bool) -> bool:
        """To the next match up (``older``) or down from the cursor, wrapping round; False if none."""
        if self.matches is None:
            return False
        line, char = self.cursor
        hit = self.matches.preceding(line, char, wrap=True) if older else self.matches.following(line, char, wrap=True)
        self.go(hit)
        return hit is not None

    def count_ahead(self) -> bool:
        """Count another slice of the matches; True once they are all counted."""
        return self.matches is None or self.matches.count_ahead(COUNT_SLICE)

    def status(self) -> str:
        """What the pane's title bar says about copy mode: the search and where the cursor is."""
        parts = ["COPY"]
        if self.error:
            parts.append(self.error)
        elif self.matches is not None and self.query is not None:
            if not self.matches.lines:
                parts.append("no match")
            elif not self.matches.counted:
                parts.append("counting matches…")
            elif self.current is not None:
                parts.append(f"match {self.matches.ordinal(self.current) + 1}/{self.matches.total}")
            else:
                parts.append(f"{self.matches.total} matches")
        parts.append(f"line {self.cursor[0] + 1}/{len(self.rows)}")
        return " · ".join(parts)

    # -- drawing -------------------------------------------------------------------------------------
    def render_line(self, y: int, width: int) -> Strip:
        line = self.top + y
        if not 0 <= line < len(self.rows):
            return Strip.blank(width)
        strip = row_strip(self.rows[line], width)
        marks: list[tuple[int, int, Style]] = []  # (first cell, end cell, style); later ones on top
        if self.matches is not None:
            for start, end in self.matches.spans(line):
                current = self.current is not None and self.current[:2] == (line, start)
                marks.append((self.cell_of(line, start), self.cell_of(line, end),
                              CURRENT_STYLE if current else MATCH_STYLE))
        span = self.selection()
        if span is not None and span[0][0] <= line <= span[1][0]:
            (l1, c1), (l2, c2) = span
            first = c1 if line == l1 else 0
            last = c2 + 1 if line == l2 else max(len(self.line_text(line)), 1)
            marks.append((self.cell_of(line, first), self.cell_of(line, last), SELECTION_STYLE))
        if self.cursor[0] == line:
            cell = self.cell_of(line, self.cursor[1])
            marks.append((cell, cell + 1, CURSOR_STYLE))
        return _mark(strip, width, marks) if marks else strip


def _mark(strip: Strip, width: int, marks: list[tuple[int, int, Style]]) -> Strip:
    """``strip`` with styles laid over cell ranges (each over what is under it)."""
    cuts = sorted({max(0, min(width, c)) for start, end, _ in marks for c in (start, end)} | {width})
    parts = strip.divide(cuts)
    edges = [0, *cuts]
    segments: list[Segment] = []
    for part, left in zip(parts, edges, strict=False):
        over: Style | None = None
        for start, end, style in marks:
            if start <= left < end:
                over = style if over is None else over + style
        if over is None:
            segments.extend(part)
        else:
            segments.extend(Segment(text, (style or Style()) + over, control)
                            for text, style, control in part)
    return Strip(segments, width)


class CopyModeHost(Widget):
    """What the terminal pane gets from copy mode: the state while it lasts (:attr:`copy_mode`), its
    keys and mouse handling. The pane supplies the rows to hold (:meth:`held_rows`) and draws
    :meth:`CopyMode.render_line` while copy mode lasts."""

    BINDINGS = [
        # Labels for the footer (and clicks on them); the keys themselves are handled in copy_key.
        Binding("v", "copy_key('v')", "Select"),
        Binding("y", "copy_key('y')", "Copy"),
        Binding("slash", "copy_key('/')", "Search"),
        Binding("n", "copy_key('n')", "Match ↑"),
        Binding("N", "copy_key('N')", "Match ↓", key_display="N"),
        Binding("q", "copy_key('q')", "Exit copy"),
    ]

    #: Copy mode's keys (a key's character, or its name), as the help screen lists them.
    COPY_KEYS: tuple[tuple[str, str], ...] = (
        ("arrows h j k l", "move the cursor"),
        ("pgup pgdn ctrl+b ctrl+f", "a page up / down"),
        ("ctrl+u ctrl+d", "half a page up / down"),
        ("0 home $ end", "start / end of the line"),
        ("w b e", "next / previous word, end of the word"),
        ("g G", "top of the scrollback / bottom of the screen"),
        ("v space", "start (or drop) a selection"),
        ("V", "select whole lines"),
        ("y enter", "copy the selection (OSC 52) and leave"),
        ("/", "search (from the cursor up)"),
        ("n N f3 shift+f3", "next match up (older) / down (newer)"),
        ("escape", "drop the selection, else leave"),
        ("q", "leave copy mode (? : this screen)"),
        ("mouse drag", "select; the release copies"),
    )

    class CopyModeChanged(Message):
        """Copy mode started or ended in this pane."""

        def __init__(self, pane: CopyModeHost, active: bool) -> None:
            super().__init__()
            self.pane = pane
            self.active = active

        @property
        def control(self) -> CopyModeHost:
            return self.pane

    class SearchWanted(Message):
        """``/`` in copy mode: the app opens its search bar for this pane."""

        def __init__(self, pane: CopyModeHost) -> None:
            super().__init__()
            self.pane = pane

        @property
        def control(self) -> CopyModeHost:
            return self.pane

    copy_mode: CopyMode | None = None
    _drag_from: tuple[int, int] | None = None  # the cell a left-button press landed on, until released
    _mouse_copy = False  # copy mode began with a drag: the release leaves it

    # -- what the pane supplies ----------------------------------------------------------------------
    def held_rows(self) -> tuple[list[CompactRow], int, Position]:
        """The rows to hold (scrollback then screen), the first one shown now, and the cursor."""
        raise NotImplementedError

    def copy_mode_changed(self) -> None:
        """Copy mode started, ended or changed: redraw everything (the pane may do more)."""
        self.refresh()

    # -- starting and ending -------------------------------------------------------------------------
    def enter_copy_mode(self) -> CopyMode:
        """Hold the text as it is now and draw it (already in copy mode: the same one)."""
        if self.copy_mode is None:
            rows, top, cursor = self.held_rows()
            self.copy_mode = CopyMode(rows, self.content_size.height, top, cursor)
            self.copy_mode.show(cursor[0])
            self.post_message(self.CopyModeChanged(self, True))
            self.copy_mode_changed()
            self.refresh_bindings()
        return self.copy_mode

    def leave_copy_mode(self) -> None:
        if self.copy_mode is None:
            return
        self.copy_mode = None
        self._drag_from = None
        self._mouse_copy = False
        self.post_message(self.CopyModeChanged(self, False))
        self.copy_mode_changed()
        self.refresh_bindings()

    def copy_text(self, text: str) -> None:
        """To the clipboard of the terminal the dashboard runs in (OSC 52), and the app's own."""
        self.app.copy_to_clipboard(text)
        lines = text.count("\n") + 1
        what = f"{len(text)} characters" + (f" on {lines} lines" if lines > 1 else "")
        self.notify(f"Copied {what} to the clipboard", title="Copy")

    # -- keys ----------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "copy_key":
            return self.copy_mode is not None
        return True

    def action_copy_key(self, key: str) -> None:
        self.copy_key(key)

    def copy_key(self, key: str) -> bool:
        """One key in copy mode (a printable key's character, else its name); False if not one of
        copy mode's."""
        mode = self.copy_mode
        if mode is None:
            return False
        page = max(1, mode.height - 1)
        moves = {
            "up": (-1, 0), "k": (-1, 0), "down": (1, 0), "j": (1, 0),
            "left": (0, -1), "h": (0, -1), "right": (0, 1), "l": (0, 1),
            "pageup": (-page, 0), "ctrl+b": (-page, 0), "pagedown": (page, 0), "ctrl+f": (page, 0),
            "ctrl+u": (-(page // 2 or 1), 0), "ctrl+d": (page // 2 or 1, 0),
        }
        if key in moves:
            lines, chars = moves[key]
            if key in ("pageup", "pagedown", "ctrl+b", "ctrl+f", "ctrl+u", "ctrl+d"):
                mode.scroll(lines)
            mode.move(lines, chars)
        elif key in ("0", "home"):
            mode.line_start()
        elif key in ("$", "end"):
            mode.line_end()
        elif key in ("w", "b"):
            mode.word(forward=key == "w")
        elif key == "e":
            mode.word_end()
        elif key == "g":
            mode.move_to(0, 0)
        elif key == "G":
            mode.move_to(mode.bottom, 0)
        elif key in ("v", " ", "space"):
            mode.toggle_selection()
        elif key == "V":
            mode.toggle_selection(line_mode=True)
        elif key in ("y", "enter"):
            self._copy_and_leave()
            return True
        elif key == "/":
            self.post_message(self.SearchWanted(self))
            return True
        elif key in ("n", "f3", "N", "shift+f3"):
            if mode.matches is None:
                self.notify("No search yet: / searches", title="Copy mode")
            elif not mode.step(older=key in ("n", "f3")):
                self.notify("No match", title="Search")
        elif key == "escape":
            if mode.anchor is not None:
                mode.anchor = None
            else:
                self.leave_copy_mode()
                return True
        elif key == "q":
            self.leave_copy_mode()
            return True
        elif key == "?":
            self.call_later(self.app.run_action, "help")  # the app's ? screen, if it has one
            return True
        else:
            return False
        self.copy_mode_changed()
        return True

    def _copy_and_leave(self) -> None:
        mode = self.copy_mode
        if mode is None:
            return
        text = mode.selected_text()
        if not text and mode.current is not None and mode.cursor == mode.current[:2]:
            line, start, end = mode.current
            text = mode.line_text(line)[start:end]  # no selection: the match under the cursor
        if not text:
            self.notify("Nothing selected: v starts a selection", title="Copy mode")
            return
        self.copy_text(text)
        self.leave_copy_mode()

    def copy_mode_key_event(self, event: events.Key) -> None:
        """The pane's key handler while in copy mode: copy mode's keys, and no key reaches the
        program (nor the app's single-letter keys)."""
        key = event.character if event.is_printable and event.character else event.key
        self.copy_key(key)
        event.stop()
        event.prevent_default()

    # -- mouse ---------------------------------------------------------------------------------------
    def _cell(self, event: events.MouseEvent) -> tuple[int, int] | None:
        """(x, y) of the event in the content area, kept inside it (a drag may go past the edges)."""
        region = self.content_region
        if not region.width or not region.height:
            return None
        x = max(0, min(event.screen_x - region.x, region.width - 1))
        y = max(0, min(event.screen_y - region.y, region.height - 1))
        return (int(x), int(y))

    def on_mouse_down(self, event: events.MouseDown) -> None:
        if event.button != 1 or event.get_content_offset(self) is None:
            return
        self._drag_from = self._cell(event)
        if self._drag_from is None:
            return
        self.capture_mouse()
        mode = self.copy_mode
        if mode is not None:  # a click in copy mode: the cursor goes there, the selection goes
            x, y = self._drag_from
            line = min(mode.top + y, mode.bottom)
            mode.anchor = None
            mode.move_to(line, mode.char_at(line, x))
            self.copy_mode_changed()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        start = self._drag_from  # (set from a left-button press until its release: the mouse is captured)
        cell = self._cell(event) if start is not None else None
        if start is None or cell is None:
            return
        mode = self.copy_mode
        if cell == start and (mode is None or mode.anchor is None):
            return  # not moved yet: a click, not a drag
        if mode is None:
            self._mouse_copy = True  # held still only now: a plain click costs nothing
            mode = self.enter_copy_mode()
        if mode.anchor is None:  # the selection starts where the press was, in the view as it was
            first = min(mode.top + start[1], mode.bottom)
            mode.anchor = (first, mode.char_at(first, start[0]))
            mode.line_mode = False
        if event.screen_y < self.content_region.y:
            mode.scroll(-1)  # dragged past the top or bottom: the view follows
        elif event.screen_y >= self.content_region.bottom:
            mode.scroll(1)
        line = min(mode.top + cell[1], mode.bottom)
        mode.cursor = (line, mode.char_at(line, cell[0]))
        self.copy_mode_changed()

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self._drag_from is None:
            return
        self._drag_from = None
        self.release_mouse()
        mode = self.copy_mode
        if mode is None or mode.anchor is None:
            return
        text = mode.selected_text()
        if text:
            self.copy_text(text)
        if self._mouse_copy:
            self.leave_copy_mode()
        else:
            mode.anchor = None
            self.copy_mode_changed()
