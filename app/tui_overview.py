"""The overview (``o``): every running container's live screen as a tile, filling the window.

A screen of its own over the main one (the list keeps being polled underneath): arrows or a click
pick a tile, Enter or a double click zooms into it (the main view shows that container, its shell
focused), ``escape`` or ``o`` goes back as it was. The tiles are drawn by
:class:`~rustainer.widgets.overview.Overview` from the sessions the app keeps alive anyway.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header

from rustainer.widgets.overview import Overview, Tile
from rustainer.widgets.terminal_session import TerminalSession


class OverviewScreen(Screen[str | None]):
    """Header, the tiles, footer; dismissed with the id of the container to zoom into (or None)."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("o", "back", "Back", show=False),
    ]

    def __init__(self, app: OverviewActions, picked: str | None) -> None:
        super().__init__()
        self._source_app = app
        self._picked = picked

    def compose(self) -> ComposeResult:
        yield Header()
        yield Overview(self._source_app.overview_tiles, picked=self._picked, id="overview")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "overview"

    def action_back(self) -> None:
        self.dismiss(None)

    def on_overview_zoom(self, event: Overview.Zoom) -> None:
        self.dismiss(event.container_id)


class OverviewActions(App[None]):
    """The overview's part of :class:`~rustainer.app.tui_app.RustainerApp` (a mixin of it)."""

    sessions: dict[str, TerminalSession]
    order: list[str]
    selected: str | None
    marked: set[str]

    def container_name(self, cid: str) -> str:
        raise NotImplementedError

    async def select(self, cid: str, *, focus: bool = True) -> None:
        raise NotImplementedError

    def overview_tiles(self) -> list[Tile]:
        """The running containers with a session, in the list's order."""
        sessions = self.sessions
        return [Tile(cid, self.container_name(cid), sessions[cid], cid in self.marked)
                for cid in self.order if cid in sessions]

    def action_overview(self) -> None:
        if not self.sessions:
            self.notify("no running container to show", severity="warning")
            return
        self.push_screen(OverviewScreen(self, self.selected), callback=self._zoom)

    async def _zoom(self, cid: str | None) -> None:
        if cid is not None and cid in self.sessions:
            await self.select(cid)

    def overview_commands(self) -> Iterable[SystemCommand]:
        if self.sessions:
            yield SystemCommand("Overview", "Every running container's screen as a live tile (o)",
                                self.action_overview)
