"""The dashboard: the container list on the left, the selected container's live shell on the right.

It is one more client of the per-container supervisors (like ``rustainer attach``): each running
container gets its own TerminalSession, attached in snapshot mode and kept alive (and parsed) in the
background; one TerminalPane on the right draws the selected one. Switching only re-points that pane
at another session and moves the list's highlight between two cards: no widget is mounted, hidden or
laid out again. Quitting detaches every session and leaves the containers running. The list is
asked of the engine about once a second (in a worker thread), so containers started or removed from
the CLI come and go by themselves.

This module is the app itself: composition, keys, polling, sessions and selection. What it does to
containers is in tui_container_actions.py, its screens in tui_main_screen.py, tui_views.py and
tui_dialogs.py; all it knows of the backend is the engine (tui_engine.py).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.theme import Theme
from textual.widgets import ContentSwitcher, Header, Static

from rustainer.app.tui_badges import BadgeActions
from rustainer.app.tui_broadcast import BroadcastActions
from rustainer.app.tui_container_actions import ContainerActions
from rustainer.app.tui_engine import DashboardEngine
from rustainer.app.tui_help import HelpActions
from rustainer.app.tui_layout import SplitActions
from rustainer.app.tui_main_screen import EndedNote, MainScreen
from rustainer.app.tui_overview import OverviewActions
from rustainer.app.tui_search import SearchActions
from rustainer.app.tui_stats import CgroupStats, StatsSource
from rustainer.backend.container.state import RUNNING, ContainerState
from rustainer.backend.errors import RustainerError
from rustainer.backend.spec import ContainerSpec, format_cpus
from rustainer.widgets.container_list import ContainerList, ContainerRow
from rustainer.widgets.terminal_pane import TerminalPane, TypedHook
from rustainer.widgets.terminal_render import screen_lines
from rustainer.widgets.terminal_session import TerminalSession

RETRY_DELAY = 0.5
POLL_INTERVAL = 1.0
END_GRACE = 3.0  # seconds an ended container's session may still take to deliver its end

# Colours picked from the xterm 256-colour cube, so a 256-colour terminal shows them unchanged.
THEME = Theme(
    name="rustainer",
    primary="#5f87d7",
    secondary="#5fafaf",
    accent="#d7875f",
    foreground="#dadada",
    background="#121212",
    surface="#1c1c1c",
    panel="#303030",
    success="#5faf5f",
    warning="#d7af5f",
    error="#d75f5f",
    dark=True,
)


def root_label(spec: ContainerSpec) -> str:
    """What a card says the container runs on, as ``rustainer ps``'s ROOTFS column: the image's name,
    the rootfs folder's (last part), or the host view."""
    if spec.image_name:
        return spec.image_name
    return os.path.basename(spec.rootfs.rstrip("/")) if spec.rootfs else "host view"


@dataclass(frozen=True)
class Listed:
    """One poll's view of a container: its reconciled state, the row the list shows, and whether its
    supervisor (its owner) still runs: a session it ended without an exit code was then let go, not
    ended by the container."""

    state: ContainerState
    row: ContainerRow
    supervisor_runs: bool = False


class RustainerApp(SearchActions, BadgeActions, HelpActions, BroadcastActions, SplitActions, OverviewActions,
                   ContainerActions):
    """rustainer-tui; build it with :func:`create_app`. Its container actions are in
    :class:`~rustainer.app.tui_container_actions.ContainerActions`; the overview, the split view and
    broadcast input in tui_overview.py, tui_layout.py and tui_broadcast.py; search, copy and paste in
    :class:`~rustainer.app.tui_search.SearchActions`; badges in
    :class:`~rustainer.app.tui_badges.BadgeActions`; the ``?`` screen in :mod:`~rustainer.app.tui_help`."""

    CSS_PATH = "tui.tcss"
    TITLE = "rustainer"
    COMMAND_PALETTE_BINDING = "ctrl+p"
    # The footer is one line: at 80 columns it has room for the keys that work where the focus is and
    # little more. A key whose label only belongs in the footer some of the time (Next and Prev while
    # the terminal has the focus, Terminal when the window is wide enough) has a twin that is never
    # shown, ``quietly(...)``: when the shown binding is left out of the footer, the twin does the work.
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("ctrl+right_square_bracket", "command_key", "Command key", key_display="^]", priority=True),
        Binding("ctrl+right_square_bracket", "quietly('command_key')", show=False, priority=True),
        Binding("ctrl+pagedown", "select_next", "Next", key_display="^PgDn", priority=True),
        Binding("ctrl+pagedown", "quietly('select_next')", show=False, priority=True),
        Binding("ctrl+pageup", "select_previous", "Prev", key_display="^PgUp", priority=True),
        Binding("ctrl+pageup", "quietly('select_previous')", show=False, priority=True),
        *[Binding(f"alt+{n}", f"select_nth({n})", f"Container {n}", show=False, priority=True)
          for n in range(1, 10)],
        # Not priority: while the shell has the focus these keys are the shell's.
        Binding("ctrl+p", "command_palette", "Palette", show=False),
        Binding("n", "new", "New"),
        Binding("s", "stop", "Stop"),
        Binding("k", "kill", "Kill"),
        Binding("r", "restart", "Restart"),
        Binding("x", "remove", "Remove"),
        Binding("l", "logs", "Logs"),
        Binding("i", "inspect", "Info"),
        Binding("e", "exec", "Exec"),
        Binding("R", "record", "Rec"),
        Binding("R", "quietly('record')", show=False),
        Binding("escape", "focus_terminal", "Terminal"),
        Binding("escape", "quietly('focus_terminal')", show=False),
        # The overview, the split view and broadcast input (tui_overview, tui_layout, tui_broadcast):
        # labelled in the footer only where there is room (see check_layout_action).
        Binding("o", "overview", "Overview"),
        Binding("o", "layout_quietly('overview')", show=False),
        Binding("vertical_line", "split('horizontal')", "Split", key_display="|"),
        Binding("vertical_line", "layout_quietly('split_h')", show=False),
        Binding("minus", "split('vertical')", "Stack", key_display="-"),
        Binding("minus", "layout_quietly('split_v')", show=False),
        Binding("w", "split_next", "Pane"),
        Binding("w", "layout_quietly('split_next')", show=False),
        Binding("u", "split_close", "Unsplit"),
        Binding("u", "layout_quietly('split_close')", show=False),
        Binding("m", "mark", "Mark"),
        Binding("m", "layout_quietly('mark')", show=False),
        Binding("B", "broadcast", "Broadcast"),
        Binding("B", "layout_quietly('broadcast')", show=False),
        Binding("slash", "search", "Search the scrollback", key_display="/", show=False),
        Binding("left_square_bracket", "copy_mode", "Copy mode", key_display="[", show=False),
        Binding("right_square_bracket", "paste_copied", "Paste what was copied", key_display="]", show=False),
        Binding("S", "silence", "Watch for silence (toggle)", key_display="S", show=False),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("question_mark", "quietly('help')", show=False),
    ]
    CONTAINER_ACTIONS = frozenset({"stop", "kill", "restart", "remove", "logs", "inspect", "exec", "record"})
    RUNNING_ONLY = frozenset({"stop", "kill", "exec", "record"})
    # Footer labels that are left out while the list (not the terminal) has the focus; "focus_terminal"
    # comes back when the window is at least WIDE columns wide (at 80 the container actions fill it).
    TERMINAL_ONLY_LABELS = frozenset({"command_key", "select_next", "select_previous"})
    WIDE = 96
    RECORD_WIDE = 104  # "R Rec" is labelled from this width (below it, R works unlabelled: see the palette)
    HELP_WIDE = 112  # from this width the footer has room for "? Help" too

    def __init__(self, engine: DashboardEngine, *, stats: StatsSource | None = None, poll: bool = True,
                 stop_timeout: int = 10) -> None:
        super().__init__()
        self.engine = engine
        self.root = engine.root
        self.stats = stats if stats is not None else CgroupStats(engine)
        self.poll_enabled = poll
        self.stop_timeout = stop_timeout
        self.listed: dict[str, Listed] = {}
        self.order: list[str] = []
        self.selected: str | None = None
        self.sessions: dict[str, TerminalSession] = {}  # running containers' sessions, shown or not
        self.attached: set[str] = set()  # container ids whose session is attached to a supervisor
        self.busy: set[str] = set()  # container ids with an action under way
        self.last_screens: dict[str, list[Text]] = {}  # ended containers' last screens, as seen here
        self._ended_at: dict[str, float] = {}  # when a container with a session was first seen ended
        self._polling = asyncio.Lock()
        self.init_broadcast()
        self.register_theme(THEME)
        self.theme = "rustainer"

    # ---- start-up and polling -------------------------------------------------------------------------

    def get_default_screen(self) -> Screen[None]:
        return MainScreen()

    async def on_mount(self) -> None:
        self.start_badges()
        await self.refresh_containers()
        if self.order and self.selected is None:
            await self.select(self.order[0])
        if self.poll_enabled:
            self.set_interval(POLL_INTERVAL, self._tick)

    async def _tick(self) -> None:
        if not self._polling.locked():
            await self.refresh_containers()

    def _collect(self) -> list[Listed]:
        """Runs in a thread: the containers, reconciled like ``rustainer ps``, plus stats."""
        states = self.engine.containers()
        samples = self.stats.sample([s for s in states if s.status == RUNNING])
        out = []
        for s in states:
            sample = samples.get(s.id)
            r = s.spec.resources
            cpus = sample.cpuset if sample is not None else r.cpus
            out.append(Listed(s, ContainerRow(
                id=s.id, name=s.name, status=s.status, image=root_label(s.spec),
                cpu_percent=sample.cpu_percent if sample else None,
                memory_usage=sample.memory_usage if sample else None,
                memory_limit=sample.memory_limit if sample else r.memory,
                cpuset=format_cpus(cpus) if cpus else None, exit_code=s.exit_code, oom_killed=s.oom_killed,
                network=s.spec.network, address=s.network_address,
                recording=s.recording and s.status == RUNNING),
                supervisor_runs=s.status == RUNNING and s.detached and self.engine.owner_alive(s)))
        return out

    async def refresh_containers(self) -> None:
        """One poll: bring the list and the panes in line with the engine's containers."""
        async with self._polling:
            listed = await asyncio.to_thread(self._collect)
            await self._apply(listed)

    async def _apply(self, listed: list[Listed]) -> None:
        if not self.screen_stack:
            return
        try:
            await self._apply_to(self.get_screen_stack_base(), listed)
        except NoMatches:
            # Not composed yet (a very early first refresh) or closing (widgets going): try again soon.
            self._retry_refresh()

    async def _apply_to(self, screen: Screen[object], listed: list[Listed]) -> None:
        containers = screen.query_one(ContainerList)
        self.listed = {item.state.id: item for item in listed}
        self.order = [item.state.id for item in listed]
        await containers.update_rows([item.row for item in listed])
        screen.query_one("#empty-hint").display = not listed
        switcher = screen.query_one("#panes", ContentSwitcher)
        for cid in [cid for cid in self.last_screens if cid not in self.listed]:
            del self.last_screens[cid]
        for cid in [cid for cid in self._ended_at if cid not in self.listed]:
            del self._ended_at[cid]
        for cid, session in list(self.sessions.items()):
            item = self.listed.get(cid)
            if item is None:
                await self.drop_session(cid)
            elif item.state.status != RUNNING:
                await self._session_ended(cid, session)
            elif session.ended and session.exit_code is None and item.supervisor_runs:
                # The supervisor let this dashboard go (it fell too far behind a flood of output) and
                # goes on: attach again; the current screen comes with the attach.
                await self._attach_session(item.state)
            elif session.ended:
                self._retry_refresh()  # its end is not recorded yet: look again soon
        for item in listed:
            state = item.state
            if state.status == RUNNING and state.detached and state.id not in self.sessions:
                await self._attach_session(state)
        for cid, session in self.sessions.items():  # the pane's title bar: the name, and REC while recorded
            item = self.listed.get(cid)
            label = item.state.name + (" ● REC" if item.row.recording else "") if item is not None else session.label
            if label != session.label:
                session.label = label
                screen.query_one("#terminal", TerminalPane).session_replaced(session)  # its bar, now
        if self.selected is not None and self.selected not in self.listed:
            self.selected = None
            if self.order:
                await self.select(self.order[-1])
            else:
                switcher.current = "placeholder"
        elif self.selected is None and self.order and self.screen is screen:
            await self.select(self.order[0])
        elif self.selected is not None:
            self._show(self.selected)
        self.containers_polled({item.state.id: (item.state.status, item.state.exit_code, item.state.oom_killed)
                                for item in listed})
        if self.selected is not None and self.selected not in self.sessions and self.order:
            # The shown container ended: the keys no longer go to its shell but to the list.
            focused = screen.focused
            if focused is None or isinstance(focused, TerminalPane):
                screen.set_focus(containers)
        await self.sync_split()
        self.prune_marks()
        self.decorate_panes()
        self.refresh_footer()

    async def _session_ended(self, cid: str, session: TerminalSession) -> None:
        """The container ended: once its session has delivered the last output (the supervisor
        records the end before it says goodbye), keep its last screen for the note and let go."""
        if not session.ended and session.attached:
            first = self._ended_at.setdefault(cid, time.monotonic())
            if time.monotonic() - first < END_GRACE:
                self._retry_refresh()
                return
        self._ended_at.pop(cid, None)
        session.drain()
        self.last_screens[cid] = screen_lines(session.terminal)
        await self.drop_session(cid)

    def refresh_footer(self) -> None:
        """Rebuild the footer's keys if what they depend on changed (not on every poll)."""
        screen = self.get_screen_stack_base() if self.screen_stack else None
        if isinstance(screen, MainScreen) and screen.bindings_state != self.binding_state():
            self.refresh_bindings()

    async def on_terminal_pane_exited(self, event: TerminalPane.Exited) -> None:
        """The shown container's session ended: show how at once, not at the next poll."""
        if event.pane.id != "terminal":
            return
        if self._polling.locked():
            self._retry_refresh()  # a refresh under way may have read the state before the end
        else:
            await self.refresh_containers()

    def get_screen_stack_base(self) -> Screen[object]:
        return self.screen_stack[0]

    @property
    def terminal_view(self) -> TerminalPane:
        """The one pane that draws the selected container's session."""
        return self.get_screen_stack_base().query_one("#terminal", TerminalPane)

    def _view_size(self) -> tuple[int, int]:
        """(columns, lines) of the terminal pane's content (below its title bar); it fills the area
        on the right, shown or not."""
        screen = self.get_screen_stack_base()
        size = screen.query_one("#panes").content_size
        gutter = screen.query_one("#terminal", TerminalPane).styles.gutter
        return (max(size.width - gutter.width, 0), max(size.height - gutter.height, 0))

    async def _attach_session(self, state: ContainerState) -> None:
        """A session for a running container, attached to its supervisor (its current screen comes
        with the attach) at the pane's size. It stays attached and parsed while not shown."""
        old = self.sessions.pop(state.id, None)
        if old is not None:
            await old.close(detach=True)
        session = TerminalSession(label=state.name)
        self.sessions[state.id] = session
        self.attached.add(state.id)
        if self.selected == state.id:
            self._show(state.id)
        cols, lines = self._view_size()
        try:
            await session.attach_socket(self.engine.socket_path(state.id), cols, lines)
        except (OSError, RustainerError) as err:
            if self.sessions.get(state.id) is session:
                await self.drop_session(state.id)
                self.notify(f"cannot attach to {state.name}: {err}", severity="warning")
                self._retry_refresh()  # a supervisor busy starting up: the next refresh attaches again
            return
        if self.sessions.get(state.id) is not session:  # dropped (or quitting) while attaching
            await session.close(detach=True)
            return
        session.resize(*self._view_size())  # the pane may have been resized meanwhile

    def _retry_refresh(self) -> None:
        """One more refresh shortly, also when polling is off (tests, snapshots)."""
        if not self.poll_enabled and self.is_running:
            self.set_timer(RETRY_DELAY, self._tick)

    async def drop_session(self, cid: str) -> None:
        self.attached.discard(cid)
        session = self.sessions.pop(cid, None)
        if session is None:
            return
        try:
            view = self.terminal_view
        except NoMatches:
            view = None
        if view is not None and view.session is session:
            view.show(None)
        await session.close(detach=True)

    def container_list(self) -> ContainerList | None:
        try:
            return self.get_screen_stack_base().query_one(ContainerList) if self.screen_stack else None
        except NoMatches:
            return None

    def session_of(self, cid: str) -> TerminalSession | None:
        """The container's session (its terminal core is ``.terminal``), shown or not."""
        return self.sessions.get(cid)

    def close_sessions(self) -> None:
        """Detach every session at once (the app is going away)."""
        for session in self.sessions.values():
            session.close_now()
        self.sessions.clear()
        self.attached.clear()

    def on_terminal_pane_resized(self, event: TerminalPane.Resized) -> None:
        """The pane's new size goes to every container in the background as well, so that showing
        one later needs no resize (and no redraw by its programs)."""
        if event.pane.id != "terminal":
            return  # an exec screen's own pane
        for session in self.sessions.values():
            session.resize(event.columns, event.lines)

    # ---- selection ----------------------------------------------------------------------------------

    def _show(self, cid: str) -> TerminalPane | None:
        """Point the terminal pane at the container's session, or show a note about how it ended
        when it has none."""
        handled, split_pane = self.show_in_split(cid)
        if handled:
            return split_pane
        screen = self.get_screen_stack_base()
        switcher = screen.query_one("#panes", ContentSwitcher)
        session = self.sessions.get(cid)
        if session is not None:
            view = screen.query_one("#terminal", TerminalPane)
            view.show(session)
            if switcher.current != "terminal":
                switcher.current = "terminal"
            return view
        listed = self.listed.get(cid)
        text = "This container is not running."
        if listed is not None:
            s = listed.state
            code = f" with exit code {s.exit_code}" if s.exit_code is not None else ""
            text = (f"{s.name} has {s.status if s.status != 'exited' else 'exited'}{code}"
                    f"{' (killed by the OOM killer)' if s.oom_killed else ''}.\n\n"
                    "r restarts it, x removes it, l shows its logs, i its spec and state.")
            if s.error:
                text += f"\n\n{s.error}"
        screen.query_one("#note", EndedNote).set_note(text, self.last_screens.get(cid, []))
        screen.query_one("#terminal", TerminalPane).show(None)
        if switcher.current != "note":
            switcher.current = "note"
        return None

    async def select(self, cid: str, *, focus: bool = True) -> None:
        """Show ``cid`` at once; the terminal gets the focus (for a running container)."""
        if cid not in self.listed:
            return
        self.selected = cid
        if not self.screen_stack:
            return  # the app is closing
        screen = self.get_screen_stack_base()
        try:
            containers = screen.query_one(ContainerList)
        except NoMatches:
            return  # a worker finishing while the app closes: its widgets are going
        containers.highlight_id(cid)
        self.badges_looked(cid)
        self._show_name(screen, self.listed[cid].state.name)
        view = self._show(cid)
        if focus and self.screen is screen:
            if view is not None:
                if self.focused is not view:
                    view.focus()
            elif self.focused is not containers:
                containers.focus()
        self.decorate_panes()
        if isinstance(screen, MainScreen) and screen.bindings_state != self.binding_state():
            self.refresh_bindings()  # only when the footer would change (it is rebuilt each time)

    @staticmethod
    def _show_name(screen: Screen[object], name: str) -> None:
        """The container's name in the header. Setting ``sub_title`` would repaint the whole screen
        and lay it out again; the header's title line alone is enough (its size does not change)."""
        if screen.sub_title == name:
            return
        screen.set_reactive(Screen.sub_title, name)
        try:
            header = screen.query_one(Header)
            header.query_one("HeaderTitle", Static).update(header.format_title(), layout=False)
        except NoMatches:
            screen.sub_title = name

    def binding_state(self) -> tuple[bool, ...]:
        """What :meth:`check_action` answers depend on."""
        on_main = self.screen is self.get_screen_stack_base() if self.screen_stack else False
        if isinstance(self.focused, TerminalPane):
            return (on_main, True)
        listed = self.listed.get(self.selected or "")
        return (on_main, False, listed is not None, listed is not None and listed.state.status == RUNNING,
                self.selected in self.sessions, self.size.width >= self.WIDE, self.size.width >= self.RECORD_WIDE,
                self.size.width >= self.HELP_WIDE, *self.layout_state())

    async def action_select_next(self) -> None:
        await self._step(1)

    async def action_select_previous(self) -> None:
        await self._step(-1)

    async def _step(self, delta: int) -> None:
        if not self.order:
            return
        index = self.order.index(self.selected) if self.selected in self.order else -delta
        await self.select(self.order[(index + delta) % len(self.order)])

    async def action_select_nth(self, n: int) -> None:
        if 1 <= n <= len(self.order):
            await self.select(self.order[n - 1])

    @on(ContainerList.Chosen)
    async def _chosen(self, event: ContainerList.Chosen) -> None:
        await self.select(event.container_id)

    def action_command_key(self) -> None:
        """screen's command key: leave the terminal so the dashboard's own keys work; from outside,
        go back into it."""
        focused = self.focused
        if isinstance(focused, TerminalPane):
            if self.screen is self.get_screen_stack_base():
                # at once, not scheduled: the next key (often already read) must see the new focus
                self.screen.set_focus(self.screen.query_one(ContainerList))
            else:
                self.screen.set_focus(None)
        else:
            self.action_focus_terminal()

    def action_focus_terminal(self) -> None:
        if self.screen is not self.get_screen_stack_base():
            panes = self.screen.query(TerminalPane)
            if panes:
                panes.first().focus()
            return
        if self.selected in self.sessions and not self.focus_split_pane():
            self.terminal_view.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.LAYOUT_ACTIONS:
            return self.check_layout_action(action, parameters)
        if action == "quietly":
            inner = str(parameters[0]) if parameters else ""
            return self._allowed(inner) if inner in self.QUIET_TWINS else False
        allowed = self._allowed(action)
        if allowed and not self._labelled(action):
            return False  # not in the footer now: its quiet twin takes the key
        return allowed

    QUIET_TWINS = frozenset({"command_key", "select_next", "select_previous", "focus_terminal", "record", "help"})

    def _allowed(self, action: str) -> bool | None:
        """Whether the action works now (None: shown greyed out, does nothing)."""
        on_main = self.screen is self.get_screen_stack_base() if self.screen_stack else False
        in_terminal = isinstance(self.focused, TerminalPane)
        if action in ("select_next", "select_previous", "select_nth"):
            return on_main
        if action == "command_palette":
            return None if in_terminal else True  # inside the terminal ctrl+p is the shell's
        if action in self.SEARCH_ACTIONS or action in self.BADGE_ACTIONS:
            return self.search_allowed(action)
        if action == "help":
            return not in_terminal
        if action in self.CONTAINER_ACTIONS or action in ("new", "focus_terminal"):
            if not on_main or in_terminal:
                return False  # these keys belong to the shell while it has the focus
            if action == "new":
                return True
            if action == "focus_terminal":
                return self.selected in self.sessions
            listed = self.listed.get(self.selected or "")
            if listed is None:
                return False
            if action in self.RUNNING_ONLY and listed.state.status != RUNNING:
                return None  # shown, greyed out
            return True
        return True

    def _labelled(self, action: str) -> bool:
        """Whether the action's key is shown in the footer now (where it works)."""
        if action in self.TERMINAL_ONLY_LABELS:
            on_main = self.screen is self.get_screen_stack_base() if self.screen_stack else False
            if on_main or action != "command_key":
                return on_main and isinstance(self.focused, TerminalPane)
            return bool(self.screen.query(TerminalPane))  # an exec'd shell's screen: its way out
        if action == "focus_terminal":
            return self.size.width >= self.WIDE
        if action == "record":
            return self.size.width >= self.RECORD_WIDE
        if action == "help":
            return self.size.width >= self.HELP_WIDE
        return True

    async def action_quietly(self, action: str) -> None:
        """A key whose label is not in the footer now: the same action as the shown binding."""
        if action in self.QUIET_TWINS:
            result = getattr(self, f"action_{action}")()
            if inspect.isawaitable(result):
                await result

    def on_descendant_focus(self) -> None:
        if self.screen_stack:
            self.refresh_bindings()

    def on_descendant_blur(self) -> None:
        if self.screen_stack:  # not while the app is shutting down
            self.refresh_bindings()

    # ---- what the container actions ask of the app ----------------------------------------------------

    def container_name(self, cid: str) -> str:
        listed = self.listed.get(cid)
        return listed.state.name if listed is not None else cid[:12]

    def listed_id(self, name: str) -> str | None:
        return next((cid for cid in self.order if self.listed[cid].state.name == name), None)

    def running_id(self, name: str) -> str | None:
        return next((cid for cid in self.order if cid in self.sessions and self.listed[cid].state.name == name),
                    None)

    def pane_typed_hook(self) -> TypedHook:
        return self.broadcast_typed

    def refresh_soon(self) -> None:
        if self._polling.locked():
            self._retry_refresh()
        else:
            self.call_later(self.refresh_containers)

    def selected_state(self) -> ContainerState | None:
        listed = self.listed.get(self.selected or "")
        return listed.state if listed else None

    async def select_named(self, name: str) -> bool:
        found = next((cid for cid in self.order if self.listed[cid].state.name == name), None)
        if found is not None:
            await self.select(found)
        return found is not None

    # ---- palette ------------------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Keys", "? : every key of the dashboard, grouped", self.action_help)
        yield SystemCommand("New container", "Create a container and open its shell", self.action_new)
        state = self.selected_state()
        if state is None:
            return
        name = state.name
        if state.status == RUNNING:
            yield SystemCommand(f"Stop {name}", "SIGTERM, then SIGKILL after the timeout", self.action_stop)
            yield SystemCommand(f"Kill {name}", "SIGKILL to all its processes", self.action_kill)
            yield SystemCommand(f"Exec a shell in {name}", "rustainer exec -it NAME bash (or sh)", self.action_exec)
            yield SystemCommand(f"{'Stop recording' if state.recording else 'Record'} {name}",
                                "An asciicast v2 recording of its session (R)", self.action_record)
        yield SystemCommand(f"Restart {name}", "Remove and run again with the same spec", self.action_restart)
        yield SystemCommand(f"Remove {name}", "rustainer rm -f, after a confirmation", self.action_remove)
        yield SystemCommand(f"Logs of {name}", "Its recorded output", self.action_logs)
        yield SystemCommand(f"Inspect {name}", "Spec, state and enforced limits", self.action_inspect)
        if state.status == RUNNING and state.id in self.sessions:
            yield SystemCommand(f"Search {name}'s scrollback", "/ (plain text or regex), then n / N", self.action_search)
            yield SystemCommand(f"Copy mode in {name}", "[ : select with v, copy with y (OSC 52)",
                                self.action_copy_mode)
            yield SystemCommand(f"Paste into {name}", "] : what was last copied, as a paste", self.action_paste_copied)
            yield from self.silence_commands()
        for index, cid in enumerate(self.order[:9], start=1):
            other = self.listed[cid].state.name

            async def pick(cid: str = cid) -> None:
                await self.select(cid)

            yield SystemCommand(f"Switch to {other}", f"alt+{index}", pick)
        yield from self.overview_commands()
        yield from self.split_commands()
        yield from self.broadcast_commands()

    # ---- quitting -----------------------------------------------------------------------------------

    async def action_quit(self) -> None:
        """Detach every session (containers keep running) and leave."""
        sessions = list(self.sessions.values())
        self.sessions.clear()
        self.attached.clear()
        for session in sessions:
            await session.close(detach=True)
        self.exit()


def create_app(root: str | None = None, *, engine: DashboardEngine | None = None, stats: StatsSource | None = None,
               poll: bool = True, stop_timeout: int = 10) -> RustainerApp:
    """The dashboard against ``root`` (default: $RUSTAINER_ROOT or /var/lib/rustainer), or against
    ``engine`` (anything with the engine's methods: the tests' in-memory fake)."""
    if engine is None:
        from rustainer.backend.engine import Engine

        engine = Engine(os.path.abspath(root) if root else None)
    return RustainerApp(engine, stats=stats, poll=poll, stop_timeout=stop_timeout)
