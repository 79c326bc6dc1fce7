"""Broadcast input (tmux's synchronize-panes): ``m`` marks the selected container, ``B`` turns the
broadcast on or off; while it is on, every key and paste typed into a terminal pane also goes to each
marked container's session.

The marked containers' cards get a yellow edge; while the broadcast is on a banner across the window
names them, and the panes that show a marked container get a yellow title bar. Each key is encoded
again for each target (its cursor-key mode: the arrows ``vi`` or ``less`` want in one container and a
shell wants in another), and a paste is bracketed for each target that asked for it.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import App, SystemCommand
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Static

from rustainer.widgets.container_list import ContainerList
from rustainer.widgets.keys import key_to_bytes
from rustainer.widgets.terminal_pane import TerminalPane
from rustainer.widgets.terminal_session import TerminalSession


class BroadcastBanner(Static):
    """One line across the window while the broadcast is on."""

    DEFAULT_CSS = """
    BroadcastBanner {
        height: 1;
        width: 1fr;
        background: #d7af5f;
        color: #121212;
        text-style: bold;
        padding: 0 1;
    }
    """


def paste_bytes(text: str, bracketed: bool) -> bytes:
    """A paste as a terminal pane sends it (see ``TerminalPane.on_paste``)."""
    data = text.replace("\r\n", "\r").replace("\n", "\r").encode("utf-8", "replace")
    if bracketed:
        data = b"\x1b[200~" + data.replace(b"\x1b[201~", b"") + b"\x1b[201~"
    return data


class BroadcastActions(App[None]):
    """Broadcast input's part of :class:`~rustainer.app.tui_app.RustainerApp` (a mixin of it)."""

    sessions: dict[str, TerminalSession]
    order: list[str]
    selected: str | None

    def get_screen_stack_base(self) -> Screen[object]:
        raise NotImplementedError

    def refresh_footer(self) -> None:
        raise NotImplementedError

    def container_name(self, cid: str) -> str:
        raise NotImplementedError

    def init_broadcast(self) -> None:
        self.marked: set[str] = set()  # container ids
        self.broadcasting = False

    # ---- actions ------------------------------------------------------------------------------------

    def action_mark(self) -> None:
        """Mark or unmark the selected container for broadcast input."""
        cid = self.selected
        if cid is None:
            return
        if cid in self.marked:
            self.marked.discard(cid)
        else:
            self.marked.add(cid)
        if self.broadcasting and not self.marked:
            self.broadcasting = False
            self.notify("broadcast off: no container is marked", timeout=3)
        self.decorate_panes()

    def action_broadcast(self) -> None:
        """Broadcast input on or off."""
        if not self.broadcasting and not self.marked:
            self.notify("mark containers with m first (ctrl+] m)", severity="warning")
            return
        self.broadcasting = not self.broadcasting
        self.decorate_panes()

    def broadcast_commands(self) -> Iterable[SystemCommand]:
        if self.selected is not None:
            name = self.container_name(self.selected)
            verb = "Unmark" if self.selected in self.marked else "Mark"
            yield SystemCommand(f"{verb} {name} for broadcast", "Keys typed go to every marked container "
                                "while the broadcast is on (m)", self.action_mark)
        if self.broadcasting:
            yield SystemCommand("Broadcast off", "Keys go to the focused container alone (B)", self.action_broadcast)
        elif self.marked:
            yield SystemCommand("Broadcast on", "Keys typed go to every marked container as well (B)",
                                self.action_broadcast)

    # ---- input ----------------------------------------------------------------------------------------

    def broadcast_typed(self, pane: TerminalPane, key: str | None, text: str | None, data: bytes) -> None:
        """A pane sent a key or a paste to its program: send it to every other marked container."""
        if not self.broadcasting:
            return
        source = pane.session
        for cid in list(self.marked):
            session = self.sessions.get(cid)
            if session is None or session is source:
                continue
            modes = session.terminal.modes
            if key is None:
                out: bytes | None = paste_bytes(text or "", modes.bracketed_paste)
            else:
                out = key_to_bytes(key, text, modes.application_cursor)
            if out:
                session.send(out)

    # ---- what is shown ----------------------------------------------------------------------------------

    def prune_marks(self) -> None:
        """After each poll: marks of containers that are gone go."""
        self.marked &= set(self.order)
        if self.broadcasting and not self.marked:
            self.broadcasting = False

    def decorate_panes(self) -> None:
        """Marks on the cards, the banner and the panes' title bars, as the marks and broadcast are."""
        if not self.screen_stack:
            return
        screen = self.get_screen_stack_base()
        try:
            cards = screen.query_one(ContainerList).cards()
        except NoMatches:
            return
        for card in cards:
            card.set_class(card.row.id in self.marked, "-marked")
        names = {self.container_name(cid) for cid in self.marked if cid in self.order}
        marked_sessions = {id(self.sessions[cid]) for cid in self.marked if cid in self.sessions}
        for pane in screen.query(TerminalPane):
            pane.typed_hook = self.broadcast_typed
            pane.set_class(self.broadcasting and id(pane.session) in marked_sessions, "-broadcast")
        self._banner(screen, names)
        self.refresh_footer()

    def _banner(self, screen: Screen[object], names: set[str]) -> None:
        try:
            banner: BroadcastBanner | None = screen.query_one("#broadcast", BroadcastBanner)
        except NoMatches:
            banner = None
        if not self.broadcasting:
            if banner is not None:
                banner.remove()
            return
        ordered = [self.container_name(cid) for cid in self.order if self.container_name(cid) in names]
        text = f"BROADCAST  keys typed go to: {', '.join(ordered)}   (ctrl+] B: off)"
        if banner is None:
            screen.mount(BroadcastBanner(text, id="broadcast"), before="#body")
        else:
            banner.update(text)
