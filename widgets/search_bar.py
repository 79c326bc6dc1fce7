"""The search bar: one line at the bottom of the screen while a search is typed (over the footer,
so that nothing is laid out again and the pane keeps its size: no SIGWINCH for the program).

It knows nothing of what is searched: it posts what was typed (:class:`SearchBar.Changed`), steps
(:class:`SearchBar.Step`) and its end (:class:`SearchBar.Closed`), and shows what it is told
(:meth:`SearchBar.show_status`). Its options: a regular expression (alt+r) and case (alt+c), also
clicked on.
"""

from __future__ import annotations

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label, Static

from rustainer.backend.terminal.search import Query


class Toggle(Static):
    """A clickable option of the bar: lit when on."""

    DEFAULT_CSS = """
    Toggle { width: auto; padding: 0 1; color: $text-muted; }
    Toggle.-on { color: $text; background: $primary; text-style: bold; }
    """

    class Flipped(Message):
        def __init__(self, toggle: Toggle) -> None:
            super().__init__()
            self.toggle = toggle

    def __init__(self, label: str, *, id: str) -> None:
        super().__init__(label, id=id)

    @property
    def on(self) -> bool:
        return self.has_class("-on")

    def set(self, on: bool) -> None:
        self.set_class(on, "-on")

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.set(not self.on)
        self.post_message(self.Flipped(self))


class SearchBar(Horizontal):
    """``/``: what to search for, as it is typed."""

    DEFAULT_CSS = """
    SearchBar {
        dock: bottom;
        height: 1;
        background: $panel;
    }
    SearchBar > .search-prompt { width: auto; padding: 0 1; background: $accent; color: $background; text-style: bold; }
    SearchBar > Input { width: 1fr; height: 1; border: none; padding: 0 1; background: $panel; }
    SearchBar > Input:focus { border: none; background: $surface; }
    SearchBar > .search-status { width: auto; max-width: 48; padding: 0 1; color: $text-muted; }
    SearchBar > .search-status.-error { color: $error; }
    """

    BINDINGS = [
        Binding("enter", "accept", "Go to it", show=False),
        Binding("escape", "cancel", "Cancel", show=False),
        Binding("up,f3", "step(True)", "Up", show=False),
        Binding("down,shift+f3", "step(False)", "Down", show=False),
        Binding("alt+r", "flip('regex')", "Regex", show=False),
        Binding("alt+c", "flip('case')", "Case", show=False),
    ]

    #: The bar's keys, as the help screen lists them.
    KEYS: tuple[tuple[str, str], ...] = (
        ("typing", "search as you type: the match nearest the view (from the bottom up) is current"),
        ("up f3 / down shift+f3", "previous match up (older) / down (newer)"),
        ("enter", "go to the match in copy mode (n / N go on from there)"),
        ("alt+r", "regular expression (Python syntax) on / off"),
        ("alt+c", "match case on / off (off: case is ignored)"),
        ("escape", "cancel: back to where you were"),
    )

    class Changed(Message):
        def __init__(self, query: Query) -> None:
            super().__init__()
            self.query = query

    class Step(Message):
        def __init__(self, older: bool) -> None:
            super().__init__()
            self.older = older

    class Closed(Message):
        """The bar is done: ``accepted`` (enter: to the match) or cancelled (escape)."""

        def __init__(self, accepted: bool) -> None:
            super().__init__()
            self.accepted = accepted

    def __init__(self, query: Query | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._initial = query or Query("")

    def compose(self) -> ComposeResult:
        yield Label("Search", classes="search-prompt")
        yield Input(value=self._initial.pattern, placeholder="text, or a regex with alt+r", compact=True,
                    id="search-input")
        yield Label("", classes="search-status")
        yield Toggle(".* regex", id="search-regex")
        yield Toggle("Aa case", id="search-case")

    def on_mount(self) -> None:
        self.query_one("#search-regex", Toggle).set(self._initial.regex)
        self.query_one("#search-case", Toggle).set(not self._initial.ignore_case)
        self.focus_input()
        if self._initial.pattern:
            self.query_one(Input).select_all()  # typing replaces it; enter searches it again
            self.post_message(self.Changed(self.search_query))

    def focus_input(self) -> None:
        box = self.query_one(Input)
        box.focus()
        box.cursor_position = len(box.value)

    @property
    def search_query(self) -> Query:
        return Query(self.query_one(Input).value, regex=self.query_one("#search-regex", Toggle).on,
                     ignore_case=not self.query_one("#search-case", Toggle).on)

    def show_status(self, text: str, error: bool = False) -> None:
        label = self.query_one(".search-status", Label)
        label.update(Text(text))
        label.set_class(error, "-error")

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Changed(self.search_query))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Closed(accepted=True))

    @on(Toggle.Flipped)
    def _flipped(self, event: Toggle.Flipped) -> None:
        event.stop()
        self.focus_input()
        self.post_message(self.Changed(self.search_query))

    def action_accept(self) -> None:
        self.post_message(self.Closed(accepted=True))

    def action_cancel(self) -> None:
        self.post_message(self.Closed(accepted=False))

    def action_step(self, older: bool) -> None:
        self.post_message(self.Step(older))

    def action_flip(self, which: str) -> None:
        toggle = self.query_one(f"#search-{which}", Toggle)
        toggle.set(not toggle.on)
        self.post_message(self.Changed(self.search_query))
