"""The overview: every running container's screen drawn small, as tiles that fill the widget.

One widget draws every tile (no widget per tile: nothing is mounted or laid out when containers come
and go). It reads the sessions the app keeps alive in the background and never becomes their
listener, so the panes that show them are not disturbed: a frame clock at ``FPS`` looks at each
tile's session and renders again only the tiles whose session was fed (or resized, or replaced)
since the last frame, each row straight from the core's compact rows (:func:`row_strip`), cropped
to the tile. Nothing is parsed twice.

Arrows or a click pick a tile; Enter or a double click posts :class:`Overview.Zoom`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from rustainer.widgets.terminal_render import row_strip
from rustainer.widgets.terminal_session import TerminalSession

FPS = 15  # frames a second at most; a tile is drawn again only when its session changed

# xterm 256-colour palette (as the rest of the dashboard): a tile's title bar, the picked one's, a mark.
BAR_STYLE = Style(color="#dadada", bgcolor="#303030", bold=True)
PICKED_STYLE = Style(color="#121212", bgcolor="#5f87d7", bold=True)
MARK_STYLE = Style(color="#d7af5f", bold=True)
SEPARATOR = Segment("│", Style(color="#444444"))


@dataclass(frozen=True)
class Tile:
    """One container in the overview."""

    cid: str
    name: str
    session: TerminalSession
    marked: bool = False  # marked for broadcast input


def grid_shape(count: int, width: int, height: int) -> tuple[int, int]:
    """(columns, rows) of tiles for ``count`` tiles in ``width`` x ``height`` cells: the arrangement
    whose tiles are the largest copies of an 80x24 terminal (a cell is about twice as tall as wide,
    so this keeps the tiles' shape close to the screens they show)."""
    if count <= 0:
        return (0, 0)
    best, best_score = (1, count), -1.0
    for cols in range(1, count + 1):
        rows = math.ceil(count / cols)
        if (cols - 1) * rows >= count:
            continue  # a whole column would be empty
        tile_w = (width - (cols - 1)) / cols
        tile_h = height / rows - 1  # the title bar
        score = min(tile_w / 80, tile_h / 24)
        if score > best_score:
            best, best_score = (cols, rows), score
    return best


def tile_regions(count: int, width: int, height: int) -> list[Region]:
    """Where each tile goes (row by row), a one-cell separator between columns; the last column and
    row take what division leaves over."""
    cols, rows = grid_shape(count, width, height)
    if not cols:
        return []
    base_w = (width - (cols - 1)) // cols
    base_h = height // rows
    regions = []
    for i in range(count):
        r, c = divmod(i, cols)
        x = c * (base_w + 1)
        w = base_w if c < cols - 1 else width - x
        y = r * base_h
        h = base_h if r < rows - 1 else height - y
        regions.append(Region(x, y, max(w, 0), max(h, 0)))
    return regions


def first_row_shown(cursor_y: int, alternate: bool, rows: int) -> int:
    """The first screen line a tile of ``rows`` content lines shows: a full-screen program (the
    alternate screen) from its top, where it keeps what matters (top's summary); a shell down to
    the cursor's line, so the prompt and the latest output stay in view."""
    if alternate or cursor_y < rows:
        return 0
    return cursor_y - rows + 1


class Overview(Widget, can_focus=True):
    """Tiles of live screens; ``source()`` is asked at every frame which tiles there are (in order)."""

    DEFAULT_CSS = """
    Overview {
        width: 1fr;
        height: 1fr;
    }
    """

    BINDINGS = [
        Binding("enter", "zoom", "Zoom"),
        Binding("left", "move(-1, 0)", "Pick", key_display="←↑↓→"),
        Binding("right", "move(1, 0)", "Pick", show=False),
        Binding("up", "move(0, -1)", "Pick", show=False),
        Binding("down", "move(0, 1)", "Pick", show=False),
    ]

    class Zoom(Message):
        """Show this container in the normal view."""

        def __init__(self, container_id: str) -> None:
            super().__init__()
            self.container_id = container_id

    def __init__(self, source: Callable[[], Sequence[Tile]], *, picked: str | None = None,
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.source = source
        self.tiles: list[Tile] = []
        self.picked_id = picked
        self._regions: list[Region] = []
        self._strips: dict[str, list[Strip]] = {}  # a tile's drawn lines (title bar first)
        self._drawn: dict[str, tuple[object, ...]] = {}  # what each tile's lines were drawn from
        self._grid_size: tuple[int, int] = (0, 0)
        self.frames = 0  # frames that drew at least one tile (the benchmark reads it)
        self.tiles_drawn = 0  # tiles drawn in all

    # -- the frame clock -----------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.frame()
        self.set_interval(1 / FPS, self.frame)

    def frame(self) -> None:
        """Take the tiles from the source; draw again those whose session changed."""
        tiles = list(self.source())
        size = (self.content_size.width, self.content_size.height)
        layout_changed = size != self._grid_size or [t.cid for t in tiles] != [t.cid for t in self.tiles]
        self.tiles = tiles
        if layout_changed:
            self._grid_size = size
            self._regions = tile_regions(len(tiles), *size)
            self._strips.clear()
            self._drawn.clear()
        ids = [t.cid for t in tiles]
        if self.picked_id not in ids:
            self.picked_id = ids[0] if ids else None
        drawn = 0
        for tile, region in zip(tiles, self._regions, strict=True):
            term = tile.session.terminal
            key = (id(term), tile.session.fed, term.columns, term.lines, term.cursor, term.title,
                   tile.marked, tile.cid == self.picked_id, tile.session.ended, region.size)
            if self._drawn.get(tile.cid) == key:
                continue
            self._drawn[tile.cid] = key
            self._strips[tile.cid] = self._draw_tile(tile, region)
            drawn += 1
            if not layout_changed:
                self.refresh(region)
        for cid in [cid for cid in self._strips if cid not in ids]:
            del self._strips[cid]
            self._drawn.pop(cid, None)
        if layout_changed:
            self.refresh()
        if drawn:
            self.frames += 1
            self.tiles_drawn += drawn

    def _draw_tile(self, tile: Tile, region: Region) -> list[Strip]:
        width, height = region.width, region.height
        if width <= 0 or height <= 0:
            return []
        term = tile.session.terminal
        picked = tile.cid == self.picked_id
        bar_style = PICKED_STYLE if picked else BAR_STYLE
        parts = [Segment(" ", bar_style)]
        if tile.marked:
            parts.append(Segment("◆ ", MARK_STYLE + Style(bgcolor=bar_style.bgcolor)))
        label = tile.name + (f" — {term.title}" if term.title else "") + (" (ended)" if tile.session.ended else "")
        parts.append(Segment(label + " " * width, bar_style))
        lines = [Strip(parts).crop(0, width).adjust_cell_length(width, bar_style)]
        rows = height - 1
        start = first_row_shown(term.cursor[1], term.alternate_screen, rows)
        for y in range(start, start + rows):
            if y < term.lines:
                lines.append(row_strip(term.compact_line(y), width))
            else:
                lines.append(Strip.blank(width))
        return lines

    # -- drawing -------------------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width = self.content_size.width
        parts: list[Strip] = []
        x = 0
        for tile, region in zip(self.tiles, self._regions, strict=False):
            if not region.y <= y < region.bottom:
                continue
            if region.x > x:
                parts.append(Strip([SEPARATOR] * (region.x - x), region.x - x))
            strips = self._strips.get(tile.cid)
            line = y - region.y
            parts.append(strips[line] if strips and line < len(strips) else Strip.blank(region.width))
            x = region.right
        if not parts:
            return Strip.blank(width)
        if x < width:
            parts.append(Strip.blank(width - x))
        return Strip.join(parts)

    # -- picking ---------------------------------------------------------------------------------------
    @property
    def picked_index(self) -> int:
        ids = [t.cid for t in self.tiles]
        return ids.index(self.picked_id) if self.picked_id in ids else -1

    def pick(self, cid: str) -> None:
        if cid != self.picked_id:
            self.picked_id = cid
            self.frame()

    def action_move(self, dx: int, dy: int) -> None:
        if not self.tiles:
            return
        cols, _rows = grid_shape(len(self.tiles), *self._grid_size) if self._grid_size[0] else (1, len(self.tiles))
        index = max(self.picked_index, 0)
        if dx:
            index = (index + dx) % len(self.tiles)
        elif 0 <= index + dy * cols < len(self.tiles):
            index += dy * cols
        self.pick(self.tiles[index].cid)

    def action_zoom(self) -> None:
        if self.picked_id is not None:
            self.post_message(self.Zoom(self.picked_id))

    def tile_at(self, x: int, y: int) -> Tile | None:
        for tile, region in zip(self.tiles, self._regions, strict=False):
            if region.contains(x, y):
                return tile
        return None

    def on_click(self, event: events.Click) -> None:
        tile = self.tile_at(event.x, event.y)
        if tile is None:
            return
        self.pick(tile.cid)
        if event.chain >= 2:
            self.post_message(self.Zoom(tile.cid))
