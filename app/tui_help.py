"""``?``: every key of the dashboard on one screen, grouped (a mixin of the app, and the screen).

The dashboard's own keys are read from the app's bindings when the screen opens (each class's
``BINDINGS`` along the app's MRO, Textual's own left out), so that the screen stays true as keys
come and go; a key whose action is not in a known group is listed under "More". What is not a
binding of the app (the terminal's own keys, copy mode's, the search bar's, the badges) comes from
the widgets that handle them.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from rustainer.widgets.badges import LEGEND
from rustainer.widgets.copy_mode import CopyModeHost
from rustainer.widgets.search_bar import SearchBar

#: (title, actions) in the order shown; the first group an action is in wins.
GROUPS: tuple[tuple[str, frozenset[str]], ...] = (
    ("Move around", frozenset({"command_key", "select_next", "select_previous", "select_nth", "focus_terminal"})),
    ("The selected container", frozenset({"new", "stop", "kill", "restart", "remove", "logs", "inspect", "exec",
                                          "record"})),
    ("Views: overview, split, broadcast", frozenset({"overview", "split", "split_next", "split_close", "mark",
                                                      "broadcast"})),
    ("Search, copy and paste", frozenset({"search", "copy_mode", "paste_copied"})),
    ("Badges", frozenset({"silence"})),
    ("The dashboard", frozenset({"command_palette", "help", "quit"})),
)
MORE = "More"

#: Longer words than the footer's labels for the keys that have them (others: their label).
DESCRIPTIONS = {
    "command_key": "leave the terminal for the keys below (again: back)",
    "focus_terminal": "back into the terminal",
    "select_next": "next container",
    "select_previous": "previous container",
    "new": "new container",
    "stop": "stop (SIGTERM, then SIGKILL)",
    "kill": "kill (SIGKILL)",
    "restart": "restart (same spec, new id)",
    "remove": "remove (after a confirmation)",
    "logs": "its logs",
    "inspect": "inspect: spec, state, limits",
    "exec": "a second shell (exec -it NAME bash, or sh)",
    "record": "record its session (asciicast v2); again: stop",
    "overview": "overview: every running container's screen as a live tile",
    "split": "split: another container beside (|) or below (-)",
    "split_next": "(in a split) the focus to the next pane",
    "split_close": "(in a split) close the active pane",
    "mark": "mark the selected container for broadcast (again: unmark)",
    "broadcast": "broadcast input to the marked containers on / off",
    "search": "search the scrollback and screen",
    "copy_mode": "copy mode (select and copy by keyboard)",
    "paste_copied": "paste what was last copied into the shell",
    "silence": "watch for silence on / off (palette: other times)",
    "command_palette": "command palette",
    "help": "this screen",
    "quit": "quit (the containers keep running)",
}

TERMINAL_KEYS: tuple[tuple[str, str], ...] = (
    ("typing", "goes to the shell while the terminal has the focus (a running container is selected)"),
    ("shift+pgup shift+pgdn, wheel", "scroll back through the scrollback (any key: back to live)"),
    ("mouse drag", "select text; the release copies it (OSC 52: through SSH and tmux too)"),
    ("paste", "your terminal's paste goes to the shell, bracketed if the program asked (mode 2004)"),
)


def app_bindings(app: App[object]) -> list[Binding]:
    """The app's own bindings, in the order its classes declare them (Textual's left out, and the
    unlabelled twins of labelled keys: a key the footer labels only when there is room has a second,
    unshown binding that takes it otherwise)."""
    declared: list[Binding] = []
    for cls in reversed(type(app).__mro__):
        if cls.__module__.startswith("textual") or "BINDINGS" not in cls.__dict__:
            continue
        declared.extend(Binding.make_bindings(cls.__dict__["BINDINGS"]))
    labelled = {binding.key for binding in declared if binding.show}
    out: list[Binding] = []
    seen: set[tuple[str, str]] = set()
    for binding in declared:
        if not binding.show and binding.key in labelled:
            continue
        if (binding.key, binding.action) in seen:
            continue
        seen.add((binding.key, binding.action))
        out.append(binding)
    return out


def _name(action: str) -> str:
    return action.split("(", 1)[0].removeprefix("app.")


def grouped(app: App[object]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(group title, [(keys, what)]) for every key of the app, keys of one action together."""
    rows: dict[str, dict[str, tuple[list[str], str]]] = {title: {} for title, _ in GROUPS}
    rows[MORE] = {}
    for binding in app_bindings(app):
        name = _name(binding.action)
        title = next((t for t, actions in GROUPS if name in actions), MORE)
        key = binding.key_display or app.get_key_display(binding)
        what = DESCRIPTIONS.get(name) or binding.description or binding.tooltip or name.replace("_", " ")
        if name == "select_nth":
            key, what = "alt+1…9", "the Nth container"
        entry = rows[title].setdefault(name, ([], what))
        if key not in entry[0]:
            entry[0].append(key)
    return [(title, [(" ".join(keys), what) for keys, what in entries.values()])
            for title, entries in rows.items() if entries]


def _table(title: str, rows: Iterable[tuple[str, str]]) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", show_header=False, box=None,
                  padding=(0, 1), expand=True)
    table.add_column("keys", style="bold #d7875f", max_width=18)
    table.add_column("what", ratio=1)
    for keys, what in rows:
        table.add_row(keys, what)
    return table


def help_content(app: App[object]) -> tuple[Group, Group]:
    """Two columns: the dashboard's keys; the terminal's, copy mode's, the bar's and the badges."""
    left: list[Table | Text] = []
    for title, rows in grouped(app):
        left.extend([_table(title, rows), Text()])
    right: list[Table | Text] = [
        _table("In the terminal", TERMINAL_KEYS), Text(),
        _table("Copy mode ([, or / then enter)", CopyModeHost.COPY_KEYS), Text(),
        _table("The search bar (/)", SearchBar.KEYS), Text(),
        _table("Badges (showing a container clears them)", LEGEND),
    ]
    return Group(*left[:-1]), Group(*right)


class HelpScreen(ModalScreen[None]):
    """Every key, grouped; escape, q or ? close it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; background: $background 60%; }
    HelpScreen > Vertical {
        width: 120; max-width: 100%; height: 100%; border: round $primary; background: $surface;
        padding: 0 1;
    }
    HelpScreen #help-columns { height: auto; }
    HelpScreen .help-column { width: 1fr; height: auto; }
    HelpScreen #help-right { margin-left: 2; }
    HelpScreen .help-title { width: 1fr; content-align: center middle; text-style: bold; }
    HelpScreen .help-hint { width: 1fr; content-align: center middle; color: $text-muted; }
    HelpScreen VerticalScroll { height: 1fr; }
    """

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("rustainer-tui keys", classes="help-title")
            left, right = help_content(self.app)
            with VerticalScroll(), Horizontal(id="help-columns"):
                yield Static(left, id="help-left", classes="help-column")
                yield Static(right, id="help-right", classes="help-column")
            yield Label("escape, q or ? closes · arrows and pgup/pgdn scroll", classes="help-hint")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()


class HelpActions(App[None]):
    """``?`` opens :class:`HelpScreen`."""

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())
