"""The split view: two or more terminal panes side by side or stacked, each showing one container.

Each pane is a full :class:`~rustainer.widgets.terminal_pane.TerminalPane` (keys to the focused one,
scrollback, mouse), bound to a container by name, so a container restarted under the same name comes
back into its pane. A pane resizes the session it shows to its own size; the view itself knows
nothing of containers beyond the names and sessions the app gives it.
"""

from __future__ import annotations

from textual import events
from textual.containers import Container
from textual.message import Message

from rustainer.widgets.terminal_pane import TerminalPane
from rustainer.widgets.terminal_session import TerminalSession

HORIZONTAL, VERTICAL = "horizontal", "vertical"  # side by side, stacked
MAX_PANES = 6


class SplitPane(TerminalPane):
    """A pane of the split view: it names the container it is bound to, and keeps the session it
    shows at its own size (also when the app resizes that session for its single view)."""

    DEFAULT_CSS = """
    SplitPane.-active {
        border-title-background: $primary;
        border-title-color: $background;
    }
    SplitPane.-ended {
        border-title-background: $error;
    }
    SplitPane.-broadcast {
        border-title-background: $warning;
        border-title-color: $background;
    }
    """

    class Focused(Message):
        """The pane got the focus (a click, or the app's next-pane key)."""

        def __init__(self, pane: SplitPane) -> None:
            super().__init__()
            self.pane = pane

    def __init__(self, container: str, *, id: str | None = None) -> None:
        super().__init__(label=container, id=id)
        self.container = container  # the name of the container it shows

    def session_replaced(self, session: TerminalSession) -> None:
        super().session_replaced(session)
        if session is self.session:
            self._sync_size()  # someone else resized it (the single view's size): back to ours

    def on_focus(self, event: events.Focus) -> None:
        # (Textual calls TerminalPane's own on_focus as well: handlers run along the MRO)
        self.post_message(self.Focused(self))

    def refresh_bar(self) -> None:
        """The title bar again, if the shown session's label changed (the app marks REC there)."""
        self._check_title()

    def bind(self, container: str) -> None:
        """Show another container from now on (its session comes with :meth:`show`)."""
        self.container = container
        self._own.label = container
        self.show(None)
        self._check_title()


class SplitView(Container):
    """Panes in a row (``horizontal``) or a column (``vertical``); one of them is active (the one
    the keys go to while the terminal has the focus, highlighted)."""

    DEFAULT_CSS = """
    SplitView {
        width: 1fr;
        height: 1fr;
        layout: horizontal;
    }
    SplitView.-vertical {
        layout: vertical;
    }
    SplitView > SplitPane {
        width: 1fr;
        height: 1fr;
    }
    SplitView > SplitPane.-after {
        border-left: vkey $panel;
    }
    SplitView.-vertical > SplitPane.-after {
        border-left: none;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.orientation = HORIZONTAL
        self._serial = 0

    @property
    def panes(self) -> list[SplitPane]:
        return [child for child in self.children if isinstance(child, SplitPane)]

    def names(self) -> list[str]:
        return [pane.container for pane in self.panes]

    def pane_of(self, container: str) -> SplitPane | None:
        return next((pane for pane in self.panes if pane.container == container), None)

    @property
    def active(self) -> SplitPane | None:
        panes = self.panes
        return next((p for p in panes if p.has_class("-active")), panes[0] if panes else None)

    def activate(self, pane: SplitPane) -> None:
        for other in self.panes:
            other.set_class(other is pane, "-active")

    def set_orientation(self, orientation: str) -> None:
        self.orientation = orientation
        self.set_class(orientation == VERTICAL, "-vertical")

    async def add_pane(self, container: str, *, after: SplitPane | None = None) -> SplitPane:
        """A new pane bound to ``container`` (after ``after``, or last)."""
        self._serial += 1
        pane = SplitPane(container, id=f"split-{self._serial}")
        if after is not None and after in self.panes:
            await self.mount(pane, after=after)
        else:
            await self.mount(pane)
        self._mark_order()
        return pane

    async def remove_pane(self, pane: SplitPane) -> None:
        await pane.remove()
        self._mark_order()

    def _mark_order(self) -> None:
        for index, pane in enumerate(self.panes):
            pane.set_class(index > 0, "-after")
