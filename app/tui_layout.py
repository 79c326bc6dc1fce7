"""The split view's part of the dashboard: two or more containers side by side (``|``) or stacked
(``-``), each in a fully interactive pane; ``w`` (after the command key) moves the focus to the next
pane, ``u`` closes the active one (with one left, the single view is back).

The panes are bound to containers by name, so one that is restarted comes back into its pane and
one that ends keeps its last screen there. While the split is on, choosing a container (the list,
next/previous, alt+N, the overview) focuses its pane, or shows it in the active pane when it has
none: the active pane's container is always the selected one, which every list action acts on.

The layout (orientation, the panes' containers, the active one) is written to
``$RUSTAINER_ROOT/tui-layout.json`` at every change and restored at start for the containers that
still run (two at least).
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass

from textual import on
from textual.app import App, SystemCommand
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import ContentSwitcher

from rustainer.app.tui_engine import DashboardEngine
from rustainer.backend.util import jsonfile
from rustainer.widgets.split_view import HORIZONTAL, MAX_PANES, VERTICAL, SplitPane, SplitView
from rustainer.widgets.terminal_pane import TerminalPane, TypedHook
from rustainer.widgets.terminal_session import TerminalSession

LAYOUT_FILE = "tui-layout.json"


# ---- the keys of the overview, the split and the broadcast: where they work, where they are labelled ----

#: binding name -> action, for the twins that do the work while the shown binding is left out of the
#: footer (the app's ``quietly`` pattern)
LAYOUT_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "overview": ("overview", ()), "split_h": ("split", (HORIZONTAL,)), "split_v": ("split", (VERTICAL,)),
    "split_next": ("split_next", ()), "split_close": ("split_close", ()), "mark": ("mark", ()),
    "broadcast": ("broadcast", ())}
#: the footer labels each of them from this many columns (its container actions come first)
LABEL_FROM = {"overview": 120, "split_h": 170, "split_v": 170, "split_next": 120, "split_close": 140,
              "mark": 150, "broadcast": 150}
LAYOUT_ACTIONS = frozenset({"overview", "split", "split_next", "split_close", "mark", "broadcast",
                            "layout_quietly"})


def key_name(action: str, parameters: tuple[object, ...]) -> str:
    """The LAYOUT_KEYS name of a binding's action."""
    if action == "split":
        return "split_v" if parameters and parameters[0] == VERTICAL else "split_h"
    return action


@dataclass(frozen=True)
class Layout:
    """What is kept of the split between two runs of the dashboard."""

    orientation: str = HORIZONTAL
    panes: tuple[str, ...] = ()  # container names, in order
    active: int = 0


def layout_path(root: str) -> str:
    return os.path.join(root, LAYOUT_FILE)


def load_layout(root: str) -> Layout:
    """The saved layout; none (or an unreadable or malformed file) is the single view."""
    try:
        with open(layout_path(root), encoding="utf-8") as f:
            data = json.load(f)
        orientation = data.get("orientation", HORIZONTAL)
        panes = tuple(str(name) for name in data.get("panes", ()))
        active = int(data.get("active", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return Layout()
    if orientation not in (HORIZONTAL, VERTICAL):
        orientation = HORIZONTAL
    return Layout(orientation, panes[:MAX_PANES], active if 0 <= active < len(panes) else 0)


def save_layout(root: str, layout: Layout) -> None:
    """Best effort: a state folder that cannot be written (a read-only root) only loses the layout."""
    try:
        jsonfile.write(layout_path(root), {"orientation": layout.orientation, "panes": list(layout.panes),
                                           "active": layout.active}, durable=False)
    except OSError:
        pass


class SplitActions(App[None]):
    """The split view's part of :class:`~rustainer.app.tui_app.RustainerApp` (a mixin of it)."""

    engine: DashboardEngine
    sessions: dict[str, TerminalSession]
    order: list[str]
    selected: str | None

    # ---- hooks the app provides ---------------------------------------------------------------------

    def get_screen_stack_base(self) -> Screen[object]:
        raise NotImplementedError

    def container_name(self, cid: str) -> str:
        raise NotImplementedError

    def running_id(self, name: str) -> str | None:
        """The id of the running container (with a session) called ``name``."""
        raise NotImplementedError

    def listed_id(self, name: str) -> str | None:
        raise NotImplementedError

    async def select(self, cid: str, *, focus: bool = True) -> None:
        raise NotImplementedError

    def pane_typed_hook(self) -> TypedHook | None:
        raise NotImplementedError

    def decorate_panes(self) -> None:
        raise NotImplementedError

    # ---- state --------------------------------------------------------------------------------------

    @property
    def split_view(self) -> SplitView | None:
        """The split view while the split is on."""
        if not self.screen_stack:
            return None
        try:
            return self.get_screen_stack_base().query_one("#split", SplitView)
        except NoMatches:
            return None

    def split_layout(self) -> Layout:
        split = self.split_view
        if split is None:
            return Layout()
        panes = split.panes
        active = split.active
        return Layout(split.orientation, tuple(split.names()), panes.index(active) if active in panes else 0)

    def _save(self) -> None:
        save_layout(self.engine.root, self.split_layout())

    def _switcher(self) -> ContentSwitcher:
        return self.get_screen_stack_base().query_one("#panes", ContentSwitcher)

    # ---- what the app's selection asks ------------------------------------------------------------------

    def show_in_split(self, cid: str) -> tuple[bool, TerminalPane | None]:
        """While the split is on: show ``cid`` in its pane, or in the active pane when it has none
        and runs. (handled, the live pane) — not handled: the app shows it in its single view (an
        ended container without a pane: the note on how it ended)."""
        split = self.split_view
        if split is None:
            return False, None
        name = self.container_name(cid)
        session = self.sessions.get(cid)
        pane = split.pane_of(name)
        if pane is None:
            pane = split.active
            if session is None or pane is None:
                return False, None
            pane.bind(name)
            self._save()
        if session is not None and pane.session is not session:
            pane.show(session)
        pane.set_class(session is None, "-ended")
        pane.refresh_bar()
        if split.active is not pane:
            split.activate(pane)
            self._save()
        switcher = self._switcher()
        if switcher.current != "split":
            switcher.current = "split"
        return True, pane if session is not None else None

    def focus_split_pane(self) -> bool:
        """``escape`` (back into the terminal) while the split is on: the active pane."""
        split = self.split_view
        pane = split.active if split is not None else None
        if pane is None or pane.container not in [self.container_name(c) for c in self.sessions]:
            return False
        pane.focus()
        return True

    async def sync_split(self) -> None:
        """After each poll: every pane shows its container's current session (a restarted one's new
        session; an ended one's last screen stays), a removed container's pane closes. The first
        time: the saved layout comes back."""
        if not getattr(self, "_layout_restored", False):
            self._layout_restored = True
            await self.restore_layout()
        split = self.split_view
        if split is None:
            return
        for pane in split.panes:
            if self.listed_id(pane.container) is None:
                await self._close_pane(pane, save=True)
                split = self.split_view
                if split is None:
                    return
                continue
            self._fill(pane)

    # ---- actions ------------------------------------------------------------------------------------

    async def action_split(self, orientation: str = HORIZONTAL) -> None:
        """A new pane beside (``horizontal``) or below (``vertical``) the active one, showing the next
        running container that has no pane yet; the first split puts the selected container in the
        first pane."""
        if orientation not in (HORIZONTAL, VERTICAL) or self.selected not in self.sessions:
            return
        split = self.split_view
        shown = split.names() if split is not None else [self.container_name(self.selected)]
        if len(shown) >= MAX_PANES:
            self.notify(f"at most {MAX_PANES} panes", severity="warning")
            return
        candidates = self._running_in_order(after=self.selected)
        other = next((cid for cid in candidates if self.container_name(cid) not in shown), None)
        if other is None:
            self.notify("no other running container to show beside it", severity="warning")
            return
        if split is None:
            split = await self._open_split([self.container_name(self.selected)], orientation)
        split.set_orientation(orientation)
        pane = await split.add_pane(self.container_name(other), after=split.active)
        pane.typed_hook = self.pane_typed_hook()
        self._fill(pane)
        split.activate(pane)
        self._save()
        await self.select(other)

    async def action_split_next(self) -> None:
        """The focus to the next pane (its container becomes the selected one)."""
        split = self.split_view
        if split is None:
            return
        panes = split.panes
        active = split.active
        index = panes.index(active) if active in panes else -1
        for step in range(1, len(panes) + 1):
            pane = panes[(index + step) % len(panes)]
            cid = self.listed_id(pane.container)
            if cid is not None:
                split.activate(pane)
                self._save()
                await self.select(cid)
                return

    async def action_split_close(self) -> None:
        """Close the active pane; with one pane left the split ends."""
        split = self.split_view
        pane = split.active if split is not None else None
        if pane is None:
            return
        await self._close_pane(pane, save=True)
        split = self.split_view
        target = split.active.container if split is not None and split.active is not None else None
        cid = self.listed_id(target) if target is not None else self.selected
        if cid is not None:
            await self.select(cid)

    def action_split_toggle_orientation(self) -> None:
        split = self.split_view
        if split is not None:
            split.set_orientation(VERTICAL if split.orientation == HORIZONTAL else HORIZONTAL)
            self._save()

    # ---- plumbing -----------------------------------------------------------------------------------

    def _running_in_order(self, after: str | None) -> list[str]:
        """Running containers with a session, in the list's order starting after ``after``."""
        order = self.order
        start = order.index(after) + 1 if after in order else 0
        return [cid for cid in order[start:] + order[:start] if cid in self.sessions]

    async def _open_split(self, names: list[str], orientation: str) -> SplitView:
        switcher = self._switcher()
        split = SplitView(id="split")
        split.set_orientation(orientation)
        split.display = False
        await switcher.mount(split)
        hook = self.pane_typed_hook()
        for name in names:
            pane = await split.add_pane(name)
            pane.typed_hook = hook
            self._fill(pane)
        return split

    def _fill(self, pane: SplitPane) -> None:
        """Show the pane's container's session in it (none: it keeps what it shows)."""
        cid = self.running_id(pane.container)
        session = self.sessions.get(cid) if cid is not None else None
        if session is not None and pane.session is not session:
            pane.show(session)
        pane.set_class(session is None, "-ended")
        pane.refresh_bar()

    async def _close_pane(self, pane: SplitPane, *, save: bool) -> None:
        split = self.split_view
        if split is None:
            return
        panes = split.panes
        index = panes.index(pane) if pane in panes else 0
        if len(panes) <= 2:
            await self._close_split()
        else:
            await split.remove_pane(pane)
            rest = split.panes
            split.activate(rest[min(index, len(rest) - 1)])
        if save:
            self._save()

    async def _close_split(self) -> None:
        split = self.split_view
        if split is None:
            return
        refocus = self.focused is None or isinstance(self.focused, SplitPane)
        switcher = self._switcher()
        if switcher.current == "split":
            switcher.current = "terminal"
        await split.remove()
        if self.selected is not None:  # the single view shows it again
            await self.select(self.selected, focus=refocus)

    async def restore_layout(self) -> None:
        """At start: the saved split, with the containers of it that still run (two at least)."""
        layout = load_layout(self.engine.root)
        names = [name for name in layout.panes if self.running_id(name) is not None]
        if len(names) < 2:
            return
        split = await self._open_split(names, layout.orientation)
        active_name = layout.panes[layout.active] if layout.active < len(layout.panes) else names[0]
        pane = split.pane_of(active_name) or split.panes[0]
        split.activate(pane)
        cid = self.running_id(pane.container)
        if cid is not None:
            await self.select(cid)
        await self.sync_split()
        self.decorate_panes()

    def split_commands(self) -> Iterable[SystemCommand]:
        can_split = self.selected in self.sessions and len(self.sessions) >= 2

        async def side_by_side() -> None:
            await self.action_split(HORIZONTAL)

        async def stacked() -> None:
            await self.action_split(VERTICAL)

        if can_split:
            yield SystemCommand("Split side by side", "Another running container in a pane beside this one (|)",
                                side_by_side)
            yield SystemCommand("Split stacked", "Another running container in a pane below this one (-)", stacked)
        if self.split_view is not None:
            yield SystemCommand("Next pane", "Move the focus to the next pane of the split (ctrl+] w)",
                                self.action_split_next)
            yield SystemCommand("Close pane", "Close the active pane; one left ends the split (u)",
                                self.action_split_close)
            yield SystemCommand("Rotate split", "Side by side <-> stacked", self.action_split_toggle_orientation)

    # ---- keys -------------------------------------------------------------------------------------------

    LAYOUT_ACTIONS = LAYOUT_ACTIONS  # (the module's)
    WIDE: int
    marked: set[str]
    broadcasting: bool

    def check_layout_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """check_action for these keys: each works from the list (while a shell has the focus the keys
        are the shell's), and is labelled in the footer only from LABEL_FROM columns; below that its
        quiet twin (``layout_quietly``) does the work."""
        if action == "layout_quietly":
            name = str(parameters[0]) if parameters else ""
            if name not in LAYOUT_KEYS:
                return False
            allowed = self.layout_key_allowed(name)
            return True if allowed and not self._layout_labelled(name) else False
        name = key_name(action, parameters)
        allowed = self.layout_key_allowed(name)
        return allowed if self._layout_labelled(name) else False

    def _layout_labelled(self, name: str) -> bool:
        return self.size.width >= LABEL_FROM.get(name, 10_000)

    def layout_key_allowed(self, name: str) -> bool | None:
        """Whether the key works now (None: labelled greyed out, does nothing)."""
        on_main = self.screen is self.get_screen_stack_base() if self.screen_stack else False
        if not on_main or isinstance(self.focused, TerminalPane):
            return False
        if name == "overview":
            return True  # (with no running container it says so)
        if name in ("split_h", "split_v"):  # (the action says why when there is nothing to split with)
            return True if self.selected in self.sessions else None
        if name in ("split_next", "split_close"):
            return self.split_view is not None
        if name == "mark":
            return self.selected is not None
        return name == "broadcast"  # (with nothing marked it says what to do first)

    async def action_layout_quietly(self, name: str) -> None:
        """A key whose label is not in the footer now: the same action as the shown binding."""
        found = LAYOUT_KEYS.get(name)
        if found is not None:
            method, args = found
            result = getattr(self, f"action_{method}")(*args)
            if inspect.isawaitable(result):
                await result

    def layout_state(self) -> tuple[bool, ...]:
        """What the answers of check_layout_action depend on beyond the app's binding_state."""
        widths = tuple(self.size.width >= columns for columns in sorted(set(LABEL_FROM.values())))
        return (self.split_view is not None, bool(self.marked), self.broadcasting, self.selected in self.sessions,
                *widths)

    # ---- events from the panes ----------------------------------------------------------------------

    async def on_split_pane_focused(self, event: SplitPane.Focused) -> None:
        """A pane got the focus (a click): its container becomes the selected one."""
        split = self.split_view
        if split is None or event.pane not in split.panes:
            return
        if split.active is not event.pane:
            split.activate(event.pane)
            self._save()
        cid = self.listed_id(event.pane.container)
        if cid is not None and cid != self.selected:
            await self.select(cid)

    def refresh_soon(self) -> None:
        raise NotImplementedError

    @on(TerminalPane.Exited)
    def _split_pane_exited(self, event: TerminalPane.Exited) -> None:
        """A split pane's container ended: show how at once (the app's own handler does this for its
        single view only)."""
        if isinstance(event.pane, SplitPane):
            self.refresh_soon()

