"""Full screens over the dashboard: a container's logs, its inspect record, and an exec'd shell."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from rich.json import JSON
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from rustainer.widgets.log_view import LogView
from rustainer.widgets.terminal_pane import TerminalPane


class LogsScreen(Screen[None]):
    """The container's recorded output, scrollable; r reloads, Escape goes back."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back"), Binding("r", "reload", "Reload")]

    def __init__(self, name: str, lines: list[str], reload: Any = None) -> None:
        super().__init__()
        self.container_name = name
        self.lines = lines
        self._reload = reload

    def compose(self) -> ComposeResult:
        yield Header()
        yield LogView(id="logs", highlight=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = f"logs of {self.container_name}"
        view = self.query_one(LogView)
        view.show_lines(self.lines)
        view.focus()

    def action_reload(self) -> None:
        if self._reload is not None:
            self.lines = self._reload()
            self.query_one(LogView).show_lines(self.lines)


class InspectScreen(Screen[None]):
    """``rustainer inspect`` for one container: spec, state, enforced limits, pids."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

    def __init__(self, name: str, record: dict[str, Any]) -> None:
        super().__init__()
        self.container_name = name
        self.record = record

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="inspect"):
            yield Static(JSON(json.dumps(self.record, indent=1, default=str)))
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = f"inspect {self.container_name}"
        self.query_one("#inspect").focus()


class ExecScreen(Screen[None]):
    """A second shell in a running container (``rustainer exec -it NAME SHELL``) on a local pty.

    It closes by itself when the shell exits; Ctrl+] then Escape leaves it early (the shell gets a
    hangup when the pty closes).
    """

    BINDINGS = [Binding("escape", "app.pop_screen", "Close")]

    def __init__(self, name: str, shell: str = "sh") -> None:
        super().__init__()
        self.container_name = name
        self.shell = shell  # the shell's path inside the container (bash or sh)
        self.closed = asyncio.Event()  # set when the screen goes: the exec'd shell is then reaped

    def compose(self) -> ComposeResult:
        yield Header()
        yield TerminalPane(id="exec-pane", label=f"exec {self.shell} in {self.container_name}")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = f"exec {self.shell} in {self.container_name}"
        self.query_one(TerminalPane).focus()

    def on_unmount(self) -> None:
        self.closed.set()

    def on_terminal_pane_exited(self, event: TerminalPane.Exited) -> None:
        event.stop()
        if self.is_current:
            self.app.pop_screen()
