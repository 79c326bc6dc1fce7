"""The dashboard's own screen: header, the container list | the terminal pane (or a note on how the
selected container ended, or a placeholder), footer."""

from __future__ import annotations

import textwrap
from typing import Protocol, runtime_checkable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Header, Label, Static

from rustainer.widgets.container_list import ContainerList
from rustainer.widgets.terminal_pane import TerminalPane


@runtime_checkable
class Dashboard(Protocol):
    """What the main screen asks of the app that shows it."""

    def binding_state(self) -> tuple[bool, ...]: ...
    def refresh_footer(self) -> None: ...
    def close_sessions(self) -> None: ...


# The first screen a new user sees: both texts wrap to their column (the list is 30 columns at 80).
EMPTY_HINT = "No containers yet: press n to create one."
WELCOME = """No containers yet.

Press n to create one: a dialog asks for a name, an image or a root folder and limits, then its \
shell opens here.

Or start one from a shell, it appears here by itself:
  rustainer run --detach --name web -- sh

In a container's shell, ctrl+] gives the keys back to the dashboard (n, stop, logs...); ctrl+q quits \
and leaves the containers running."""


class EndedNote(Static):
    """How the selected container ended (exit code, OOM killer, what to do next) and, when the
    dashboard saw it end, its last screen below: like a dead pane in tmux, the last output of a shell
    that exited is often the part worth reading. The text is laid out for the note's width when it is
    drawn: the sentences wrap, the screen's lines are cut (they were as wide as the pane), and the
    screen's bottom lines are the ones kept when the note is short of lines."""

    DEFAULT_CSS = """
    EndedNote {
        text-wrap: nowrap;
        text-overflow: clip;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self.info = ""
        self.last_screen: list[Text] = []

    def set_note(self, info: str, last_screen: list[Text]) -> None:
        if info == self.info and last_screen is self.last_screen:
            return
        self.info = info
        self.last_screen = last_screen
        self.refresh()

    def render(self) -> Text:
        width = max(self.content_size.width, 20)
        text = Text(no_wrap=True, overflow="crop", end="")
        lines = [line for paragraph in self.info.split("\n")
                 for line in (textwrap.wrap(paragraph, width) or [""])]
        text.append("\n".join(lines))
        if self.last_screen:
            room = self.content_size.height - len(lines) - 2  # below a blank line and a rule
            if room > 0:
                text.append("\n\n")
                text.append(" last screen ".center(width, "─"), style="dim")
                for line in self.last_screen[-room:]:
                    text.append("\n")
                    text.append_text(line)
        return text


class MainScreen(Screen[None]):
    """Header, list | terminal, footer."""

    bindings_state: tuple[bool, ...] = ()  # what the footer's bindings were last refreshed for

    def refresh_bindings(self) -> None:
        app = self.app
        if isinstance(app, Dashboard):
            self.bindings_state = app.binding_state()
        super().refresh_bindings()

    def on_resize(self) -> None:
        app = self.app
        if isinstance(app, Dashboard):
            app.refresh_footer()  # some keys are only labelled when the window is wide enough

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            with Vertical(id="sidebar"):
                yield Label(EMPTY_HINT, id="empty-hint")  # on top, where a new user looks first
                yield ContainerList(id="containers")
            with ContentSwitcher(id="panes", initial="placeholder"):
                yield Static(WELCOME, id="placeholder", classes="placeholder")
                yield EndedNote(id="note", classes="placeholder")  # how a container ended
                yield TerminalPane(id="terminal")  # the selected container's session
        yield Footer(compact=True)

    def on_unmount(self) -> None:
        app = self.app
        if isinstance(app, Dashboard):
            app.close_sessions()
