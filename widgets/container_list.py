"""The dashboard's container list: one card per container with its state, limits and sparklines.

The list knows nothing about where rows come from (the app polls the state store and a stats
source); it only turns :class:`ContainerRow` values into cards and reports which one was chosen,
so it can be driven by fake rows in tests and snapshots.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Label, ListItem, ListView, Sparkline

HISTORY = 16  # samples kept per sparkline (one a second)


@dataclass(frozen=True)
class ContainerRow:
    """What one card shows; limits are the ones read back from the cgroup (what is enforced)."""

    id: str
    name: str
    status: str  # running | exited | created
    image: str  # "host view" or the rootfs folder
    cpu_percent: float | None = None
    memory_usage: int | None = None
    memory_limit: int | None = None
    cpuset: str | None = None  # None: all CPUs
    exit_code: int | None = None
    oom_killed: bool = False
    network: str = "none"
    address: str | None = None  # on a bridge network: the container's address
    recording: bool = False  # its session is being recorded (asciicast): a red REC on the card


def human_size(value: int | None) -> str:
    """Short sizes for a narrow column (binary units, one decimal under 10)."""
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "K", "M", "G", "T"):
        if size < 1024 or unit == "T":
            if unit == "B":
                return f"{int(size)}B"
            return f"{size:.1f}{unit}" if size < 10 else f"{size:.0f}{unit}"
        size /= 1024
    return f"{value}B"  # pragma: no cover - the loop always returns


# State colours from the xterm 256-colour palette, light enough to read on the cards' dark
# backgrounds (the highlighted card's too), and unchanged in a 256-colour terminal.
RUNNING_STYLE = "bold #87d787"
FAILED_STYLE = "#ff8787"  # exited with a non-zero code
EXITED_STYLE = "#d7d787"  # exited with 0
OTHER_STYLE = "#a8a8a8"


RECORDING_STYLE = "bold #ffffff on #d70000"


def status_text(row: ContainerRow) -> Text:
    if row.status == "running":
        text = Text("● running", style=RUNNING_STYLE)
        if row.recording:
            text.append(" ")
            text.append(" REC ", style=RECORDING_STYLE)
        return text
    if row.status == "exited":
        label = f"■ exited ({row.exit_code if row.exit_code is not None else '?'})"
        text = Text(label, style=FAILED_STYLE if row.exit_code else EXITED_STYLE)
        if row.oom_killed:
            text.append(" OOM", style=f"bold reverse {FAILED_STYLE}")
        return text
    return Text(f"○ {row.status}", style=OTHER_STYLE)


def short_image(image: str, width: int = 26) -> str:
    return image if len(image) <= width else "…" + image[-(width - 1):]


@dataclass
class _History:
    cpu: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    memory: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))

    def add(self, row: ContainerRow) -> None:
        cpu = row.cpu_percent or 0.0
        mem = float(row.memory_usage or 0)
        if not self.cpu:  # start flat at the first value: a frozen source gives a frozen picture
            self.cpu.extend([cpu] * HISTORY)
            self.memory.extend([mem] * HISTORY)
        self.cpu.append(cpu)
        self.memory.append(mem)


class ContainerCard(ListItem):
    """One container: name and state, image and cpuset, CPU and memory with their sparklines."""

    def __init__(self, row: ContainerRow) -> None:
        super().__init__(id=f"card-{row.id[:12]}")
        self.row = row
        self.history = _History()
        self.history.add(row)
        self.badges = Text()  # what happened since it was last shown (widgets/badges.py)

    def compose(self) -> ComposeResult:
        with Horizontal(classes="card-line"):
            yield Label(self.row.name, classes="card-name")
            yield Label(self.badges, classes="card-badges -shown" if self.badges else "card-badges")
            yield Label(status_text(self.row), classes="card-status")
        yield Label(self._where(), classes="card-where")
        with Horizontal(classes="card-line"):
            yield Label(self._cpu(), classes="card-cpu")
            yield Sparkline(list(self.history.cpu), summary_function=max, classes="card-spark spark-cpu")
        with Horizontal(classes="card-line"):
            yield Label(self._memory(), classes="card-mem")
            yield Sparkline(list(self.history.memory), summary_function=max, classes="card-spark spark-mem")

    def _where(self) -> str:
        line = f"{short_image(self.row.image)} · cpus {self.row.cpuset or 'all'}"
        if self.row.network != "none":  # the default (only lo) is not worth the room
            line += f" · {self.row.network}" + (f" {self.row.address}" if self.row.address else "")
        return line

    def _cpu(self) -> str:
        if self.row.status != "running" or self.row.cpu_percent is None:
            return "CPU      -"
        return f"CPU {self.row.cpu_percent:5.1f}%"

    def _memory(self) -> str:
        if self.row.status != "running":
            return "MEM -"
        limit = human_size(self.row.memory_limit) if self.row.memory_limit else "∞"
        return f"MEM {human_size(self.row.memory_usage)}/{limit}"

    def watch_highlighted(self, value: bool) -> None:
        """Selection moves often (every switch): restyle this card alone, not its ten parts — no
        rule of theirs depends on the highlight, they only inherit its colours, so they drop their
        cached styles and repaint."""
        self.set_class(value, "-highlight", update=False)
        if not self.is_attached:
            return
        self.app.stylesheet.update_nodes([self], animate=False)
        for child in self.walk_children():
            child.notify_style_update()
            child.refresh()

    def set_badges(self, badges: Text) -> None:
        """The card's badges (an empty text: none)."""
        if badges == self.badges:
            return
        self.badges = badges
        if self.is_mounted:
            label = self.query_one(".card-badges", Label)
            label.update(badges)
            label.set_class(bool(badges), "-shown")

    def update_row(self, row: ContainerRow) -> None:
        """New values in place (no recompose): the list updates every second without flicker."""
        self.row = row
        if row.status == "running":
            self.history.add(row)
        if not self.is_mounted:
            return
        self.query_one(".card-status", Label).update(status_text(row))
        self.query_one(".card-where", Label).update(self._where())
        self.query_one(".card-cpu", Label).update(self._cpu())
        self.query_one(".card-mem", Label).update(self._memory())
        self.query_one(".spark-cpu", Sparkline).data = list(self.history.cpu)
        self.query_one(".spark-mem", Sparkline).data = list(self.history.memory)


class ContainerList(ListView):
    """The cards, in the order given; posts :class:`ContainerList.Chosen` on a click or Enter."""

    DEFAULT_CSS = """
    ContainerList ContainerCard { height: 4; padding: 0 1; }
    ContainerList .card-line { height: 1; }
    ContainerList .card-name { width: 1fr; text-style: bold; }
    ContainerList .card-status { width: auto; }
    ContainerList .card-badges { width: auto; display: none; margin: 0 1; }
    ContainerList .card-badges.-shown { display: block; }
    ContainerList .card-where { color: $text-muted; width: 1fr; }
    ContainerList .card-cpu { width: 11; }
    ContainerList .card-mem { width: 15; }
    ContainerList .card-spark { width: 1fr; height: 1; margin-left: 1; }
    """

    @dataclass
    class Chosen(Message):
        """The user picked a container in the list (mouse or Enter)."""

        container_id: str

    def cards(self) -> list[ContainerCard]:
        return [child for child in self.children if isinstance(child, ContainerCard)]

    def ids(self) -> list[str]:
        return [card.row.id for card in self.cards()]

    async def update_rows(self, rows: list[ContainerRow]) -> None:
        """Add, update and remove cards so the list matches ``rows`` (same order); the highlighted
        container stays highlighted when others come and go."""
        highlighted = self.highlighted_id
        wanted = {row.id for row in rows}
        for card in self.cards():
            if card.row.id not in wanted:
                await card.remove()
        existing = {card.row.id: card for card in self.cards()}
        for row in rows:
            if row.id in existing:
                existing[row.id].update_row(row)
            else:
                await self.append(ContainerCard(row))
        if self.ids() != [row.id for row in rows]:  # order changed (rare): rebuild
            await self.clear()
            await self.extend(ContainerCard(row) for row in rows)
        if highlighted in wanted:
            self.highlight_id(highlighted)
        elif rows and (self.index is None or self.index >= len(rows)):
            self.index = len(rows) - 1

    @property
    def highlighted_id(self) -> str | None:
        item = self.highlighted_child
        return item.row.id if isinstance(item, ContainerCard) else None

    def highlight_id(self, container_id: str | None) -> None:
        ids = self.ids()
        if container_id in ids:
            index = ids.index(container_id)
            if self.index != index:
                self.index = index

    def on_list_view_selected(self, event: ListView.Selected) -> None:
        event.stop()
        if isinstance(event.item, ContainerCard):
            self.post_message(self.Chosen(event.item.row.id))
