"""Search, copy mode and paste in the shown container's terminal (a mixin of the app).

``/`` opens the search bar over the footer and holds the pane's text still (copy mode,
:mod:`~rustainer.widgets.copy_mode`); each keystroke searches the held scrollback and screen
(:mod:`~rustainer.backend.terminal.search`, well within a frame for 10,000 lines), highlights the
matches and scrolls to the one nearest the view, searching up from its bottom. Enter leaves the
bar for copy mode at that match (n / N go on from there); escape goes back to where it was. ``[``
enters copy mode without a search; ``]`` pastes what was last copied into the shell.
"""

from __future__ import annotations

from textual import on
from textual.app import App
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer

from rustainer.backend.terminal.search import Query
from rustainer.widgets.copy_mode import CopyMode, CopyModeHost, Position
from rustainer.widgets.search_bar import SearchBar
from rustainer.widgets.terminal_pane import TerminalPane
from rustainer.widgets.terminal_session import TerminalSession

COUNT_INTERVAL = 1 / 60  # seconds between two slices of counting the matches


class SearchActions(App[None]):
    """The search, copy and paste actions of :class:`~rustainer.app.tui_app.RustainerApp`."""

    SEARCH_ACTIONS = frozenset({"search", "copy_mode", "paste_copied"})

    _search_pane: TerminalPane | None = None  # the pane the search bar searches
    _search_was_copying = False  # copy mode was on before the bar opened: escape keeps it on
    _search_from: tuple[Position, int, Query | None] | None = None  # cursor, top, query before the bar
    _last_query: Query | None = None
    _count_timer: Timer | None = None

    # ---- hooks the app provides ---------------------------------------------------------------------

    selected: str | None
    sessions: dict[str, TerminalSession]

    def get_screen_stack_base(self) -> Screen[object]:
        raise NotImplementedError

    @property
    def terminal_view(self) -> TerminalPane:
        raise NotImplementedError

    # ---- which pane ---------------------------------------------------------------------------------

    def search_allowed(self, action: str) -> bool:
        """The keys work on the main screen, outside the terminal (ctrl+] first), for a container
        with a shell."""
        if not self.screen_stack or self.screen is not self.get_screen_stack_base():
            return False
        if isinstance(self.focused, TerminalPane):
            return False
        return self.selected in self.sessions

    def _pane(self) -> TerminalPane | None:
        """The shown container's pane: the focused one, else the one showing the selected container."""
        if self.selected not in self.sessions:
            self.notify("The selected container has no shell to search or copy from.", severity="warning")
            return None
        focused = self.focused
        base = self.get_screen_stack_base()
        if isinstance(focused, TerminalPane) and focused.screen is base:
            return focused
        session = self.sessions[self.selected]
        for pane in base.query(TerminalPane):  # (in a split: the pane showing the selected container)
            if pane.session is session:
                return pane
        return self.terminal_view

    # ---- actions ------------------------------------------------------------------------------------

    async def action_search(self) -> None:
        pane = self._pane()
        if pane is not None:
            await self.open_search(pane)

    def action_copy_mode(self) -> None:
        pane = self._pane()
        if pane is not None:
            pane.enter_copy_mode()
            pane.focus()

    def action_paste_copied(self) -> None:
        """What was last copied (here, or by the mouse) into the shown shell, as a paste."""
        pane = self._pane()
        if pane is None:
            return
        text = self.clipboard
        if not text:
            self.notify("Nothing copied yet: [ enters copy mode, or drag with the mouse.", title="Paste")
            return
        pane.leave_copy_mode()
        pane.paste(text)
        pane.focus()

    # ---- the bar ------------------------------------------------------------------------------------

    def search_bar(self) -> SearchBar | None:
        try:
            return self.get_screen_stack_base().query_one(SearchBar)
        except NoMatches:
            return None

    async def open_search(self, pane: TerminalPane) -> None:
        """The bar over the footer, searching ``pane`` (held still from now on)."""
        bar = self.search_bar()
        if bar is not None:
            bar.focus_input()
            return
        self._search_was_copying = pane.copy_mode is not None
        mode = pane.enter_copy_mode()
        self._search_pane = pane
        self._search_from = (mode.cursor, mode.top, mode.query)
        screen = self.get_screen_stack_base()
        screen.query_one(Footer).display = False  # the bar takes its line: nothing moves
        await screen.mount(SearchBar(self._last_query, id="search-bar"))

    def close_search(self, accepted: bool) -> None:
        bar = self.search_bar()
        if bar is None:
            return
        bar.remove()
        self.get_screen_stack_base().query_one(Footer).display = True
        pane, self._search_pane = self._search_pane, None
        if pane is None or pane.copy_mode is None:
            return
        mode = pane.copy_mode
        if mode.query is not None and mode.query.pattern:
            self._last_query = mode.query  # the next search starts with it (as tmux's)
        if accepted and mode.current is not None:
            pass  # copy mode at the match
        elif not self._search_was_copying:
            pane.leave_copy_mode()
        elif self._search_from is not None:
            cursor, top, query = self._search_from
            mode.set_query(query)
            mode.cursor, mode.top = cursor, top
            pane.copy_mode_changed()
        if pane.is_attached:
            pane.focus()

    def _searched(self) -> tuple[TerminalPane, CopyMode] | None:
        pane = self._search_pane
        if pane is None or pane.copy_mode is None:
            return None
        return pane, pane.copy_mode

    @on(SearchBar.Changed)
    def _search_changed(self, event: SearchBar.Changed) -> None:
        found = self._searched()
        if found is None or self._search_from is None:
            return
        pane, mode = found
        cursor, top, _ = self._search_from
        mode.top = top
        mode.cursor = cursor
        # Searching up from the bottom of the view (or from the cursor, in copy mode already).
        origin = cursor[0] if self._search_was_copying else min(mode.bottom, top + mode.height - 1)
        mode.set_query(event.query, origin)
        pane.copy_mode_changed()
        self._show_count()

    @on(SearchBar.Step)
    def _search_step(self, event: SearchBar.Step) -> None:
        found = self._searched()
        if found is None:
            return
        pane, mode = found
        mode.step(event.older)
        pane.copy_mode_changed()
        self._show_count()

    @on(SearchBar.Closed)
    def _search_closed(self, event: SearchBar.Closed) -> None:
        self.close_search(event.accepted)

    def _show_count(self) -> None:
        """The bar's count of matches, counted a slice a frame when there are many."""
        found = self._searched()
        bar = self.search_bar()
        if found is None or bar is None:
            return
        pane, mode = found
        if self._count_timer is not None:
            self._count_timer.stop()
            self._count_timer = None
        if mode.error:
            bar.show_status(mode.error, error=True)
            return
        matches = mode.matches
        if matches is None:
            bar.show_status("")
            return
        if not matches.lines:
            bar.show_status("no match", error=True)
            return
        if not mode.count_ahead():
            bar.show_status("counting…")
            self._count_timer = self.set_timer(COUNT_INTERVAL, self._show_count)
            return
        where = f"{matches.ordinal(mode.current) + 1}/" if mode.current is not None else ""
        bar.show_status(f"{where}{matches.total}")
        pane.copy_mode_changed()  # the title bar's count

    # ---- from the pane ------------------------------------------------------------------------------

    @on(CopyModeHost.CopyModeChanged)
    def _copy_mode_changed(self, event: CopyModeHost.CopyModeChanged) -> None:
        if not event.active and event.pane is self._search_pane:
            self.close_search(accepted=False)  # (the pane showed another session, or left)

    @on(CopyModeHost.SearchWanted)
    async def _search_wanted(self, event: CopyModeHost.SearchWanted) -> None:
        if isinstance(event.pane, TerminalPane) and event.pane.screen is self.get_screen_stack_base():
            await self.open_search(event.pane)
