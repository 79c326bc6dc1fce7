"""The dashboard: the container list on the left, the selected container's live shell on the right.

It is one more client of the per-container supervisors (like ``rustainer attach``): each running
container gets its own TerminalSession, attached in snapshot mode and kept alive (and parsed) in the
background; one TerminalPane on the right draws the selected one. Switching only re-points that pane
at another session and moves the list's highlight between two cards: no widget is mounted, hidden or
laid out again. Quitting detaches every session and leaves the containers running. The list is rebuilt from the state store
about once a second, so containers started or removed from the CLI come and go by themselves.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import textwrap
import time
from collections.abc import Iterable
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.theme import Theme
from textual.widgets import ContentSwitcher, Footer, Header, Label, Static

from rustainer.app.tui_actions import NewContainer, run_args_from_spec, run_cli, spawn_exec_shell
from rustainer.app.tui_dialogs import ConfirmDialog, NewContainerDialog
from rustainer.app.tui_stats import CgroupStats, StatsSource
from rustainer.app.tui_views import ExecScreen, InspectScreen, LogsScreen
from rustainer.backend.container.logs import require_log
from rustainer.backend.container.state import RUNNING, ContainerState, StateStore
from rustainer.backend.errors import RustainerError
from rustainer.backend.spec import format_cpus
from rustainer.widgets.container_list import ContainerList, ContainerRow
from rustainer.widgets.log_view import read_log
from rustainer.widgets.terminal_pane import TerminalPane
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


@dataclass(frozen=True)
class Listed:
    """One poll's view of a container: its reconciled state and the row the list shows."""

    state: ContainerState
    row: ContainerRow


def supervisor_runs(state: ContainerState) -> bool:
    """The container's supervisor (its owner) still runs: a session it ended without an exit code
    was let go, not ended by the container."""
    from rustainer.backend.container.liveness import (
        owner_alive,  # imported already by the first poll's thread
    )

    return state.detached and owner_alive(state)


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
        if isinstance(app, RustainerApp):
            self.bindings_state = app.binding_state()
        super().refresh_bindings()

    def on_resize(self) -> None:
        app = self.app
        if isinstance(app, RustainerApp):
            app.refresh_footer()  # some keys are only labelled when the window is wide enough

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            with Vertical(id="sidebar"):
                yield ContainerList(id="containers")
                yield Label("No containers yet: press ctrl+] then n to create one", id="empty-hint")
            with ContentSwitcher(id="panes", initial="placeholder"):
                yield Static("Select or create a container (ctrl+] then n)", id="placeholder",
                             classes="placeholder")
                yield EndedNote(id="note", classes="placeholder")  # how a container ended
                yield TerminalPane(id="terminal")  # the selected container's session
        yield Footer(compact=True)

    def on_unmount(self) -> None:
        app = self.app
        if isinstance(app, RustainerApp):
            app.close_sessions()


class RustainerApp(App[None]):
    """rustainer-tui; build it with :func:`create_app`."""

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
        Binding("escape", "focus_terminal", "Terminal"),
        Binding("escape", "quietly('focus_terminal')", show=False),
    ]
    CONTAINER_ACTIONS = frozenset({"stop", "kill", "restart", "remove", "logs", "inspect", "exec"})
    RUNNING_ONLY = frozenset({"stop", "kill", "exec"})
    # Footer labels that are left out while the list (not the terminal) has the focus; "focus_terminal"
    # comes back when the window is at least WIDE columns wide (at 80 the container actions fill it).
    TERMINAL_ONLY_LABELS = frozenset({"command_key", "select_next", "select_previous"})
    WIDE = 96

    def __init__(self, root: str, *, stats: StatsSource | None = None, poll: bool = True,
                 stop_timeout: int = 10) -> None:
        super().__init__()
        self.root = root
        self.store = StateStore(root)
        self.stats = stats if stats is not None else CgroupStats()
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
        self.register_theme(THEME)
        self.theme = "rustainer"

    # ---- start-up and polling -------------------------------------------------------------------------

    def get_default_screen(self) -> Screen[None]:
        return MainScreen()

    async def on_mount(self) -> None:
        await self.refresh_containers()
        if self.order and self.selected is None:
            await self.select(self.order[0])
        if self.poll_enabled:
            self.set_interval(POLL_INTERVAL, self._tick)

    async def _tick(self) -> None:
        if not self._polling.locked():
            await self.refresh_containers()

    def _collect(self) -> list[Listed]:
        """Runs in a thread: the state store, reconciled like ``rustainer ps``, plus stats."""
        from rustainer.backend.container.cleanup import reconcile

        states: list[ContainerState] = []
        for state in self.store.list():
            try:
                states.append(reconcile(self.store, state))
            except RustainerError:
                states.append(state)
        states.sort(key=lambda s: s.created_at)
        samples = self.stats.sample([s for s in states if s.status == RUNNING])
        out = []
        for s in states:
            sample = samples.get(s.id)
            r = s.spec.resources
            cpus = sample.cpuset if sample is not None else r.cpus
            out.append(Listed(s, ContainerRow(
                id=s.id, name=s.name, status=s.status, image=os.path.basename(s.spec.rootfs.rstrip("/")) if s.spec.rootfs else "host view",
                cpu_percent=sample.cpu_percent if sample else None,
                memory_usage=sample.memory_usage if sample else None,
                memory_limit=sample.memory_limit if sample else r.memory,
                cpuset=format_cpus(cpus) if cpus else None, exit_code=s.exit_code, oom_killed=s.oom_killed,
                network=s.spec.network, address=s.network_address)))
        return out

    async def refresh_containers(self) -> None:
        """One poll: bring the list and the panes in line with the state store."""
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
                await self._drop_session(cid)
            elif item.state.status != RUNNING:
                await self._session_ended(cid, session)
            elif session.ended and session.exit_code is None and supervisor_runs(item.state):
                # The supervisor let this dashboard go (it fell too far behind a flood of output) and
                # goes on: attach again; the current screen comes with the attach.
                await self._attach_session(item.state)
            elif session.ended:
                self._retry_refresh()  # its end is not recorded yet: look again soon
        for item in listed:
            state = item.state
            if state.status == RUNNING and state.detached and state.id not in self.sessions:
                await self._attach_session(state)
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
        if self.selected is not None and self.selected not in self.sessions and self.order:
            # The shown container ended: the keys no longer go to its shell but to the list.
            focused = screen.focused
            if focused is None or isinstance(focused, TerminalPane):
                screen.set_focus(containers)
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
        await self._drop_session(cid)

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
            await session.attach_socket(self.store.socket_path(state.id), cols, lines)
        except (OSError, RustainerError) as err:
            if self.sessions.get(state.id) is session:
                await self._drop_session(state.id)
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

    async def _drop_session(self, cid: str) -> None:
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
        screen = self.get_screen_stack_base()
        containers = screen.query_one(ContainerList)
        containers.highlight_id(cid)
        self._show_name(screen, self.listed[cid].state.name)
        view = self._show(cid)
        if focus and self.screen is screen:
            if view is not None:
                if self.focused is not view:
                    view.focus()
            elif self.focused is not containers:
                containers.focus()
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
                self.selected in self.sessions, self.size.width >= self.WIDE)

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
        if self.selected in self.sessions:
            self.terminal_view.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "quietly":
            inner = str(parameters[0]) if parameters else ""
            return self._allowed(inner) if inner in self.QUIET_TWINS else False
        allowed = self._allowed(action)
        if allowed and not self._labelled(action):
            return False  # not in the footer now: its quiet twin takes the key
        return allowed

    QUIET_TWINS = frozenset({"command_key", "select_next", "select_previous", "focus_terminal"})

    def _allowed(self, action: str) -> bool | None:
        """Whether the action works now (None: shown greyed out, does nothing)."""
        on_main = self.screen is self.get_screen_stack_base() if self.screen_stack else False
        in_terminal = isinstance(self.focused, TerminalPane)
        if action in ("select_next", "select_previous", "select_nth"):
            return on_main
        if action == "command_palette":
            return None if in_terminal else True  # inside the terminal ctrl+p is the shell's
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

    # ---- actions ------------------------------------------------------------------------------------

    def _current(self) -> ContainerState | None:
        listed = self.listed.get(self.selected or "")
        return listed.state if listed else None

    def _name_taken(self, name: str) -> bool:
        try:
            self.store.find(name)
        except RustainerError:
            return False
        return True

    @work(exclusive=False, group="actions")
    async def action_new(self) -> None:
        from rustainer.backend.container.config import available_cpus
        from rustainer.backend.container.names import generate_name

        suggested = generate_name()
        from rustainer.backend.network.store import NetworkStore

        request = await self.push_screen_wait(NewContainerDialog(
            available_cpus=available_cpus(), name_taken=self._name_taken, suggested_name=suggested,
            networks=tuple(NetworkStore(self.root).names())))
        if request is not None:
            await self.create_container(request)

    async def create_container(self, request: NewContainer) -> bool:
        """Start it through the CLI, then show it in the terminal pane."""
        self.notify(f"starting {request.name}…", timeout=2)
        result = await run_cli(*request.run_args(), root=self.root)
        if result.code != 0:
            self.notify(f"cannot create {request.name}: {result.error}", severity="error", timeout=8)
            return False
        await self.refresh_containers()
        created = next((cid for cid in self.order if self.listed[cid].state.name == request.name), None)
        if created is not None:
            await self.select(created)
        return created is not None

    async def _verb(self, verb: str, state: ContainerState, *args: str, done: str) -> bool:
        if state.id in self.busy:
            self.notify(f"{state.name}: another action is still under way", severity="warning")
            return False
        self.busy.add(state.id)
        try:
            result = await run_cli(verb, *args, state.name, root=self.root, timeout=self.stop_timeout + 30)
        finally:
            self.busy.discard(state.id)
        if result.code != 0:
            self.notify(f"{verb} {state.name}: {result.error}", severity="error", timeout=8)
            return False
        self.notify(f"{state.name} {done}", timeout=3)
        await self.refresh_containers()
        return True

    @work(exclusive=False, group="actions")
    async def action_stop(self) -> None:
        state = self._current()
        if state is not None:
            await self._verb("stop", state, "-t", str(self.stop_timeout), done="stopped")

    @work(exclusive=False, group="actions")
    async def action_kill(self) -> None:
        state = self._current()
        if state is not None:
            await self._verb("kill", state, done="killed")

    @work(exclusive=False, group="actions")
    async def action_remove(self) -> None:
        state = self._current()
        if state is None:
            return
        running = " (it is running: it will be killed)" if state.status == RUNNING else ""
        if await self.push_screen_wait(ConfirmDialog(f"Remove container {state.name}{running}?")):
            await self.remove_container(state)

    async def remove_container(self, state: ContainerState) -> bool:
        await self._drop_session(state.id)
        return await self._verb("rm", state, "-f", done="removed")

    @work(exclusive=False, group="actions")
    async def action_restart(self) -> None:
        state = self._current()
        if state is not None:
            await self.restart_container(state)

    async def restart_container(self, state: ContainerState) -> bool:
        """``rm -f`` then ``run --detach`` with the same spec (the same name, a new id)."""
        if state.spec.remove:
            self.notify(f"{state.name} was started with --rm: it cannot be restarted", severity="warning")
            return False
        await self._drop_session(state.id)
        if not await self._verb("rm", state, "-f", done="removed for the restart"):
            return False
        result = await run_cli(*run_args_from_spec(state.spec), root=self.root)
        if result.code != 0:
            self.notify(f"restart {state.name}: {result.error}", severity="error", timeout=8)
            return False
        await self.refresh_containers()
        new = next((cid for cid in self.order if self.listed[cid].state.name == state.name), None)
        if new is not None:
            await self.select(new)
        return True

    def action_logs(self) -> None:
        state = self._current()
        if state is None:
            return
        try:
            require_log(state)
        except RustainerError as err:
            self.notify(str(err), severity="warning")
            return
        path = self.store.log_path(state.id)
        self.push_screen(LogsScreen(state.name, read_log(path), reload=lambda: read_log(path)))

    @work(exclusive=False, group="actions")
    async def action_inspect(self) -> None:
        from rustainer.backend.container.lifecycle import inspect

        state = self._current()
        if state is None:
            return
        try:
            record = await asyncio.to_thread(inspect, self.store, state.id)
        except RustainerError as err:
            self.notify(str(err), severity="error")
            return
        await self.push_screen(InspectScreen(state.name, record))

    @work(exclusive=False, group="actions")
    async def action_exec(self) -> None:
        state = self._current()
        if state is None or state.status != RUNNING:
            return
        screen = ExecScreen(state.name)
        await self.push_screen(screen)
        pane = screen.query_one(TerminalPane)
        size = pane.content_size  # below the header and the pane's title bar, above the footer
        rows, cols = (size.height, size.width) if size.area else (max(self.size.height - 3, 2), max(self.size.width, 10))
        proc, master = spawn_exec_shell(state.name, self.root, rows, cols)
        try:
            await pane.attach_pty(master, pid=proc.pid)
            await screen.closed.wait()
        finally:
            await pane.detach()
            await asyncio.to_thread(_reap, proc)

    # ---- palette ------------------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("New container", "Create a container and open its shell", self.action_new)
        state = self._current()
        if state is None:
            return
        name = state.name
        if state.status == RUNNING:
            yield SystemCommand(f"Stop {name}", "SIGTERM, then SIGKILL after the timeout", self.action_stop)
            yield SystemCommand(f"Kill {name}", "SIGKILL to all its processes", self.action_kill)
            yield SystemCommand(f"Exec a shell in {name}", "rustainer exec -it NAME sh", self.action_exec)
        yield SystemCommand(f"Restart {name}", "Remove and run again with the same spec", self.action_restart)
        yield SystemCommand(f"Remove {name}", "rustainer rm -f, after a confirmation", self.action_remove)
        yield SystemCommand(f"Logs of {name}", "Its recorded output", self.action_logs)
        yield SystemCommand(f"Inspect {name}", "Spec, state and enforced limits", self.action_inspect)
        for index, cid in enumerate(self.order[:9], start=1):
            other = self.listed[cid].state.name

            async def pick(cid: str = cid) -> None:
                await self.select(cid)

            yield SystemCommand(f"Switch to {other}", f"alt+{index}", pick)

    # ---- quitting -----------------------------------------------------------------------------------

    async def action_quit(self) -> None:
        """Detach every session (containers keep running) and leave."""
        sessions = list(self.sessions.values())
        self.sessions.clear()
        self.attached.clear()
        for session in sessions:
            await session.close(detach=True)
        self.exit()


def _reap(proc: object) -> None:
    """Wait for the exec'd CLI after its pty closed (it gets a hangup); kill its session if it lingers."""
    import signal
    import subprocess

    assert isinstance(proc, subprocess.Popen)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def create_app(root: str | None = None, *, stats: StatsSource | None = None, poll: bool = True,
               stop_timeout: int = 10) -> RustainerApp:
    """The dashboard against ``root`` (default: $RUSTAINER_ROOT or /var/lib/rustainer)."""
    from rustainer.backend.util.paths import state_root

    return RustainerApp(os.path.abspath(root) if root else state_root(), stats=stats, poll=poll,
                        stop_timeout=stop_timeout)
