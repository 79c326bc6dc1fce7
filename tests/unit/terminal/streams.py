"""Stream generators and comparison helpers shared by the terminal tests and the benchmark."""

from __future__ import annotations

import os
import random

import pyte

from rustainer.backend.terminal import Terminal

# Seeds per fuzz test in CI; RUSTAINER_FUZZ_SEEDS=5000 for a longer run by hand.
SEEDS = int(os.environ.get("RUSTAINER_FUZZ_SEEDS", "100"))

WIDE = ["中", "文", "ｱ", "😀", "한"]
COMBINING = ["\u0301", "\u0308", "\u20dd"]
ODD = ["\u200b", "\u00ad", "\u00a0", "é", "ß", "\x85", "\x01", "\x1a", "\x9b", "\x00", "\x7f", "\x0e"]
BROKEN_UTF8 = [b"\xff", b"\xc3", b"\xe4\xb8", b"\xf0\x9f\x98", b"\x80", b"\xed\xa0\x80"]


def _csi(rng: random.Random, final: str, nparams: int = 1, hi: int = 50) -> str:
    params = ";".join(str(rng.randint(0, hi)) if rng.random() < 0.8 else "" for _ in range(nparams))
    return "\x1b[" + params + final


def fuzz_stream(rng: random.Random, length: int = 400) -> bytes:
    """Random mix of everything pyte implements (alternate screen, colon SGR, DECCOLM and charset
    switching excluded: there the core deliberately differs from pyte, or pyte is chunk-dependent)."""
    out: list[bytes] = []
    for _ in range(length):
        r = rng.random()
        if r < 0.25:
            n = rng.randint(1, 90)
            out.append("".join(rng.choice("abcdefghij XYZ0123456789-=") for _ in range(n)).encode())
        elif r < 0.32:
            out.append(rng.choice(["\r\n", "\n", "\r", "\b", "\t", "\x07", "\x0b", "\x0c", "\r\n\r\n"]).encode())
        elif r < 0.40:
            f = rng.choice("ABCDEFGHdfaIe`")
            nparams = rng.choice([1, 1, 2]) if f in "Hf" else 1  # pyte raises on surplus parameters.
            out.append(_csi(rng, f, nparams, hi=rng.choice([5, 50, 200])).encode())
        elif r < 0.47:
            f = rng.choice("@PXKJLMgZ")
            out.append(_csi(rng, f, 1, hi=2 if f in "JK" else rng.choice([3, 10, 40])).encode())
        elif r < 0.50:
            a, b = rng.randint(0, 30), rng.randint(0, 30)
            out.append(f"\x1b[{a};{b}r".encode() if rng.random() < 0.8 else b"\x1b[r")
        elif r < 0.55:
            mode = rng.choice(["?6", "?7", "4", "20", "?25", "?1", "?2004", "?1000", "?5", "?1006"])
            out.append(f"\x1b[{mode}{rng.choice('hl')}".encode())
        elif r < 0.65:
            codes = [rng.choice([0, 1, 3, 4, 5, 7, 9, 22, 23, 24, 27, 31, 42, 39, 49, 93, 105, 100])]
            if rng.random() < 0.3:
                codes += [38, 5, rng.randint(0, 300)] if rng.random() < 0.5 else [48, 2, 1, 2, rng.randint(0, 255)]
            if rng.random() < 0.1:
                codes = []
            out.append(("\x1b[" + ";".join(map(str, codes)) + "m").encode())
        elif r < 0.70:
            out.append(rng.choice(["\x1b7", "\x1b8", "\x1bD", "\x1bE", "\x1bM", "\x1bH", "\x1b[3g", "\x1b[g", "\x1b=", "\x1b>", "\x1b(0", "\x1b)B"]).encode())
        elif r < 0.76:
            out.append("".join(rng.choice(WIDE + COMBINING + ["a", "b"]) for _ in range(rng.randint(1, 8))).encode())
        elif r < 0.80:
            out.append(rng.choice(ODD).encode() + b"tail")
        elif r < 0.83:
            out.append(rng.choice(BROKEN_UTF8) + b"x")
        elif r < 0.86:
            title = "".join(rng.choice("tile ") for _ in range(rng.randint(0, 8)))
            end = rng.choice(["\x07", "\x1b\\"])
            out.append(f"\x1b]{rng.choice('012')};{title}{end}".encode())
        elif r < 0.87:
            out.append(rng.choice([b"\x1b#8", b"\x1bc", b"\x1b[?25$p", b"\x1b[>c", b"\x1b[1\x08;2H", b"\x1b[5\x18x"]))
        else:
            # Whole lines that scroll: the bulk path.
            for _ in range(rng.randint(1, 30)):
                text = "".join(rng.choice("lorem ipsum ") for _ in range(rng.randint(0, 130)))
                if rng.random() < 0.3:
                    text = f"\x1b[{rng.choice([0, 1, 31, 44])}m" + text + "\x1b[0m"
                out.append((text + "\r\n").encode())
    return b"".join(out)


_SGR = ["0", "", "7", "27", "1;31", "30;46", "44", "1", "22;39;49", "38;5;208", "7;33"]
_WORDS = ["PID", "root", "S", "0%", "[kworker/0:1]", "bash", "|||", "Mem:", "-", "x" * 30]


def _line(rng: random.Random, columns: int, pool: list[str]) -> str:
    r = rng.random()
    if r < 0.45 and pool:
        return rng.choice(pool)  # Repeated lines: the shared run cache.
    if r < 0.55:
        return ""
    if r < 0.65:
        return "".join(rng.choice("abc XYZ") for _ in range(columns + rng.randint(-1, 3)))  # At, past the edge.
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 8)))[: columns + 2]


def redraw_stream(rng: random.Random, columns: int, lines: int, length: int = 150) -> bytes:
    pool = [_line(rng, columns, []) for _ in range(6)]
    out: list[str] = []
    for _ in range(length):
        r = rng.random()
        if r < 0.12:
            out.append(rng.choice(["\x1b[H\x1b[J", "\x1b[H\x1b[2J", "\x1b[J", "\x1b[1J", "\x1b[2J", "\x1b[3J", "\x1b[0;1J"]))
        elif r < 0.22:
            out.append(f"\x1b[{rng.choice(['', '0', '1', '2'])}K")
        elif r < 0.34:
            row, col = rng.randint(0, lines + 2), rng.randint(0, columns + 2)
            out.append(rng.choice([f"\x1b[{row};{col}H", f"\x1b[{row}H", "\x1b[H", f"\x1b[;{col}H", f"\x1b[{row};{col}f"]))
        elif r < 0.46:
            out.append(f"\x1b[{rng.choice(_SGR)}m")
        elif r < 0.70:
            # Lines each ended by CR LF (the one-pass path), sometimes running into the bottom.
            out.append("".join(_line(rng, columns, pool) + "\r\n" for _ in range(rng.randint(1, lines + 2))))
        elif r < 0.80:
            out.append(_line(rng, columns, pool))
        elif r < 0.84:
            # Fill to the last column (a wrap is pending), then erase: pyte's EL 1 writes one cell
            # past the row there, and later erases must treat that row exactly as pyte does.
            out.append("\r" + "w" * columns + rng.choice(["\x1b[1K", "\x1b[K", "\x1b[2K", "\x1b[1K\x1b[J", "\x1b[1K\x1b[2J"]))
        elif r < 0.88:
            top = rng.randint(1, lines)
            out.append(rng.choice([f"\x1b[{top};{rng.randint(top, lines)}r", "\x1b[r"]))
        elif r < 0.92:
            out.append(rng.choice(["\x1b[?6h", "\x1b[?6l", "\x1b[4h", "\x1b[4l", "\x1b[20h", "\x1b[20l", "\x1b[?7l", "\x1b[?7h"]))
        elif r < 0.95:
            out.append(rng.choice(["\x1b[?5h", "\x1b[?5l"]))  # Rows created now default to reverse.
        elif r < 0.96:
            out.append("\x1b[@")  # Moves a full row's last cell to column ``columns`` (pyte).
        elif r < 0.97:
            out.append(rng.choice(["\r", "\n", "\x08", "\t", "\x1bD", "\x1bM", "\x1bE", "\x1b7", "\x1b8"]))
        else:
            out.append(rng.choice(["中文", "e\u0301", "\x1b[5@", "\x1b[@", "\x1b[3P", "\x1b[4X", "\x1b[2L", "\x1b[M"]))
    return "".join(out).encode()


_COLOURS = [b"\x1b[0m", b"\x1b[1;34m", b"\x1b[01;32m", b"\x1b[38;5;208m", b"\x1b[7m", b"\x1b[m", b"\x1b[44m"]


def flood_stream(rng: random.Random, columns: int, length: int = 300) -> bytes:
    """``seq`` and coloured ``ls -lR`` alike: CR LF-ended lines, some with SGR runs, some longer
    than the screen is wide (they wrap), some blank, a few partial lines and stray controls."""
    out: list[bytes] = []
    n = rng.randint(1, 10**6)
    for _ in range(length):
        r = rng.random()
        if r < 0.35:
            out.append(b"%d\r\n" % n)
            n += 1
        elif r < 0.65:
            name = "".join(rng.choice("abcdefghij-_.") for _ in range(rng.randint(0, columns + 5)))
            out.append(b"-rw-r--r-- 1 root %s%s\x1b[0m\r\n" % (rng.choice(_COLOURS), name.encode()))
        elif r < 0.72:
            out.append(b"\r\n")
        elif r < 0.78:
            out.append(b"x" * rng.randint(columns - 1, 2 * columns + 1) + b"\r\n")  # Wraps.
        elif r < 0.84:
            out.append(rng.choice(_COLOURS) + b"partial ")  # Text left on the bottom row.
        elif r < 0.88:
            out.append(rng.choice([b"\n", b"\r", b"\x08", b"\t", b"\x1b[K", b"\x1b[2K", b"\x1b[J", b"\x1bM"]))
        elif r < 0.92:
            out.append(rng.choice([b"\x1b[M", b"\x1b[L", b"\x1b[2M", b"\x1b[3L", b"\x1b[1J", b"\x1b[2J"]))
        elif r < 0.95:
            out.append(f"\x1b[{rng.randint(1, 30)};{rng.randint(1, 90)}H".encode())
        else:
            out.append("wide 中文 e\u0301\r\n".encode())
    return b"".join(out)


def pyte_screen(data: bytes, columns: int, lines: int) -> pyte.Screen:
    screen = pyte.Screen(columns, lines)
    pyte.ByteStream(screen).feed(data)
    return screen


def pyte_or_none(data: bytes, columns: int, lines: int) -> pyte.Screen | None:
    """Stock pyte's screen for ``data``, or None where pyte itself raises (e.g. VPA in origin mode):
    such seeds are no reference."""
    try:
        return pyte_screen(data, columns, lines)
    except Exception:  # noqa: BLE001 - any failure of the reference
        return None


def displayable(screen: pyte.Screen) -> bool:
    """Whether pyte can render ``screen.display`` (it raises IndexError on a "" cell that does not
    follow a wide character)."""
    try:
        screen.display  # noqa: B018
    except Exception:  # noqa: BLE001
        return False
    return True


def screen_diff(term: Terminal, ref: pyte.Screen) -> str | None:
    """First difference between the core and a stock pyte screen (every cell, cursor, modes), or None."""
    core = term.screen
    if (core.cursor.x, core.cursor.y) != (ref.cursor.x, ref.cursor.y):
        return f"cursor {(core.cursor.x, core.cursor.y)} != {(ref.cursor.x, ref.cursor.y)}"
    if core.cursor.attrs != ref.cursor.attrs:
        return f"cursor attrs {core.cursor.attrs} != {ref.cursor.attrs}"
    if core.cursor.hidden != ref.cursor.hidden:
        return "cursor visibility"
    if core.title != ref.title or core.icon_name != ref.icon_name:
        return f"title {core.title!r} != {ref.title!r}"
    if set(core.mode) != set(ref.mode):
        return f"modes {sorted(core.mode)} != {sorted(ref.mode)}"
    if core.margins != ref.margins:
        return f"margins {core.margins} != {ref.margins}"
    for y in range(ref.lines):
        for x in range(ref.columns):
            a, b = core.buffer[y][x], ref.buffer[y][x]
            if a != b:
                return f"cell ({x},{y}) {a} != {b}"
        # Which cells were written matters too: pyte's erase functions only touch written cells.
        if set(core.buffer[y]) != set(ref.buffer[y]):
            return f"written cells of line {y}: {sorted(core.buffer[y])} != {sorted(ref.buffer[y])}"
    if term.display != ref.display:
        return "display"
    return None


def feed_chunked(term: Terminal, data: bytes, rng: random.Random, max_chunk: int = 7) -> None:
    i = 0
    while i < len(data):
        n = rng.randint(1, max_chunk)
        term.feed(data[i : i + n])
        i += n


def same_under_chunking(data: bytes, columns: int, lines: int, rng: random.Random, max_chunks: list[int]) -> bool:
    """Whether feeding ``data`` in random chunks (at most one of ``max_chunks`` bytes, drawn from
    ``rng``) gives the same state as feeding it whole."""
    whole = Terminal(columns, lines)
    whole.feed(data)
    chunked = Terminal(columns, lines)
    feed_chunked(chunked, data, rng, max_chunk=rng.choice(max_chunks))
    return state(chunked) == state(whole)


def state(term: Terminal) -> tuple[object, ...]:
    """Everything observable, for chunking comparisons (scrollback included)."""
    scr = term.screen
    cells = tuple(tuple(scr.buffer[y][x] for x in range(scr.columns)) for y in range(scr.lines))
    return (cells, term.cursor, scr.cursor.attrs, term.cursor_hidden, term.title, sorted(scr.mode),
            scr.margins, tuple(term.history), term.alternate_screen)
